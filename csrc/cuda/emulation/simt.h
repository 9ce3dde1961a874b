// Device side of the SIMT emulation (README.md): what nvcc provides to a .cu
// file (qualifiers, threadIdx & co., __syncthreads, warp shuffles and votes,
// atomics, math intrinsics), for .cu files compiled by the host C++ compiler.
// Included first into every .cu file of the emulated build (through the
// cuda_runtime.h shim), as nvcc includes cuda_runtime.h. The scheduler behind
// it is simt.cpp.
#pragma once
// The C library's math header comes before the intrinsic macros below, which
// would otherwise rewrite its declarations of __expf, __logf, ...
#include <cmath>
#include <cstdint>
#include <cstring>
#include <math.h>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "cuda/emulation/runtime.h"

#define __global__
#define __device__
#define __host__
#define __constant__
#define __managed__
#define __grid_constant__
#define __forceinline__ inline __attribute__((always_inline))
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)
// Note [shared memory is thread_local]: one OS thread runs one block at a
// time, start to finish, and every fiber (CUDA thread) of the block runs on
// that OS thread; a function-local static thread_local is therefore exactly
// one copy per running block. Like real shared memory it keeps whatever the
// previous block on that OS thread left in it. `extern __shared__` cannot be
// thread_local: use TFG_DYNAMIC_SHARED (cuda/device.h).
#define __shared__ static thread_local

static constexpr int warpSize = 32;

namespace tfg::simt {

// Where a thread waits: the intrinsic and its call site (for deadlock reports).
struct Site {
  const char* what;
  const char* file;
  int line;
  const char* func;
};

// Where a kernel was launched from (filled in at the launch's call site).
struct LaunchSite {
  const char* file;
  int line;
  const char* func;
};

// The grid argument of tfg::cuda::launch under emulation: a dim3 that
// remembers the launch's call site, for error messages.
struct GridDim {
  dim3 dim;
  LaunchSite site;
  GridDim(dim3 d, const char* file = __builtin_FILE(), int line = __builtin_LINE(),
          const char* func = __builtin_FUNCTION())
      : dim(d), site{file, line, func} {}
  GridDim(unsigned int x, const char* file = __builtin_FILE(), int line = __builtin_LINE(),
          const char* func = __builtin_FUNCTION())
      : dim(x), site{file, line, func} {}
  GridDim(unsigned int x, unsigned int y, unsigned int z = 1, const char* file = __builtin_FILE(),
          int line = __builtin_LINE(), const char* func = __builtin_FUNCTION())
      : dim(x, y, z), site{file, line, func} {}
};

// Per CUDA thread: what threadIdx, blockIdx, blockDim and gridDim read.
struct ThreadState {
  uint3 thread_idx;
  uint3 block_idx;
  dim3 block_dim;
  dim3 grid_dim;
};

namespace detail {

extern thread_local const ThreadState* t_thread;  // null outside a kernel
[[noreturn]] void outside_kernel(const char* what);

inline const ThreadState& thread_state(const char* what) {
  const ThreadState* t = t_thread;
  if (__builtin_expect(t == nullptr, 0)) outside_kernel(what);
  return *t;
}

enum class BarrierOp : int { Sync, Count, And, Or };
int block_barrier(BarrierOp op, int pred, const Site& site);

enum class WarpOp : int { Sync, ShflIdx, ShflUp, ShflDown, ShflXor, Ballot, Any, All };
uint64_t warp_collective(WarpOp op, unsigned mask, uint64_t value, int arg, int width, const Site& site);

void* dynamic_shared_memory(const Site& site);

template <class T>
uint64_t to_bits(T v) {
  static_assert(std::is_trivially_copyable<T>::value && (sizeof(T) == 4 || sizeof(T) == 8),
                "warp shuffles take 4- or 8-byte values");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  return bits;
}
template <class T>
T from_bits(uint64_t bits) {
  T v;
  std::memcpy(&v, &bits, sizeof(T));
  return v;
}

// The intrinsics are macros expanding to one of these objects, built with the
// call site, then called with the intrinsic's own arguments (and defaults).
template <WarpOp kOp>
struct Shuffle {
  Site site;
  template <class T>
  T operator()(unsigned mask, T var, int arg, int width = warpSize) const {
    return from_bits<T>(warp_collective(kOp, mask, to_bits(var), arg, width, site));
  }
};
template <WarpOp kOp>
struct Vote {
  Site site;
  unsigned operator()(unsigned mask, int pred) const {
    return static_cast<unsigned>(warp_collective(kOp, mask, pred != 0, 0, warpSize, site));
  }
};
struct SyncWarp {
  Site site;
  void operator()(unsigned mask = 0xffffffffu) const {
    warp_collective(WarpOp::Sync, mask, 0, 0, warpSize, site);
  }
};

// Launching: the parameters are copied once (as CUDA copies them to the
// device); every CUDA thread then calls the kernel with its own copy.
struct Launch {
  const void* kernel;
  const char* kernel_type;  // typeid name of the kernel's function type
  dim3 grid, block;
  size_t dynamic_shared;
  cudaStream_t stream;
  LaunchSite site;
  void (*entry)(const void* params);
  const void* params;
};
void run_grid(const Launch& launch);

}  // namespace detail

// Runs kernel<<<grid, block, smem, stream>>>(args...) on the emulator and
// returns when it has finished. Throws std::runtime_error for a launch the
// CUDA runtime would refuse (with its error code) and for a deadlock or
// misuse of a barrier or warp intrinsic found while it runs.
template <class... Params, class... Args>
void launch(void (*kernel)(Params...), const GridDim& grid, dim3 block, size_t smem_bytes,
            cudaStream_t stream, Args&&... args) {
  static_assert(sizeof...(Params) == sizeof...(Args), "wrong number of kernel arguments");
  struct Bound {
    void (*kernel)(Params...);
    std::tuple<std::decay_t<Params>...> params;
  };
  const Bound bound{kernel, std::tuple<std::decay_t<Params>...>(std::forward<Args>(args)...)};
  detail::Launch l{reinterpret_cast<const void*>(kernel), typeid(void(Params...)).name(), grid.dim,
                   block, smem_bytes, stream, grid.site,
                   [](const void* p) {
                     const Bound& b = *static_cast<const Bound*>(p);
                     std::apply(b.kernel, b.params);
                   },
                   &bound};
  detail::run_grid(l);
}

}  // namespace tfg::simt

#define TFG_SIMT_SITE(what) (::tfg::simt::Site{what, __FILE__, __LINE__, __func__})

#define threadIdx (::tfg::simt::detail::thread_state("threadIdx").thread_idx)
#define blockIdx (::tfg::simt::detail::thread_state("blockIdx").block_idx)
#define blockDim (::tfg::simt::detail::thread_state("blockDim").block_dim)
#define gridDim (::tfg::simt::detail::thread_state("gridDim").grid_dim)

#define __syncthreads() \
  ((void)::tfg::simt::detail::block_barrier(::tfg::simt::detail::BarrierOp::Sync, 1, TFG_SIMT_SITE("__syncthreads()")))
#define __syncthreads_count(pred) \
  ::tfg::simt::detail::block_barrier(::tfg::simt::detail::BarrierOp::Count, (pred) != 0, TFG_SIMT_SITE("__syncthreads_count()"))
#define __syncthreads_and(pred) \
  ::tfg::simt::detail::block_barrier(::tfg::simt::detail::BarrierOp::And, (pred) != 0, TFG_SIMT_SITE("__syncthreads_and()"))
#define __syncthreads_or(pred) \
  ::tfg::simt::detail::block_barrier(::tfg::simt::detail::BarrierOp::Or, (pred) != 0, TFG_SIMT_SITE("__syncthreads_or()"))
#define __syncwarp ::tfg::simt::detail::SyncWarp{TFG_SIMT_SITE("__syncwarp()")}
#define __shfl_sync ::tfg::simt::detail::Shuffle<::tfg::simt::detail::WarpOp::ShflIdx>{TFG_SIMT_SITE("__shfl_sync()")}
#define __shfl_up_sync ::tfg::simt::detail::Shuffle<::tfg::simt::detail::WarpOp::ShflUp>{TFG_SIMT_SITE("__shfl_up_sync()")}
#define __shfl_down_sync ::tfg::simt::detail::Shuffle<::tfg::simt::detail::WarpOp::ShflDown>{TFG_SIMT_SITE("__shfl_down_sync()")}
#define __shfl_xor_sync ::tfg::simt::detail::Shuffle<::tfg::simt::detail::WarpOp::ShflXor>{TFG_SIMT_SITE("__shfl_xor_sync()")}
#define __ballot_sync ::tfg::simt::detail::Vote<::tfg::simt::detail::WarpOp::Ballot>{TFG_SIMT_SITE("__ballot_sync()")}
#define __any_sync(mask, pred) (::tfg::simt::detail::Vote<::tfg::simt::detail::WarpOp::Any>{TFG_SIMT_SITE("__any_sync()")}(mask, pred) != 0)
#define __all_sync(mask, pred) (::tfg::simt::detail::Vote<::tfg::simt::detail::WarpOp::All>{TFG_SIMT_SITE("__all_sync()")}(mask, pred) != 0)

// The dynamic shared memory of the running block (launch argument smem_bytes),
// 128-byte aligned. Note [poisoned dynamic shared memory]: it is filled with
// 0xff bytes at the start of every block (NaN as float or double, -1 as an
// integer), so that a read before any write gives the same visible garbage
// on every run.
#define TFG_SIMT_DYNAMIC_SHARED(T, name) \
  T* name = static_cast<T*>(::tfg::simt::detail::dynamic_shared_memory(TFG_SIMT_SITE("dynamic shared memory")))

// Fences: the emulator's blocks may run on several OS threads at once.
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_system() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

template <class T>
inline T __ldg(const T* p) { return *p; }

// Atomics: real (relaxed) atomics, since blocks run in parallel.
namespace tfg::simt::detail {
template <class T, class F>
T atomic_update(T* p, F f) {
  using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  static_assert(sizeof(T) == sizeof(Bits), "atomics on 4- and 8-byte values");
  Bits* bp = reinterpret_cast<Bits*>(p);
  Bits old_bits = __atomic_load_n(bp, __ATOMIC_RELAXED);
  for (;;) {
    T old;
    std::memcpy(&old, &old_bits, sizeof(T));
    const T updated = f(old);
    Bits new_bits;
    std::memcpy(&new_bits, &updated, sizeof(T));
    if (__atomic_compare_exchange_n(bp, &old_bits, new_bits, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
      return old;
  }
}
}  // namespace tfg::simt::detail

#define TFG_SIMT_INT_ATOMICS(T)                                                                   \
  inline T atomicAdd(T* p, T v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }           \
  inline T atomicSub(T* p, T v) { return __atomic_fetch_sub(p, v, __ATOMIC_RELAXED); }           \
  inline T atomicExch(T* p, T v) { return __atomic_exchange_n(p, v, __ATOMIC_RELAXED); }         \
  inline T atomicAnd(T* p, T v) { return __atomic_fetch_and(p, v, __ATOMIC_RELAXED); }           \
  inline T atomicOr(T* p, T v) { return __atomic_fetch_or(p, v, __ATOMIC_RELAXED); }             \
  inline T atomicXor(T* p, T v) { return __atomic_fetch_xor(p, v, __ATOMIC_RELAXED); }           \
  inline T atomicMin(T* p, T v) {                                                                \
    return ::tfg::simt::detail::atomic_update(p, [v](T o) { return v < o ? v : o; });            \
  }                                                                                              \
  inline T atomicMax(T* p, T v) {                                                                \
    return ::tfg::simt::detail::atomic_update(p, [v](T o) { return v > o ? v : o; });            \
  }                                                                                              \
  inline T atomicCAS(T* p, T compare, T v) {                                                     \
    __atomic_compare_exchange_n(p, &compare, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);      \
    return compare;                                                                              \
  }
TFG_SIMT_INT_ATOMICS(int)
TFG_SIMT_INT_ATOMICS(unsigned int)
TFG_SIMT_INT_ATOMICS(long long)
TFG_SIMT_INT_ATOMICS(unsigned long long)
#undef TFG_SIMT_INT_ATOMICS

inline float atomicAdd(float* p, float v) {
  return ::tfg::simt::detail::atomic_update(p, [v](float o) { return o + v; });
}
inline double atomicAdd(double* p, double v) {
  return ::tfg::simt::detail::atomic_update(p, [v](double o) { return o + v; });
}
inline float atomicExch(float* p, float v) {
  return ::tfg::simt::detail::atomic_update(p, [v](float) { return v; });
}
inline unsigned int atomicInc(unsigned int* p, unsigned int limit) {
  return ::tfg::simt::detail::atomic_update(p, [limit](unsigned int o) { return o >= limit ? 0u : o + 1; });
}
inline unsigned int atomicDec(unsigned int* p, unsigned int limit) {
  return ::tfg::simt::detail::atomic_update(
      p, [limit](unsigned int o) { return (o == 0 || o > limit) ? limit : o - 1; });
}

// Math: the fast-math intrinsics compute the accurate function.
#define __expf ::expf
#define __exp10f ::exp10f
#define __logf ::logf
#define __log2f ::log2f
#define __log10f ::log10f
#define __sinf ::sinf
#define __cosf ::cosf
#define __tanf ::tanf
#define __powf ::powf
#define __sincosf ::sincosf
inline float __fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return std::sqrt(x); }
inline float __fmaf_rn(float x, float y, float z) { return std::fma(x, y, z); }
inline float __fadd_rn(float x, float y) { return x + y; }
inline float __fmul_rn(float x, float y) { return x * y; }
inline double __fma_rn(double x, double y, double z) { return std::fma(x, y, z); }
inline double __dadd_rn(double x, double y) { return x + y; }
inline double __dmul_rn(double x, double y) { return x * y; }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : (x == x ? x : 0.0f)); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __int_as_float(int v) { float f; std::memcpy(&f, &v, 4); return f; }
inline int __float_as_int(float f) { int v; std::memcpy(&v, &f, 4); return v; }
inline float __uint_as_float(unsigned int v) { float f; std::memcpy(&f, &v, 4); return f; }
inline unsigned int __float_as_uint(float f) { unsigned int v; std::memcpy(&v, &f, 4); return v; }
inline double __longlong_as_double(long long v) { double d; std::memcpy(&d, &v, 8); return d; }
inline long long __double_as_longlong(double d) { long long v; std::memcpy(&v, &d, 8); return v; }
inline int __popc(unsigned int x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll(static_cast<unsigned long long>(x)); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned int __brev(unsigned int x) {
  unsigned int r = 0;
  for (int i = 0; i < 32; ++i, x >>= 1) r = (r << 1) | (x & 1u);
  return r;
}
inline int __mulhi(int x, int y) { return static_cast<int>((static_cast<long long>(x) * y) >> 32); }
inline unsigned int __umulhi(unsigned int x, unsigned int y) {
  return static_cast<unsigned int>((static_cast<unsigned long long>(x) * y) >> 32);
}
// CUDA's min/max overloads (same-type arguments; mixed ones are ambiguous on purpose).
#define TFG_SIMT_MINMAX(T) \
  inline T min(T a, T b) { return b < a ? b : a; } \
  inline T max(T a, T b) { return a < b ? b : a; }
TFG_SIMT_MINMAX(int)
TFG_SIMT_MINMAX(unsigned int)
TFG_SIMT_MINMAX(long long)
TFG_SIMT_MINMAX(unsigned long long)
TFG_SIMT_MINMAX(float)
TFG_SIMT_MINMAX(double)
#undef TFG_SIMT_MINMAX

// Vector types used for wide loads, with CUDA's sizes and alignments.
struct __align__(8) float2 { float x, y; };
struct __align__(16) float4 { float x, y, z, w; };
struct __align__(16) double2 { double x, y; };
struct __align__(8) int2 { int x, y; };
struct __align__(16) int4 { int x, y, z, w; };
inline float2 make_float2(float x, float y) { return float2{x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
inline double2 make_double2(double x, double y) { return double2{x, y}; }
inline int2 make_int2(int x, int y) { return int2{x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return int4{x, y, z, w}; }
inline uint3 make_uint3(unsigned int x, unsigned int y, unsigned int z) { return uint3{x, y, z}; }
