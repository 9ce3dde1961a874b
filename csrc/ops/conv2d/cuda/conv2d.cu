// Hand-written CUDA conv2d (NCHW) and its backward, float and double, as
// implicit GEMMs (README.md here, section "CUDA"):
//   forward         out[n, o, p]     = sum_k  W[o, k]        * col[k, (n, p)]     (+ bias[o])
//   input gradient  gx[n, c, q]      = sum_k' Wt[c, k']      * dcol[k', (n, q)]
//   weight gradient gW[o, k]         = sum_(n,p) gy[n, o, p] * col[k, (n, p)]
// per group, with k = (input channel, kernel row, kernel column), p an output
// pixel, q an input pixel, k' = (output channel, kernel row, kernel column).
// Neither col (im2col) nor dcol is ever built: each K step of a block gathers
// its tile of them straight from the input (grad_out) into shared memory
// (Note [gathered tiles]). One kernel template (igemm_kernel) does the tiling
// and the register blocking, as in ops/matmul/cuda/matmul.cu; a Problem
// struct per GEMM says where its A and B elements come from and where a result
// goes. The weight gradient's reduction over (n, p) is split over blocks that
// write partial sums, added in split order by a second kernel (Note
// [deterministic weight gradient]); the bias gradient is a block tree
// reduction per channel. No atomics anywhere: results do not depend on timing.
#include "ops/conv2d/cuda/conv2d_cuda.h"

#include <algorithm>
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
  static_assert(kThreads % BN == 0 && kThreads % BK == 0,
                "the copy loops give every thread a fixed column of B and a fixed k of A");
  static_assert(BM * BK % kThreads == 0 && BK * BN % kThreads == 0,
                "every thread copies the same number of elements");
};

// Convolutions have few rows (output channels per group: often 16-256) and
// many columns (images x pixels), so the tiles are wider than tall.
template <class T> struct TilingFor;
template <> struct TilingFor<float> { using type = Tiling<64, 128, 16, 4, 8>; };
template <> struct TilingFor<double> { using type = Tiling<64, 64, 16, 4, 4>; };

// The convolution's sizes as 32-bit ints (the launchers check that every
// index fits), with the derived ones the kernels use.
struct Geom {
  int n, c, h, w, oc, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw, groups;
  int cg, m;     // input / output channels per group
  int taps, kg;  // kh * kw; rows of one group's im2col matrix: cg * taps
  int hw, p;     // input plane h * w; output plane oh * ow
};

// The GEMM a block grid computes, per group (blockIdx.y) and split of the
// reduction (blockIdx.z): rows x cols, reducing over [split * chunk,
// min(reduce, (split + 1) * chunk)).
struct Dims {
  int rows, cols, reduce, chunk;
  int tiles_n;  // column tiles; blockIdx.x = row tile * tiles_n + column tile
};

// Note [gathered tiles]: a block's B tile (BK x BN) is copied along its
// columns, so every thread copies one fixed column for the whole K loop. The
// Problem's col() works out once what that column reads (for the forward:
// the image, and the input position of the output pixel's window corner);
// b() then only decodes k into (channel, kernel row, kernel column), adds the
// offsets and tests the bounds: zero padding is a predicate, never memory.

// Forward: A = W of the group (m x kg, row-major), B = im2col of the group's
// input channels over (image, output pixel).
template <class T>
struct Forward {
  Dims d;
  Geom g;
  const T* x;
  const T* w;
  const T* bias;
  T* out;

  struct Col {
    const T* base;  // x[n, grp * cg]
    int iy0, ix0;   // input row / column of the window's corner
  };
  __device__ Col col(int grp, int j) const {
    const int n = j / g.p, q = j - n * g.p, oy = q / g.ow, ox = q - oy * g.ow;
    return {x + (static_cast<int64_t>(n) * g.c + grp * g.cg) * g.hw, oy * g.sh - g.ph, ox * g.sw - g.pw};
  }
  __device__ T a(int grp, int row, int k) const {
    return w[static_cast<int64_t>(grp * g.m + row) * g.kg + k];
  }
  __device__ T b(const Col& s, int k) const {
    const int ci = k / g.taps, t = k - ci * g.taps, i = t / g.kw, j = t - i * g.kw;
    const int iy = s.iy0 + i * g.dh, ix = s.ix0 + j * g.dw;
    if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) return T(0);
    return s.base[ci * g.hw + iy * g.w + ix];
  }
  __device__ void store(int grp, int /*split*/, int row, int j, T v) const {
    const int n = j / g.p, q = j - n * g.p, o = grp * g.m + row;
    out[(static_cast<int64_t>(n) * g.oc + o) * g.p + q] = (bias ? bias[o] : T(0)) + v;
  }
};

// Input gradient: A = W^T of the group (cg x (m * taps): row c, column
// (o, tap) reads W[o, c, tap]), B = "dcol" over (image, input pixel): the
// grad_out element whose window tap lands on the input pixel, or 0 where no
// output pixel's window puts that tap there (between strides, past the edges).
// Each input element is one (row, column) of the product, written once: the
// col2im additions become a gather, and overlapping windows need no atomics.
template <class T>
struct BackwardInput {
  Dims d;
  Geom g;
  const T* gy;
  const T* w;
  T* gx;

  struct Col {
    const T* base;  // grad_out[n, grp * m]
    int ty, tx;     // input row / column plus the padding
  };
  __device__ Col col(int grp, int j) const {
    const int n = j / g.hw, q = j - n * g.hw, y = q / g.w, x = q - y * g.w;
    return {gy + (static_cast<int64_t>(n) * g.oc + grp * g.m) * g.p, y + g.ph, x + g.pw};
  }
  __device__ T a(int grp, int row, int k) const {
    const int o = k / g.taps, t = k - o * g.taps;
    return w[(static_cast<int64_t>(grp * g.m + o) * g.cg + row) * g.taps + t];
  }
  __device__ T b(const Col& s, int k) const {
    const int o = k / g.taps, t = k - o * g.taps, i = t / g.kw, j = t - i * g.kw;
    const int ny = s.ty - i * g.dh, nx = s.tx - j * g.dw;  // = output pixel * stride
    if (ny < 0 || nx < 0) return T(0);
    const int oy = ny / g.sh, ox = nx / g.sw;
    if (oy * g.sh != ny || ox * g.sw != nx || oy >= g.oh || ox >= g.ow) return T(0);
    return s.base[o * g.p + oy * g.ow + ox];
  }
  __device__ void store(int grp, int /*split*/, int row, int j, T v) const {
    const int n = j / g.hw, q = j - n * g.hw;
    gx[(static_cast<int64_t>(n) * g.c + grp * g.cg + row) * g.hw + q] = v;
  }
};

// Weight gradient: A = grad_out of the group (m x (image, output pixel)), B =
// im2col transposed ((image, output pixel) x kg): the thread's fixed column
// is now an im2col row k, and the reduction index l = (image, pixel) is
// decoded per element. Results go to grad_w (one split) or to the split's
// slice of the workspace.
template <class T>
struct BackwardWeight {
  Dims d;
  Geom g;
  const T* gy;
  const T* x;
  T* out;  // grad_w, or the workspace (splits x oc x kg)

  struct Col {
    const T* base;  // x[0, grp * cg + ci]
    int r0, c0;     // input row / column offsets of the tap: i * dh - ph, j * dw - pw
  };
  __device__ Col col(int grp, int k) const {
    const int ci = k / g.taps, t = k - ci * g.taps, i = t / g.kw, j = t - i * g.kw;
    return {x + static_cast<int64_t>(grp * g.cg + ci) * g.hw, i * g.dh - g.ph, j * g.dw - g.pw};
  }
  __device__ T a(int grp, int row, int l) const {
    const int n = l / g.p, q = l - n * g.p;
    return gy[(static_cast<int64_t>(n) * g.oc + grp * g.m + row) * g.p + q];
  }
  __device__ T b(const Col& s, int l) const {
    const int n = l / g.p, q = l - n * g.p, oy = q / g.ow, ox = q - oy * g.ow;
    const int iy = oy * g.sh + s.r0, ix = ox * g.sw + s.c0;
    if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) return T(0);
    return s.base[static_cast<int64_t>(n) * g.c * g.hw + iy * g.w + ix];
  }
  __device__ void store(int grp, int split, int row, int k, T v) const {
    out[(static_cast<int64_t>(split) * g.oc + grp * g.m + row) * g.kg + k] = v;
  }
};

// One block: a BM x BN tile of the Problem's product for one group and one
// split of its reduction. A is copied along k (consecutive threads take
// consecutive k: contiguous in W and grad_out), B along its columns
// (consecutive threads take consecutive output / input pixels: contiguous
// runs of the input for stride 1). Each thread accumulates TM x TN results in
// registers, its rows and columns strided through the tile (row tr + i *
// BM/TM, column tc + j * BN/TN) so that a warp reads consecutive shared words
// and writes consecutive columns.
template <class T, class Tl, class Problem>
__global__ void __launch_bounds__(Tl::kThreads, 2) igemm_kernel(const Problem p) {
  constexpr int BM = Tl::BM, BN = Tl::BN, BK = Tl::BK, TM = Tl::TM, TN = Tl::TN;
  constexpr int kThreads = Tl::kThreads;
  __shared__ T a_tile[BK][BM + 1];  // +1: the copy's stores (along k) spread over the banks
  __shared__ T b_tile[BK][BN];

  const int tid = static_cast<int>(threadIdx.x);
  const int grp = static_cast<int>(blockIdx.y), split = static_cast<int>(blockIdx.z);
  const int tile = static_cast<int>(blockIdx.x);
  const int m0 = tile / p.d.tiles_n * BM, n0 = tile % p.d.tiles_n * BN;
  const int k_begin = split * p.d.chunk, k_end = p.d.reduce - k_begin < p.d.chunk ? p.d.reduce : k_begin + p.d.chunk;

  const int a_i0 = tid / BK, a_kk = tid % BK;
  constexpr int a_di = kThreads / BK;
  const int b_j = tid % BN, b_k0 = tid / BN;
  constexpr int b_dk = kThreads / BN;
  const bool col_ok = n0 + b_j < p.d.cols;
  const typename Problem::Col cs = p.col(grp, col_ok ? n0 + b_j : 0);

  const int tr = tid / Tl::kColThreads, tc = tid % Tl::kColThreads;
  T acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = T(0);

  for (int k0 = k_begin; k0 < k_end; k0 += BK) {
    const int ak = k0 + a_kk;
#pragma unroll
    for (int r = 0; r < BM * BK / kThreads; ++r) {
      const int i = a_i0 + r * a_di;
      a_tile[a_kk][i] = (m0 + i < p.d.rows && ak < k_end) ? p.a(grp, m0 + i, ak) : T(0);
    }
#pragma unroll
    for (int r = 0; r < BK * BN / kThreads; ++r) {
      const int kk = b_k0 + r * b_dk;
      b_tile[kk][b_j] = (col_ok && k0 + kk < k_end) ? p.b(cs, k0 + kk) : T(0);
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

#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int row = m0 + tr + i * Tl::kRowThreads;
    if (row >= p.d.rows) continue;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int col = n0 + tc + j * Tl::kColThreads;
      if (col < p.d.cols) p.store(grp, split, row, col, acc[i][j]);
    }
  }
}

// Note [deterministic weight gradient]: out[e] = sum over s of
// partial[s][e], in split order, one thread per element: every run adds the
// same numbers in the same order.
template <class T>
__global__ void sum_splits_kernel(const T* partial, int splits, int count, T* out) {
  const int e = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (e >= count) return;
  T s = T(0);
  for (int i = 0; i < splits; ++i) s += partial[static_cast<int64_t>(i) * count + e];
  out[e] = s;
}

constexpr int kBiasThreads = 256;

// grad_b[o]: each thread sums a fixed strided subset of channel o's elements
// (image by image), then a tree in shared memory adds the threads' sums.
template <class T>
__global__ void __launch_bounds__(kBiasThreads) bias_grad_kernel(const T* gy, int n, int oc, int p, T* gb) {
  __shared__ T part[kBiasThreads];
  const int tid = static_cast<int>(threadIdx.x), o = static_cast<int>(blockIdx.x);
  T s = T(0);
  for (int i = 0; i < n; ++i) {
    const T* plane = gy + (static_cast<int64_t>(i) * oc + o) * p;
    for (int q = tid; q < p; q += kBiasThreads) s += plane[q];
  }
  part[tid] = s;
  __syncthreads();
  for (int width = kBiasThreads / 2; width > 0; width /= 2) {
    if (tid < width) part[tid] += part[tid + width];
    __syncthreads();
  }
  if (tid == 0) gb[o] = part[0];
}

// ---- Launchers ----

constexpr const char* kOp = "conv2d (CUDA)";
constexpr int64_t kMaxGridYZ = 65535;

// The sizes as ints; throws when an index of any of the tensors could overflow one.
Geom to_geom(const ConvGeometry& c) {
  const int64_t cg = c.groups ? c.c / c.groups : 0, m = c.groups ? c.oc / c.groups : 0;
  const int64_t largest = std::max({c.n * c.c * c.h * c.w, c.n * c.oc * c.oh * c.ow, c.n * c.h * c.w,
                                    c.n * c.oh * c.ow, c.oc * cg * c.kh * c.kw, c.oc * c.kh * c.kw});
  TFG_CHECK_VALUE(largest <= INT_MAX, kOp, ": tensors of ", largest,
                  " elements exceed the kernels' 32-bit indexing (input (", c.n, ", ", c.c, ", ", c.h,
                  ", ", c.w, "), output channels ", c.oc, ", output ", c.oh, "x", c.ow, ")");
  TFG_CHECK_VALUE(c.groups <= kMaxGridYZ, kOp, ": groups (", c.groups, ") above ", kMaxGridYZ,
                  " are not supported");
  auto i = [](int64_t v) { return static_cast<int>(v); };
  Geom g{};
  g.n = i(c.n); g.c = i(c.c); g.h = i(c.h); g.w = i(c.w);
  g.oc = i(c.oc); g.oh = i(c.oh); g.ow = i(c.ow); g.kh = i(c.kh); g.kw = i(c.kw);
  g.sh = i(c.sh); g.sw = i(c.sw); g.ph = i(c.ph); g.pw = i(c.pw); g.dh = i(c.dh); g.dw = i(c.dw); g.groups = i(c.groups);
  g.cg = i(cg); g.m = i(m);
  g.taps = g.kh * g.kw;
  g.kg = g.cg * g.taps;
  g.hw = g.h * g.w;
  g.p = g.oh * g.ow;
  return g;
}

template <class T>
Dims make_dims(int rows, int cols, int reduce, int chunk) {
  using Tl = typename TilingFor<T>::type;
  Dims d{rows, cols, reduce, chunk, (cols + Tl::BN - 1) / Tl::BN};
  const int64_t tiles = int64_t((rows + Tl::BM - 1) / Tl::BM) * d.tiles_n;
  TFG_CHECK_VALUE(tiles <= INT_MAX, kOp, ": a ", rows, " x ", cols, " product is too large for one launch");
  return d;
}

template <class T, class Problem>
void launch_igemm(const Problem& p, int groups, int splits, cudaStream_t stream) {
  using Tl = typename TilingFor<T>::type;
  if (p.d.rows == 0 || p.d.cols == 0) return;
  const auto tiles = static_cast<unsigned>((p.d.rows + Tl::BM - 1) / Tl::BM) * static_cast<unsigned>(p.d.tiles_n);
  launch(igemm_kernel<T, Tl, Problem>, dim3(tiles, static_cast<unsigned>(groups), static_cast<unsigned>(splits)),
         dim3(Tl::kThreads), 0, stream, p);
}

// Note [deterministic weight gradient], the split: enough blocks to fill an
// H100 twice over (132 SMs x 2), but at least kMinSteps K steps per split.
constexpr int64_t kTargetBlocks = 264, kMinSteps = 8;

template <class T>
void weight_split(const Geom& g, int* splits, int* chunk) {
  using Tl = typename TilingFor<T>::type;
  const int64_t reduce = int64_t(g.n) * g.p;
  const int64_t blocks = int64_t((g.m + Tl::BM - 1) / Tl::BM) * ((g.kg + Tl::BN - 1) / Tl::BN) * g.groups;
  int64_t s = (kTargetBlocks + blocks - 1) / std::max<int64_t>(blocks, 1);
  s = std::min({s, (reduce + kMinSteps * Tl::BK - 1) / (kMinSteps * Tl::BK), kMaxGridYZ});
  s = std::max<int64_t>(s, 1);
  int64_t c = (reduce + s - 1) / s;
  c = std::max<int64_t>(Tl::BK, (c + Tl::BK - 1) / Tl::BK * Tl::BK);
  *chunk = static_cast<int>(c);
  *splits = static_cast<int>(std::max<int64_t>(1, (reduce + c - 1) / c));
}

}  // namespace

template <class T>
void conv2d_forward(const ConvGeometry& cg, const T* x, const T* w, const T* bias, T* out, cudaStream_t stream) {
  const Geom g = to_geom(cg);
  if (g.n == 0 || g.oc == 0) return;
  Forward<T> p{make_dims<T>(g.m, g.n * g.p, g.kg, g.kg), g, x, w, bias, out};
  launch_igemm<T>(p, g.groups, 1, stream);
}

template <class T>
void conv2d_backward_input(const ConvGeometry& cg, const T* grad_out, const T* w, T* grad_x, cudaStream_t stream) {
  const Geom g = to_geom(cg);
  if (g.n == 0 || g.c == 0) return;
  const int reduce = g.m * g.taps;
  BackwardInput<T> p{make_dims<T>(g.cg, g.n * g.hw, reduce, reduce), g, grad_out, w, grad_x};
  launch_igemm<T>(p, g.groups, 1, stream);
}

template <class T>
int64_t conv2d_backward_weight_workspace(const ConvGeometry& cg) {
  const Geom g = to_geom(cg);
  if (g.oc == 0 || g.kg == 0) return 0;
  int splits, chunk;
  weight_split<T>(g, &splits, &chunk);
  return splits > 1 ? int64_t(splits) * g.oc * g.kg : 0;
}

template <class T>
void conv2d_backward_weight(const ConvGeometry& cg, const T* grad_out, const T* x, T* grad_w, T* workspace,
                            cudaStream_t stream) {
  const Geom g = to_geom(cg);
  if (g.oc == 0 || g.kg == 0) return;
  int splits, chunk;
  weight_split<T>(g, &splits, &chunk);
  const int64_t count = int64_t(g.oc) * g.kg;
  TFG_CHECK_VALUE(splits == 1 || workspace != nullptr, kOp, ": the weight gradient needs a workspace of ",
                  int64_t(splits) * count, " elements (conv2d_backward_weight_workspace)");
  TFG_CHECK_VALUE(int64_t(splits) * count <= INT_MAX || splits == 1, kOp,
                  ": the weight gradient's partial sums exceed 32-bit indexing");
  BackwardWeight<T> p{make_dims<T>(g.m, g.kg, g.n * g.p, chunk), g, grad_out, x,
                      splits == 1 ? grad_w : workspace};
  launch_igemm<T>(p, g.groups, splits, stream);
  if (splits > 1) {
    constexpr int kThreads = 256;
    launch(sum_splits_kernel<T>, dim3(static_cast<unsigned>((count + kThreads - 1) / kThreads)), dim3(kThreads), 0,
           stream, static_cast<const T*>(workspace), splits, static_cast<int>(count), grad_w);
  }
}

template <class T>
void conv2d_backward_bias(const ConvGeometry& cg, const T* grad_out, T* grad_b, cudaStream_t stream) {
  const Geom g = to_geom(cg);
  if (g.oc == 0) return;
  launch(bias_grad_kernel<T>, dim3(static_cast<unsigned>(g.oc)), dim3(kBiasThreads), 0, stream, grad_out, g.n,
         g.oc, g.p, grad_b);
}

#define TFG_CONV2D_CUDA_INSTANTIATE(T)                                                                   \
  template void conv2d_forward<T>(const ConvGeometry&, const T*, const T*, const T*, T*, cudaStream_t); \
  template void conv2d_backward_input<T>(const ConvGeometry&, const T*, const T*, T*, cudaStream_t);    \
  template int64_t conv2d_backward_weight_workspace<T>(const ConvGeometry&);                            \
  template void conv2d_backward_weight<T>(const ConvGeometry&, const T*, const T*, T*, T*, cudaStream_t); \
  template void conv2d_backward_bias<T>(const ConvGeometry&, const T*, T*, cudaStream_t);
TFG_CONV2D_CUDA_INSTANTIATE(float)
TFG_CONV2D_CUDA_INSTANTIATE(double)

}  // namespace tfg::cuda
