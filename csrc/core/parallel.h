// parallel_for: runs f(i) for i in [0, n) on up to num_threads() OpenMP threads.
//
// Note [dynamic chunks]: work is handed out one item at a time from a shared
// atomic counter, never split statically. This machine is shared: when another
// process holds a core, a statically scheduled thread sharing that core finishes
// last and the whole loop waits for it (two threads end up slower than one).
// With dynamic items the unlucky thread simply takes fewer of them. Callers
// choose items big enough (tens of microseconds or more) that the counter is noise.
//
// Note [contention backoff]: dynamic items cannot help with the last wait of a
// loop: the calling thread must still wait for an item that a descheduled
// worker holds, or for a worker that has not even woken up, and with another
// process on the worker's core that is a scheduler slice (milliseconds) per
// loop. Measured here with one core kept busy, that made two threads 2-3x
// slower than one. So the calling thread counts its own items and times its
// wait at the end of each loop: when the loop took longer than the caller alone
// would have taken for all items at its own pace, or the caller spent a good
// part of it waiting, the team cost more than it gave. After two such loops in
// a row (one alone is often a worker waking from sleep on an idle machine),
// kernels run on one thread for a while (50 ms, doubling while the retries
// keep losing, up to 1 s), then try the team again.
//
// An exception thrown by f (say std::bad_alloc) must not leave an OpenMP
// region: the first one is kept, the remaining items are skipped, and it is
// rethrown on the calling thread once the loop has ended. Check arguments
// before the loop all the same: a half-done loop leaves a half-written output.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace tfg {

int num_threads();             // threads kernels may use (>= 1; 1 in a child forked after they ran)
void set_num_threads(int n);   // n >= 1; starts from OMP_NUM_THREADS / the core count
bool openmp_enabled();
void note_pool_used();         // called on entering a multi-threaded region (see Note [fork])
double monotonic_seconds();
bool team_backing_off();       // true while loops run on one thread (Note [contention backoff])
// Reports a team loop of n items of which the caller ran `caller_items`.
void note_team_loop(int64_t n, int64_t caller_items, double loop_s, double caller_wait_s);

// f(item, thread): thread in [0, team size) identifies the running thread, for
// per-thread buffers allocated before the loop.
template <class F>
void parallel_for_with_thread(int64_t n, F&& f, int max_threads = 0) {
  int threads = max_threads > 0 ? std::min(max_threads, num_threads()) : num_threads();
  if (threads > n) threads = static_cast<int>(n);
#ifdef _OPENMP
  if (threads > 1 && !omp_in_parallel() && !team_backing_off()) {
    note_pool_used();
    std::atomic<int64_t> next{0};
    std::exception_ptr error;
    const double start = monotonic_seconds();
    double caller_done = start;
    int64_t caller_items = 0;
#pragma omp parallel num_threads(threads)
    {
      const int thread = omp_get_thread_num();
      int64_t mine = 0;
      try {
        for (int64_t i = next.fetch_add(1, std::memory_order_relaxed); i < n;
             i = next.fetch_add(1, std::memory_order_relaxed), ++mine)
          f(i, thread);
      } catch (...) {
        next.store(n);  // stop handing out items
#pragma omp critical(tfg_parallel_for_error)
        if (!error) error = std::current_exception();
      }
      if (thread == 0) {
        caller_done = monotonic_seconds();
        caller_items = mine;
      }
    }
    const double end = monotonic_seconds();
    note_team_loop(n, caller_items, end - start, end - caller_done);
    if (error) std::rethrow_exception(error);
    return;
  }
#endif
  for (int64_t i = 0; i < n; ++i) f(i, 0);
}

template <class F>
void parallel_for(int64_t n, F&& f, int max_threads = 0) {
  parallel_for_with_thread(n, [&](int64_t i, int) { f(i); }, max_threads);
}

}  // namespace tfg
