// parallel_for: runs f(i) for i in [0, n) on up to num_threads() OpenMP threads.
//
// Note [dynamic chunks]: work is handed out one item at a time from a shared
// atomic counter, never split statically. This machine is shared: when another
// process holds a core, a statically scheduled thread sharing that core finishes
// last and the whole loop waits for it (two threads end up slower than one).
// With dynamic items the unlucky thread simply takes fewer of them. Callers
// choose items big enough (tens of microseconds or more) that the counter is noise.
//
// f must not throw: check arguments before entering the parallel region.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace tfg {

int num_threads();             // threads kernels may use (>= 1; 1 in a child forked after they ran)
void set_num_threads(int n);   // n >= 1; starts from OMP_NUM_THREADS / the core count
bool openmp_enabled();
void note_pool_used();         // called on entering a multi-threaded region (see Note [fork])

template <class F>
void parallel_for(int64_t n, F&& f, int max_threads = 0) {
  int threads = max_threads > 0 ? std::min(max_threads, num_threads()) : num_threads();
  if (threads > n) threads = static_cast<int>(n);
#ifdef _OPENMP
  if (threads > 1 && !omp_in_parallel()) {
    note_pool_used();
    std::atomic<int64_t> next{0};
#pragma omp parallel num_threads(threads)
    {
      for (int64_t i = next.fetch_add(1, std::memory_order_relaxed); i < n;
           i = next.fetch_add(1, std::memory_order_relaxed))
        f(i);
    }
    return;
  }
#endif
  for (int64_t i = 0; i < n; ++i) f(i);
}

}  // namespace tfg
