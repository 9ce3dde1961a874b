// The portable half of GEMM: blocked loops (jc -> pc -> ic -> jr -> ir), the
// macro-kernel, edge tiles and the parallel split. Packing and the
// micro-kernel come from the active ISA's GemmKernels table.
#include "ops/matmul/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include <sys/mman.h>

#include "core/parallel.h"

namespace tfg {

template <> const GemmKernels<float>& active_gemm_kernels<float>() { return active_gemm_kernels_f32(); }
template <> const GemmKernels<double>& active_gemm_kernels<double>() { return active_gemm_kernels_f64(); }
template <> const GemmKernels<float>& gemm_kernels_for<float>(Isa isa) { return gemm_kernels_f32_for(isa); }
template <> const GemmKernels<double>& gemm_kernels_for<double>(Isa isa) { return gemm_kernels_f64_for(isa); }

namespace {

constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Per-thread packing buffers, 64-byte aligned, grown on demand and kept for the
// thread's lifetime (no allocation or page faults per call). Slot 0: packed A,
// slot 1: packed B, both owned by the calling thread and shared with its team.
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
    // Note [huge pages]: packed panels of a megabyte or more are walked by
    // every micro-kernel call; on 2 MB pages they cost a few TLB entries
    // instead of hundreds.
    const size_t align = bytes >= (1u << 20) ? (2u << 20) : 4096;
    buf.bytes = (bytes + align - 1) / align * align;
    buf.data = std::aligned_alloc(align, buf.bytes);
    if (!buf.data) { buf.bytes = 0; throw std::bad_alloc(); }
#ifdef MADV_HUGEPAGE
    if (align > 4096) madvise(buf.data, buf.bytes, MADV_HUGEPAGE);
#endif
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

// One micro-tile of C. Note [edge tiles]: a tile cut by the bottom edge of C
// runs the micro-kernel for just its rows; one cut by the right edge (or a C
// without unit column stride) is computed into a local tile and copied out. So
// edges cost one tile copy at most, never a slow path for the whole matrix.
template <class T>
void compute_tile(const GemmKernels<T>& kr, int64_t kc, const T* a, int64_t lda, bool packed_a,
                  const T* bp, T* c, int64_t rs_c, int64_t cs_c, int64_t rows, int64_t cols,
                  const T* bias, bool accumulate) {
  const auto micro = packed_a ? kr.micro[rows - 1] : kr.micro_unpacked_a[rows - 1];
  if (cols == kr.nr && cs_c == 1) {
    micro(kc, a, lda, bp, kr.nr, c, rs_c, bias, accumulate);
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
  micro(kc, a, lda, bp, nr, tile, nr, bias ? tile_bias : nullptr, accumulate);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) c[i * rs_c + j * cs_c] = tile[i * nr + j];
}

// Rows of A packed at once: the packed rows (x KC) are shared by all threads.
constexpr int64_t kRowsPerPass = 4096;

// Splits `total` into the fewest blocks of at most `block`, all about equal
// (K = 784 with KC = 256 becomes 4 x 196 rather than 3 x 256 + 16).
int64_t even_block(int64_t total, int64_t block) { return ceil_div(total, ceil_div(total, block)); }

// Work items per thread when the work is split dynamically (Note [dynamic chunks]).
constexpr int64_t kItemsPerThread = 4;

// Note [work items]: compute items are (row block of A, chunk of B panels).
// With few row blocks, B's panels are split into chunks so that every thread
// gets several items to take dynamically. Returns the panels per chunk.
int64_t panels_per_chunk(int64_t n_panels, int64_t n_row_blocks, int threads) {
  const int64_t want = threads > 1 ? kItemsPerThread * threads : 1;
  return ceil_div(n_panels, std::min(n_panels, std::max<int64_t>(1, ceil_div(want, n_row_blocks))));
}

// Note [resident A]: when all of A's rows x K fit in this many packed bytes
// (about half of L2), A is packed once, whole, and each thread then takes
// chunks of B's columns and runs the entire K loop on them with its own
// packing of B. Two parallel phases per product instead of two per K block:
// small and skinny products (64 x 784 x 256, 128^3) are dominated by those
// synchronisations otherwise.
constexpr int64_t kResidentABytes = 1 << 20;

// Note [unpacked A]: in that case, when A's rows are contiguous (the usual
// row-major A), A is not packed at all: the micro-kernel broadcasts straight
// from MR rows of A, whose few active cache lines stay in L1, and the whole
// product is one parallel phase. Packing would be a transpose of all of A
// and a second phase, a sizeable share of a small product's time.
template <class T>
void gemm_resident_a(const GemmKernels<T>& kr, const GemmProblem<T>& p, int threads) {
  const int64_t mr = kr.mr, nr = kr.nr;
  const int64_t kc_max = even_block(p.k, kr.kc), n_kblocks = ceil_div(p.k, kc_max);
  const bool packed_a = p.cs_a != 1;
  // Packed panel i holds rows [i*mr, i*mr+mr) for all of K; K block pc starts at pc*mr in it.
  T* apack = nullptr;
  if (packed_a) {
    const int64_t n_apanels = ceil_div(p.m, mr);
    apack = static_cast<T*>(scratch(0, sizeof(T) * n_apanels * mr * p.k));
    parallel_for(n_apanels * n_kblocks, [&](int64_t item) {
      const int64_t i0 = (item / n_kblocks) * mr, pc = (item % n_kblocks) * kc_max;
      kr.pack_a(std::min(mr, p.m - i0), std::min(kc_max, p.k - pc),
                p.a + i0 * p.rs_a + pc * p.cs_a, p.rs_a, p.cs_a, apack + i0 * p.k + pc * mr);
    }, threads);
  }
  auto a_tile = [&](int64_t i0, int64_t pc) {
    return packed_a ? apack + i0 * p.k + pc * mr : p.a + i0 * p.rs_a + pc;
  };

  const int64_t n_bpanels = ceil_div(p.n, nr);
  const int64_t per_chunk = std::min(kr.nc / nr, panels_per_chunk(n_bpanels, 1, threads));
  // One B buffer per thread, allocated before the loop.
  const int64_t bpack_size = per_chunk * nr * kc_max;
  T* bpacks = static_cast<T*>(scratch(1, sizeof(T) * bpack_size * std::max(threads, 1)));
  parallel_for_with_thread(ceil_div(n_bpanels, per_chunk), [&](int64_t chunk, int thread) {
    const int64_t jp_begin = chunk * per_chunk, jp_end = std::min(n_bpanels, jp_begin + per_chunk);
    T* bpack = bpacks + thread * bpack_size;
    for (int64_t pc = 0; pc < p.k; pc += kc_max) {
      const int64_t kc = std::min(kc_max, p.k - pc);
      const bool first = pc == 0;
      for (int64_t jp = jp_begin; jp < jp_end; ++jp) {
        const int64_t j0 = jp * nr;
        kr.pack_b(kc, std::min(nr, p.n - j0), p.b + pc * p.rs_b + j0 * p.cs_b, p.rs_b, p.cs_b,
                  bpack + (jp - jp_begin) * nr * kc);
      }
      for (int64_t jp = jp_begin; jp < jp_end; ++jp) {
        const int64_t j0 = jp * nr;
        const T* bias = first && p.bias ? p.bias + j0 : nullptr;
        for (int64_t i0 = 0; i0 < p.m; i0 += mr)
          compute_tile(kr, kc, a_tile(i0, pc), p.rs_a, packed_a, bpack + (jp - jp_begin) * nr * kc,
                       p.c + i0 * p.rs_c + j0 * p.cs_c, p.rs_c, p.cs_c, std::min(mr, p.m - i0),
                       std::min(nr, p.n - j0), bias, !first || p.accumulate);
      }
    }
  }, threads);
}

template <class T>
void gemm_blocked(const GemmKernels<T>& kr, const GemmProblem<T>& p, int threads) {
  if (static_cast<int64_t>(sizeof(T)) * ceil_div(p.m, kr.mr) * kr.mr * p.k <= kResidentABytes)
    return gemm_resident_a(kr, p, threads);
  const int64_t mr = kr.mr, nr = kr.nr;
  const int64_t kc_max = even_block(p.k, kr.kc);
  for (int64_t is = 0; is < p.m; is += kRowsPerPass) {
    const int64_t ms = std::min(kRowsPerPass, p.m - is);
    const int64_t n_apanels = ceil_div(ms, mr);
    // Row blocks of about equal size (whole micro-panels), so items are even.
    const int64_t mc_block = ceil_div(even_block(ms, kr.mc), mr) * mr;
    const int64_t n_ic = ceil_div(ms, mc_block);
    T* apack = static_cast<T*>(scratch(0, sizeof(T) * n_apanels * mr * kc_max));
    for (int64_t jc = 0; jc < p.n; jc += kr.nc) {
      const int64_t nc = std::min(kr.nc, p.n - jc);
      const int64_t n_bpanels = ceil_div(nc, nr);
      T* bpack = static_cast<T*>(scratch(1, sizeof(T) * n_bpanels * nr * kc_max));
      const int64_t per_chunk = panels_per_chunk(n_bpanels, n_ic, threads);
      const int64_t n_chunks = ceil_div(n_bpanels, per_chunk);

      for (int64_t pc = 0; pc < p.k; pc += kc_max) {
        const int64_t kc = std::min(kc_max, p.k - pc);
        const bool first = pc == 0;
        // Both operands are packed once per (row pass, jc, pc), shared by every thread.
        parallel_for(n_apanels + n_bpanels, [&](int64_t item) {
          if (item < n_apanels) {
            const int64_t i0 = item * mr;
            kr.pack_a(std::min(mr, ms - i0), kc, p.a + (is + i0) * p.rs_a + pc * p.cs_a, p.rs_a,
                      p.cs_a, apack + i0 * kc);
          } else {
            const int64_t j0 = (item - n_apanels) * nr;
            kr.pack_b(kc, std::min(nr, nc - j0), p.b + pc * p.rs_b + (jc + j0) * p.cs_b, p.rs_b,
                      p.cs_b, bpack + j0 * kc);
          }
        }, threads);

        parallel_for(n_ic * n_chunks, [&](int64_t item) {
          const int64_t ic = (item / n_chunks) * mc_block;
          const int64_t mc = std::min(mc_block, ms - ic);
          const int64_t jp_begin = (item % n_chunks) * per_chunk;
          const int64_t jp_end = std::min(n_bpanels, jp_begin + per_chunk);
          for (int64_t jp = jp_begin; jp < jp_end; ++jp) {  // macro-kernel: jr outer, ir inner
            const int64_t j0 = jp * nr, cols = std::min(nr, nc - j0);
            const T* bias = first && p.bias ? p.bias + jc + j0 : nullptr;
            for (int64_t i0 = ic; i0 < ic + mc; i0 += mr)
              compute_tile(kr, kc, apack + i0 * kc, 0, true, bpack + j0 * kc,
                           p.c + (is + i0) * p.rs_c + (jc + j0) * p.cs_c, p.rs_c, p.cs_c,
                           std::min(mr, ms - i0), cols, bias, !first || p.accumulate);
          }
        }, threads);
      }
    }
  }
}

// y = x B (+ bias) with B's rows contiguous. Note [gemv split]: threads split
// B by column chunks of at least kMinRowRun elements, so each thread streams
// long contiguous runs (shorter runs starve the hardware prefetcher: measured
// 0.6x NumPy at 256 columns, 0.9x at 1024 for 4096 x 4096). When there are too
// few columns for that, they split B's rows instead and add their partial sums.
constexpr int64_t kMinRowRun = 1024;

template <class T>
void gemv_by_rows(const GemmKernels<T>& kr, const GemmProblem<T>& p, const T* x, T* y, int threads) {
  const int64_t chunk = std::max(kMinRowRun, ceil_div(p.n, 2 * threads));
  const int64_t n_chunks = ceil_div(p.n, chunk);
  if (n_chunks >= threads || p.k < 4 * threads) {
    parallel_for(n_chunks, [&](int64_t i) {
      const int64_t j0 = i * chunk;
      kr.gemv_rows(p.k, std::min(chunk, p.n - j0), x, p.b + j0, p.rs_b, y + j0,
                   p.bias ? p.bias + j0 : nullptr, p.accumulate);
    }, threads);
    return;
  }
  const int64_t parts = 2 * threads, rows = ceil_div(p.k, parts);
  std::vector<T> partial(static_cast<size_t>(parts * p.n));
  parallel_for(parts, [&](int64_t i) {
    const int64_t k0 = std::min(p.k, i * rows);
    kr.gemv_rows(std::min(rows, p.k - k0), p.n, x + k0, p.b + k0 * p.rs_b, p.rs_b,
                 partial.data() + i * p.n, nullptr, false);
  }, threads);
  for (int64_t j = 0; j < p.n; ++j) {
    T sum = (p.accumulate ? y[j] : T(0)) + (p.bias ? p.bias[j] : T(0));
    for (int64_t i = 0; i < parts; ++i) sum += partial[i * p.n + j];
    y[j] = sum;
  }
}

// Note [matrix-vector products]: with a single row of A, every element of B is
// used once, so packing B would cost as much as the product. Such problems
// (and, transposed, those with a single column of B) stream B directly through
// the gemv kernels instead.
template <class T>
bool try_gemv(const GemmKernels<T>& kr, const GemmProblem<T>& problem, int threads) {
  GemmProblem<T> p = problem;
  const T* bias_all = nullptr;  // transposed case: one bias value for every output
  if (p.m != 1) {
    if (p.n != 1) return false;
    p.m = problem.n; p.n = problem.m;  // C^T = B^T A^T
    p.a = problem.b; p.rs_a = problem.cs_b; p.cs_a = problem.rs_b;
    p.b = problem.a; p.rs_b = problem.cs_a; p.cs_b = problem.rs_a;
    p.rs_c = problem.cs_c; p.cs_c = problem.rs_c;
    p.bias = nullptr;
    bias_all = problem.bias;
  }
  const bool rows_contiguous = p.cs_b == 1 || p.n == 1;
  if (!rows_contiguous && p.rs_b != 1 && p.k != 1) return false;

  std::vector<T> x_copy, y_copy;
  const T* x = p.a;
  if (p.cs_a != 1 && p.k > 1) {
    x_copy.resize(p.k);
    for (int64_t i = 0; i < p.k; ++i) x_copy[i] = p.a[i * p.cs_a];
    x = x_copy.data();
  }
  T* y = p.c;
  if (p.cs_c != 1 && p.n > 1) {
    y_copy.assign(p.n, T(0));
    if (p.accumulate)
      for (int64_t j = 0; j < p.n; ++j) y_copy[j] = p.c[j * p.cs_c];
    y = y_copy.data();
  }
  if (rows_contiguous) {
    gemv_by_rows(kr, p, x, y, threads);
  } else {
    const int64_t want = threads > 1 ? 8 * threads : 1;
    const int64_t chunk = std::max<int64_t>(4 * kr.nr, ceil_div(ceil_div(p.n, want), kr.nr) * kr.nr);
    parallel_for(ceil_div(p.n, chunk), [&](int64_t i) {
      const int64_t j0 = i * chunk, cols = std::min(chunk, p.n - j0);
      kr.gemv_cols(p.k, cols, x, p.b + j0 * p.cs_b, p.cs_b, y + j0, p.bias ? p.bias + j0 : nullptr,
                   p.accumulate);
    }, threads);
  }
  if (y != p.c)
    for (int64_t j = 0; j < p.n; ++j) p.c[j * p.cs_c] = y[j];
  if (bias_all)
    for (int64_t j = 0; j < p.n; ++j) p.c[j * p.cs_c] += bias_all[0];
  return true;
}

// Below this many flops a GEMM runs on one thread: waking the team costs more
// (measured here: 128^3, 4 MFLOP, ran no faster on two threads than on one).
constexpr double kParallelMinFlops = 8.0e6;

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
  threads = threads_for(2.0 * p.m * p.n * p.k, threads);
  if (!try_gemv(kr, p, threads)) gemm_blocked(kr, p, threads);
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
  // Many products, or several small ones: one thread per product. Otherwise each
  // product in turn on all threads.
  if (threads > 1 && batch >= threads && (batch >= 4 * threads || flops < 2 * kParallelMinFlops)) {
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
