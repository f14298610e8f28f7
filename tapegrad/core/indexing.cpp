// The indexing kernels: cat, index_select and its adjoint index_add_, gather and its adjoint
// scatter_add_, one_hot. Indices are int64 and are checked against their dimension before any
// output is allocated or written. Layer: core.
#include <algorithm>
#include <cstring>

#include "tapegrad/core/loop.h"
#include "tapegrad/core/native.h"
#include "tapegrad/core/parallel.h"

namespace tg::native {

namespace {

using detail::StridedLoop;

// The index values in row-major order (contiguous); throws naming `op` unless each is in [0, n).
Tensor checked_index(const Tensor& index, std::int64_t n, std::int64_t dim, std::string_view op) {
  TG_CHECK(index.dtype() == kInt64, "[{}] expected an index of dtype int64, got {}", op, dtype_name(index.dtype()));
  Tensor c = contiguous(index);
  const std::int64_t* p = c.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < c.numel(); ++i)
    TG_CHECK(p[i] >= 0 && p[i] < n, "[{}] index {} is out of bounds for dimension {} with size {}", op, p[i], dim, n);
  return c;
}

// A 0-dim tensor as the 1-D tensor of one element that PyTorch's indexing ops take it for.
Tensor at_least_1d(const Tensor& t) { return t.dim() == 0 ? reshape(t, {1}) : t; }

// gather and scatter_add share their checks (PyTorch's gather_shape_check / scatter_shape_check):
// index has the rank of t (0-dim counting as 1-D), and index.size(d) <= t.size(d) for d != dim
// (and <= src.size(d) for every d when there is a src).
void check_gather_shapes(const Tensor& t, std::int64_t dim, const Tensor& index, const Tensor* src,
                         std::string_view op) {
  std::int64_t rank = std::max<std::int64_t>(t.dim(), 1);
  TG_CHECK(std::max<std::int64_t>(index.dim(), 1) == rank,
           "[{}] expected an index with as many dimensions as the input ({}, shape {}), got shape {}", op, t.dim(),
           t.sizes(), index.sizes());
  if (src)
    TG_CHECK(std::max<std::int64_t>(src->dim(), 1) == rank,
             "[{}] expected src with as many dimensions as the input ({}, shape {}), got shape {}", op, t.dim(),
             t.sizes(), src->sizes());
  Tensor t1 = at_least_1d(t), i1 = at_least_1d(index);
  for (std::int64_t d = 0; d < rank; ++d) {
    bool fits = (d == dim || i1.size(d) <= t1.size(d)) && (!src || i1.size(d) <= at_least_1d(*src).size(d));
    TG_CHECK(fits, "[{}] expected index {} to be no larger than the input {} apart from dimension {}{}{}", op,
             index.sizes(), t.sizes(), dim, src ? " and no larger than src " : "",
             src ? fmt::format("{}", src->sizes()) : "");
  }
}

// Strides of t over index's shape, with 0 along dim: the index value supplies that coordinate.
Shape strides_without(const Tensor& t1, std::int64_t dim) {
  Shape s = t1.strides();
  s[dim] = 0;
  return s;
}

}  // namespace

Tensor cat(const std::vector<Tensor>& tensors, std::int64_t dim) {
  TG_CHECK(!tensors.empty(), "[cat] expected a non-empty list of tensors");
  // PyTorch skips 1-D tensors of shape [0] whatever the others' shapes (its legacy rule).
  auto skipped = [](const Tensor& t) { return t.dim() == 1 && t.size(0) == 0; };
  const Tensor* first = nullptr;
  DType dtype = tensors[0].dtype();
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    TG_CHECK(t.defined(), "[cat] tensor number {} in the list is undefined", i);
    TG_CHECK(t.dim() > 0, "[cat] zero-dimensional tensor (at position {}) cannot be concatenated", i);
    dtype = promote(dtype, t.dtype());
    if (!first && !skipped(t)) first = &t;
  }
  if (!first) return Tensor::empty({0}, dtype);
  std::int64_t d = wrap_dim(dim, first->dim(), "cat");
  Shape sizes = first->sizes();
  sizes[d] = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    if (skipped(t)) continue;
    TG_CHECK(t.dim() == first->dim(), "[cat] tensors must have the same number of dimensions: got {} and {} ({} and {})",
             first->dim(), t.dim(), first->sizes(), t.sizes());
    for (std::int64_t k = 0; k < t.dim(); ++k)
      TG_CHECK(k == d || t.sizes()[k] == first->sizes()[k],
               "[cat] sizes of tensors must match except in dimension {}: expected size {} but got size {} for tensor "
               "number {} in the list ({} and {})",
               d, first->sizes()[k], t.sizes()[k], i, first->sizes(), t.sizes());
    sizes[d] += t.sizes()[d];
  }
  Tensor out = Tensor::empty(sizes, dtype);
  std::int64_t offset = 0;
  for (const Tensor& t : tensors) {
    if (skipped(t)) continue;
    copy_(slice(out, d, offset, offset + t.sizes()[d], 1), t);
    offset += t.sizes()[d];
  }
  return out;
}

// Rows of `inner` contiguous values: out[o, j, :] = t[o, index[j], :].
Tensor index_select(const Tensor& t, std::int64_t dim, const Tensor& index) {
  TG_CHECK(index.dim() <= 1, "[index_select] expected a 0-dim or 1-dim index, got shape {}", index.sizes());
  std::int64_t d = wrap_dim(dim, t.dim(), "index_select");
  DimSplit l = split_at_dim(t.sizes(), d);
  Tensor idx = checked_index(index, l.n, d, "index_select");
  if (t.dim() == 0) return clone(t);
  const std::int64_t m = idx.numel();
  Shape sizes = t.sizes();
  sizes[d] = m;
  Tensor out = Tensor::empty(sizes, t.dtype());
  Tensor src = contiguous(t);
  const std::size_t row_bytes = static_cast<std::size_t>(l.inner) * itemsize(t.dtype());
  const char* in = static_cast<const char*>(src.raw_data());
  char* o = static_cast<char*>(out.raw_data());
  const std::int64_t* ip = idx.data_ptr<std::int64_t>();
  parallel_for(0, l.outer * m, l.outer * m * l.inner, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t r = lo; r < hi; ++r) {
      std::int64_t outer = r / m, j = r % m;
      std::memcpy(o + static_cast<std::size_t>(r) * row_bytes,
                  in + static_cast<std::size_t>(outer * l.n + ip[j]) * row_bytes, row_bytes);
    }
  });
  return out;
}

void index_add_(const Tensor& dst, std::int64_t dim, const Tensor& index, const Tensor& src) {
  TG_CHECK(index.dim() <= 1, "[index_add_] expected a 0-dim or 1-dim index, got shape {}", index.sizes());
  std::int64_t d = wrap_dim(dim, dst.dim(), "index_add_");
  DimSplit l = split_at_dim(dst.sizes(), d);
  Tensor idx = checked_index(index, l.n, d, "index_add_");
  const std::int64_t m = idx.numel();
  Shape want = dst.sizes();
  if (dst.dim() > 0) want[d] = m;
  TG_CHECK(src.sizes() == want || (dst.dim() == 0 && src.numel() == m),
           "[index_add_] expected source of shape {} for destination {} and {} indices, got {}", want, dst.sizes(), m,
           src.sizes());
  Tensor acc = dst.is_contiguous() ? dst : contiguous(dst);
  Tensor s = contiguous(src.dtype() == dst.dtype() ? src : to(src, dst.dtype()));
  const std::int64_t* ip = idx.data_ptr<std::int64_t>();
  dispatch(dst.dtype(), [&]<class T>() {
    T* a = static_cast<T*>(acc.raw_data());
    const T* sp = s.data_ptr<T>();
    // Repeated indices write the same row: split across outer lines only.
    parallel_for(0, l.outer, l.outer * m * l.inner, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t o = lo; o < hi; ++o)
        for (std::int64_t j = 0; j < m; ++j) {
          T* row = a + (o * l.n + ip[j]) * l.inner;
          const T* add = sp + (o * m + j) * l.inner;
          for (std::int64_t i = 0; i < l.inner; ++i) row[i] += add[i];
        }
    });
  });
  if (!acc.is_same(dst)) copy_(dst, acc);
  dst.storage()->bump_version();
}

Tensor gather(const Tensor& t, std::int64_t dim, const Tensor& index) {
  std::int64_t d = wrap_dim(dim, t.dim(), "gather");
  check_gather_shapes(t, d, index, nullptr, "gather");
  Tensor t1 = at_least_1d(t);
  Tensor idx = checked_index(index, t1.size(d), d, "gather");
  Tensor out = Tensor::empty(index.sizes(), t.dtype());
  const std::int64_t dim_stride = t1.strides()[d];
  const std::int64_t* ip = idx.data_ptr<std::int64_t>();
  if (idx.dim() == 0) {  // one element, at offset index · dim_stride
    std::memcpy(out.raw_data(), static_cast<const char*>(t1.raw_data()) + ip[0] * dim_stride * itemsize(t.dtype()),
                itemsize(t.dtype()));
    return out;
  }
  // out and the index copy are both contiguous in index's shape: one offset serves both.
  StridedLoop<2> loop(idx.sizes(), {idx.strides(), strides_without(t1, d)});
  dispatch(t.dtype(), [&]<class T>() {
    T* o = static_cast<T*>(out.raw_data());
    const T* x = static_cast<const T*>(t1.raw_data());
    loop.run_parallel([&](std::int64_t n, const auto& off, const auto& st) {
      for (std::int64_t k = 0; k < n; ++k) {
        const std::int64_t j = off[0] + k * st[0];
        o[j] = x[off[1] + k * st[1] + ip[j] * dim_stride];
      }
    });
  });
  return out;
}

void scatter_add_(const Tensor& dst, std::int64_t dim, const Tensor& index, const Tensor& src) {
  std::int64_t d = wrap_dim(dim, dst.dim(), "scatter_add");
  TG_CHECK(src.dtype() == dst.dtype(), "[scatter_add] expected src of the input's dtype {}, got {}",
           dtype_name(dst.dtype()), dtype_name(src.dtype()));
  check_gather_shapes(dst, d, index, &src, "scatter_add");
  Tensor dst1 = at_least_1d(dst), src1 = at_least_1d(src);
  Tensor idx = checked_index(index, dst1.size(d), d, "scatter_add");
  Tensor i1 = at_least_1d(idx);
  const std::int64_t dim_stride = dst1.strides()[d];
  StridedLoop<3> loop(i1.sizes(), {strides_without(dst1, d), i1.strides(), src1.strides()});
  dispatch(dst.dtype(), [&]<class T>() {
    T* o = static_cast<T*>(dst1.raw_data());
    const std::int64_t* ip = i1.data_ptr<std::int64_t>();
    const T* s = static_cast<const T*>(src1.raw_data());
    loop.run([&](std::int64_t n, const auto& off, const auto& st) {  // serial: indices may collide
      for (std::int64_t k = 0; k < n; ++k)
        o[off[0] + k * st[0] + ip[off[1] + k * st[1]] * dim_stride] += s[off[2] + k * st[2]];
    });
  });
  dst.storage()->bump_version();
}

Tensor one_hot(const Tensor& labels, std::int64_t num_classes) {
  TG_CHECK(labels.dtype() == kInt64, "[one_hot] is only applicable to index tensors (int64), got {}",
           dtype_name(labels.dtype()));
  Tensor c = contiguous(labels);
  const std::int64_t* p = c.data_ptr<std::int64_t>();
  const std::int64_t n = c.numel();
  TG_CHECK(num_classes != -1 || n > 0, "[one_hot] can not infer the number of classes from an empty tensor (shape {})",
           labels.sizes());
  std::int64_t lo = 0, hi = -1;
  for (std::int64_t i = 0; i < n; ++i) {
    lo = std::min(lo, p[i]);
    hi = std::max(hi, p[i]);
  }
  TG_CHECK(lo >= 0, "[one_hot] class values must be non-negative, got {}", lo);
  if (num_classes == -1) num_classes = hi + 1;
  TG_CHECK(hi < num_classes, "[one_hot] class values must be smaller than num_classes ({}), got {}", num_classes, hi);
  Shape sizes = labels.sizes();
  sizes.push_back(num_classes);
  Tensor out = zeros(sizes, kInt64);
  std::int64_t* o = out.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < n; ++i) o[i * num_classes + p[i]] = 1;
  return out;
}

}  // namespace tg::native
