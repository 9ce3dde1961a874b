// The process-wide kernel thread count.
#include "core/parallel.h"

#include <pthread.h>

#include <algorithm>
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
// Note [contention backoff] state: loops run on one thread until
// g_backoff_until; g_backoff_s is the next period, doubled by each losing retry.
constexpr double kBackoffMinSeconds = 0.05, kBackoffMaxSeconds = 1.0;
constexpr double kMinLossSeconds = 150e-6;  // ignore losses within wake-up noise (~60 us seen here)
// A caller that waited this share of a loop, and at least kLongWaitSeconds,
// lost too, whatever its own pace: when the scheduler puts the caller beside
// the busy process, its pace says little.
constexpr double kLongWaitShare = 0.25, kLongWaitSeconds = 200e-6;
std::atomic<double> g_backoff_until{0.0};
std::atomic<double> g_backoff_s{kBackoffMinSeconds};
constexpr int kLosingStreak = 2;
std::atomic<int> g_losing_streak{0};
}  // namespace

double monotonic_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

bool team_backing_off() {
  const double until = g_backoff_until.load(std::memory_order_relaxed);
  return until != 0.0 && monotonic_seconds() < until;
}

void note_team_loop(int64_t n, int64_t caller_items, double loop_s, double caller_wait_s) {
  // What the caller alone would have needed at the pace it kept in this loop.
  const double alone_s =
      caller_items > 0 ? (loop_s - caller_wait_s) * static_cast<double>(n) / caller_items : loop_s;
  const bool long_wait = caller_wait_s > kLongWaitShare * loop_s && caller_wait_s > kLongWaitSeconds;
  const bool lost = caller_items > 0 && (loop_s > alone_s + kMinLossSeconds || long_wait);
  if (!lost) {
    g_losing_streak.store(0, std::memory_order_relaxed);
    g_backoff_s.store(kBackoffMinSeconds, std::memory_order_relaxed);
    return;
  }
  // One losing loop may just be a worker waking from sleep after the machine
  // was idle; two in a row are contention.
  if (g_losing_streak.fetch_add(1, std::memory_order_relaxed) + 1 < kLosingStreak) return;
  g_losing_streak.store(0, std::memory_order_relaxed);
  const double period = g_backoff_s.load(std::memory_order_relaxed);
  g_backoff_until.store(monotonic_seconds() + period, std::memory_order_relaxed);
  g_backoff_s.store(std::min(2 * period, kBackoffMaxSeconds), std::memory_order_relaxed);
}

bool openmp_enabled() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

}  // namespace tfg
