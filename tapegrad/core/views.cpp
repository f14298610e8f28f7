// The raw view ops: each returns a tensor on the same storage with new sizes, strides and offset;
// none copies (reshape copies only when no view exists). Layer: core.
#include <algorithm>

#include "tapegrad/core/native.h"

namespace tg::native {

Tensor as_strided(const Tensor& t, Shape sizes, Shape strides, std::int64_t offset) {
  return Tensor::make_view(t.storage(), std::move(sizes), std::move(strides), offset, t.dtype());
}

Tensor alias(const Tensor& t) { return as_strided(t, t.sizes(), t.strides(), t.storage_offset()); }

Tensor view(const Tensor& t, const Shape& sizes) {
  Shape target = infer_shape(sizes, t.sizes(), "view");
  Shape strides;
  TG_CHECK(view_strides(t.sizes(), t.strides(), target, strides),
           "[view] size {} is not compatible with input of size {} and strides {} (at least one dimension spans "
           "across two contiguous subspaces); use reshape instead",
           sizes, t.sizes(), t.strides());
  return as_strided(t, std::move(target), std::move(strides), t.storage_offset());
}

Tensor reshape(const Tensor& t, const Shape& sizes) {
  Shape target = infer_shape(sizes, t.sizes(), "reshape");
  Shape strides;
  if (view_strides(t.sizes(), t.strides(), target, strides))
    return as_strided(t, std::move(target), std::move(strides), t.storage_offset());
  Tensor c = contiguous(t);
  return as_strided(c, target, contiguous_strides(target), c.storage_offset());
}

Tensor transpose(const Tensor& t, std::int64_t dim0, std::int64_t dim1) {
  std::int64_t d0 = wrap_dim(dim0, t.dim(), "transpose"), d1 = wrap_dim(dim1, t.dim(), "transpose");
  if (t.dim() == 0) return alias(t);
  Shape sizes = t.sizes(), strides = t.strides();
  std::swap(sizes[d0], sizes[d1]);
  std::swap(strides[d0], strides[d1]);
  return as_strided(t, std::move(sizes), std::move(strides), t.storage_offset());
}

Tensor permute(const Tensor& t, const Shape& dims) {
  TG_CHECK(static_cast<std::int64_t>(dims.size()) == t.dim(),
           "[permute] number of dims don't match: input of shape {} has {} dims, got permutation {}", t.sizes(),
           t.dim(), dims);
  Shape sizes(dims.size()), strides(dims.size());
  std::vector<bool> seen(dims.size(), false);
  for (std::size_t i = 0; i < dims.size(); ++i) {
    std::int64_t d = wrap_dim(dims[i], t.dim(), "permute");
    TG_CHECK(!seen[d], "[permute] repeated dim {} in permutation {}", d, dims);
    seen[d] = true;
    sizes[i] = t.sizes()[d];
    strides[i] = t.strides()[d];
  }
  return as_strided(t, std::move(sizes), std::move(strides), t.storage_offset());
}

Tensor slice(const Tensor& t, std::int64_t dim, std::int64_t start, std::int64_t end, std::int64_t step) {
  TG_CHECK(t.dim() > 0, "[slice] cannot slice a 0-dim tensor");
  std::int64_t d = wrap_dim(dim, t.dim(), "slice");
  TG_CHECK(step > 0, "[slice] step must be positive, got {}", step);
  std::int64_t n = t.sizes()[d];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<std::int64_t>(start, 0, n);
  end = std::clamp<std::int64_t>(end, start, n);
  Shape sizes = t.sizes(), strides = t.strides();
  sizes[d] = (end - start + step - 1) / step;
  strides[d] *= step;
  return as_strided(t, std::move(sizes), std::move(strides), t.storage_offset() + start * t.strides()[d]);
}

Tensor select(const Tensor& t, std::int64_t dim, std::int64_t index) {
  TG_CHECK(t.dim() > 0, "[select] cannot select on a 0-dim tensor");
  std::int64_t d = wrap_dim(dim, t.dim(), "select");
  std::int64_t n = t.sizes()[d];
  TG_CHECK(index >= -n && index < n, "[select] index {} is out of range for dimension {} of size {} (shape {})",
           index, d, n, t.sizes());
  if (index < 0) index += n;
  Shape sizes = t.sizes(), strides = t.strides();
  sizes.erase(sizes.begin() + d);
  strides.erase(strides.begin() + d);
  return as_strided(t, std::move(sizes), std::move(strides), t.storage_offset() + index * t.strides()[d]);
}

Tensor unsqueeze(const Tensor& t, std::int64_t dim) {
  std::int64_t d = wrap_dim(dim, t.dim() + 1, "unsqueeze");
  Shape sizes = t.sizes(), strides = t.strides();
  std::int64_t stride = d < t.dim() ? sizes[d] * strides[d] : 1;
  sizes.insert(sizes.begin() + d, 1);
  strides.insert(strides.begin() + d, stride);
  return as_strided(t, std::move(sizes), std::move(strides), t.storage_offset());
}

Tensor squeeze(const Tensor& t) {
  Shape sizes, strides;
  for (std::int64_t i = 0; i < t.dim(); ++i)
    if (t.sizes()[i] != 1) {
      sizes.push_back(t.sizes()[i]);
      strides.push_back(t.strides()[i]);
    }
  return as_strided(t, std::move(sizes), std::move(strides), t.storage_offset());
}

Tensor squeeze(const Tensor& t, std::int64_t dim) {
  std::int64_t d = wrap_dim(dim, t.dim(), "squeeze");
  if (t.dim() == 0 || t.sizes()[d] != 1) return alias(t);
  Shape sizes = t.sizes(), strides = t.strides();
  sizes.erase(sizes.begin() + d);
  strides.erase(strides.begin() + d);
  return as_strided(t, std::move(sizes), std::move(strides), t.storage_offset());
}

Tensor expand(const Tensor& t, const Shape& sizes) {
  TG_CHECK(sizes.size() >= t.sizes().size(),
           "[expand] the number of sizes provided ({}) must be greater or equal to the number of dimensions in the "
           "tensor ({}): shape {} to {}",
           sizes.size(), t.dim(), t.sizes(), sizes);
  std::size_t lead = sizes.size() - t.sizes().size();
  Shape out(sizes.size()), strides(sizes.size());
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    if (i < lead) {
      TG_CHECK(sizes[i] >= 0, "[expand] the expanded size {} is not allowed in a leading dimension ({} to {})",
               sizes[i], t.sizes(), sizes);
      out[i] = sizes[i];
      strides[i] = 0;
      continue;
    }
    std::int64_t have = t.sizes()[i - lead], want = sizes[i] == -1 ? have : sizes[i];
    TG_CHECK(have == want || have == 1,
             "[expand] the expanded size of the tensor ({}) must match the existing size ({}) at non-singleton "
             "dimension {}: shape {} to {}",
             want, have, i, t.sizes(), sizes);
    out[i] = want;
    strides[i] = have == want ? t.strides()[i - lead] : 0;
  }
  return as_strided(t, std::move(out), std::move(strides), t.storage_offset());
}

}  // namespace tg::native
