// Argument parsing shared by the CPU and CUDA attention bindings
// (bind_attention.cpp, bind_cuda_attention.cpp).
#pragma once
#include <pybind11/pybind11.h>

#include <optional>

#include "bindings/numpy_array.h"
#include "ops/attention/attention.h"

namespace tfg::bindings {

// The operands and options of one attention call; opt.attn_mask points at
// this object's `mask`, so it is filled in place (never copied).
struct AttentionInputs {
  Array q, k, v, mask;
  AttentionOptions opt;

  AttentionInputs(const char* op, const pybind11::handle& query, const pybind11::handle& key,
                  const pybind11::handle& value, const pybind11::handle& attn_mask, bool is_causal,
                  std::optional<double> scale, bool enable_gqa) {
    q = borrow_array(query, op, "query");
    k = borrow_array(key, op, "key");
    v = borrow_array(value, op, "value");
    if (!attn_mask.is_none()) {
      mask = borrow_array(attn_mask, op, "attn_mask");
      opt.attn_mask = &mask;
    }
    opt.is_causal = is_causal;
    opt.scale = scale;
    opt.enable_gqa = enable_gqa;
  }
  AttentionInputs(const AttentionInputs&) = delete;
  AttentionInputs& operator=(const AttentionInputs&) = delete;
};

}  // namespace tfg::bindings
