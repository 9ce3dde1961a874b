// The process-wide kernel thread count.
#include "core/parallel.h"

#include <pthread.h>

#include <chrono>

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

namespace {
// Note [contention backoff] thresholds: a loop whose caller waited at the end
// for more than kStallShare of its time, and at least kStallMinSeconds (so the
// imbalance of one item in a short loop does not count), is a stall.
constexpr double kStallShare = 0.5;
constexpr double kStallMinSeconds = 30e-6;
constexpr double kBackoffSeconds = 0.05;
std::atomic<double> g_backoff_until{0.0};
}  // namespace

double monotonic_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

bool team_backing_off() {
  const double until = g_backoff_until.load(std::memory_order_relaxed);
  return until != 0.0 && monotonic_seconds() < until;
}

void note_loop_end_wait(double loop_s, double wait_s) {
  if (wait_s > kStallMinSeconds && wait_s > kStallShare * loop_s)
    g_backoff_until.store(monotonic_seconds() + kBackoffSeconds, std::memory_order_relaxed);
}

bool openmp_enabled() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

}  // namespace tfg
