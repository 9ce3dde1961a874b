// PerThread<T>: scratch for the threads of a parallel_for_with_thread loop,
// one 64-byte aligned slice of `elems` elements per thread, allocated once
// before the loop (index it with the loop's thread number), zero-filled on request.
#pragma once
#include <algorithm>
#include <cstdint>

#include "core/array.h"

namespace tfg {

template <class T>
class PerThread {
 public:
  PerThread(int threads, int64_t elems, bool zeroed = false)
      : stride_((std::max<int64_t>(elems, 1) + kAlign - 1) / kAlign * kAlign),
        storage_(zeroed ? Array::zeros({threads * stride_}, dtype_of<T>())
                        : Array::empty({threads * stride_}, dtype_of<T>())) {}
  T* operator[](int thread) const { return storage_.ptr<T>() + thread * stride_; }

 private:
  static constexpr int64_t kAlign = 64 / sizeof(T);
  int64_t stride_;
  Array storage_;
};

}  // namespace tfg
