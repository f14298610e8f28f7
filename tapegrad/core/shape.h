// Shape and stride arithmetic as free functions: contiguous strides, element counts, dimension
// wrapping, broadcasting. All sizes and strides are in elements. Layer: core.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string_view>
#include <vector>

namespace tg {

using Shape = std::vector<std::int64_t>;

// Row-major strides of a contiguous tensor of this shape.
Shape contiguous_strides(const Shape& sizes);
std::int64_t numel_of(const Shape& sizes);
bool is_contiguous_layout(const Shape& sizes, const Shape& strides);

// Maps a possibly negative dim into [0, rank); throws naming `op` when out of range.
// `rank` may be 0, where PyTorch accepts dims -1 and 0 (the scalar's implicit dim).
std::int64_t wrap_dim(std::int64_t dim, std::int64_t rank, std::string_view op);

// NumPy's rule: align on the right; sizes agree, or one of them is 1. Throws naming `op` and
// both shapes when they do not broadcast.
Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op);
bool broadcastable(const Shape& a, const Shape& b);

// Strides that read a tensor of (sizes, strides) as if it had shape `target` (which it
// broadcasts to): 0 along every dimension that is added or of size 1.
Shape broadcast_strides(const Shape& sizes, const Shape& strides, const Shape& target);

// Strides for viewing (sizes, strides) as `target` without copying, or an empty optional-like
// result (returns false) when the memory layout does not allow it.
bool view_strides(const Shape& sizes, const Shape& strides, const Shape& target, Shape& out);

// A tensor of `sizes` seen as [outer, n, inner] around `dim` (n = sizes[dim], which must be in
// range; a 0-dim tensor is [1, 1, 1]): the layout of every kernel that works along one dim.
struct DimSplit {
  std::int64_t outer = 1, n = 1, inner = 1;
};
DimSplit split_at_dim(const Shape& sizes, std::int64_t dim);

// Resolves a single -1 in a requested shape against the input's shape (its element count); throws
// naming `op` and both shapes.
Shape infer_shape(const Shape& requested, const Shape& input, std::string_view op);

}  // namespace tg

// Prints a shape as the error messages do: [3, 2]. Declared in the global namespace because Shape
// is a std::vector, whose operators argument-dependent lookup seeks in std only, never in tg.
std::ostream& operator<<(std::ostream& os, const tg::Shape& shape);
