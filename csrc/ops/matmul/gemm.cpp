// The portable half of GEMM: blocked loops (jc -> pc -> ic -> jr -> ir), the
// macro-kernel, edge tiles and the parallel split. Packing and the
// micro-kernel come from the active ISA's GemmKernels table.
#include "ops/matmul/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/parallel.h"

namespace tfg {

template <> const GemmKernels<float>& active_gemm_kernels<float>() { return active_gemm_kernels_f32(); }
template <> const GemmKernels<double>& active_gemm_kernels<double>() { return active_gemm_kernels_f64(); }
template <> const GemmKernels<float>& gemm_kernels_for<float>(Isa isa) { return gemm_kernels_f32_for(isa); }
template <> const GemmKernels<double>& gemm_kernels_for<double>(Isa isa) { return gemm_kernels_f64_for(isa); }

namespace {

constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Per-thread packing buffers, 64-byte aligned, grown on demand and kept for the
// thread's lifetime (no allocation or page faults per call). Slot 0: A blocks
// (every worker); slot 1: the shared B panel (the calling thread).
void* scratch(int slot, size_t bytes) {
  struct Buffer {
    void* data = nullptr;
    size_t bytes = 0;
    ~Buffer() { std::free(data); }
  };
  thread_local Buffer buffers[2];
  Buffer& buf = buffers[slot];
  if (buf.bytes < bytes) {
    std::free(buf.data);
    buf.bytes = (bytes + 4095) / 4096 * 4096;
    buf.data = std::aligned_alloc(64, buf.bytes);
    if (!buf.data) { buf.bytes = 0; throw std::bad_alloc(); }
  }
  return buf.data;
}

// C = (accumulate ? C : 0) + bias for k == 0, where there is no product to add.
template <class T>
void fill_without_product(const GemmProblem<T>& p) {
  for (int64_t i = 0; i < p.m; ++i)
    for (int64_t j = 0; j < p.n; ++j) {
      T& c = p.c[i * p.rs_c + j * p.cs_c];
      T base = p.accumulate ? c : T(0);
      c = p.bias ? base + p.bias[j] : base;
    }
}

// One micro-tile of C. Note [edge tiles]: full tiles go straight to the
// micro-kernel; a tile cut by the edge of C (or a C without unit column
// stride) is computed into a local mr x nr tile and copied out, so edges cost
// one extra tile copy instead of a slow path for the whole matrix.
template <class T>
void compute_tile(const GemmKernels<T>& kr, int64_t kc, const T* ap, const T* bp, T* c,
                  int64_t rs_c, int64_t cs_c, int64_t rows, int64_t cols, const T* bias,
                  bool accumulate) {
  if (rows == kr.mr && cols == kr.nr && cs_c == 1) {
    kr.micro(kc, ap, bp, c, rs_c, bias, accumulate);
    return;
  }
  alignas(64) T tile[32 * 32];
  alignas(64) T tile_bias[64];
  const int64_t nr = kr.nr;
  if (accumulate)
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) tile[i * nr + j] = c[i * rs_c + j * cs_c];
  if (bias) {
    std::fill(tile_bias, tile_bias + nr, T(0));
    std::copy(bias, bias + cols, tile_bias);
  }
  kr.micro(kc, ap, bp, tile, nr, bias ? tile_bias : nullptr, accumulate);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) c[i * rs_c + j * cs_c] = tile[i * nr + j];
}

template <class T>
void gemm_blocked(const GemmKernels<T>& kr, const GemmProblem<T>& p, int threads) {
  const int64_t mr = kr.mr, nr = kr.nr;
  const int64_t n_ic = ceil_div(p.m, kr.mc);
  const int64_t panel_a_max = std::min(kr.mc, ceil_div(p.m, mr) * mr);

  for (int64_t jc = 0; jc < p.n; jc += kr.nc) {
    const int64_t nc = std::min(kr.nc, p.n - jc);
    const int64_t n_panels = ceil_div(nc, nr);
    // Note [work items]: items are (row block of A, chunk of B panels). With few
    // row blocks, B's panels are split into chunks so that every thread gets
    // several items to take dynamically (see Note [dynamic chunks]).
    const int64_t want = threads > 1 ? 4 * threads : 1;
    const int64_t per_chunk = ceil_div(n_panels, std::min(n_panels, std::max<int64_t>(1, ceil_div(want, n_ic))));
    const int64_t n_chunks = ceil_div(n_panels, per_chunk);

    for (int64_t pc = 0; pc < p.k; pc += kr.kc) {
      const int64_t kc = std::min(kr.kc, p.k - pc);
      const bool first = pc == 0;
      T* bpack = static_cast<T*>(scratch(1, sizeof(T) * n_panels * nr * kc));
      parallel_for(n_panels, [&](int64_t jp) {
        const int64_t j0 = jp * nr;
        kr.pack_b(kc, std::min(nr, nc - j0), p.b + pc * p.rs_b + (jc + j0) * p.cs_b, p.rs_b,
                  p.cs_b, bpack + j0 * kc);
      }, threads);

      parallel_for(n_ic * n_chunks, [&](int64_t item) {
        const int64_t ic = (item / n_chunks) * kr.mc;
        const int64_t mc = std::min(kr.mc, p.m - ic);
        T* apack = static_cast<T*>(scratch(0, sizeof(T) * panel_a_max * kc));
        for (int64_t i0 = 0; i0 < mc; i0 += mr)
          kr.pack_a(std::min(mr, mc - i0), kc, p.a + (ic + i0) * p.rs_a + pc * p.cs_a, p.rs_a,
                    p.cs_a, apack + i0 * kc);
        const int64_t jp_begin = (item % n_chunks) * per_chunk;
        const int64_t jp_end = std::min(n_panels, jp_begin + per_chunk);
        for (int64_t jp = jp_begin; jp < jp_end; ++jp) {
          const int64_t j0 = jp * nr, cols = std::min(nr, nc - j0);
          const T* bias = first && p.bias ? p.bias + jc + j0 : nullptr;
          for (int64_t i0 = 0; i0 < mc; i0 += mr)
            compute_tile(kr, kc, apack + i0 * kc, bpack + j0 * kc,
                         p.c + (ic + i0) * p.rs_c + (jc + j0) * p.cs_c, p.rs_c, p.cs_c,
                         std::min(mr, mc - i0), cols, bias, !first || p.accumulate);
        }
      }, threads);
    }
  }
}

// Below this many flops a GEMM runs on one thread: waking the team costs more.
constexpr double kParallelMinFlops = 2.0e6;

int threads_for(double flops, int threads) {
  if (threads <= 0) threads = num_threads();
  return flops < kParallelMinFlops ? 1 : threads;
}

}  // namespace

template <class T>
void gemm(const GemmProblem<T>& p, int threads) {
  if (p.m == 0 || p.n == 0) return;
  if (p.k == 0) return fill_without_product(p);
  const GemmKernels<T>& kr = active_gemm_kernels<T>();
  gemm_blocked(kr, p, threads_for(2.0 * p.m * p.n * p.k, threads));
}

template <class T>
void gemm_batched(const GemmProblem<T>& p, int64_t batch, const int64_t* a_offsets,
                  const int64_t* b_offsets, const int64_t* c_offsets, int threads) {
  if (batch == 0 || p.m == 0 || p.n == 0) return;
  const double flops = 2.0 * p.m * p.n * p.k;
  threads = threads_for(flops * batch, threads);
  auto one = [&](int64_t i, int inner_threads) {
    GemmProblem<T> q = p;
    q.a += a_offsets[i];
    q.b += b_offsets[i];
    q.c += c_offsets[i];
    gemm(q, inner_threads);
  };
  // Many small products: one thread per product. Few large ones: each product in parallel.
  if (threads > 1 && (batch >= 4 * threads || flops < 8 * kParallelMinFlops)) {
    parallel_for(batch, [&](int64_t i) { one(i, 1); }, threads);
  } else {
    for (int64_t i = 0; i < batch; ++i) one(i, threads);
  }
}

template void gemm<float>(const GemmProblem<float>&, int);
template void gemm<double>(const GemmProblem<double>&, int);
template void gemm_batched<float>(const GemmProblem<float>&, int64_t, const int64_t*, const int64_t*, const int64_t*, int);
template void gemm_batched<double>(const GemmProblem<double>&, int64_t, const int64_t*, const int64_t*, const int64_t*, int);

}  // namespace tfg
