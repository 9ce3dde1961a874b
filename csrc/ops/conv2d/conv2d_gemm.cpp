// conv2d as implicit GEMM on the GEMM's packing and micro-kernels: the im2col
// matrix is built a tile at a time into a per-thread buffer (never for the
// whole batch) and multiplied by the ISA's micro-kernels. Strided forward,
// strided input gradient (GEMM then col2im) and weight gradient (GEMM with
// im2col rows as the unpacked A operand). See README.md.
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "core/per_thread.h"
#include "ops/conv2d/conv2d.h"
#include "ops/matmul/gemm.h"

namespace tfg {

namespace {

constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
constexpr int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }
int64_t even_block(int64_t total, int64_t block) { return ceil_div(total, ceil_div(total, block)); }

// Work items per thread, so a descheduled thread delays little (Note [dynamic chunks]).
constexpr int64_t kItemsPerThread = 4;

// Visitor for for_each_run: copies im2col rows into dst (row stride ld).
template <class T>
struct Im2col {
  static constexpr bool kMergeRows = true;  // Note [merged rows]
  const T* src;
  int64_t sw;
  T* dst;
  int64_t ld;
  void zero(int64_t row, int64_t col, int64_t len) const {
    std::fill_n(dst + row * ld + col, len, T(0));
  }
  void run(int64_t row, int64_t col, int64_t from, int64_t len) const {
    T* out = dst + row * ld + col;
    const T* in = src + from;
    if (sw == 1) {
      std::memcpy(out, in, len * sizeof(T));
    } else {
      for (int64_t t = 0; t < len; ++t) out[t] = in[t * sw];
    }
  }
};

// Visitor for for_each_run: adds im2col-shaped rows (row stride ld) back into
// the input gradient, the transpose of Im2col.
template <class T>
struct Col2imAdd {
  static constexpr bool kMergeRows = false;  // wrapped columns would add into real pixels
  const T* src;
  int64_t ld;
  int64_t sw;
  T* dst;
  void zero(int64_t, int64_t, int64_t) const {}
  void run(int64_t row, int64_t col, int64_t to, int64_t len) const {
    const T* in = src + row * ld + col;
    T* out = dst + to;
    if (sw == 1) {
      for (int64_t t = 0; t < len; ++t) out[t] += in[t];
    } else {
      for (int64_t t = 0; t < len; ++t) out[t * sw] += in[t];
    }
  }
};

// C (rows x cols, row stride ldc) (+)= A * B for one micro-tile, B's rows ldb
// apart; a tile cut by the right edge goes through a local tile (Note [edge
// tiles] in gemm.cpp), and B's columns past `cols` are read but never stored.
template <class T>
void micro_tile(const GemmKernels<T>& kr, int64_t kc, const T* a, int64_t lda, const T* b,
                int64_t ldb, T* c, int64_t ldc, int64_t rows, int64_t cols, bool accumulate) {
  const auto micro = kr.micro_unpacked_a[rows - 1];
  if (cols == kr.nr) {
    micro(kc, a, lda, b, ldb, c, ldc, nullptr, accumulate);
    return;
  }
  alignas(64) T tile[32 * 64];
  micro(kc, a, lda, b, ldb, tile, kr.nr, nullptr, false);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j)
      c[i * ldc + j] = accumulate ? c[i * ldc + j] + tile[i * kr.nr + j] : tile[i * kr.nr + j];
}

// Output pixels per tile: about `target`, a multiple of nr, and small enough
// that there are a few items per thread when the batch alone does not give them.
int64_t pixel_tile(int64_t pixels, int64_t planes, int64_t target, int64_t nr, int threads) {
  int64_t tiles = ceil_div(pixels, target);
  const int64_t want = ceil_div(kItemsPerThread * threads, std::max<int64_t>(planes, 1));
  tiles = std::max(tiles, std::min(want, pixels / (2 * nr)));
  return round_up(ceil_div(pixels, std::max<int64_t>(tiles, 1)), nr);
}

}  // namespace

// Row stride for a buffer of rows `cols` wide read by micro-kernels: whole
// NR-wide panels, and an odd number of cache lines, so that the kc rows of a
// panel spread over all L1 sets instead of a few (a stride of 2 KB would map
// them all to 2 of its 64 sets).
int64_t panel_row_stride(int64_t cols, int64_t nr, int64_t elem) {
  int64_t ld = round_up(cols, nr);
  if (ld * elem / 64 % 2 == 0) ld += 64 / elem;
  return ld;
}

// Note [forward loop order]: per item (image, group, tile of output pixels)
// and per block of K rows: im2col rows -> buffer (L2), then for each NR-wide
// column panel of it, all output channels sweep it with the weights read in
// place as the micro-kernel's unpacked A (row-major, K contiguous).
//
// Note [strided B]: the panel is not packed: the micro-kernel reads its kc
// rows of NR elements straight from the im2col buffer, ldb apart. The first
// micro-tile brings them into L1 (kc x NR elements, 24 KB for float32 at
// kc = 192) and the other output channels find them there, so packing would
// be one more copy of the whole im2col matrix for nothing.
template <class T>
void conv2d_forward_gemm(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* out) {
  const GemmKernels<T>& kr = active_gemm_kernels<T>();
  const int64_t m = g.oc_per_group(), k = g.k_per_group(), pixels = g.pixels();
  const int64_t cg = g.c_per_group();
  const int threads = conv_threads(2.0 * g.n * g.oc * pixels * k);
  const int64_t kc = even_block(k, kr.kc);
  const int64_t tile = pixel_tile(pixels, g.n * g.groups, 512, kr.nr, threads);
  const int64_t tiles = ceil_div(pixels, tile);
  const int64_t ld = panel_row_stride(tile, kr.nr, sizeof(T));
  PerThread<T> rows_buf(threads, kc * ld);

  parallel_for_with_thread(g.n * g.groups * tiles, [&](int64_t item, int thread) {
    const int64_t n = item / (g.groups * tiles), grp = item / tiles % g.groups, t = item % tiles;
    const int64_t q0 = t * tile, q1 = std::min(pixels, q0 + tile), cols = q1 - q0;
    const T* xg = x + (n * g.c + grp * cg) * g.plane();
    const T* wg = w + grp * m * k;
    T* og = out + (n * g.oc + grp * m) * pixels + q0;
    if (bias)
      for (int64_t i = 0; i < m; ++i) std::fill_n(og + i * pixels, cols, bias[grp * m + i]);
    T* rows = rows_buf[thread];
    for (int64_t pc = 0; pc < k; pc += kc) {
      const int64_t kcur = std::min(kc, k - pc);
      for_each_run(g, pc, pc + kcur, q0, q1, Im2col<T>{xg, g.sw, rows, ld});
      const bool accumulate = pc > 0 || bias;
      for (int64_t jr = 0; jr < cols; jr += kr.nr) {
        const int64_t ncols = std::min<int64_t>(kr.nr, cols - jr);
        for (int64_t ir = 0; ir < m; ir += kr.mr)
          micro_tile(kr, kcur, wg + ir * k + pc, k, rows + jr, ld, og + ir * pixels + jr, pixels,
                     std::min<int64_t>(kr.mr, m - ir), ncols, accumulate);
      }
    }
  }, threads);
}

// Note [input gradient]: per item (image, group, block of input channels) and
// tile of pixels: dcol = W^T * grad_out-tile for the block's im2col rows, into
// a buffer, then col2im adds it into the block's channels of grad_x. Items own
// disjoint channels of grad_x, so overlapping windows never race.
// (Used for strides > 1; with stride 1 conv2d.cpp runs a forward convolution
// instead, see input_grad_is_convolution.)
template <class T>
void conv2d_backward_input_gemm(const ConvGeometry& g, const T* grad_out, const T* w, T* grad_x) {
  const int64_t m = g.oc_per_group(), k = g.k_per_group(), pixels = g.pixels();
  const int64_t cg = g.c_per_group(), taps = g.taps();
  const GemmKernels<T>& kr = active_gemm_kernels<T>();
  const int threads = conv_threads(2.0 * g.n * g.oc * pixels * k);
  // W^T per group: k x m, row-major, so its rows are the micro-kernel's unpacked A.
  Array wt_arr = Array::empty({g.groups * k * m}, dtype_of<T>());
  T* wt = wt_arr.ptr<T>();
  for (int64_t grp = 0; grp < g.groups; ++grp)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t r = 0; r < k; ++r) wt[(grp * k + r) * m + i] = w[(grp * m + i) * k + r];

  const int64_t planes = g.n * g.groups;
  const int64_t blocks = std::clamp<int64_t>(ceil_div(kItemsPerThread * threads, planes), 1, cg);
  const int64_t block_c = ceil_div(cg, blocks);
  const int64_t kc = even_block(m, kr.kc);
  const int64_t tile = round_up(std::min<int64_t>(pixels, 256), kr.nr);
  const int64_t block_rows = block_c * taps;
  PerThread<T> dcol_buf(threads, block_rows * tile), panel_buf(threads, kc * tile);

  parallel_for_with_thread(planes * blocks, [&](int64_t item, int thread) {
    const int64_t n = item / (g.groups * blocks), grp = item / blocks % g.groups;
    const int64_t c0 = item % blocks * block_c, c1 = std::min(cg, c0 + block_c);
    if (c0 >= c1) return;
    const int64_t r0 = c0 * taps, r1 = c1 * taps;
    T* xg = grad_x + (n * g.c + grp * cg) * g.plane();
    std::fill_n(xg + c0 * g.plane(), (c1 - c0) * g.plane(), T(0));
    const T* gyg = grad_out + (n * g.oc + grp * m) * pixels;
    const T* wg = wt + grp * k * m;
    T* dcol = dcol_buf[thread];
    T* panels = panel_buf[thread];
    for (int64_t q0 = 0; q0 < pixels; q0 += tile) {
      const int64_t cols = std::min(tile, pixels - q0);
      for (int64_t pc = 0; pc < m; pc += kc) {
        const int64_t kcur = std::min(kc, m - pc);
        for (int64_t jr = 0; jr < cols; jr += kr.nr)
          kr.pack_b(kcur, std::min<int64_t>(kr.nr, cols - jr), gyg + pc * pixels + q0 + jr, pixels,
                    1, panels + jr * kcur);
        // dcol has `tile` columns (a multiple of nr): whole micro-tiles, no edge copies.
        for (int64_t ir = r0; ir < r1; ir += kr.mr) {
          const int64_t rows = std::min<int64_t>(kr.mr, r1 - ir);
          for (int64_t jr = 0; jr < cols; jr += kr.nr)
            kr.micro_unpacked_a[rows - 1](kcur, wg + ir * m + pc, m, panels + jr * kcur, kr.nr,
                                          dcol + (ir - r0) * tile + jr, tile, nullptr, pc > 0);
        }
      }
      for_each_run(g, r0, r1, q0, q0 + cols, Col2imAdd<T>{dcol, tile, g.sw, xg});
    }
  }, threads);
}

// Lanes of the weight gradient's sum: Note [deterministic weight gradient].
constexpr int64_t kWeightGradientLanes = 4;

// Note [weight gradient]: dW^T (k x m per group) = im2col * grad_out^T, summed
// over images: the K of this product is the pixels. Per item (image, group,
// chunk of pixels) the im2col rows of the chunk are built in a buffer and read
// in place as unpacked A; grad_out^T's panels are packed once per item.
// Note [deterministic weight gradient]: the items are cut into a fixed number
// of lanes (contiguous ranges, whatever the thread count); each lane adds its
// items in order into its own dW^T, and the lanes are summed in order at the
// end, so the gradient is the same bits on any number of threads (training
// runs repeat bit for bit).
template <class T>
void conv2d_backward_weight_gemm(const ConvGeometry& g, const T* grad_out, const T* x, T* grad_w) {
  const GemmKernels<T>& kr = active_gemm_kernels<T>();
  const int64_t m = g.oc_per_group(), k = g.k_per_group(), pixels = g.pixels();
  const int64_t cg = g.c_per_group();
  const int threads = conv_threads(2.0 * g.n * g.oc * pixels * k);
  const int64_t mp = round_up(m, kr.nr);  // padded dW^T row: whole micro-tiles
  const int64_t chunk = even_block(pixels, kr.kc);
  const int64_t chunks = ceil_div(pixels, chunk);
  const int64_t row_block = std::min<int64_t>(k, kr.mc);
  const int64_t items = g.n * g.groups * chunks;
  const int64_t lanes = std::min(items, kWeightGradientLanes);
  PerThread<T> acc_buf(static_cast<int>(lanes), g.groups * k * mp, /*zeroed=*/true);
  PerThread<T> rows_buf(threads, row_block * chunk), panel_buf(threads, chunk * mp);

  // One (image, group, chunk) item added into the dW^T of lane `acc_lane`.
  auto add_item = [&](int64_t item, T* acc_lane, int thread) {
    const int64_t n = item / (g.groups * chunks), grp = item / chunks % g.groups;
    const int64_t q0 = item % chunks * chunk, kcur = std::min(chunk, pixels - q0);
    const T* xg = x + (n * g.c + grp * cg) * g.plane();
    const T* gyg = grad_out + (n * g.oc + grp * m) * pixels + q0;
    T* acc = acc_lane + grp * k * mp;
    T* rows = rows_buf[thread];
    T* panels = panel_buf[thread];
    for (int64_t jr = 0; jr < m; jr += kr.nr)  // grad_out^T: kcur x m, column j = channel j
      kr.pack_b(kcur, std::min<int64_t>(kr.nr, m - jr), gyg + jr * pixels, 1, pixels,
                panels + jr * kcur);
    for (int64_t r0 = 0; r0 < k; r0 += row_block) {
      const int64_t r1 = std::min(k, r0 + row_block);
      for_each_run(g, r0, r1, q0, q0 + kcur, Im2col<T>{xg, g.sw, rows, chunk});
      for (int64_t ir = r0; ir < r1; ir += kr.mr) {
        const int64_t nrows = std::min<int64_t>(kr.mr, r1 - ir);
        for (int64_t jr = 0; jr < m; jr += kr.nr)
          kr.micro_unpacked_a[nrows - 1](kcur, rows + (ir - r0) * chunk, chunk, panels + jr * kcur,
                                         kr.nr, acc + ir * mp + jr, mp, nullptr, true);
      }
    }
  };
  parallel_for_with_thread(lanes, [&](int64_t lane, int thread) {
    for (int64_t item = lane * items / lanes; item < (lane + 1) * items / lanes; ++item)
      add_item(item, acc_buf[static_cast<int>(lane)], thread);
  }, threads);

  for (int64_t grp = 0; grp < g.groups; ++grp)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t r = 0; r < k; ++r) {
        T sum = T(0);
        for (int lane = 0; lane < lanes; ++lane) sum += acc_buf[lane][(grp * k + r) * mp + i];
        grad_w[(grp * m + i) * k + r] = sum;
      }
}

#define TFG_INSTANTIATE(T)                                                                    \
  template void conv2d_forward_gemm<T>(const ConvGeometry&, const T*, const T*, const T*, T*); \
  template void conv2d_backward_input_gemm<T>(const ConvGeometry&, const T*, const T*, T*);    \
  template void conv2d_backward_weight_gemm<T>(const ConvGeometry&, const T*, const T*, T*);
TFG_INSTANTIATE(float)
TFG_INSTANTIATE(double)
#undef TFG_INSTANTIATE

}  // namespace tfg
