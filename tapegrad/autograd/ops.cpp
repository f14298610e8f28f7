// The differentiable tensor ops: every Tensor method computes its result with core's raw kernel,
// then records one tape entry whose backward returns one gradient per input. Backwards run with
// grad mode off, so they may use the Tensor methods freely. Entry names are PyTorch's, so a
// printed tensor shows the grad_fn PyTorch shows. Layer: autograd.
#include <cmath>

#include "tapegrad/autograd/functions.h"
#include "tapegrad/autograd/op_helpers.h"
#include "tapegrad/autograd/tape.h"
#include "tapegrad/core/native.h"

namespace tg {

using autograd::needs_grad;
using autograd::record;
using native::BinaryOp;
using native::UnaryOp;
using autograd::detail::as_dtype;
using autograd::detail::Grads;
using autograd::detail::kSavesNothing;
using autograd::detail::Like;
using autograd::detail::reduce_to;
using autograd::detail::unsqueeze_reduced;

namespace {

// In-place writes must not rewrite history the tape relies on.
void check_inplace(const Tensor& t, const char* op, const Tensor* src = nullptr) {
  if (!is_grad_enabled()) return;
  TG_CHECK(!t.requires_grad(),
           "[{}] a tensor that requires grad ({}) is being used in an in-place operation; use the out-of-place op, "
           "or run it under NoGradGuard",
           op, t.is_leaf() ? "a leaf" : t.grad_fn_name());
  TG_CHECK(src == nullptr || !src->requires_grad(),
           "[{}] in-place ops are not differentiable: the source requires grad; use the out-of-place op", op);
}

Tensor unary_op(const Tensor& x, UnaryOp op) { return native::unary(op, x); }

// An activation whose backward reads only its output y (sigmoid: y·(1 − y), tanh: 1 − y²,
// relu: [y > 0]), in one fused pass; the output is saved for in-place detection.
Tensor activation_op(const Tensor& x, UnaryOp op, native::ActivationGrad grad_kind, const char* name) {
  Tensor out = unary_op(x, op);
  if (!needs_grad(x)) return out;
  return record(name, out, {x},
                [y = native::alias(out), grad_kind](const Tensor& g) {
                  return Grads{native::activation_backward(grad_kind, g, y)};
                }, {out});
}

}  // namespace

// --- views ------------------------------------------------------------------------------------

Tensor Tensor::view(const Shape& sizes) const {
  Tensor x = *this;
  Tensor out = native::view(x, sizes);
  return record("ViewBackward0", out, {x}, [shape = x.sizes()](const Tensor& g) { return Grads{g.reshape(shape)}; },
                kSavesNothing);
}

Tensor Tensor::reshape(const Shape& sizes) const {
  Tensor x = *this;
  Tensor out = native::reshape(x, sizes);
  return record(out.shares_storage(x) ? "ReshapeAliasBackward0" : "UnsafeViewBackward0", out, {x},
                [shape = x.sizes()](const Tensor& g) { return Grads{g.reshape(shape)}; }, kSavesNothing);
}

Tensor Tensor::flatten(std::int64_t start_dim, std::int64_t end_dim) const {
  if (dim() == 0) return reshape({1});
  std::int64_t s = wrap_dim(start_dim, dim(), "flatten"), e = wrap_dim(end_dim, dim(), "flatten");
  TG_CHECK(s <= e, "[flatten] start_dim ({}) cannot come after end_dim ({})", start_dim, end_dim);
  if (s == e) return *this;  // as PyTorch: nothing to merge, the tensor itself
  Shape sizes(this->sizes().begin(), this->sizes().begin() + s);
  sizes.push_back(-1);
  sizes.insert(sizes.end(), this->sizes().begin() + e + 1, this->sizes().end());
  return reshape(sizes);
}

Tensor Tensor::transpose(std::int64_t dim0, std::int64_t dim1) const {
  Tensor x = *this;
  Tensor out = native::transpose(x, dim0, dim1);
  return record("TransposeBackward0", out, {x},
                [dim0, dim1](const Tensor& g) { return Grads{g.transpose(dim0, dim1)}; }, kSavesNothing);
}

Tensor Tensor::t() const {
  TG_CHECK(dim() <= 2, "[t] expects a tensor with <= 2 dimensions, got shape {}", sizes());
  Tensor x = *this;
  Tensor out = dim() < 2 ? native::alias(x) : native::transpose(x, 0, 1);
  return record("TBackward0", out, {x}, [](const Tensor& g) { return Grads{g.t()}; }, kSavesNothing);
}

Tensor Tensor::permute(const Shape& dims) const {
  Tensor x = *this;
  Tensor out = native::permute(x, dims);
  Shape inverse(dims.size());
  for (std::size_t i = 0; i < dims.size(); ++i)
    inverse[static_cast<std::size_t>(wrap_dim(dims[i], x.dim(), "permute"))] = static_cast<std::int64_t>(i);
  return record(
      "PermuteBackward0", out, {x}, [inverse](const Tensor& g) { return Grads{g.permute(inverse)}; }, kSavesNothing);
}

Tensor Tensor::slice(std::int64_t dim, std::int64_t start, std::int64_t end, std::int64_t step) const {
  Tensor x = *this;
  Tensor out = native::slice(x, dim, start, end, step);
  return record("SliceBackward0", out, {x},
                [shape = x.sizes(), dtype = x.dtype(), dim, start, end, step](const Tensor& g) {
                  Tensor gx = zeros(shape, dtype);
                  native::copy_(native::slice(gx, dim, start, end, step), g);
                  return Grads{gx};
                },
                kSavesNothing);
}

Tensor Tensor::select(std::int64_t dim, std::int64_t index) const {
  Tensor x = *this;
  Tensor out = native::select(x, dim, index);
  return record("SelectBackward0", out, {x}, [shape = x.sizes(), dtype = x.dtype(), dim, index](const Tensor& g) {
    Tensor gx = zeros(shape, dtype);
    native::copy_(native::select(gx, dim, index), g);
    return Grads{gx};
  }, kSavesNothing);
}

Tensor Tensor::unsqueeze(std::int64_t dim) const {
  Tensor x = *this;
  Tensor out = native::unsqueeze(x, dim);
  return record("UnsqueezeBackward0", out, {x},
                [shape = x.sizes()](const Tensor& g) { return Grads{g.reshape(shape)}; }, kSavesNothing);
}

Tensor Tensor::squeeze() const {
  Tensor x = *this;
  Tensor out = native::squeeze(x);
  return record("SqueezeBackward0", out, {x}, [shape = x.sizes()](const Tensor& g) { return Grads{g.reshape(shape)}; },
                kSavesNothing);
}

Tensor Tensor::squeeze(std::int64_t dim) const {
  Tensor x = *this;
  Tensor out = native::squeeze(x, dim);
  return record("SqueezeBackward1", out, {x}, [shape = x.sizes()](const Tensor& g) { return Grads{g.reshape(shape)}; },
                kSavesNothing);
}

Tensor Tensor::expand(const Shape& sizes) const {
  Tensor x = *this;
  Tensor out = native::expand(x, sizes);
  return record("ExpandBackward0", out, {x},
                [shape = x.sizes()](const Tensor& g) { return Grads{native::sum_to(g, shape)}; }, kSavesNothing);
}

// --- copies -----------------------------------------------------------------------------------

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  Tensor x = *this;
  return record("CloneBackward0", native::contiguous(x), {x}, [](const Tensor& g) { return Grads{g}; }, kSavesNothing);
}

Tensor Tensor::clone() const {
  Tensor x = *this;
  return record("CloneBackward0", native::clone(x), {x}, [](const Tensor& g) { return Grads{g}; }, kSavesNothing);
}

Tensor Tensor::to(DType dtype) const {
  if (this->dtype() == dtype) return *this;
  Tensor x = *this;
  Tensor out = native::to(x, dtype);
  if (!is_floating(dtype)) return out;
  return record(
      "ToCopyBackward0", out, {x}, [d = x.dtype()](const Tensor& g) { return Grads{as_dtype(g, d)}; }, kSavesNothing);
}

// --- elementwise ------------------------------------------------------------------------------

Tensor Tensor::add(const Tensor& other) const {
  Tensor a = *this, b = other;
  return record("AddBackward0", native::binary(BinaryOp::Add, a, b), {a, b},
                [la = Like(a), lb = Like(b)](const Tensor& g) { return Grads{reduce_to(g, la), reduce_to(g, lb)}; },
                kSavesNothing);
}

Tensor Tensor::sub(const Tensor& other) const {
  Tensor a = *this, b = other;
  return record("SubBackward0", native::binary(BinaryOp::Sub, a, b), {a, b},
                [la = Like(a), lb = Like(b)](const Tensor& g) { return Grads{reduce_to(g, la), reduce_to(-g, lb)}; },
                kSavesNothing);
}

Tensor Tensor::mul(const Tensor& other) const {
  Tensor a = *this, b = other;
  bool ga = a.requires_grad(), gb = b.requires_grad();
  return record("MulBackward0", native::binary(BinaryOp::Mul, a, b), {a, b}, [a, b, ga, gb](const Tensor& g) {
    return Grads{ga ? reduce_to(g * b, a) : Tensor(), gb ? reduce_to(g * a, b) : Tensor()};
  });
}

Tensor Tensor::div(const Tensor& other) const {
  Tensor a = *this, b = other;
  bool gb = b.requires_grad();
  return record("DivBackward0", native::binary(BinaryOp::Div, a, b), {a, b}, [a, b, gb](const Tensor& g) {
    Tensor ga = g / b;
    return Grads{reduce_to(ga, a), gb ? reduce_to(-ga * a / b, b) : Tensor()};
  });
}

Tensor Tensor::add(Scalar other) const {
  Tensor a = *this;
  return record("AddBackward0", native::binary(BinaryOp::Add, a, other), {a},
                [d = a.dtype()](const Tensor& g) { return Grads{as_dtype(g, d)}; }, kSavesNothing);
}

Tensor Tensor::sub(Scalar other) const {
  Tensor a = *this;
  return record("SubBackward0", native::binary(BinaryOp::Sub, a, other), {a},
                [d = a.dtype()](const Tensor& g) { return Grads{as_dtype(g, d)}; }, kSavesNothing);
}

Tensor Tensor::rsub(Scalar other) const {
  Tensor a = *this;
  return record("RsubBackward1", native::binary(BinaryOp::Sub, other, a), {a},
                [d = a.dtype()](const Tensor& g) { return Grads{as_dtype(-g, d)}; }, kSavesNothing);
}

Tensor Tensor::mul(Scalar other) const {
  Tensor a = *this;
  return record("MulBackward0", native::binary(BinaryOp::Mul, a, other), {a},
                [d = a.dtype(), other](const Tensor& g) { return Grads{as_dtype(g * other, d)}; }, kSavesNothing);
}

Tensor Tensor::div(Scalar other) const {
  Tensor a = *this;
  return record("DivBackward0", native::binary(BinaryOp::Div, a, other), {a},
                [d = a.dtype(), other](const Tensor& g) { return Grads{as_dtype(g / other, d)}; }, kSavesNothing);
}

Tensor Tensor::rdiv(Scalar other) const {
  Tensor a = *this;
  Tensor out = native::binary(BinaryOp::Div, other, a);
  return record("MulBackward0", out, {a}, [a, y = native::alias(out)](const Tensor& g) {
    return Grads{as_dtype(-g * y / a, a.dtype())};  // d(c/a)/da = -c/a² = -y/a
  }, {a, out});
}

Tensor Tensor::pow(Scalar exponent) const {
  Tensor x = *this;
  Tensor out = native::binary(BinaryOp::Pow, x, exponent);
  return record("PowBackward0", out, {x}, [x, exponent](const Tensor& g) {
    double p = exponent.to_double();
    if (p == 0.0) return Grads{zeros_like(x)};
    Tensor d = p == 2.0 ? x * 2.0 : x.pow(p - 1.0) * p;
    return Grads{as_dtype(g * d, x.dtype())};
  });
}

Tensor Tensor::pow(const Tensor& exponent) const {
  Tensor x = *this, e = exponent;
  Tensor out = native::binary(BinaryOp::Pow, x, e);
  bool ge = e.requires_grad();
  return record("PowBackward1", out, {x, e}, [x, e, ge, y = native::alias(out)](const Tensor& g) {
    // PyTorch's conventions: d(x^e)/dx = e · x^(e-1), taken as 0 where e == 0 (not 0 · 0^-1 = nan);
    // d(x^e)/de = x^e · log x, taken as 0 where x == 0 and e >= 0.
    Tensor zero = zeros({}, y.dtype());
    Tensor gx = native::where(e.eq(0.0), zero, g * e * x.pow(e - 1.0));
    Tensor ge_full = ge ? native::where(x.eq(0.0) * e.ge(0.0), zero, g * y * x.log()) : Tensor();
    return Grads{reduce_to(gx, x), ge ? reduce_to(ge_full, e) : Tensor()};
  }, {x, e, out});
}

Tensor Tensor::neg() const {
  Tensor x = *this;
  return record(
      "NegBackward0", unary_op(x, UnaryOp::Neg), {x}, [](const Tensor& g) { return Grads{-g}; }, kSavesNothing);
}

Tensor Tensor::exp() const {
  Tensor x = *this;
  Tensor out = unary_op(x, UnaryOp::Exp);
  return record("ExpBackward0", out, {x}, [y = native::alias(out)](const Tensor& g) { return Grads{g * y}; }, {out});
}

Tensor Tensor::log() const {
  Tensor x = *this;
  return record("LogBackward0", unary_op(x, UnaryOp::Log), {x}, [x](const Tensor& g) { return Grads{g / x}; });
}

Tensor Tensor::sqrt() const {
  Tensor x = *this;
  Tensor out = unary_op(x, UnaryOp::Sqrt);
  return record("SqrtBackward0", out, {x}, [y = native::alias(out)](const Tensor& g) { return Grads{g / (y * 2.0)}; },
                {out});
}

Tensor Tensor::abs() const {
  Tensor x = *this;
  return record("AbsBackward0", unary_op(x, UnaryOp::Abs), {x},
                [x](const Tensor& g) { return Grads{g * (x.gt(0.0) - x.lt(0.0)).to(x.dtype())}; });
}

Tensor Tensor::sigmoid() const {
  return activation_op(*this, UnaryOp::Sigmoid, native::ActivationGrad::Sigmoid, "SigmoidBackward0");
}

Tensor Tensor::tanh() const {
  return activation_op(*this, UnaryOp::Tanh, native::ActivationGrad::Tanh, "TanhBackward0");
}

Tensor Tensor::relu() const {
  return activation_op(*this, UnaryOp::Relu, native::ActivationGrad::Relu, "ReluBackward0");
}

// The gradient passes where the input was inside the bounds, bounds included (PyTorch's rule).
Tensor Tensor::clamp(std::optional<Scalar> min, std::optional<Scalar> max) const {
  Tensor x = *this;
  return record("ClampBackward1", native::clamp(x, min, max), {x}, [x, min, max](const Tensor& g) {
    Tensor inside = min ? x.ge(*min) : x.le(*max);
    if (min && max) inside = inside * x.le(*max);
    return Grads{as_dtype(native::where(inside, g, zeros({}, g.dtype())), x.dtype())};
  });
}

// y = min(max(x, lo), hi), each broadcast; PyTorch's rule, which gives each element's gradient to
// exactly one of x, lo, hi (to hi alone when lo > hi):
//   dx = g·[lo <= x <= hi],  dlo = g·[x < lo and lo < hi],  dhi = g·[x > hi or hi < lo].
// With one bound: dx = g·[x >= lo], dlo = g·[x < lo] (or the mirror for hi).
Tensor Tensor::clamp(const std::optional<Tensor>& min, const std::optional<Tensor>& max) const {
  Tensor x = *this, lo = min.value_or(Tensor()), hi = max.value_or(Tensor());
  Tensor out = native::clamp(x, lo, hi);
  bool glo = lo.defined() && lo.requires_grad(), ghi = hi.defined() && hi.requires_grad();
  return record("ClampBackward0", out, {x, lo, hi}, [x, lo, hi, glo, ghi](const Tensor& g) {
    Tensor zero = zeros({}, g.dtype());
    Tensor to_x = lo.defined() ? x.ge(lo) : x.le(hi);
    if (lo.defined() && hi.defined()) to_x = to_x * x.le(hi);
    Tensor dlo, dhi;
    if (glo) {
      Tensor to_lo = x.lt(lo);
      if (hi.defined()) to_lo = to_lo * lo.lt(hi);
      dlo = reduce_to(native::where(to_lo, g, zero), lo);
    }
    if (ghi) {
      Tensor to_hi = x.gt(hi);
      if (lo.defined()) to_hi = (to_hi + hi.lt(lo)).gt(0);
      dhi = reduce_to(native::where(to_hi, g, zero), hi);
    }
    return Grads{reduce_to(native::where(to_x, g, zero), x), dlo, dhi};
  });
}

Tensor clamp(const Tensor& input, std::optional<Scalar> min, std::optional<Scalar> max) { return input.clamp(min, max); }
Tensor clamp(const Tensor& input, const std::optional<Tensor>& min, const std::optional<Tensor>& max) {
  return input.clamp(min, max);
}

Tensor Tensor::maximum(const Tensor& other) const {
  Tensor a = *this, b = other;
  return record("MaximumBackward0", native::binary(BinaryOp::Maximum, a, b), {a, b}, [a, b](const Tensor& g) {
    Tensor wa = a.gt(b).to(g.dtype()) + a.eq(b).to(g.dtype()) * 0.5;  // ties share the gradient
    return Grads{reduce_to(g * wa, a), reduce_to(g * (1.0 - wa), b)};
  });
}

Tensor Tensor::minimum(const Tensor& other) const {
  Tensor a = *this, b = other;
  return record("MinimumBackward0", native::binary(BinaryOp::Minimum, a, b), {a, b}, [a, b](const Tensor& g) {
    Tensor wa = a.lt(b).to(g.dtype()) + a.eq(b).to(g.dtype()) * 0.5;
    return Grads{reduce_to(g * wa, a), reduce_to(g * (1.0 - wa), b)};
  });
}

Tensor Tensor::eq(const Tensor& o) const { return native::binary(BinaryOp::Eq, *this, o); }
Tensor Tensor::ne(const Tensor& o) const { return native::binary(BinaryOp::Ne, *this, o); }
Tensor Tensor::lt(const Tensor& o) const { return native::binary(BinaryOp::Lt, *this, o); }
Tensor Tensor::le(const Tensor& o) const { return native::binary(BinaryOp::Le, *this, o); }
Tensor Tensor::gt(const Tensor& o) const { return native::binary(BinaryOp::Gt, *this, o); }
Tensor Tensor::ge(const Tensor& o) const { return native::binary(BinaryOp::Ge, *this, o); }
Tensor Tensor::eq(Scalar o) const { return native::binary(BinaryOp::Eq, *this, o); }
Tensor Tensor::ne(Scalar o) const { return native::binary(BinaryOp::Ne, *this, o); }
Tensor Tensor::lt(Scalar o) const { return native::binary(BinaryOp::Lt, *this, o); }
Tensor Tensor::le(Scalar o) const { return native::binary(BinaryOp::Le, *this, o); }
Tensor Tensor::gt(Scalar o) const { return native::binary(BinaryOp::Gt, *this, o); }
Tensor Tensor::ge(Scalar o) const { return native::binary(BinaryOp::Ge, *this, o); }

// --- reductions -------------------------------------------------------------------------------

Tensor Tensor::sum() const { return sum({}, false); }

Tensor Tensor::sum(const Shape& dims, bool keepdim) const {
  Tensor x = *this;
  return record(dims.empty() ? "SumBackward0" : "SumBackward1", native::sum(x, dims, keepdim), {x},
                [shape = x.sizes(), dims, keepdim](const Tensor& g) {
                  return Grads{native::expand(unsqueeze_reduced(g, shape, dims, keepdim), shape)};
                }, kSavesNothing);
}

Tensor Tensor::mean() const { return mean({}, false); }

Tensor Tensor::mean(const Shape& dims, bool keepdim) const {
  Tensor x = *this;
  return record(dims.empty() ? "MeanBackward0" : "MeanBackward1", native::mean(x, dims, keepdim), {x},
                [shape = x.sizes(), dims, keepdim](const Tensor& g) {
                  double n = static_cast<double>(native::reduction_count(shape, dims));
                  return Grads{native::expand(unsqueeze_reduced(g, shape, dims, keepdim) / n, shape)};
                }, kSavesNothing);
}

Tensor Tensor::var() const { return var({}, true, false); }

// d var / dx_i = 2 (x_i - mean) / (M - correction), with M the count per output.
Tensor Tensor::var(const Shape& dims, bool unbiased, bool keepdim) const {
  Tensor x = *this;
  std::int64_t correction = unbiased ? 1 : 0;
  return record("VarBackward0", native::var(x, dims, correction, keepdim), {x},
                [x, dims, keepdim, correction](const Tensor& g) {
                  double m = static_cast<double>(native::reduction_count(x.sizes(), dims));
                  Tensor mu = native::mean(x, dims, true);
                  Tensor gk = unsqueeze_reduced(g, x.sizes(), dims, keepdim);
                  return Grads{(x - mu) * gk * (2.0 / (m - static_cast<double>(correction)))};
                });
}

Tensor Tensor::std() const { return std({}, true, false); }

// Its own entry (PyTorch's StdBackward0), not var().sqrt(), whose gradient is 0 · inf = nan where
// std == 0; PyTorch takes it as 0 there:
//   d std / dx_i = (x_i - mean) / ((M - correction) · std), with M the count per output.
Tensor Tensor::std(const Shape& dims, bool unbiased, bool keepdim) const {
  Tensor x = *this;
  std::int64_t correction = unbiased ? 1 : 0;
  Tensor out = native::unary(UnaryOp::Sqrt, native::var(x, dims, correction, keepdim, "std"));
  return record("StdBackward0", out, {x},
                [x, dims, keepdim, correction, y = native::alias(out)](const Tensor& g) {
                  double m = static_cast<double>(native::reduction_count(x.sizes(), dims));
                  Tensor mu = native::mean(x, dims, true);
                  Tensor gy = native::where(y.eq(0.0), zeros({}, y.dtype()), g / y);
                  Tensor gk = unsqueeze_reduced(gy, x.sizes(), dims, keepdim);
                  return Grads{(x - mu) * gk * (1.0 / (m - static_cast<double>(correction)))};
                }, {x, out});
}

Tensor Tensor::norm(Scalar p) const { return norm(p, {}, false); }

// y = (Σ |x|^p)^(1/p) per output; PyTorch's norm_backward, case by case (sgn = sign of x):
//   p = 0: 0;  p = 1: sgn·g;  p = 2: g·x/y (0 where y = 0);
//   p = ±inf: sgn·g shared evenly among the elements with |x| = y;
//   otherwise dy/dx = sgn·|x|^(p−1) / y^(p−1) (0 where y = 0; for p < 1, 0 where x = 0).
Tensor Tensor::norm(Scalar p, const Shape& dims, bool keepdim) const {
  Tensor x = *this;
  const double pv = p.to_double();
  Tensor out = native::norm(x, pv, dims, keepdim);
  return record("NormBackward1", out, {x}, [x, pv, dims, keepdim, y = native::alias(out)](const Tensor& g) {
    if (pv == 0) return Grads{zeros_like(x)};
    Tensor gk = unsqueeze_reduced(g, x.sizes(), dims, keepdim), yk = unsqueeze_reduced(y, x.sizes(), dims, keepdim);
    Tensor zero = zeros({}, x.dtype()), sgn = (x.gt(0.0) - x.lt(0.0)).to(x.dtype()), ax = x.abs();
    if (pv == 1) return Grads{sgn * gk};
    if (pv == 2) return Grads{gk * native::where(yk.eq(0.0), zero, x / yk)};
    if (std::isinf(pv)) {
      Tensor mask = (ax.eq(yk) + ax.ne(ax)).gt(0).to(x.dtype());  // the extremes, and NaNs
      return Grads{sgn * (gk / native::sum(mask, dims, true)) * mask};
    }
    if (pv < 1) return Grads{sgn * native::where(x.eq(0.0), zero, ax.pow(pv - 1)) * gk * yk.pow(1 - pv)};
    Tensor scale = native::where(yk.eq(0.0), zero, gk / yk.pow(pv - 1));
    return Grads{(pv < 2 ? sgn * ax.pow(pv - 1) : x * ax.pow(pv - 2)) * scale};
  }, {x, out});
}

Tensor norm(const Tensor& input, Scalar p, const Shape& dims, bool keepdim) { return input.norm(p, dims, keepdim); }

namespace {

// amax/amin: the gradient is shared evenly among the elements equal to the extreme.
Tensor extreme_op(const Tensor& x, const Shape& dims, bool keepdim, bool is_max) {
  Tensor out = is_max ? native::amax(x, dims, keepdim) : native::amin(x, dims, keepdim);
  const char* name = dims.empty() ? (is_max ? "MaxBackward1" : "MinBackward1") : (is_max ? "AmaxBackward0" : "AminBackward0");
  return record(name, out, {x},
                [x, dims, keepdim, y = native::alias(out)](const Tensor& g) {
                  Tensor yk = unsqueeze_reduced(y, x.sizes(), dims, keepdim);
                  Tensor mask = x.eq(yk).to(x.dtype());
                  Tensor count = native::sum(mask, dims, true);
                  return Grads{mask * (unsqueeze_reduced(g, x.sizes(), dims, keepdim) / count)};
                }, {x, out});
}

}  // namespace

Tensor Tensor::min() const { return extreme_op(*this, {}, false, false); }
Tensor Tensor::max() const { return extreme_op(*this, {}, false, true); }
Tensor Tensor::min(const Shape& dims, bool keepdim) const { return extreme_op(*this, dims, keepdim, false); }
Tensor Tensor::max(const Shape& dims, bool keepdim) const { return extreme_op(*this, dims, keepdim, true); }
Tensor Tensor::argmax() const { return native::argmax(*this, std::nullopt, false); }
Tensor Tensor::argmax(std::int64_t dim, bool keepdim) const { return native::argmax(*this, dim, keepdim); }
Tensor Tensor::argmin() const { return native::argmin(*this, std::nullopt, false); }
Tensor Tensor::argmin(std::int64_t dim, bool keepdim) const { return native::argmin(*this, dim, keepdim); }

// --- matmul -------------------------------------------------------------------------------------

// C = A·B:  dA = dC·Bᵀ,  dB = Aᵀ·dC, with 1-D operands lifted to matrices and broadcast batch
// dims summed back.
Tensor Tensor::matmul(const Tensor& other) const {
  Tensor a = *this, b = other;
  Tensor out = native::matmul(a, b);
  const char* name = a.dim() == 1 && b.dim() == 1 ? "DotBackward0"
                     : a.dim() == 2 && b.dim() == 1 ? "MvBackward0"
                     : a.dim() == 2 && b.dim() == 2 ? "MmBackward0"
                     : a.dim() == 1 && b.dim() == 2 ? "SqueezeBackward3"
                     : a.dim() == 2 && b.dim() >= 3 ? "CloneBackward0"
                                                    : "UnsafeViewBackward0";
  bool ga = a.requires_grad(), gb = b.requires_grad();
  return record(name, out, {a, b}, [a, b, ga, gb](const Tensor& g) {
    Tensor A = a.dim() == 1 ? native::unsqueeze(a, 0) : a;
    Tensor B = b.dim() == 1 ? native::unsqueeze(b, 1) : b;
    Tensor G = g;
    if (a.dim() == 1) G = native::unsqueeze(G, G.dim() - (b.dim() == 1 ? 0 : 1));
    if (b.dim() == 1) G = native::unsqueeze(G, G.dim());
    Tensor da, db;
    if (ga) da = native::reshape(native::sum_to(native::matmul(G, native::transpose(B, -1, -2)), A.sizes()), a.sizes());
    if (gb) db = native::reshape(native::sum_to(native::matmul(native::transpose(A, -1, -2), G), B.sizes()), b.sizes());
    return Grads{da, db};
  });
}

Tensor matmul(const Tensor& a, const Tensor& b) { return a.matmul(b); }

// --- in place -----------------------------------------------------------------------------------

Tensor& Tensor::fill_(Scalar value) {
  check_inplace(*this, "fill_");
  native::fill_(*this, value);
  return *this;
}

Tensor& Tensor::zero_() { return fill_(0); }

Tensor& Tensor::mul_(Scalar value) {
  check_inplace(*this, "mul_");
  native::binary_(BinaryOp::Mul, *this, value);
  return *this;
}

Tensor& Tensor::mul_(const Tensor& other) {
  check_inplace(*this, "mul_", &other);
  native::binary_(BinaryOp::Mul, *this, other);
  return *this;
}

Tensor& Tensor::add_(const Tensor& other, Scalar alpha) {
  check_inplace(*this, "add_", &other);
  native::add_scaled_(*this, other, alpha);
  return *this;
}

Tensor& Tensor::add_(Scalar value) {
  check_inplace(*this, "add_");
  native::binary_(BinaryOp::Add, *this, value);
  return *this;
}

Tensor& Tensor::sub_(const Tensor& other) {
  check_inplace(*this, "sub_", &other);
  native::binary_(BinaryOp::Sub, *this, other);
  return *this;
}

Tensor& Tensor::div_(Scalar value) {
  check_inplace(*this, "div_");
  native::binary_(BinaryOp::Div, *this, value);
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  check_inplace(*this, "copy_", &src);
  native::copy_(*this, src);
  return *this;
}

// --- operators ----------------------------------------------------------------------------------

Tensor operator+(const Tensor& a, const Tensor& b) { return a.add(b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return a.sub(b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return a.mul(b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return a.div(b); }
Tensor operator+(const Tensor& a, Scalar b) { return a.add(b); }
Tensor operator-(const Tensor& a, Scalar b) { return a.sub(b); }
Tensor operator*(const Tensor& a, Scalar b) { return a.mul(b); }
Tensor operator/(const Tensor& a, Scalar b) { return a.div(b); }
Tensor operator+(Scalar a, const Tensor& b) { return b.add(a); }
Tensor operator-(Scalar a, const Tensor& b) { return b.rsub(a); }
Tensor operator*(Scalar a, const Tensor& b) { return b.mul(a); }
Tensor operator/(Scalar a, const Tensor& b) { return b.rdiv(a); }
Tensor operator-(const Tensor& a) { return a.neg(); }

}  // namespace tg
