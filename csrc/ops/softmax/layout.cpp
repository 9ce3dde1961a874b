// Reduction layouts and work items (see layout.h).
#include "ops/softmax/layout.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace tfg {

int64_t wrap_dim(const char* op, int64_t dim, const Array& x) {
  const int64_t nd = std::max<int64_t>(x.ndim(), 1);
  TFG_CHECK_VALUE(dim >= -nd && dim < nd, op, ": dim ", dim, " is out of range for an input with ",
                  x.ndim(), " dimension", x.ndim() == 1 ? "" : "s", " (shape ", shape_str(x.shape),
                  "); expected a value in [", -nd, ", ", nd - 1, "]");
  return dim < 0 ? dim + nd : dim;
}

ReduceLayout reduce_layout(const Shape& shape, int64_t dim) {
  ReduceLayout l;
  if (shape.empty()) return l;
  for (int64_t d = 0; d < dim; ++d) l.outer *= shape[d];
  l.n = shape[dim];
  for (size_t d = dim + 1; d < shape.size(); ++d) l.inner *= shape[d];
  return l;
}

WorkItems::WorkItems(const ReduceLayout& l) : l_(l) {
  const int64_t n = std::max<int64_t>(l.n, 1);
  if (l.outer == 0 || l.inner == 0) return;
  if (l.inner == 1) {
    per_ = std::max<int64_t>(1, kItemElements / n);
    count_ = (l.outer + per_ - 1) / per_;
  } else if (n * l.inner >= kItemElements) {
    split_columns_ = true;
    per_ = std::max<int64_t>(64, (kItemElements / n + 63) / 64 * 64);
    col_blocks_ = (l.inner + per_ - 1) / per_;
    count_ = l.outer * col_blocks_;
  } else {
    per_ = std::max<int64_t>(1, kItemElements / (n * l.inner));
    count_ = (l.outer + per_ - 1) / per_;
  }
}

WorkItems::Range WorkItems::item(int64_t i) const {
  Range r;
  if (split_columns_) {
    r.o = i / col_blocks_;
    r.o_end = r.o + 1;
    r.c0 = (i % col_blocks_) * per_;
    r.c1 = std::min(l_.inner, r.c0 + per_);
  } else {
    r.o = i * per_;
    r.o_end = std::min(l_.outer, r.o + per_);
    r.c0 = 0;
    r.c1 = l_.inner;
  }
  return r;
}

}  // namespace tfg
