// Hand-written CUDA GEMM: C (=|+=) A * B (+ bias) for float and double, every
// operand with arbitrary element strides (GemmProblem<T>, as on the CPU).
//
// One block of 256 threads computes a BM x BN tile of C, walking K in steps of
// BK: the block copies BM x BK of A (stored k-major) and BK x BN of B into
// shared memory, zero-filled past the edges of the matrices so that M, N, K
// need not be tile multiples, and each thread accumulates a TM x TN sub-tile
// of C in registers. A thread's rows and columns are strided through the
// block tile (row tr + i * BM/TM, column tc + j * BN/TN), so a warp reads
// consecutive shared-memory words (no bank conflicts) and writes consecutive
// columns of C. Copies from global memory run along whichever stride of A (of
// B) is smaller, so row- and column-major operands both read contiguous runs;
// the direction is a template parameter (four kernels per type).
// Tiles: float 128 x 64 x 16 with 8 x 4 per thread, double 64 x 64 x 16 with
// 4 x 4 (its accumulators take twice the registers).
// Not yet: double buffering, vectorized copies, tensor cores (TF32, DMMA).
#include "ops/matmul/cuda/matmul_cuda.h"

#include <climits>
#include <cstdint>

#include "core/error.h"
#include "cuda/launch.h"

namespace tfg::cuda {

namespace {

template <int BM_, int BN_, int BK_, int TM_, int TN_>
struct Tiling {
  static constexpr int BM = BM_, BN = BN_, BK = BK_, TM = TM_, TN = TN_;
  static constexpr int kRowThreads = BM / TM;  // threads down a tile
  static constexpr int kColThreads = BN / TN;  // threads across a tile
  static constexpr int kThreads = kRowThreads * kColThreads;
  static_assert(BM % TM == 0 && BN % TN == 0, "sub-tiles must divide the tile");
  static_assert(kThreads % BM == 0 && kThreads % BN == 0 && kThreads % BK == 0,
                "the copy loops give every thread a fixed column of the tile");
  static_assert(BM * BK % kThreads == 0 && BK * BN % kThreads == 0,
                "every thread copies the same number of elements");
};

template <class T> struct TilingFor;
template <> struct TilingFor<float> { using type = Tiling<128, 64, 16, 8, 4>; };
template <> struct TilingFor<double> { using type = Tiling<64, 64, 16, 4, 4>; };

// Kernel parameters: the problem plus what the launcher worked out.
template <class T>
struct Args {
  int64_t m, n, k;
  const T* a; int64_t rs_a, cs_a;
  const T* b; int64_t rs_b, cs_b;
  T* c;       int64_t rs_c, cs_c;
  const T* bias;
  int64_t tiles_n;      // column tiles; block b computes tile (b / tiles_n, b % tiles_n)
  bool accumulate;
};

// kAAlongK: copy A along k (consecutive threads read consecutive k), else
// along m; kBAlongN: copy B along n, else along k. Compile-time, because with
// a run-time choice the copy addresses stop being constants and the kernel
// needs 40-60 more registers.
template <class T, class Tl, bool kAAlongK, bool kBAlongN>
__global__ void __launch_bounds__(Tl::kThreads, 2) gemm_kernel(const Args<T> p) {
  constexpr int BM = Tl::BM, BN = Tl::BN, BK = Tl::BK, TM = Tl::TM, TN = Tl::TN;
  constexpr int kThreads = Tl::kThreads;
  // +1: the copies store A's column (B's k-column) with a stride of BM+1 (BN+1)
  // words, which spreads them over the banks.
  __shared__ T a_tile[BK][BM + 1];  // a_tile[kk][i] = A(m0 + i, k0 + kk)
  __shared__ T b_tile[BK][BN + 1];  // b_tile[kk][j] = B(k0 + kk, n0 + j)

  const int tid = static_cast<int>(threadIdx.x);
  const int64_t tile = blockIdx.x;
  const int64_t m0 = tile / p.tiles_n * BM, n0 = tile % p.tiles_n * BN;

  // Copy r of this thread is element (i0 + r * di, k0 + r * dk) of the A tile:
  // consecutive threads take consecutive elements along the chosen direction.
  const int a_i0 = kAAlongK ? tid / BK : tid % BM, a_k0 = kAAlongK ? tid % BK : tid / BM;
  constexpr int a_di = kAAlongK ? kThreads / BK : 0, a_dk = kAAlongK ? 0 : kThreads / BM;
  const int b_j0 = kBAlongN ? tid % BN : tid / BK, b_k0 = kBAlongN ? tid / BN : tid % BK;
  constexpr int b_dj = kBAlongN ? 0 : kThreads / BK, b_dk = kBAlongN ? kThreads / BN : 0;

  const int tr = tid / Tl::kColThreads, tc = tid % Tl::kColThreads;
  T acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = T(0);

  for (int64_t k0 = 0; k0 < p.k; k0 += BK) {
#pragma unroll
    for (int r = 0; r < BM * BK / kThreads; ++r) {
      const int i = a_i0 + r * a_di, kk = a_k0 + r * a_dk;
      const int64_t gi = m0 + i, gk = k0 + kk;
      a_tile[kk][i] = (gi < p.m && gk < p.k) ? p.a[gi * p.rs_a + gk * p.cs_a] : T(0);
    }
#pragma unroll
    for (int r = 0; r < BK * BN / kThreads; ++r) {
      const int j = b_j0 + r * b_dj, kk = b_k0 + r * b_dk;
      const int64_t gj = n0 + j, gk = k0 + kk;
      b_tile[kk][j] = (gj < p.n && gk < p.k) ? p.b[gk * p.rs_b + gj * p.cs_b] : T(0);
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      T av[TM], bv[TN];
#pragma unroll
      for (int i = 0; i < TM; ++i) av[i] = a_tile[kk][tr + i * Tl::kRowThreads];
#pragma unroll
      for (int j = 0; j < TN; ++j) bv[j] = b_tile[kk][tc + j * Tl::kColThreads];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] += av[i] * bv[j];
    }
    __syncthreads();  // before the next copies overwrite the tiles
  }

  // C = (accumulate ? C : 0) + bias + A*B, the CPU micro-kernel's order.
#pragma unroll
  for (int j = 0; j < TN; ++j) {
    const int64_t col = n0 + tc + j * Tl::kColThreads;
    if (col >= p.n) continue;
    const T bias = p.bias ? p.bias[col] : T(0);
#pragma unroll
    for (int i = 0; i < TM; ++i) {
      const int64_t row = m0 + tr + i * Tl::kRowThreads;
      if (row >= p.m) continue;
      T* c = p.c + row * p.rs_c + col * p.cs_c;
      *c = (p.accumulate ? *c : T(0)) + bias + acc[i][j];
    }
  }
}

int64_t abs64(int64_t v) { return v < 0 ? -v : v; }

template <class T, bool kAAlongK, bool kBAlongN>
void launch_gemm(const Args<T>& args, unsigned blocks, cudaStream_t stream) {
  using Tl = typename TilingFor<T>::type;
  launch(gemm_kernel<T, Tl, kAAlongK, kBAlongN>, dim3(blocks), dim3(Tl::kThreads), 0, stream, args);
}

}  // namespace

template <class T>
void gemm(const GemmProblem<T>& p, cudaStream_t stream) {
  using Tl = typename TilingFor<T>::type;
  TFG_CHECK_VALUE(p.m >= 0 && p.n >= 0 && p.k >= 0, "cuda::gemm: negative size (m=", p.m,
                  ", n=", p.n, ", k=", p.k, ")");
  if (p.m == 0 || p.n == 0) return;
  TFG_CHECK_VALUE(p.c != nullptr && (p.k == 0 || (p.a != nullptr && p.b != nullptr)),
                  "cuda::gemm: missing operand (a, b or c is null)");
  const int64_t tiles_m = (p.m + Tl::BM - 1) / Tl::BM, tiles_n = (p.n + Tl::BN - 1) / Tl::BN;
  TFG_CHECK_VALUE(tiles_m <= INT_MAX / tiles_n, "cuda::gemm: ", p.m, " x ", p.n,
                  " output is too large for one launch");

  Args<T> args{};
  args.m = p.m; args.n = p.n; args.k = p.k;
  args.a = p.a; args.rs_a = p.rs_a; args.cs_a = p.cs_a;
  args.b = p.b; args.rs_b = p.rs_b; args.cs_b = p.cs_b;
  args.c = p.c; args.rs_c = p.rs_c; args.cs_c = p.cs_c;
  args.bias = p.bias;
  args.tiles_n = tiles_n;
  args.accumulate = p.accumulate;
  // Copy each operand along its smaller stride (row-major A: along k;
  // column-major B, as in x @ W^T: along k).
  const bool a_along_k = abs64(p.cs_a) <= abs64(p.rs_a);
  const bool b_along_n = abs64(p.cs_b) <= abs64(p.rs_b);
  const auto blocks = static_cast<unsigned>(tiles_m * tiles_n);
  if (a_along_k && b_along_n) launch_gemm<T, true, true>(args, blocks, stream);
  else if (a_along_k) launch_gemm<T, true, false>(args, blocks, stream);
  else if (b_along_n) launch_gemm<T, false, true>(args, blocks, stream);
  else launch_gemm<T, false, false>(args, blocks, stream);
}

template void gemm<float>(const GemmProblem<float>& p, cudaStream_t stream);
template void gemm<double>(const GemmProblem<double>& p, cudaStream_t stream);

}  // namespace tfg::cuda
