// LSTM entries: argument checks, the GEMM schedule of the forward (one input
// projection for all steps, then per step the recurrent GEMM and the fused
// pass) and of backpropagation through time (per step the fused backward and
// one GEMM for the gradient of h_prev; the input and weight gradients as one
// GEMM each over all steps at the end). A cell step is a sequence of length 1
// (whose gates take the transposed route of Note [single step]).
// C-contiguous operands are read in place; other layouts are copied first.
#include "ops/lstm/lstm.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "core/parallel.h"
#include "ops/matmul/gemm.h"

namespace tfg {

namespace {

// ---- argument checks -------------------------------------------------------------

void check_operand(const char* op, const char* arg, const Array& a, const Array& x) {
  check_float_cpu(op, arg, a);
  TFG_CHECK_TYPE(a.dtype == x.dtype, op, ": '", arg, "' has dtype ", dtype_name(a.dtype),
                 " but 'x' has dtype ", dtype_name(x.dtype), "; all operands must have the same dtype");
}

void check_shape(const char* op, const char* arg, const Array& a, const Array& x, const Shape& expected,
                 const char* meaning) {
  check_operand(op, arg, a, x);
  TFG_CHECK_VALUE(a.shape == expected, op, ": '", arg, "' has shape ", shape_str(a.shape),
                  " but must be ", meaning, " = ", shape_str(expected));
}

// Checks the weights and biases against x's dtype and input size; returns the hidden size.
int64_t check_weights(const char* op, const Array& x, int64_t input_size, const Array& w_ih,
                      const Array& w_hh, const Array* b_ih, const Array* b_hh) {
  check_operand(op, "w_hh", w_hh, x);
  TFG_CHECK_VALUE(w_hh.ndim() == 2 && w_hh.shape[0] == 4 * w_hh.shape[1], op,
                  ": 'w_hh' must be 2-D of shape (4 * hidden_size, hidden_size), got shape ",
                  shape_str(w_hh.shape));
  const int64_t H = w_hh.shape[1];
  check_shape(op, "w_ih", w_ih, x, {4 * H, input_size},
              "(4 * hidden_size, input_size) with hidden_size from 'w_hh' and input_size from 'x'");
  if (b_ih) check_shape(op, "b_ih", *b_ih, x, {4 * H}, "(4 * hidden_size,)");
  if (b_hh) check_shape(op, "b_hh", *b_hh, x, {4 * H}, "(4 * hidden_size,)");
  return H;
}

// ---- the schedules ---------------------------------------------------------------

struct Dims {
  int64_t T, N, I, H;
};

// C-contiguous operands; bias = b_ih + b_hh (or the one given, or null).
template <class T>
struct Operands {
  const T* x;
  const T* hx;
  const T* cx;
  const T* w_ih;
  const T* w_hh;
  const T* bias;
};

template <class T>
const LstmKernels<T>& kernels() {
  if constexpr (std::is_same_v<T, float>) return active_lstm_kernels_f32();
  else return active_lstm_kernels_f64();
}

// Rows per item of the fused passes: tens of thousands of elements, so that
// a batch smaller than that runs on the calling thread.
constexpr int64_t kFusedItemElems = 1 << 14;

template <class T, class F>
void over_rows(const Dims& d, F&& f) {
  const int64_t rows = std::max<int64_t>(1, kFusedItemElems / std::max<int64_t>(d.H, 1));
  const int64_t items = (d.N + rows - 1) / rows;
  parallel_for(items, [&](int64_t it) {
    const int64_t r0 = it * rows;
    f(r0, std::min(rows, d.N - r0));
  });
}

// C (m x n, row stride ldc) (+)= A (m x k, strides rs_a, cs_a) * B (k x n, strides rs_b, cs_b).
template <class T>
void gemm_into(int64_t m, int64_t n, int64_t k, const T* a, int64_t rs_a, int64_t cs_a, const T* b,
               int64_t rs_b, int64_t cs_b, T* c, const T* bias, bool accumulate) {
  GemmProblem<T> p;
  p.m = m; p.n = n; p.k = k;
  p.a = a; p.rs_a = rs_a; p.cs_a = cs_a;
  p.b = b; p.rs_b = rs_b; p.cs_b = cs_b;
  p.c = c; p.rs_c = n; p.cs_c = 1;
  p.bias = bias;
  p.accumulate = accumulate;
  gemm(p);
}

// Note [packed weights]: the recurrent products of the T steps all multiply
// by the same w_hh (w_hh^T forward, w_hh backward), each with only N rows of
// h or dgates. gemm() would pack that B afresh at every step, a transpose of
// all of w_hh for N rows of work; here it is packed into the micro-kernel's
// B panels once per call, and each step runs the micro-kernels straight over
// the panels with A (rows of h or dgates, unit stride along K) read in place.
//
// Note [fused step]: B's columns come in `groups` blocks of `width` (the four
// gates of w_hh^T, width H), each packed in its own panels, and a work item
// is a block of rows by a range of columns taken in every group at once: the
// same hidden units of i, f, g and o. So the item can run the fused gate pass
// on its own tile right after its products, while the tile is in L1, and a
// step is one parallel phase instead of two.
template <class T>
class PackedB {
 public:
  // B (k x n), n = groups * width, with B[p][j] = b[p * rs + j * cs].
  PackedB(int64_t k, int64_t groups, int64_t width, const T* b, int64_t rs, int64_t cs)
      : kr_(active_gemm_kernels<T>()), k_(k), groups_(groups), width_(width),
        kc_(k > 0 ? ceil_div(k, ceil_div(k, kr_.kc)) : 1),  // equal K blocks of at most kc
        panels_(ceil_div(width, kr_.nr)),
        buf_(Array::empty({std::max<int64_t>(groups * panels_ * k * kr_.nr, 1)}, dtype_of<T>())) {
    T* dst = buf_.ptr<T>();
    const int64_t nr = kr_.nr;
    parallel_for(groups_ * panels_, [&](int64_t item) {
      const int64_t g = item / panels_, jp = item % panels_;
      const int64_t j0 = g * width_ + jp * nr, cols = std::min(nr, width_ - jp * nr);
      for (int64_t pc = 0; pc < k_; pc += kc_)
        kr_.pack_b(std::min(kc_, k_ - pc), cols, b + pc * rs + j0 * cs, rs, cs, panel(jp, g) + pc * nr);
    });
  }

  // C (m x n, row stride ldc) = (accumulate ? C : 0) + A B with A (m x k): row i
  // at a + i * lda. Then, per work item, after(i0, rows, j0, cols) for its rows
  // and its columns j0 <= j < j0 + cols of every group (Note [fused step]).
  template <class After>
  void multiply(int64_t m, const T* a, int64_t lda, T* c, int64_t ldc, bool accumulate,
                After&& after) const {
    if (m == 0 || width_ == 0 || groups_ == 0) return;
    const int64_t nr = kr_.nr, mr = kr_.mr;
    // About 4 items per thread (Note [dynamic chunks] in core/parallel.h), by columns first.
    const int64_t want = 4 * num_threads();
    const int64_t per_col = ceil_div(panels_, std::min(panels_, want));
    const int64_t col_items = ceil_div(panels_, per_col);
    const int64_t row_items = std::clamp<int64_t>(ceil_div(want, col_items), 1, ceil_div(m, mr));
    const int64_t per_row = ceil_div(ceil_div(m, row_items), mr) * mr;
    parallel_for(ceil_div(m, per_row) * col_items, [&](int64_t item) {
      const int64_t i_begin = (item / col_items) * per_row, i_end = std::min(m, i_begin + per_row);
      const int64_t jp_begin = (item % col_items) * per_col;
      const int64_t jp_end = std::min(panels_, jp_begin + per_col);
      for (int64_t jp = jp_begin; jp < jp_end; ++jp)
        for (int64_t g = 0; g < groups_; ++g)
          panel_product(jp, g, i_begin, i_end, a, lda, c, ldc, accumulate);
      after(i_begin, i_end - i_begin, jp_begin * nr, std::min(width_, jp_end * nr) - jp_begin * nr);
    });
  }

 private:
  static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
  T* panel(int64_t jp, int64_t g) const { return buf_.ptr<T>() + (jp * groups_ + g) * k_ * kr_.nr; }

  // Rows [i_begin, i_end) of C's columns under panel jp of group g.
  void panel_product(int64_t jp, int64_t g, int64_t i_begin, int64_t i_end, const T* a, int64_t lda,
                     T* c, int64_t ldc, bool accumulate) const {
    const int64_t nr = kr_.nr, mr = kr_.mr;
    const int64_t j0 = g * width_ + jp * nr, cols = std::min(nr, width_ - jp * nr);
    if (k_ == 0) {
      if (!accumulate)
        for (int64_t i = i_begin; i < i_end; ++i) std::fill_n(c + i * ldc + j0, cols, T(0));
      return;
    }
    alignas(64) T tile[GemmKernels<T>::kMaxMR * 64];  // nr <= 64 at every level
    for (int64_t pc = 0; pc < k_; pc += kc_) {
      const int64_t kc = std::min(kc_, k_ - pc);
      const bool acc = accumulate || pc > 0;
      const T* bp = panel(jp, g) + pc * nr;
      for (int64_t i0 = i_begin; i0 < i_end; i0 += mr) {
        const int64_t rows = std::min(mr, i_end - i0);
        const auto micro = kr_.micro_unpacked_a[rows - 1];
        T* ct = c + i0 * ldc + j0;
        if (cols == nr) {
          micro(kc, a + i0 * lda + pc, lda, bp, nr, ct, ldc, nullptr, acc);
          continue;
        }
        // A tile cut by the edge of its group goes through a local tile.
        if (acc)
          for (int64_t i = 0; i < rows; ++i) std::copy_n(ct + i * ldc, cols, tile + i * nr);
        micro(kc, a + i0 * lda + pc, lda, bp, nr, tile, nr, nullptr, acc);
        for (int64_t i = 0; i < rows; ++i) std::copy_n(tile + i * nr, cols, ct + i * ldc);
      }
    }
  }

  const GemmKernels<T>& kr_;
  int64_t k_, groups_, width_, kc_, panels_;
  Array buf_;
};

// Note [single step]: for one step (lstm_cell) there is nothing to amortise
// a packing of the weights over, and both products are computed transposed,
// gates^T (4H x N) = w_ih x^T + w_hh h^T: the weights are then the GEMM's A,
// packed straight from their row-major rows, and only the small x and h are
// packed transposed. Packing the weights as a transposed B instead ran about
// 1.3x slower here (N 64, I 256, H 512), more than the transposition of the
// (N x 4H) result costs. The bias is added in that transposition.
template <class T>
void single_step_gates(const Dims& d, const Operands<T>& in, const T* h_prev, T* gates) {
  const int64_t G = 4 * d.H;
  const Array tmp = Array::empty({std::max<int64_t>(G * d.N, 1)}, dtype_of<T>());
  T* gt = tmp.ptr<T>();
  gemm_into<T>(G, d.N, d.I, in.w_ih, d.I, 1, in.x, 1, d.I, gt, nullptr, false);
  gemm_into<T>(G, d.N, d.H, in.w_hh, d.H, 1, h_prev, 1, d.H, gt, nullptr, true);
  constexpr int64_t B = 32;
  for (int64_t r0 = 0; r0 < G; r0 += B)
    for (int64_t n0 = 0; n0 < d.N; n0 += B)
      for (int64_t n = n0; n < std::min(d.N, n0 + B); ++n)
        for (int64_t r = r0; r < std::min(G, r0 + B); ++r)
          gates[n * G + r] = gt[r * d.N + n] + (in.bias ? in.bias[r] : T(0));
}

// The forward over d.T steps into `gates` (T, N, 4H). slots(t) gives the
// h_prev, h, c_prev and c pointers of step t. keep_gates leaves the gate
// activations in `gates` for the backward.
template <class T, class Slots>
void run_forward(const Dims& d, const Operands<T>& in, T* gates, Slots&& slots, bool keep_gates) {
  const int64_t G = 4 * d.H, NG = d.N * G;
  const LstmKernels<T>& k = kernels<T>();
  if (d.T == 1) {
    const auto s = slots(0);
    single_step_gates(d, in, s.h_prev, gates);
    over_rows<T>(d, [&](int64_t r0, int64_t rows) {
      const int64_t o = r0 * d.H;
      k.forward(rows, d.H, d.H, gates + r0 * G, s.c_prev + o, s.c + o, s.h + o, keep_gates);
    });
    return;
  }
  // gates = x w_ih^T + bias for every step at once.
  gemm_into<T>(d.T * d.N, G, d.I, in.x, d.I, 1, in.w_ih, 1, d.I, gates, in.bias, false);
  const PackedB<T> w_hh_t(d.H, 4, d.H, in.w_hh, 1, d.H);
  for (int64_t t = 0; t < d.T; ++t) {
    const auto s = slots(t);
    T* gt = gates + t * NG;
    w_hh_t.multiply(d.N, s.h_prev, d.H, gt, G, true, [&](int64_t i0, int64_t rows, int64_t j0, int64_t cols) {
      const int64_t o = i0 * d.H + j0;
      k.forward(rows, cols, d.H, gt + i0 * G + j0, s.c_prev + o, s.c + o, s.h + o, keep_gates);
    });
  }
}

template <class T>
struct StepSlots {
  const T* h_prev;
  T* h;
  const T* c_prev;
  T* c;
};

// out (n x k) = dgates^T a for dgates (rows x n) and a (rows x k), both row-major.
// Note [weight gradient layout]: computed as a^T dgates (k x n) and transposed,
// so that the GEMM's wide operand is dgates read row by row; the product taken
// directly as dgates^T a packs dgates transposed and ran about half as fast
// here (measured 3200 x 1024 by 3200 x 128), more than the transposition costs.
template <class T>
void weight_gradient(int64_t rows, int64_t k, int64_t n, const T* a, const T* dgates, T* out) {
  const Array tmp = Array::empty({std::max<int64_t>(k * n, 1)}, dtype_of<T>());
  T* t = tmp.ptr<T>();
  gemm_into<T>(k, n, rows, a, 1, k, dgates, n, 1, t, nullptr, false);
  constexpr int64_t B = 32;
  for (int64_t j0 = 0; j0 < n; j0 += B)
    for (int64_t p0 = 0; p0 < k; p0 += B)
      for (int64_t j = j0; j < std::min(n, j0 + B); ++j)
        for (int64_t p = p0; p < std::min(k, p0 + B); ++p) out[j * k + p] = t[p * n + j];
}

// Backpropagation through time. gates: the forward's activations (T, N, 4H),
// overwritten with the pre-activation gradients; cs (T, N, H) the cell
// states; hs ((T + 1), N, H) with hx first, then h of every step. gy: grad of
// y (T, N, H) or null. grad_hx / grad_cx hold the gradient of the final h / c
// on entry. grad_b (4H) may be null.
template <class T>
void run_backward(const Dims& d, const Operands<T>& in, const T* gy, T* gates, const T* cs,
                  const T* hs, T* grad_x, T* grad_hx, T* grad_cx, T* grad_w_ih, T* grad_w_hh,
                  T* grad_b) {
  const int64_t G = 4 * d.H, NG = d.N * G, NH = d.N * d.H, TN = d.T * d.N;
  const LstmKernels<T>& k = kernels<T>();
  const PackedB<T> w_hh(G, 1, d.H, in.w_hh, d.H, 1);
  for (int64_t t = d.T - 1; t >= 0; --t) {
    T* gt = gates + t * NG;
    const T* c = cs + t * NH;
    const T* c_prev = t > 0 ? cs + (t - 1) * NH : in.cx;
    const T* gyt = gy ? gy + t * NH : nullptr;
    over_rows<T>(d, [&](int64_t r0, int64_t rows) {
      const int64_t o = r0 * d.H;
      k.backward(rows, d.H, d.H, gt + r0 * G, c + o, c_prev + o, gyt ? gyt + o : nullptr, grad_hx + o,
                 grad_cx + o);
    });
    // grad of h_prev = dgates_t w_hh
    w_hh.multiply(d.N, gt, G, grad_hx, d.H, false, [](int64_t, int64_t, int64_t, int64_t) {});
  }
  // Note [weight gradients]: the dgates of every step are kept, so each of
  // these is one large GEMM over all T * N rows instead of T small ones
  // (see also Note [weight gradient layout]).
  gemm_into<T>(TN, d.I, G, gates, G, 1, in.w_ih, d.I, 1, grad_x, nullptr, false);
  weight_gradient<T>(TN, d.I, G, in.x, gates, grad_w_ih);
  weight_gradient<T>(TN, d.H, G, hs, gates, grad_w_hh);
  if (grad_b) {
    const Array ones = Array::empty({std::max<int64_t>(TN, 1)}, dtype_of<T>());
    std::fill_n(ones.ptr<T>(), TN, T(1));
    gemm_into<T>(1, G, TN, ones.ptr<T>(), TN, 1, gates, G, 1, grad_b, nullptr, false);
  }
}

// ---- entries ---------------------------------------------------------------------

Array copy_of(const Array& a) {
  const Array src = a.contiguous();
  Array out = Array::empty(a.shape, a.dtype);
  if (out.numel() > 0) std::memcpy(out.data, src.data, out.numel() * dtype_size(a.dtype));
  return out;
}

Array copy_or_zeros(const Array* a, const Shape& shape, DType dtype) {
  return a ? copy_of(*a).reshaped(shape) : Array::zeros(shape, dtype);
}

// Contiguous views of the operands, kept alive while the pointers are used.
struct Held {
  Array x, hx, cx, w_ih, w_hh, bias;
  bool has_bias = false;
};

Held hold(const Array& x, const Array& hx, const Array& cx, const Array& w_ih, const Array& w_hh,
          const Array* b_ih, const Array* b_hh) {
  Held h{x.contiguous(), hx.contiguous(), cx.contiguous(), w_ih.contiguous(), w_hh.contiguous(), {}};
  if (b_ih && b_hh) {
    h.bias = copy_of(*b_ih);
    const Array other = b_hh->contiguous();
    TFG_DISPATCH_FLOATING(x.dtype, "lstm", [&] {
      scalar_t* b = h.bias.ptr<scalar_t>();
      const scalar_t* o = other.ptr<scalar_t>();
      for (int64_t j = 0; j < h.bias.numel(); ++j) b[j] += o[j];
    });
  } else if (b_ih || b_hh) {
    h.bias = (b_ih ? b_ih : b_hh)->contiguous();
  }
  h.has_bias = b_ih || b_hh;
  return h;
}

template <class T>
Operands<T> operands(const Held& h) {
  return {h.x.ptr<T>(), h.hx.ptr<T>(), h.cx.ptr<T>(), h.w_ih.ptr<T>(), h.w_hh.ptr<T>(),
          h.has_bias ? h.bias.ptr<T>() : nullptr};
}

// y (T, N, H) and the final state; h_final and c_final are (N, H).
void sequence_forward(const Dims& d, const Held& held, Array& y, Array& h_final, Array& c_final) {
  const int64_t NH = d.N * d.H;
  TFG_DISPATCH_FLOATING(held.x.dtype, "lstm", [&] {
    using T = scalar_t;
    const Operands<T> in = operands<T>(held);
    const Array gates = Array::empty({d.T * d.N * 4 * d.H}, held.x.dtype);
    T* yp = y.ptr<T>();
    T* cp = c_final.ptr<T>();
    run_forward<T>(d, in, gates.ptr<T>(), [&](int64_t t) {
      return StepSlots<T>{t > 0 ? yp + (t - 1) * NH : in.hx, yp + t * NH, cp, cp};
    }, false);
    const T* last = d.T > 0 ? yp + (d.T - 1) * NH : in.hx;
    if (NH > 0) std::memcpy(h_final.ptr<T>(), last, NH * sizeof(T));
  });
}

// Recomputes the forward and runs the backward; shapes of grad_x / grad_hx /
// grad_cx are given by the caller (cell or sequence).
LstmGrads sequence_backward(const Dims& d, const Held& held, const Array* grad_y, const Array* grad_h,
                            const Array* grad_c, const Shape& x_shape, const Shape& state_shape,
                            bool has_b_ih, bool has_b_hh) {
  const DType dt = held.x.dtype;
  const int64_t NH = d.N * d.H, G = 4 * d.H;
  LstmGrads r;
  r.grad_x = Array::empty(x_shape, dt);
  r.grad_hx = copy_or_zeros(grad_h, state_shape, dt);
  r.grad_cx = copy_or_zeros(grad_c, state_shape, dt);
  r.grad_w_ih = Array::empty({G, d.I}, dt);
  r.grad_w_hh = Array::empty({G, d.H}, dt);
  Array grad_b;
  if (has_b_ih || has_b_hh) grad_b = Array::empty({G}, dt);
  Array gy;
  if (grad_y) gy = grad_y->contiguous();
  TFG_DISPATCH_FLOATING(dt, "lstm_backward", [&] {
    using T = scalar_t;
    const Operands<T> in = operands<T>(held);
    const Array gates = Array::empty({d.T * d.N * G}, dt);
    const Array cs = Array::empty({d.T * NH}, dt);
    const Array hs = Array::empty({(d.T + 1) * NH}, dt);
    T* hp = hs.ptr<T>();
    T* cp = cs.ptr<T>();
    if (NH > 0) std::memcpy(hp, in.hx, NH * sizeof(T));
    run_forward<T>(d, in, gates.ptr<T>(), [&](int64_t t) {
      return StepSlots<T>{hp + t * NH, hp + (t + 1) * NH, t > 0 ? cp + (t - 1) * NH : in.cx, cp + t * NH};
    }, true);
    run_backward<T>(d, in, grad_y ? gy.ptr<T>() : nullptr, gates.ptr<T>(), cp, hp, r.grad_x.ptr<T>(),
                    r.grad_hx.ptr<T>(), r.grad_cx.ptr<T>(), r.grad_w_ih.ptr<T>(), r.grad_w_hh.ptr<T>(),
                    grad_b.data ? grad_b.ptr<T>() : nullptr);
  });
  r.has_b_ih = has_b_ih;
  r.has_b_hh = has_b_hh;
  if (has_b_ih) r.grad_b_ih = grad_b;
  if (has_b_hh) r.grad_b_hh = has_b_ih ? copy_of(grad_b) : grad_b;
  return r;
}

// Cell shapes: x (N, I) or (I,) with hx, cx (N, H) or (H,) alike. Returns the
// dims (T = 1) and the state shape.
Dims check_cell(const char* op, const Array& x, const Array& hx, const Array& cx, const Array& w_ih,
                const Array& w_hh, const Array* b_ih, const Array* b_hh, Shape* state_shape) {
  check_float_cpu(op, "x", x);
  TFG_CHECK_VALUE(x.ndim() == 1 || x.ndim() == 2, op,
                  ": 'x' must be 1-D (input_size,) or 2-D (batch, input_size), got shape ",
                  shape_str(x.shape));
  const bool batched = x.ndim() == 2;
  const int64_t N = batched ? x.shape[0] : 1, I = x.shape.back();
  const int64_t H = check_weights(op, x, I, w_ih, w_hh, b_ih, b_hh);
  *state_shape = batched ? Shape{N, H} : Shape{H};
  const char* meaning = batched ? "(batch, hidden_size)" : "(hidden_size,) for a 1-D 'x'";
  check_shape(op, "hx", hx, x, *state_shape, meaning);
  check_shape(op, "cx", cx, x, *state_shape, meaning);
  return {1, N, I, H};
}

Dims check_sequence(const char* op, const Array& x, const Array& hx, const Array& cx, const Array& w_ih,
                    const Array& w_hh, const Array* b_ih, const Array* b_hh) {
  check_float_cpu(op, "x", x);
  TFG_CHECK_VALUE(x.ndim() == 3, op, ": 'x' must be 3-D (seq_len, batch, input_size), got shape ",
                  shape_str(x.shape));
  const int64_t T = x.shape[0], N = x.shape[1], I = x.shape[2];
  const int64_t H = check_weights(op, x, I, w_ih, w_hh, b_ih, b_hh);
  check_shape(op, "hx", hx, x, {N, H}, "(batch, hidden_size)");
  check_shape(op, "cx", cx, x, {N, H}, "(batch, hidden_size)");
  return {T, N, I, H};
}

}  // namespace

namespace lstm_detail {

CellDims check_cell_args(const char* op, const Array& x, const Array& hx, const Array& cx, const Array& w_ih,
                         const Array& w_hh, const Array* b_ih, const Array* b_hh) {
  CellDims cd;
  const Dims d = check_cell(op, x, hx, cx, w_ih, w_hh, b_ih, b_hh, &cd.state);
  cd.N = d.N;
  cd.I = d.I;
  cd.H = d.H;
  return cd;
}

CellDims check_cell_backward_args(const char* op, const Array* grad_h, const Array* grad_c, const Array& x,
                                  const Array& hx, const Array& cx, const Array& w_ih, const Array& w_hh,
                                  const Array* b_ih, const Array* b_hh) {
  const CellDims cd = check_cell_args(op, x, hx, cx, w_ih, w_hh, b_ih, b_hh);
  if (grad_h) check_shape(op, "grad_h", *grad_h, x, cd.state, "the shape of 'hx'");
  if (grad_c) check_shape(op, "grad_c", *grad_c, x, cd.state, "the shape of 'cx'");
  return cd;
}

}  // namespace lstm_detail

LstmCellResult lstm_cell(const Array& x, const Array& hx, const Array& cx, const Array& w_ih,
                         const Array& w_hh, const Array* b_ih, const Array* b_hh) {
  Shape state;
  const Dims d = check_cell("lstm_cell", x, hx, cx, w_ih, w_hh, b_ih, b_hh, &state);
  const Held held = hold(x, hx, cx, w_ih, w_hh, b_ih, b_hh);
  Array y = Array::empty({1, d.N, d.H}, x.dtype), h = Array::empty(state, x.dtype);
  Array c = copy_of(cx).reshaped(state);
  sequence_forward(d, held, y, h, c);
  return {h, c};
}

LstmResult lstm(const Array& x, const Array& hx, const Array& cx, const Array& w_ih, const Array& w_hh,
                const Array* b_ih, const Array* b_hh) {
  const Dims d = check_sequence("lstm", x, hx, cx, w_ih, w_hh, b_ih, b_hh);
  const Held held = hold(x, hx, cx, w_ih, w_hh, b_ih, b_hh);
  Array y = Array::empty({d.T, d.N, d.H}, x.dtype), h = Array::empty({d.N, d.H}, x.dtype);
  Array c = copy_of(cx);
  sequence_forward(d, held, y, h, c);
  return {y, h, c};
}

LstmGrads lstm_cell_backward(const Array* grad_h, const Array* grad_c, const Array& x, const Array& hx,
                             const Array& cx, const Array& w_ih, const Array& w_hh, const Array* b_ih,
                             const Array* b_hh) {
  const char* op = "lstm_cell_backward";
  const lstm_detail::CellDims cd =
      lstm_detail::check_cell_backward_args(op, grad_h, grad_c, x, hx, cx, w_ih, w_hh, b_ih, b_hh);
  const Dims d{1, cd.N, cd.I, cd.H};
  const Shape& state = cd.state;
  const Held held = hold(x, hx, cx, w_ih, w_hh, b_ih, b_hh);
  // One step: the gradient of h is that step's "grad_y"; there is no later state.
  return sequence_backward(d, held, grad_h, nullptr, grad_c, x.shape, state, b_ih != nullptr,
                           b_hh != nullptr);
}

LstmGrads lstm_backward(const Array* grad_y, const Array* grad_h, const Array* grad_c, const Array& x,
                        const Array& hx, const Array& cx, const Array& w_ih, const Array& w_hh,
                        const Array* b_ih, const Array* b_hh) {
  const char* op = "lstm_backward";
  const Dims d = check_sequence(op, x, hx, cx, w_ih, w_hh, b_ih, b_hh);
  if (grad_y) check_shape(op, "grad_y", *grad_y, x, {d.T, d.N, d.H}, "(seq_len, batch, hidden_size)");
  if (grad_h) check_shape(op, "grad_h", *grad_h, x, {d.N, d.H}, "(batch, hidden_size)");
  if (grad_c) check_shape(op, "grad_c", *grad_c, x, {d.N, d.H}, "(batch, hidden_size)");
  const Held held = hold(x, hx, cx, w_ih, w_hh, b_ih, b_hh);
  return sequence_backward(d, held, grad_y, grad_h, grad_c, x.shape, {d.N, d.H}, b_ih != nullptr,
                           b_hh != nullptr);
}

}  // namespace tfg
