// The process-wide kernel thread count.
#include "core/parallel.h"

#include "core/error.h"

namespace tfg {

namespace {
int initial_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();  // honours OMP_NUM_THREADS
#else
  return 1;
#endif
}
std::atomic<int> g_threads{initial_threads()};
}  // namespace

int num_threads() { return g_threads.load(std::memory_order_relaxed); }

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
