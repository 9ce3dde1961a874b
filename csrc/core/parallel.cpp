// The process-wide kernel thread count.
#include "core/parallel.h"

#include <pthread.h>

#include "core/error.h"

namespace tfg {

namespace {

// Note [fork]: libgomp's thread pool does not survive fork(); a child that
// enters a parallel region after its parent used the pool waits forever for
// threads that do not exist. Such a child runs every kernel on one thread.
std::atomic<bool> g_pool_used{false};
std::atomic<bool> g_forked_after_pool{false};

void on_fork_child() {
  if (g_pool_used.load()) g_forked_after_pool.store(true);
}

const bool g_atfork_registered = [] {
  pthread_atfork(nullptr, nullptr, &on_fork_child);
  return true;
}();

int initial_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();  // honours OMP_NUM_THREADS
#else
  return 1;
#endif
}
std::atomic<int> g_threads{initial_threads()};
}  // namespace

int num_threads() {
  return g_forked_after_pool.load(std::memory_order_relaxed) ? 1 : g_threads.load(std::memory_order_relaxed);
}

void note_pool_used() {
  if (!g_pool_used.load(std::memory_order_relaxed)) g_pool_used.store(true);
}

void set_num_threads(int n) {
  TFG_CHECK_VALUE(n >= 1, "set_num_threads: n must be >= 1, got ", n);
  g_threads.store(n, std::memory_order_relaxed);
}

bool openmp_enabled() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

}  // namespace tfg
