// The differentiable indexing ops: cat, stack, where, masked_fill, index_select, gather,
// scatter_add, topk and sort (one_hot too, which has no gradient). Each runs core's kernel
// (core/indexing.cpp, core/sort.cpp) and records one entry whose backward routes the gradient
// back through the same indices: gather's and the selections' through scatter_add_,
// index_select's through index_add_, cat's and stack's as slices. Layer: autograd.
#include "tapegrad/autograd/functions.h"
#include "tapegrad/autograd/op_helpers.h"
#include "tapegrad/autograd/tape.h"
#include "tapegrad/core/native.h"

namespace tg {

using autograd::record;
using autograd::detail::as_dtype;
using autograd::detail::Grads;
using autograd::detail::kSavesNothing;
using autograd::detail::Like;
using autograd::detail::reduce_to;

namespace {

// The gradient of an op that picked values out of x along dim at `indices` (topk, sort): g sent
// back to those positions, zeros elsewhere.
Tensor selected_values(const char* name, const Tensor& x, std::int64_t dim, const ValuesIndices& r) {
  return record(name, r.values, {x}, [like = Like(x), dim, indices = r.indices](const Tensor& g) {
    Tensor gx = zeros(like.sizes, like.dtype);
    native::scatter_add_(gx, dim, indices, as_dtype(g, like.dtype));
    return Grads{gx};
  }, {r.indices});
}

// A gather of g shaped as src, whose leading part index covers: zeros beyond index's extent.
Tensor pad_to(const Tensor& part, const Like& src) {
  if (part.sizes() == src.sizes) return part;
  if (part.numel() == numel_of(src.sizes)) return native::reshape(part, src.sizes);  // 0-dim against [1]
  Tensor full = zeros(src.sizes, src.dtype);
  Tensor p = part.dim() == 0 ? native::reshape(part, {1}) : part, region = full;
  for (std::int64_t d = 0; d < p.dim(); ++d) region = native::slice(region, d, 0, p.sizes()[d], 1);
  native::copy_(region, p);
  return full;
}

}  // namespace

// --- joining ------------------------------------------------------------------------------------

// y = [x_0, x_1, ...] along dim: each input's gradient is its slice of g.
Tensor cat(const std::vector<Tensor>& tensors, std::int64_t dim) {
  Tensor out = native::cat(tensors, dim);
  std::vector<Like> likes;
  for (const Tensor& t : tensors) likes.emplace_back(t);
  const std::int64_t d = wrap_dim(dim, out.dim(), "cat");
  return record("CatBackward0", out, tensors, [likes, d](const Tensor& g) {
    Grads grads;
    std::int64_t offset = 0;
    for (const Like& l : likes) {
      if (l.sizes == Shape{0} && g.dim() != 1) {  // a skipped [0]: an empty gradient
        grads.push_back(zeros(l.sizes, l.dtype));
        continue;
      }
      const std::int64_t n = l.sizes[d];
      grads.push_back(as_dtype(native::slice(g, d, offset, offset + n, 1), l.dtype));
      offset += n;
    }
    return grads;
  }, kSavesNothing);
}

// y = the inputs stacked along a new dim: each input's gradient is g.select(dim, i).
Tensor stack(const std::vector<Tensor>& tensors, std::int64_t dim) {
  TG_CHECK(!tensors.empty(), "[stack] expected a non-empty list of tensors");
  for (std::size_t i = 0; i < tensors.size(); ++i)
    TG_CHECK(tensors[i].sizes() == tensors[0].sizes(),
             "[stack] expects each tensor to be equal size, but got {} at entry 0 and {} at entry {}",
             tensors[0].sizes(), tensors[i].sizes(), i);
  const std::int64_t d = wrap_dim(dim, tensors[0].dim() + 1, "stack");
  std::vector<Tensor> parts;
  std::vector<DType> dtypes;
  for (const Tensor& t : tensors) {
    parts.push_back(native::unsqueeze(t, d));
    dtypes.push_back(t.dtype());
  }
  return record("StackBackward0", native::cat(parts, d), tensors, [dtypes, d](const Tensor& g) {
    Grads grads;
    for (std::size_t i = 0; i < dtypes.size(); ++i)
      grads.push_back(as_dtype(native::select(g, d, static_cast<std::int64_t>(i)), dtypes[i]));
    return grads;
  }, kSavesNothing);
}

// --- selecting ----------------------------------------------------------------------------------

// y = c ? a : b:  da = g·[c], db = g·[!c], each summed back over broadcasting.
Tensor where(const Tensor& condition, const Tensor& input, const Tensor& other) {
  Tensor out = native::where(condition, input, other);
  bool ga = input.requires_grad(), gb = other.requires_grad();
  return record("WhereBackward0", out, {input, other},
                [c = condition, la = Like(input), lb = Like(other), ga, gb](const Tensor& g) {
                  Tensor zero = zeros({}, g.dtype());
                  return Grads{ga ? reduce_to(native::where(c, g, zero), la) : Tensor(),
                               gb ? reduce_to(native::where(c, zero, g), lb) : Tensor()};
                }, {condition});
}

Tensor where(const Tensor& condition, const Tensor& input, Scalar other) {
  return record("WhereBackward0", native::where(condition, input, other), {input},
                [c = condition, la = Like(input)](const Tensor& g) {
                  return Grads{reduce_to(native::where(c, g, zeros({}, g.dtype())), la)};
                }, {condition});
}

Tensor where(const Tensor& condition, Scalar input, const Tensor& other) {
  return record("WhereBackward0", native::where(condition, input, other), {other},
                [c = condition, lb = Like(other)](const Tensor& g) {
                  return Grads{reduce_to(native::where(c, zeros({}, g.dtype()), g), lb)};
                }, {condition});
}

Tensor Tensor::where(const Tensor& condition, const Tensor& other) const { return tg::where(condition, *this, other); }
Tensor Tensor::where(const Tensor& condition, Scalar other) const { return tg::where(condition, *this, other); }

namespace {

void check_mask(const Tensor& x, const Tensor& mask) {
  TG_CHECK(mask.dtype() == kInt64, "[masked_fill] expected a mask of dtype int64 (a 0/1 mask, as comparisons give), got {}",
           dtype_name(mask.dtype()));
  broadcast_shapes(x.sizes(), mask.sizes(), "masked_fill");
}

}  // namespace

// y = mask ? value : x, value cast to x's dtype:  dx = g·[!mask] summed back to x's shape,
// dvalue = Σ g·[mask] (a 0-dim tensor value).
Tensor Tensor::masked_fill(const Tensor& mask, Scalar value) const {
  Tensor x = *this;
  check_mask(x, mask);
  dispatch(x.dtype(), [&]<class T>() { (void)value.to<T>("masked_fill"); });  // 300 into uint8 throws, naming us
  Tensor out = native::where(mask, scalar_tensor(value, x.dtype()), x);
  return record("MaskedFillBackward0", out, {x}, [mask, lx = Like(x)](const Tensor& g) {
    return Grads{reduce_to(native::where(mask, zeros({}, g.dtype()), g), lx)};
  }, {mask});
}

Tensor Tensor::masked_fill(const Tensor& mask, const Tensor& value) const {
  Tensor x = *this;
  check_mask(x, mask);
  TG_CHECK(value.dim() == 0, "[masked_fill] only supports a 0-dimensional value tensor, got shape {}", value.sizes());
  Tensor out = native::where(mask, as_dtype(value, x.dtype()), x);
  return record("MaskedFillBackward1", out, {x, value}, [mask, lx = Like(x), lv = Like(value)](const Tensor& g) {
    Tensor zero = zeros({}, g.dtype());
    return Grads{reduce_to(native::where(mask, zero, g), lx), reduce_to(native::where(mask, g, zero), lv)};
  }, {mask});
}

Tensor masked_fill(const Tensor& input, const Tensor& mask, Scalar value) { return input.masked_fill(mask, value); }

// y = x.index_select(dim, index):  dx.select(dim, index[j]) += g.select(dim, j).
Tensor Tensor::index_select(std::int64_t dim, const Tensor& index) const {
  Tensor x = *this;
  Tensor out = native::index_select(x, dim, index);
  return record("IndexSelectBackward0", out, {x}, [lx = Like(x), dim, index](const Tensor& g) {
    if (lx.sizes.empty()) return Grads{native::reshape(g, {})};  // a 0-dim x: y is x itself
    Tensor gx = zeros(lx.sizes, lx.dtype);
    native::index_add_(gx, dim, index, g);
    return Grads{gx};
  }, {index});  // the backward reads the index: modifying it in place must be caught
}

Tensor index_select(const Tensor& input, std::int64_t dim, const Tensor& index) {
  return input.index_select(dim, index);
}

// y[p] = x[p with p[dim] = index[p]]:  dx = scatter_add of g at the same positions.
Tensor Tensor::gather(std::int64_t dim, const Tensor& index) const {
  Tensor x = *this;
  Tensor out = native::gather(x, dim, index);
  return record("GatherBackward0", out, {x}, [lx = Like(x), dim, index](const Tensor& g) {
    Tensor gx = zeros(lx.sizes, lx.dtype);
    native::scatter_add_(gx, dim, index, g);
    return Grads{gx};
  }, {index});
}

Tensor gather(const Tensor& input, std::int64_t dim, const Tensor& index) { return input.gather(dim, index); }

// y = x with src[p] added at p[dim] = index[p]:  dx = g,  dsrc = g gathered at those positions (0
// where index does not reach: PyTorch 1.13's backward fails on a src larger than index).
Tensor Tensor::scatter_add(std::int64_t dim, const Tensor& index, const Tensor& src) const {
  Tensor x = *this;
  Tensor out = native::clone(x);
  native::scatter_add_(out, dim, index, src);
  bool gsrc = src.requires_grad();
  return record("ScatterAddBackward0", out, {x, src}, [dim, index, ls = Like(src), gsrc](const Tensor& g) {
    return Grads{g, gsrc ? pad_to(native::gather(g, dim, index), ls) : Tensor()};
  }, {index});
}

Tensor scatter_add(const Tensor& input, std::int64_t dim, const Tensor& index, const Tensor& src) {
  return input.scatter_add(dim, index, src);
}

Tensor one_hot(const Tensor& labels, std::int64_t num_classes) { return native::one_hot(labels, num_classes); }

// sorted = false lets PyTorch return the k values in any order; they come sorted here either way.
ValuesIndices Tensor::topk(std::int64_t k, std::int64_t dim, bool largest, bool /*sorted*/) const {
  ValuesIndices r = native::topk(*this, k, dim, largest);
  r.values = selected_values("TopkBackward0", *this, dim, r);
  return r;
}

ValuesIndices Tensor::sort(std::int64_t dim, bool descending) const {
  ValuesIndices r = native::sort(*this, dim, descending);
  r.values = selected_values("SortBackward0", *this, dim, r);
  return r;
}

ValuesIndices topk(const Tensor& input, std::int64_t k, std::int64_t dim, bool largest, bool sorted) {
  return input.topk(k, dim, largest, sorted);
}

ValuesIndices sort(const Tensor& input, std::int64_t dim, bool descending) { return input.sort(dim, descending); }

}  // namespace tg
