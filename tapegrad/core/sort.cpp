// The sorting kernels: sort and topk along one dim, giving values and int64 indices. Each line
// along dim is copied out contiguous, its positions ordered by a comparison that puts NaN above
// every number (PyTorch's order), and the results written back in the input's layout. Layer: core.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "tapegrad/core/native.h"
#include "tapegrad/core/parallel.h"

namespace tg::native {

namespace {

template <class T>
bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>) return std::isnan(v);
  else return false;
}

// a < b in PyTorch's order (NaN above everything, NaNs equal among themselves).
template <class T>
bool ascending(T a, T b) {
  return !is_nan(a) && (is_nan(b) || a < b);
}

// Runs select(line, positions) for each line along `dim`, where line holds the line's n values
// and positions starts as 0..n-1; select puts the positions to keep first, in order. Returns the
// first k of them and their values, shaped as t with size k along dim.
template <class T, class Select>
ValuesIndices select_along(const Tensor& t, std::int64_t dim, std::int64_t k, Select select) {
  // The line dim goes last, so each line is a contiguous row of the permuted copy.
  const std::int64_t rank = t.dim();
  Shape perm, inverse(static_cast<std::size_t>(rank));
  for (std::int64_t i = 0; i < rank; ++i)
    if (i != dim) perm.push_back(i);
  if (rank > 0) perm.push_back(dim);
  for (std::int64_t i = 0; i < rank; ++i) inverse[perm[i]] = i;
  Tensor rows = contiguous(permute(t, perm));
  const std::int64_t n = rank == 0 ? 1 : t.sizes()[dim], lines = n == 0 ? 0 : rows.numel() / n;
  Shape out_sizes = rows.sizes();
  if (rank > 0) out_sizes.back() = k;
  ValuesIndices r{Tensor::empty(out_sizes, t.dtype()), Tensor::empty(out_sizes, kInt64)};
  const T* x = static_cast<const T*>(rows.raw_data());
  T* v = static_cast<T*>(r.values.raw_data());
  std::int64_t* ix = r.indices.data_ptr<std::int64_t>();
  parallel_for(0, lines, lines * n, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<std::int64_t> pos(static_cast<std::size_t>(n));
    for (std::int64_t l = lo; l < hi; ++l) {
      const T* line = x + l * n;
      std::iota(pos.begin(), pos.end(), std::int64_t{0});
      select(line, pos);
      for (std::int64_t j = 0; j < k; ++j) {
        v[l * k + j] = line[pos[j]];
        ix[l * k + j] = pos[j];
      }
    }
  }, kParallelGrain / 8);  // a line's sort costs far more than an elementwise op per value
  if (rank > 0 && dim != rank - 1) {
    r.values = contiguous(permute(r.values, inverse));
    r.indices = contiguous(permute(r.indices, inverse));
  }
  return r;
}

}  // namespace

ValuesIndices sort(const Tensor& t, std::int64_t dim, bool descending) {
  std::int64_t d = wrap_dim(dim, t.dim(), "sort");
  std::int64_t n = t.dim() == 0 ? 1 : t.sizes()[d];
  return dispatch(t.dtype(), [&]<class T>() {
    return select_along<T>(t, d, n, [descending](const T* line, std::vector<std::int64_t>& pos) {
      if (descending)
        std::stable_sort(pos.begin(), pos.end(), [line](std::int64_t a, std::int64_t b) { return ascending(line[b], line[a]); });
      else
        std::stable_sort(pos.begin(), pos.end(), [line](std::int64_t a, std::int64_t b) { return ascending(line[a], line[b]); });
    });
  });
}

ValuesIndices topk(const Tensor& t, std::int64_t k, std::int64_t dim, bool largest) {
  std::int64_t d = wrap_dim(dim, t.dim(), "topk");
  std::int64_t n = t.dim() == 0 ? 1 : t.sizes()[d];
  TG_CHECK(k >= 0 && k <= n, "[topk] selected index k out of range: expected 0 <= k <= {} (size of dimension {} of {}), got {}",
           n, d, t.sizes(), k);
  // PyTorch gives a 0-dim tensor its element back for k = 0 as for k = 1.
  std::int64_t keep = t.dim() == 0 ? 1 : k;
  return dispatch(t.dtype(), [&]<class T>() {
    // Ties go to the lower index: the order is total, so the result does not depend on the sort.
    return select_along<T>(t, d, keep, [largest, keep](const T* line, std::vector<std::int64_t>& pos) {
      auto before = [line, largest](std::int64_t a, std::int64_t b) {
        bool a_first = largest ? ascending(line[b], line[a]) : ascending(line[a], line[b]);
        bool b_first = largest ? ascending(line[a], line[b]) : ascending(line[b], line[a]);
        return a_first || (!b_first && a < b);
      };
      std::partial_sort(pos.begin(), pos.begin() + keep, pos.end(), before);
    });
  });
}

}  // namespace tg::native
