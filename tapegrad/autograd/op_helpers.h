// What the differentiable ops' backwards share: gradients summed back over broadcasting into an
// input's shape and dtype, and reduced dims put back. Internal to autograd/ops*.cpp. Layer: autograd.
#pragma once

#include <vector>

#include "tapegrad/core/native.h"

namespace tg::autograd::detail {

using Grads = std::vector<Tensor>;

// record()'s `saved` for a backward that reads no tensor's values (views, sums, casts): an
// in-place write to the inputs afterwards cannot change what the backward computes.
inline const std::vector<Tensor> kSavesNothing;

// What a backward needs of an input it does not read: its shape and dtype (capturing the
// tensor itself would keep its memory alive until backward).
struct Like {
  explicit Like(const Tensor& t) : sizes(t.sizes()), dtype(t.dtype()) {}
  Shape sizes;
  DType dtype;
};

inline Tensor as_dtype(const Tensor& g, DType d) { return g.dtype() == d ? g : native::to(g, d); }

// A broadcast gradient summed back to an input's shape, in its dtype.
inline Tensor reduce_to(const Tensor& g, const Like& input) { return as_dtype(native::sum_to(g, input.sizes), input.dtype); }
inline Tensor reduce_to(const Tensor& g, const Tensor& input) { return reduce_to(g, Like(input)); }

// Shape of `g` with the dims a keepdim=false reduction removed put back as size 1.
inline Tensor unsqueeze_reduced(const Tensor& g, const Shape& input_sizes, const Shape& dims, bool keepdim) {
  if (keepdim) return g;
  Shape rd = native::reduction_dims(dims, static_cast<std::int64_t>(input_sizes.size()), "backward");
  Shape kept_shape = input_sizes;
  for (std::int64_t d : rd) kept_shape[d] = 1;
  return native::reshape(g, kept_shape);
}

}  // namespace tg::autograd::detail
