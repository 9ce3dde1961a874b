// Portable helpers shared by the softmax and cross-entropy entries: the
// (outer, n, inner) view of a reduction along one dimension, how such a
// reduction is cut into parallel work items.
#pragma once
#include <cstdint>

#include "core/array.h"

namespace tfg {

// A C-contiguous tensor seen as (outer, n, inner), reduced along n.
struct ReduceLayout {
  int64_t outer = 1, n = 1, inner = 1;
};

// dim in [-max(ndim, 1), max(ndim, 1)) (a 0-d tensor counts as one element
// along dim 0); ValueError naming `op` otherwise. Returns dim >= 0.
int64_t wrap_dim(const char* op, int64_t dim, const Array& x);
ReduceLayout reduce_layout(const Shape& shape, int64_t dim);

// Note [work items]: the reduction is cut into items of about kItemElements
// elements, fixed by the shape alone (never by the thread count), so that
// results, per-item partial sums included, do not depend on how many threads
// ran. Rows (inner == 1): items are runs of whole rows. Columns (inner > 1):
// items are whole (n, inner) slices when a slice is small, otherwise ranges
// of a multiple of 64 columns of one slice. items() gives the count;
// item(i) the range: rows [r0, r1) or, for columns, slice o, columns [c0, c1)
// (and, for several small slices in one item, slices [o, o_end)).
struct WorkItems {
  static constexpr int64_t kItemElements = int64_t(1) << 15;
  struct Range {
    int64_t o = 0, o_end = 0;  // slices (columns) or rows (rows layout)
    int64_t c0 = 0, c1 = 0;    // columns of each slice
  };
  explicit WorkItems(const ReduceLayout& l);
  int64_t count() const { return count_; }
  Range item(int64_t i) const;

 private:
  ReduceLayout l_;
  int64_t count_ = 0, per_ = 1, col_blocks_ = 1;
  bool split_columns_ = false;
};


}  // namespace tfg
