// scaled_dot_product_attention entries: argument checks, the broadcast of the
// batch dimensions (GQA included) and of the mask, packing of the key/value
// tiles, and the parallel loops over (batch, head, query tile) that run the
// active ISA's fused kernels.
#include "ops/attention/attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "core/parallel.h"
#include "core/per_thread.h"

namespace tfg {

namespace {

// Lanes of the backward's dk/dv sums: Note [deterministic dk/dv].
constexpr int64_t kGradientLanes = 4;

}  // namespace

namespace attn_detail {

Shape out_shape(const Problem& p, int64_t last) {
  Shape s = p.batch;
  s.push_back(p.L);
  s.push_back(last);
  return s;
}

// Size of dim d (of nb batch dims, right-aligned) of `shape`'s batch part; 1 when absent.
static int64_t batch_size(const Shape& shape, int64_t nb, int64_t d) {
  const int64_t off = static_cast<int64_t>(shape.size()) - 2 - nb;
  return d + off >= 0 ? shape[d + off] : 1;
}

// Matrix strides of a C-contiguous array's batch dims (0 for size-1 dims).
static std::vector<int64_t> matrix_strides(const Shape& shape, int64_t nb) {
  std::vector<int64_t> st(nb);
  int64_t acc = 1;
  for (int64_t d = nb - 1; d >= 0; --d) {
    const int64_t n = batch_size(shape, nb, d);
    st[d] = n == 1 ? 0 : acc;
    acc *= n;
  }
  return st;
}

// The mask as an additive C-contiguous array of type T whose last dim is S
// (bool: True -> 0, False -> -inf); read in place when it already is one.
template <class T>
static Array additive_mask(const Array& m, int64_t S) {
  const int64_t nd = m.ndim();
  const bool last_ok = nd == 0 ? S == 1 : m.shape[nd - 1] == S;
  if (m.dtype == dtype_of<T>() && m.is_contiguous() && last_ok) return m;
  Shape shape = m.shape;
  if (nd == 0) shape.push_back(S);
  else shape[nd - 1] = S;
  Array out = Array::empty(shape, dtype_of<T>());
  const int64_t n = out.numel();
  if (n == 0) return out;
  const int64_t od = static_cast<int64_t>(shape.size());
  Shape src_st(od, 0);
  for (int64_t d = 0; d < nd; ++d) src_st[d] = m.shape[d] == 1 ? 0 : m.strides[d];
  std::vector<int64_t> idx(od, 0);
  T* dst = out.ptr<T>();
  const T minus_inf = -std::numeric_limits<T>::infinity();
  for (int64_t i = 0; i < n; ++i) {
    int64_t off = 0;
    for (int64_t d = 0; d < od; ++d) off += idx[d] * src_st[d];
    if (m.dtype == DType::bool_) dst[i] = static_cast<const uint8_t*>(m.data)[off] ? T(0) : minus_inf;
    else dst[i] = m.ptr<const T>()[off];
    for (int64_t d = od - 1; d >= 0 && ++idx[d] == shape[d]; --d) idx[d] = 0;
  }
  return out;
}

Problem analyse(const char* op, const Array& q, const Array& k, const Array& v,
                const AttentionOptions& opt) {
  check_float_cpu(op, "query", q);
  check_float_cpu(op, "key", k);
  check_float_cpu(op, "value", v);
  TFG_CHECK_TYPE(k.dtype == q.dtype && v.dtype == q.dtype, op, ": query, key and value must have the same dtype, got ",
                 dtype_name(q.dtype), ", ", dtype_name(k.dtype), " and ", dtype_name(v.dtype));
  TFG_CHECK_VALUE(q.ndim() >= 2 && k.ndim() >= 2 && v.ndim() >= 2, op,
                  ": query, key and value must have at least 2 dims, got shapes ", shape_str(q.shape), ", ",
                  shape_str(k.shape), " and ", shape_str(v.shape));
  Problem p;
  p.L = q.shape[q.ndim() - 2];
  p.E = q.shape[q.ndim() - 1];
  p.S = k.shape[k.ndim() - 2];
  p.Ev = v.shape[v.ndim() - 1];
  TFG_CHECK_VALUE(k.shape[k.ndim() - 1] == p.E, op, ": key's last dim must equal query's (E = ", p.E,
                  "), got query ", shape_str(q.shape), " and key ", shape_str(k.shape));
  TFG_CHECK_VALUE(v.shape[v.ndim() - 2] == p.S, op, ": value's dim -2 must equal key's (S = ", p.S,
                  "), got key ", shape_str(k.shape), " and value ", shape_str(v.shape));
  const int64_t nb = std::max({q.ndim(), k.ndim(), v.ndim()}) - 2;
  int64_t gqa_dim = -1, gk = 1, gv = 1;
  if (opt.enable_gqa) {
    TFG_CHECK_VALUE(q.ndim() >= 3 && k.ndim() >= 3 && v.ndim() >= 3, op,
                    ": enable_gqa needs query, key and value with a heads dim (-3), got shapes ",
                    shape_str(q.shape), ", ", shape_str(k.shape), " and ", shape_str(v.shape));
    gqa_dim = nb - 1;
    const int64_t hq = q.shape[q.ndim() - 3], hk = k.shape[k.ndim() - 3], hv = v.shape[v.ndim() - 3];
    TFG_CHECK_VALUE(hk > 0 && hv > 0 && hq % hk == 0 && hq % hv == 0, op,
                    ": enable_gqa needs query's heads (dim -3) to be a multiple of key's and value's, got ",
                    hq, " query heads, ", hk, " key heads and ", hv, " value heads (shapes ", shape_str(q.shape),
                    ", ", shape_str(k.shape), ", ", shape_str(v.shape), ")");
    gk = hq / hk;
    gv = hq / hv;
  }
  p.batch.resize(nb);
  for (int64_t d = 0; d < nb; ++d) {
    const int64_t sq = batch_size(q.shape, nb, d), sk = batch_size(k.shape, nb, d), sv = batch_size(v.shape, nb, d);
    if (d == gqa_dim) {
      p.batch[d] = sq;
      continue;
    }
    const int64_t n = std::max({sq, sk, sv});
    TFG_CHECK_VALUE((sq == n || sq == 1) && (sk == n || sk == 1) && (sv == n || sv == 1), op,
                    ": the batch dims of query ", shape_str(q.shape), ", key ", shape_str(k.shape), " and value ",
                    shape_str(v.shape), " do not broadcast");
    p.batch[d] = n;
  }
  for (int64_t n : p.batch) p.nbatch *= n;

  if (opt.attn_mask) {
    const Array& m = *opt.attn_mask;
    TFG_CHECK_VALUE(m.device.kind == Device::cpu, op, ": attn_mask must be on the CPU, got ", m.device.str());
    TFG_CHECK_TYPE(m.dtype == DType::bool_ || m.dtype == q.dtype, op,
                   ": attn_mask must be bool or have query's dtype (", dtype_name(q.dtype), "), got ",
                   dtype_name(m.dtype));
    TFG_CHECK_VALUE(!opt.is_causal, op, ": attn_mask and is_causal=True cannot be given together");
    Shape full = p.batch;
    full.push_back(p.L);
    full.push_back(p.S);
    bool ok = m.ndim() <= static_cast<int64_t>(full.size());
    for (int64_t d = 0; ok && d < m.ndim(); ++d) {
      const int64_t want = full[full.size() - m.ndim() + d];
      ok = m.shape[d] == 1 || m.shape[d] == want;
    }
    TFG_CHECK_VALUE(ok, op, ": attn_mask of shape ", shape_str(m.shape),
                    " does not broadcast to the attention weights' shape ", shape_str(full));
  }
  p.causal = opt.is_causal;
  p.scale = opt.scale ? *opt.scale : (p.E > 0 ? 1.0 / std::sqrt(static_cast<double>(p.E)) : 1.0);
  p.q = q.contiguous();
  p.k = k.contiguous();
  p.v = v.contiguous();

  const std::vector<int64_t> qs = matrix_strides(q.shape, nb), ks = matrix_strides(k.shape, nb),
                             vs = matrix_strides(v.shape, nb);
  std::vector<int64_t> ms;
  if (opt.attn_mask && p.nbatch * p.L * p.S > 0) {
    p.has_mask = true;
    p.mask = TFG_DISPATCH_FLOATING(q.dtype, op, [&] { return additive_mask<scalar_t>(*opt.attn_mask, p.S); });
    const int64_t md = p.mask.ndim();
    const int64_t lm = md >= 2 ? p.mask.shape[md - 2] : 1;
    p.mask_rs = lm == 1 ? 0 : p.S;
    p.mask_mat = lm * p.S;
    Shape mshape = p.mask.shape;  // as a (batch..., Lm, S) array for matrix_strides
    while (static_cast<int64_t>(mshape.size()) < 2) mshape.insert(mshape.begin(), 1);
    ms = matrix_strides(mshape, nb);
  }
  p.qi.resize(p.nbatch);
  p.ki.resize(p.nbatch);
  p.vi.resize(p.nbatch);
  p.mi.assign(p.nbatch, 0);
  std::vector<int64_t> idx(nb, 0);
  for (int64_t b = 0; b < p.nbatch; ++b) {
    int64_t a = 0, c = 0, e = 0, f = 0;
    for (int64_t d = 0; d < nb; ++d) {
      a += idx[d] * qs[d];
      c += (d == gqa_dim ? idx[d] / gk : idx[d]) * ks[d];
      e += (d == gqa_dim ? idx[d] / gv : idx[d]) * vs[d];
      if (p.has_mask) f += idx[d] * ms[d];
    }
    p.qi[b] = a;
    p.ki[b] = c;
    p.vi[b] = e;
    p.mi[b] = f;
    for (int64_t d = nb - 1; d >= 0 && ++idx[d] == p.batch[d]; --d) idx[d] = 0;
  }
  return p;
}

void check_backward_args(const char* op, const Problem& p, const Array& q, const Array& grad_out,
                         const Array* output, const Array* lse_in) {
  check_float_cpu(op, "grad_out", grad_out);
  TFG_CHECK_TYPE(grad_out.dtype == q.dtype, op, ": grad_out has dtype ", dtype_name(grad_out.dtype),
                 " but query has dtype ", dtype_name(q.dtype));
  const Shape os = out_shape(p, p.Ev);
  TFG_CHECK_VALUE(grad_out.shape == os, op, ": grad_out has shape ", shape_str(grad_out.shape),
                  " but the output's shape is ", shape_str(os));
  TFG_CHECK_VALUE((output == nullptr) == (lse_in == nullptr), op,
                  ": output and lse must be given together (the forward's results) or not at all");
  if (output) {
    Shape ls = p.batch;
    ls.push_back(p.L);
    check_float_cpu(op, "output", *output);
    check_float_cpu(op, "lse", *lse_in);
    TFG_CHECK_TYPE(output->dtype == q.dtype && lse_in->dtype == q.dtype, op,
                   ": output and lse must have query's dtype ", dtype_name(q.dtype), ", got ",
                   dtype_name(output->dtype), " and ", dtype_name(lse_in->dtype));
    TFG_CHECK_VALUE(output->shape == os && lse_in->shape == ls, op, ": output must have shape ", shape_str(os),
                    " and lse ", shape_str(ls), ", got ", shape_str(output->shape), " and ",
                    shape_str(lse_in->shape));
  }
}

}  // namespace attn_detail

namespace {

using attn_detail::Problem;
using attn_detail::analyse;
using attn_detail::out_shape;

template <class T>
const AttentionKernels<T>& kernels() {
  if constexpr (std::is_same_v<T, float>) return active_attention_kernels_f32();
  else return active_attention_kernels_f64();
}

// Packs every key (and value, when vt) matrix into transposed tiles once.
template <class T>
Array pack_all(const Array& x, int64_t S, int64_t E, T mul) {
  const int64_t mats = S * E > 0 ? x.numel() / (S * E) : 0;
  const int64_t per = attn_packed_elems(S, E);
  Array out = Array::empty({mats * per}, dtype_of<T>());
  const T* src = x.ptr<T>();
  T* dst = out.ptr<T>();
  parallel_for(mats, [&](int64_t i) { attn_pack_transposed(src + i * S * E, S, E, mul, dst + i * per); });
  return out;
}

template <class T>
AttnHead<T> head(const Problem& p, int64_t b, const T* kt, const T* vt) {
  AttnHead<T> h;
  h.q = p.q.ptr<T>() + p.qi[b] * p.L * p.E;
  h.k = p.k.ptr<T>() + p.ki[b] * p.S * p.E;
  h.v = p.v.ptr<T>() + p.vi[b] * p.S * p.Ev;
  h.kt = kt ? kt + p.ki[b] * attn_packed_elems(p.S, p.E) : nullptr;
  h.vt = vt ? vt + p.vi[b] * attn_packed_elems(p.S, p.Ev) : nullptr;
  h.mask = p.has_mask ? p.mask.ptr<T>() + p.mi[b] * p.mask_mat : nullptr;
  h.mask_rs = p.mask_rs;
  h.L = p.L;
  h.S = p.S;
  h.E = p.E;
  h.Ev = p.Ev;
  h.causal = p.causal;
  return h;
}

int64_t query_tiles(const Problem& p) { return (p.L + kAttnBlockQ - 1) / kAttnBlockQ; }

// Work item i -> (batch b, first query row): the last tiles (the most keys
// when causal) are handed out first.
void item_of(const Problem& p, int64_t i, int64_t* b, int64_t* q0, int64_t* rows) {
  const int64_t nt = query_tiles(p);
  *b = i / nt;
  *q0 = (nt - 1 - i % nt) * kAttnBlockQ;
  *rows = std::min(kAttnBlockQ, p.L - *q0);
}

// Note [forward items]: a forward work item is a run of query tiles of one
// (batch, head); it packs the keys it needs (up to its last causal key) into
// its thread's buffer, reused from item to item, and runs its tiles against
// it. Runs are whole heads unless that gives fewer than about four items per
// thread. Packing per item instead of all keys up front keeps the buffer
// small and warm in cache and avoids faulting in a fresh K-sized array on
// every call (measured: that cost ~6% of the B4 H8 L512 E64 forward).
template <class T>
void run_forward(const Problem& p, T* out, T* lse) {
  const AttentionKernels<T>& kern = kernels<T>();
  const int threads = num_threads();
  const int64_t nt = query_tiles(p);
  int64_t runs = 1;
  while (runs < nt && p.nbatch * runs < 4 * threads) runs *= 2;
  runs = std::min(runs, nt);
  const int64_t per_run = (nt + runs - 1) / runs;
  PerThread<T> scratch(threads, attn_scratch_elems(p.Ev));
  PerThread<T> packed(threads, attn_packed_elems(p.S, p.E));
  const T scale = static_cast<T>(p.scale);
  parallel_for_with_thread(p.nbatch * runs, [&](int64_t i, int t) {
    const int64_t b = i / runs, r = runs - 1 - i % runs;  // causal: the longest runs first
    const int64_t t0 = r * per_run, t1 = std::min(nt, t0 + per_run);
    if (t0 >= t1) return;
    const int64_t kend = p.causal ? std::min(p.S, t1 * kAttnBlockQ) : p.S;
    AttnHead<T> h = head<T>(p, b, nullptr, nullptr);
    attn_pack_transposed(h.k, kend, p.E, scale, packed[t]);
    h.kt = packed[t];
    for (int64_t tile = t1 - 1; tile >= t0; --tile) {
      const int64_t q0 = tile * kAttnBlockQ;
      kern.forward_tile(h, q0, std::min(kAttnBlockQ, p.L - q0), out + b * p.L * p.Ev, lse + b * p.L, scratch[t]);
    }
  });
}

}  // namespace

Array scaled_dot_product_attention(const Array& q, const Array& k, const Array& v,
                                   const AttentionOptions& opt, Array* lse_out) {
  const char* op = "scaled_dot_product_attention";
  const Problem p = analyse(op, q, k, v, opt);
  Array out = Array::empty(out_shape(p, p.Ev), q.dtype);
  Shape lse_shape = p.batch;
  lse_shape.push_back(p.L);
  Array lse = Array::empty(lse_shape, q.dtype);
  if (lse_out) *lse_out = lse;
  if (p.nbatch * p.L == 0) return out;
  if (p.S == 0) {  // softmax over no keys: PyTorch gives 0, as for fully masked rows
    TFG_DISPATCH_FLOATING(q.dtype, op, [&] {
      std::fill(lse.ptr<scalar_t>(), lse.ptr<scalar_t>() + lse.numel(), std::numeric_limits<scalar_t>::infinity());
    });
    return Array::zeros(out.shape, q.dtype);
  }
  TFG_DISPATCH_FLOATING(q.dtype, op, [&] {
    run_forward<scalar_t>(p, out.ptr<scalar_t>(), lse.ptr<scalar_t>());
  });
  return out;
}

AttentionGrads scaled_dot_product_attention_backward(const Array& grad_out, const Array& q,
                                                     const Array& k, const Array& v,
                                                     const AttentionOptions& opt, const Array* output,
                                                     const Array* lse_in) {
  const char* op = "scaled_dot_product_attention_backward";
  const Problem p = analyse(op, q, k, v, opt);
  attn_detail::check_backward_args(op, p, q, grad_out, output, lse_in);
  AttentionGrads g{Array::zeros(q.shape, q.dtype), Array::zeros(k.shape, q.dtype), Array::zeros(v.shape, q.dtype)};
  if (p.nbatch * p.L * p.S == 0) return g;
  TFG_DISPATCH_FLOATING(q.dtype, op, [&] {
    using T = scalar_t;
    const Array dout = grad_out.contiguous();
    const Array kt = pack_all<T>(p.k, p.S, p.E, static_cast<T>(p.scale)), vt = pack_all<T>(p.v, p.S, p.Ev, T(1));
    Array o, lse;
    if (output) {
      o = output->contiguous();
      lse = lse_in->contiguous();
    } else {
      o = Array::empty({p.nbatch * p.L * p.Ev}, q.dtype);
      lse = Array::empty({p.nbatch * p.L}, q.dtype);
      run_forward<T>(p, o.ptr<T>(), lse.ptr<T>());
    }
    // Note [broadcast gradients]: dq is written per output batch and summed
    // into q's shape afterwards when q was broadcast; dk and dv accumulate
    // straight into k's and v's shapes (GQA and broadcasting included).
    // Note [deterministic dk/dv]: dk and dv are sums over query tiles, often
    // of several items. The items are cut into a fixed number of lanes
    // (contiguous ranges, whatever the thread count); each lane adds its
    // items in order into its own buffer, which spans only the key and value
    // matrices its batches read, and the lanes are added in order at the end,
    // so the gradients are the same bits on any number of threads.
    const bool q_direct = q.numel() == p.nbatch * p.L * p.E;
    Array dq_full = q_direct ? g.grad_q : Array::empty({p.nbatch * p.L * p.E}, q.dtype);
    const int64_t kmat = p.S * p.E, vmat = p.S * p.Ev;
    const int64_t nt = query_tiles(p), items = p.nbatch * nt;
    const int64_t lanes = std::min<int64_t>(items, kGradientLanes);
    struct Lane { int64_t k0, k1, v0, v1; Array acc; };  // matrix ranges [k0, k1), [v0, v1)
    std::vector<Lane> lane_of(lanes);
    for (int64_t l = 0; l < lanes; ++l) {
      Lane& ln = lane_of[l];
      const int64_t b0 = l * items / lanes / nt, b1 = ((l + 1) * items / lanes - 1) / nt;
      ln.k0 = ln.v0 = INT64_MAX;
      ln.k1 = ln.v1 = 0;
      for (int64_t b = b0; b <= b1; ++b) {
        ln.k0 = std::min(ln.k0, p.ki[b]); ln.k1 = std::max(ln.k1, p.ki[b] + 1);
        ln.v0 = std::min(ln.v0, p.vi[b]); ln.v1 = std::max(ln.v1, p.vi[b] + 1);
      }
      ln.acc = Array::zeros({(ln.k1 - ln.k0) * kmat + (ln.v1 - ln.v0) * vmat}, q.dtype);
    }
    PerThread<T> scratch(num_threads(), attn_scratch_elems(p.Ev));
    const AttentionKernels<T>& kern = kernels<T>();
    parallel_for_with_thread(lanes, [&](int64_t l, int t) {
      const Lane& ln = lane_of[l];
      T* dk = ln.acc.ptr<T>();
      T* dv = dk + (ln.k1 - ln.k0) * kmat;
      for (int64_t i = l * items / lanes; i < (l + 1) * items / lanes; ++i) {
        int64_t b, q0, rows;
        item_of(p, i, &b, &q0, &rows);
        const AttnHead<T> h = head<T>(p, b, kt.ptr<T>(), vt.ptr<T>());
        kern.backward_tile(h, q0, rows, dout.ptr<T>() + b * p.L * p.Ev, o.ptr<T>() + b * p.L * p.Ev,
                           lse.ptr<T>() + b * p.L, dq_full.ptr<T>() + b * p.L * p.E,
                           dk + (p.ki[b] - ln.k0) * kmat, dv + (p.vi[b] - ln.v0) * vmat, scratch[t]);
      }
    });
    const T scale = static_cast<T>(p.scale);
    T* gq = g.grad_q.ptr<T>();
    if (q_direct) {
      for (int64_t i = 0; i < q.numel(); ++i) gq[i] *= scale;
    } else {
      const int64_t mat = p.L * p.E;
      for (int64_t b = 0; b < p.nbatch; ++b) {
        const T* src = dq_full.ptr<T>() + b * mat;
        T* dst = gq + p.qi[b] * mat;
        for (int64_t i = 0; i < mat; ++i) dst[i] += scale * src[i];
      }
    }
    T* gk = g.grad_k.ptr<T>();
    T* gv = g.grad_v.ptr<T>();
    const int64_t nkm = kmat ? p.k.numel() / kmat : 0, nvm = vmat ? p.v.numel() / vmat : 0;
    parallel_for(nkm + nvm, [&](int64_t j) {  // one key or value matrix, its lanes in order
      const bool is_k = j < nkm;
      const int64_t mat = is_k ? j : j - nkm, size = is_k ? kmat : vmat;
      const T mul = is_k ? scale : T(1);
      T* dst = (is_k ? gk : gv) + mat * size;
      for (const Lane& ln : lane_of) {
        const int64_t lo = is_k ? ln.k0 : ln.v0, hi = is_k ? ln.k1 : ln.v1;
        if (mat < lo || mat >= hi) continue;
        const T* src = ln.acc.ptr<T>() + (is_k ? 0 : (ln.k1 - ln.k0) * kmat) + (mat - lo) * size;
        for (int64_t i = 0; i < size; ++i) dst[i] += mul * src[i];
      }
    });
  });
  return g;
}

}  // namespace tfg
