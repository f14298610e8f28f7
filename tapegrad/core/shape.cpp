// Shape and stride arithmetic. Layer: core.
#include "tapegrad/core/shape.h"

#include <algorithm>
#include <limits>
#include <ostream>

#include "tapegrad/core/error.h"

namespace tg {

Shape contiguous_strides(const Shape& sizes) {
  Shape strides(sizes.size());
  std::int64_t s = 1;
  for (std::size_t i = sizes.size(); i-- > 0;) {
    strides[i] = s;
    TG_CHECK(i == 0 || !__builtin_mul_overflow(s, sizes[i] > 0 ? sizes[i] : 1, &s),
             "[strides] shape {} has strides larger than an int64 holds", sizes);
  }
  return strides;
}

std::int64_t numel_of(const Shape& sizes) {
  for (std::int64_t s : sizes) TG_CHECK(s >= 0, "[numel] expected non-negative sizes, got shape {}", sizes);
  if (std::find(sizes.begin(), sizes.end(), 0) != sizes.end()) return 0;
  std::int64_t n = 1;
  for (std::int64_t s : sizes)
    TG_CHECK(!__builtin_mul_overflow(n, s, &n), "[numel] shape {} has more elements than an int64 counts", sizes);
  return n;
}

bool is_contiguous_layout(const Shape& sizes, const Shape& strides) {
  std::int64_t expected = 1;
  for (std::size_t i = sizes.size(); i-- > 0;) {
    if (sizes[i] == 0) return true;
    if (sizes[i] != 1 && strides[i] != expected) return false;
    expected *= sizes[i];
  }
  return true;
}

std::int64_t wrap_dim(std::int64_t dim, std::int64_t rank, std::string_view op) {
  std::int64_t r = rank > 0 ? rank : 1;
  TG_CHECK(dim >= -r && dim < r, "[{}] dimension out of range (expected to be in range of [{}, {}], but got {})",
           op, -r, r - 1, dim);
  return dim < 0 ? dim + r : dim;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op) {
  std::size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::int64_t sa = i < n - a.size() ? 1 : a[i - (n - a.size())];
    std::int64_t sb = i < n - b.size() ? 1 : b[i - (n - b.size())];
    TG_CHECK(sa == sb || sa == 1 || sb == 1,
             "[{}] shapes {} and {} do not broadcast: size {} against {} at dimension {}", op, a, b, sa, sb, i);
    out[i] = sa == 1 ? sb : sa;
  }
  return out;
}

bool broadcastable(const Shape& a, const Shape& b) {
  for (std::size_t i = 1; i <= std::min(a.size(), b.size()); ++i) {
    const std::int64_t sa = a[a.size() - i], sb = b[b.size() - i];
    if (sa != sb && sa != 1 && sb != 1) return false;
  }
  return true;
}

Shape broadcast_strides(const Shape& sizes, const Shape& strides, const Shape& target) {
  Shape out(target.size(), 0);
  std::size_t lead = target.size() - sizes.size();
  for (std::size_t i = 0; i < sizes.size(); ++i)
    out[lead + i] = sizes[i] == 1 && target[lead + i] != 1 ? 0 : strides[i];
  return out;
}

// Walks the old and new shapes in chunks of equal element count; each old chunk must be one
// contiguous run in memory (strides chain), and then any new chunk of it can be strided within.
bool view_strides(const Shape& sizes, const Shape& strides, const Shape& target, Shape& out) {
  out.assign(target.size(), 0);
  std::int64_t numel = numel_of(sizes);
  if (numel == 0) {
    out = contiguous_strides(target);
    return true;
  }
  std::int64_t view_d = static_cast<std::int64_t>(target.size()) - 1;
  std::int64_t chunk_base_stride = strides.empty() ? 1 : strides.back();
  std::int64_t tensor_numel = 1, view_numel = 1;
  for (std::int64_t d = static_cast<std::int64_t>(sizes.size()) - 1; d >= 0; --d) {
    tensor_numel *= sizes[d];
    if (d == 0 || (sizes[d - 1] != 1 && strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || target[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= target[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return false;
      if (d > 0) {
        chunk_base_stride = strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}

DimSplit split_at_dim(const Shape& sizes, std::int64_t dim) {
  DimSplit s;
  for (std::int64_t d = 0; d < static_cast<std::int64_t>(sizes.size()); ++d)
    (d < dim ? s.outer : d == dim ? s.n : s.inner) *= sizes[d];
  return s;
}

Shape infer_shape(const Shape& requested, const Shape& input, std::string_view op) {
  const std::int64_t numel = numel_of(input);
  Shape out = requested;
  std::int64_t known = 1, infer_at = -1;
  bool overflow = false;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      TG_CHECK(infer_at < 0, "[{}] only one dimension can be inferred, got shape {} for input of shape {}", op,
               requested, input);
      infer_at = static_cast<std::int64_t>(i);
    } else {
      TG_CHECK(out[i] >= 0, "[{}] invalid shape dimension {} in {} for input of shape {}", op, out[i], requested,
               input);
      overflow = overflow || __builtin_mul_overflow(known, out[i], &known);
    }
  }
  if (infer_at >= 0) {
    TG_CHECK(!overflow && known != 0 && numel % known == 0,
             "[{}] shape {} is invalid for input of shape {} ({} elements)", op, requested, input, numel);
    out[infer_at] = numel / known;
  } else {
    TG_CHECK(!overflow && known == numel, "[{}] shape {} is invalid for input of shape {} ({} elements)", op, requested,
             input, numel);
  }
  return out;
}

std::ostream& operator<<(std::ostream& os, const Shape& shape) { return os << fmt::format("{}", shape); }

}  // namespace tg
