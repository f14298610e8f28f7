// The losses, each a kernel pair with a hand-derived backward recorded as one tape entry:
// cross_entropy (log-softmax fused with NLL, class weights, ignore_index, label smoothing),
// nll_loss, mse/l1/smooth_l1 (one pointwise pair) and binary_cross_entropy_with_logits; and the
// loss modules. softmax and log_softmax are tensor ops (autograd/ops_softmax.cpp).
// Layer: layers; must not know optimizers.
#include "tapegrad/layers/losses.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "tapegrad/autograd/tape.h"
#include "tapegrad/core/native.h"
#include "tapegrad/core/parallel.h"
#include "tapegrad/layers/functional.h"

namespace tg {

namespace {

using Grads = std::vector<Tensor>;

// The per-element losses for none; otherwise a 0-dim sum, or mean sum / denominator (nan for no
// elements, as PyTorch).
Tensor reduce_loss(const Tensor& per_element, double sum, double denominator, Reduction reduction, DType dtype) {
  if (reduction == Reduction::None) return per_element;
  return full({}, reduction == Reduction::Sum ? sum : sum / denominator, dtype);
}

// --- cross_entropy and nll_loss: R rows (one per sample, or per sample and position) of C classes
// Row r's target t = target[r] is a class in [0, C) or ignore_index (the row then adds nothing
// to the loss, its gradient or the mean's denominator). w ≡ 1 without class weights.

// With max = max_c x[r, c] (so no exp overflows) and logsum = log Σ_c exp(x[r, c] − max), the
// log-probabilities are logp_c = (x_c − max) − logsum (never re-added to max, which would round
// away the loss's digits), and with label smoothing ε:
//   loss[r] = (1 − ε)·(−w_t·logp_t) + ε/C·(−Σ_c w_c·logp_c).
template <class T>
void cross_entropy_forward(T* loss, T* max, T* logsum, const T* logits, const std::int64_t* target, const T* weight,
                           T smoothing, std::int64_t ignore_index, std::int64_t R, std::int64_t C) {
  parallel_for(0, R, R * C, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t r = lo; r < hi; ++r) {
      const T* row = logits + r * C;
      T mx = -std::numeric_limits<T>::infinity();
      for (std::int64_t c = 0; c < C; ++c) mx = std::max(mx, row[c]);
      T s = 0;
      for (std::int64_t c = 0; c < C; ++c) s += std::exp(row[c] - mx);
      const T ls = std::log(s);
      max[r] = mx;
      logsum[r] = ls;
      const std::int64_t t = target[r];
      if (t == ignore_index) {
        loss[r] = 0;
        continue;
      }
      T nll = (ls - (row[t] - mx)) * (weight ? weight[t] : T(1));
      if (smoothing > 0) {
        T smooth = 0;
        for (std::int64_t c = 0; c < C; ++c) smooth += (ls - (row[c] - mx)) * (weight ? weight[c] : T(1));
        nll = (T(1) - smoothing) * nll + smoothing / static_cast<T>(C) * smooth;
      }
      loss[r] = nll;
    }
  });
}

// p = softmax(x) = exp(x − max − logsum). The loss is linear in logp with coefficients
// −(a·[c = t] + b_c), a = (1 − ε)·w_t, b_c = ε/C·w_c, and ∂logp_c/∂x_k = [c = k] − p_k, so
//   dlogits[r, c] = g_r · (p_c·(a + B) − b_c − a·[c = t]),  B = Σ_c b_c,
// which without smoothing is g_r·w_t·(p_c − [c = t]). g_r = dloss[r] (none: stride 1) or one
// value for every row (sum: scale 1, mean: 1/Σ w_t; stride 0). Ignored rows get 0.
template <class T>
void cross_entropy_backward(T* dlogits, const T* dloss, std::int64_t dloss_stride, T scale, const T* logits,
                            const T* max, const T* logsum, const std::int64_t* target, const T* weight, T smoothing,
                            std::int64_t ignore_index, std::int64_t R, std::int64_t C) {
  const T b = smoothing / static_cast<T>(C);  // b_c = b·w_c
  T B = 0;                                     // Σ_c b_c
  for (std::int64_t c = 0; c < C && smoothing > 0; ++c) B += b * (weight ? weight[c] : T(1));
  parallel_for(0, R, R * C, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t r = lo; r < hi; ++r) {
      T* drow = dlogits + r * C;
      const std::int64_t t = target[r];
      if (t == ignore_index) {
        std::fill(drow, drow + C, T(0));
        continue;
      }
      const T g = dloss[r * dloss_stride] * scale, mx = max[r], ls = logsum[r];
      const T a = (T(1) - smoothing) * (weight ? weight[t] : T(1)), pa = g * (a + B);
      const T* row = logits + r * C;
      for (std::int64_t c = 0; c < C; ++c) drow[c] = pa * std::exp((row[c] - mx) - ls);
      if (smoothing > 0)
        for (std::int64_t c = 0; c < C; ++c) drow[c] -= g * b * (weight ? weight[c] : T(1));
      drow[t] -= g * a;
    }
  });
}

// loss[r] = −w_t · logp[r, t].
template <class T>
void nll_forward(T* loss, const T* logp, const std::int64_t* target, const T* weight, std::int64_t ignore_index,
                 std::int64_t R, std::int64_t C) {
  for (std::int64_t r = 0; r < R; ++r) {
    const std::int64_t t = target[r];
    loss[r] = t == ignore_index ? T(0) : -logp[r * C + t] * (weight ? weight[t] : T(1));
  }
}

// dlogp[r, c] = −g_r · w_t · [c = t] (0 for ignored rows), g_r as in cross_entropy_backward.
template <class T>
void nll_backward(T* dlogp, const T* dloss, std::int64_t dloss_stride, T scale, const std::int64_t* target,
                  const T* weight, std::int64_t ignore_index, std::int64_t R, std::int64_t C) {
  std::fill(dlogp, dlogp + R * C, T(0));
  for (std::int64_t r = 0; r < R; ++r) {
    const std::int64_t t = target[r];
    if (t != ignore_index) dlogp[r * C + t] = -dloss[r * dloss_stride] * scale * (weight ? weight[t] : T(1));
  }
}

// --- mse_loss, l1_loss, smooth_l1_loss: M elements, d = input − target ---------------------------

enum class Pointwise { Mse, L1, SmoothL1 };

// mse: d²,  l1: |d|,  smooth_l1: 0.5·d²/β where |d| < β, |d| − 0.5·β elsewhere.
template <class T>
T pointwise_loss(Pointwise kind, T d, T beta) {
  const T ad = std::abs(d);
  switch (kind) {
    case Pointwise::Mse: return d * d;
    case Pointwise::L1: return ad;
    default: return ad < beta ? T(0.5) * d * d / beta : ad - T(0.5) * beta;
  }
}

// Their derivatives in d: mse 2d;  l1 sign(d) (0 at 0);  smooth_l1 −1 for d ≤ −β, 1 for d ≥ β,
// d/β between (PyTorch's branches: with β = 0 the derivative at 0 is 1).
template <class T>
T pointwise_grad(Pointwise kind, T d, T beta) {
  switch (kind) {
    case Pointwise::Mse: return T(2) * d;
    case Pointwise::L1: return static_cast<T>((d > T(0)) - (d < T(0)));
    default: return d <= -beta ? T(-1) : d >= beta ? T(1) : d / beta;
  }
}

// loss[i] = f(input[i] − target[i]), written when `loss` is not null (reduction none) and summed
// (in double) either way.
template <class T>
double pointwise_forward(T* loss, const T* input, const T* target, Pointwise kind, T beta, std::int64_t M) {
  double s = 0;
  for (std::int64_t i = 0; i < M; ++i) {
    const T l = pointwise_loss(kind, input[i] - target[i], beta);
    if (loss) loss[i] = l;
    s += static_cast<double>(l);
  }
  return s;
}

// dinput = f'(input − target)·dloss·scale,  dtarget = −dinput, with dloss per element (none:
// stride 1) or one value (stride 0) and scale 1/M for mean.
template <class T>
void pointwise_backward(T* dinput, T* dtarget, const T* dloss, std::int64_t dloss_stride, T scale, const T* input,
                        const T* target, Pointwise kind, T beta, std::int64_t M) {
  parallel_for(0, M, M, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i) {
      const T d = pointwise_grad(kind, input[i] - target[i], beta) * dloss[i * dloss_stride] * scale;
      if (dinput) dinput[i] = d;
      if (dtarget) dtarget[i] = -d;
    }
  });
}

// --- binary_cross_entropy_with_logits: M elements ------------------------------------------------
// x logits, y targets, w weights and q pos_weights (expanded to M; w, q ≡ 1 when null). With
// lw = (q − 1)·y + 1 and softplus(−x) = log(1 + exp(−x)) = m + log(exp(−m) + exp(−x − m)),
// m = max(−x, 0) (PyTorch's stable form, no exp overflows):
//   loss = w · ((1 − y)·x + lw·softplus(−x)).
template <class T>
double bce_with_logits_forward(T* loss, const T* x, const T* y, const T* w, const T* q, std::int64_t M) {
  double s = 0;
  for (std::int64_t i = 0; i < M; ++i) {
    const T m = std::max(-x[i], T(0)), lw = q ? (q[i] - T(1)) * y[i] + T(1) : T(1);
    const T softplus_neg = m + std::log(std::exp(-m) + std::exp(-x[i] - m));
    const T l = ((T(1) - y[i]) * x[i] + lw * softplus_neg) * (w ? w[i] : T(1));
    if (loss) loss[i] = l;
    s += static_cast<double>(l);
  }
  return s;
}

// ∂softplus(−x)/∂x = σ(x) − 1, so ∂loss/∂x = w·((1 − y) + lw·(σ(x) − 1)) = w·(lw·σ(x) − q·y),
// and ∂loss/∂y = w·(−x + (q − 1)·softplus(−x)) = w·(log σ(−x) − q·log σ(x)); each times
// g = dloss·scale (stride and scale as pointwise_backward's).
template <class T>
void bce_with_logits_backward(T* dx, T* dy, const T* dloss, std::int64_t dloss_stride, T scale, const T* x,
                              const T* y, const T* w, const T* q, std::int64_t M) {
  parallel_for(0, M, M, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i) {
      const T g = dloss[i * dloss_stride] * scale * (w ? w[i] : T(1)), qi = q ? q[i] : T(1);
      const T sig = T(1) / (T(1) + std::exp(-x[i]));
      if (dx) dx[i] = g * (((qi - T(1)) * y[i] + T(1)) * sig - qi * y[i]);
      if (dy) {
        const T m = std::max(-x[i], T(0)), softplus_neg = m + std::log(std::exp(-m) + std::exp(-x[i] - m));
        dy[i] = g * (-x[i] + (qi - T(1)) * softplus_neg);
      }
    }
  });
}

// A loss's gradient: contiguous, with its stride (0 when one value stands for all) and scale
// (1/denominator for mean).
struct LossGrad {
  Tensor g;
  std::int64_t stride;
  double scale;
};

LossGrad loss_grad(const Tensor& g, Reduction reduction, double denominator) {
  if (reduction == Reduction::None) return {native::contiguous(g), 1, 1.0};
  return {native::contiguous(g), 0, reduction == Reduction::Mean ? 1.0 / denominator : 1.0};
}

// --- the class-index losses' checks and layout -----------------------------------------------------

// The input as R rows of C classes, contiguous [R, C] (for [N, C, d1, ...] the class dim moves
// last), the target as R indices, checked, and the mean's denominator Σ w_t over kept rows.
struct ClassRows {
  Tensor rows, target, weight;  // [R, C]; [R] int64; [C] or undefined
  std::int64_t R = 0, C = 0;
  Shape loss_shape;             // the per-row losses' shape: the target's
  double total_weight = 0;
};

ClassRows class_rows(const char* op, const char* what, const Tensor& input, const Tensor& target,
                     const Tensor& weight, std::int64_t ignore_index) {
  TG_CHECK(input.defined() && input.dim() >= 1, "[{}] expected {} of shape [C], [N, C] or [N, C, d1, ...], got {}", op,
           what, input.defined() ? input.sizes() : Shape{});
  TG_CHECK(is_floating(input.dtype()), "[{}] expected floating point {}, got {}", op, what, dtype_name(input.dtype()));
  TG_CHECK(target.defined() && target.dtype() == kInt64, "[{}] expected target of dtype int64 (class indices), got {}",
           op, target.defined() ? dtype_name(target.dtype()) : "an undefined tensor");
  const std::int64_t class_dim = input.dim() == 1 ? 0 : 1;
  ClassRows cr;
  cr.C = input.size(class_dim);
  cr.loss_shape = input.sizes();
  cr.loss_shape.erase(cr.loss_shape.begin() + class_dim);
  TG_CHECK(target.sizes() == cr.loss_shape, "[{}] expected target of shape {} for {} {}, got {}", op, cr.loss_shape,
           what, input.sizes(), target.sizes());
  if (weight.defined()) {
    TG_CHECK(weight.sizes() == Shape{cr.C}, "[{}] expected weight of shape [{}] (one per class), got {}", op, cr.C,
             weight.sizes());
    TG_CHECK(weight.dtype() == input.dtype(), "[{}] expected weight of dtype {} (the {}'), got {}", op,
             dtype_name(input.dtype()), what, dtype_name(weight.dtype()));
    cr.weight = native::contiguous(weight);
  }
  cr.R = numel_of(cr.loss_shape);
  cr.target = native::reshape(native::contiguous(target), {cr.R});
  const std::int64_t* t = cr.target.data_ptr<std::int64_t>();
  std::vector<double> w = cr.weight.defined() ? cr.weight.to_vector<double>() : std::vector<double>();
  for (std::int64_t r = 0; r < cr.R; ++r) {
    if (t[r] == ignore_index) continue;
    TG_CHECK(t[r] >= 0 && t[r] < cr.C, "[{}] target {} is out of bounds for {} classes", op, t[r], cr.C);
    cr.total_weight += w.empty() ? 1.0 : w[static_cast<std::size_t>(t[r])];
  }
  if (input.dim() <= 2) {
    cr.rows = native::reshape(native::contiguous(input), {cr.R, cr.C});
  } else {
    Shape to_last{0};  // [N, C, d1, ...] -> [N, d1, ..., C]
    for (std::int64_t d = 2; d < input.dim(); ++d) to_last.push_back(d);
    to_last.push_back(1);
    cr.rows = native::reshape(native::contiguous(native::permute(input, to_last)), {cr.R, cr.C});
  }
  return cr;
}

// A gradient over the rows [R, C] laid out as the input (`shape`): the inverse of class_rows.
Tensor rows_to_input(const Tensor& rows, const Shape& shape) {
  if (shape.size() <= 2) return native::view(rows, shape);
  Shape moved{shape[0]}, back{0, static_cast<std::int64_t>(shape.size()) - 1};  // [N, d1, ..., C] -> [N, C, d1, ...]
  for (std::size_t d = 2; d < shape.size(); ++d) {
    moved.push_back(shape[d]);
    back.push_back(static_cast<std::int64_t>(d) - 1);
  }
  moved.push_back(shape[1]);
  return native::contiguous(native::permute(native::view(rows, moved), back));
}

// The grad_fn PyTorch 1.13 names for the same call: label smoothing adds its terms last; inputs
// with more than 2 dims go through nll_loss2d, and a 3-D input's none result through a view.
const char* class_loss_grad_fn(std::int64_t input_dim, Reduction reduction, bool smoothing) {
  if (smoothing) return "AddBackward0";
  if (input_dim <= 2) return "NllLossBackward0";
  return input_dim == 3 && reduction == Reduction::None ? "ViewBackward0" : "NllLoss2DBackward0";
}

}  // namespace

// --- the differentiable functions ----------------------------------------------------------------

Tensor cross_entropy(const Tensor& input, const Tensor& target, Reduction reduction) {
  return cross_entropy(input, target, CrossEntropyLossOptions{.reduction = reduction});
}

Tensor cross_entropy(const Tensor& input, const Tensor& target, const CrossEntropyLossOptions& options) {
  const double eps = options.label_smoothing;
  TG_CHECK(eps >= 0.0 && eps <= 1.0, "[cross_entropy] expected label_smoothing in [0, 1], got {}", eps);
  ClassRows cr = class_rows("cross_entropy", "logits", input, target, options.weight, options.ignore_index);
  const DType dtype = input.dtype();
  Tensor loss = Tensor::empty({cr.R}, dtype), max = Tensor::empty({cr.R}, dtype), logsum = Tensor::empty({cr.R}, dtype);
  double sum = 0;
  dispatch_floating(dtype, [&]<class T>() {
    const T* w = cr.weight.defined() ? cr.weight.data_ptr<T>() : nullptr;
    cross_entropy_forward<T>(loss.data_ptr<T>(), max.data_ptr<T>(), logsum.data_ptr<T>(), cr.rows.data_ptr<T>(),
                             cr.target.data_ptr<std::int64_t>(), w, static_cast<T>(eps), options.ignore_index, cr.R,
                             cr.C);
    const T* l = loss.data_ptr<T>();
    for (std::int64_t r = 0; r < cr.R; ++r) sum += static_cast<double>(l[r]);
  });
  Tensor out = reduce_loss(native::view(loss, cr.loss_shape), sum, cr.total_weight, options.reduction, dtype);
  return autograd::record(
      class_loss_grad_fn(input.dim(), options.reduction, eps > 0), out, {input},
      [cr, max, logsum, eps, ignore = options.ignore_index, reduction = options.reduction,
       shape = input.sizes()](const Tensor& g) {
        LossGrad lg = loss_grad(g, reduction, cr.total_weight);
        Tensor drows = Tensor::empty({cr.R, cr.C}, cr.rows.dtype());
        dispatch_floating(cr.rows.dtype(), [&]<class T>() {
          const T* w = cr.weight.defined() ? cr.weight.data_ptr<T>() : nullptr;
          cross_entropy_backward<T>(drows.data_ptr<T>(), lg.g.data_ptr<T>(), lg.stride, static_cast<T>(lg.scale),
                                    cr.rows.data_ptr<T>(), max.data_ptr<T>(), logsum.data_ptr<T>(),
                                    cr.target.data_ptr<std::int64_t>(), w, static_cast<T>(eps), ignore, cr.R, cr.C);
        });
        return Grads{rows_to_input(drows, shape)};
      },
      {input, target, options.weight});
}

Tensor nll_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  return nll_loss(input, target, NLLLossOptions{.reduction = reduction});
}

Tensor nll_loss(const Tensor& input, const Tensor& target, const NLLLossOptions& options) {
  ClassRows cr = class_rows("nll_loss", "input", input, target, options.weight, options.ignore_index);
  const DType dtype = input.dtype();
  Tensor loss = Tensor::empty({cr.R}, dtype);
  double sum = 0;
  dispatch_floating(dtype, [&]<class T>() {
    const T* w = cr.weight.defined() ? cr.weight.data_ptr<T>() : nullptr;
    nll_forward<T>(loss.data_ptr<T>(), cr.rows.data_ptr<T>(), cr.target.data_ptr<std::int64_t>(), w,
                   options.ignore_index, cr.R, cr.C);
    const T* l = loss.data_ptr<T>();
    for (std::int64_t r = 0; r < cr.R; ++r) sum += static_cast<double>(l[r]);
  });
  Tensor out = reduce_loss(native::view(loss, cr.loss_shape), sum, cr.total_weight, options.reduction, dtype);
  // The backward reads no input values: only the target and the weight.
  return autograd::record(
      class_loss_grad_fn(input.dim(), options.reduction, false), out, {input},
      [target = cr.target, weight = cr.weight, R = cr.R, C = cr.C, total = cr.total_weight,
       ignore = options.ignore_index, reduction = options.reduction, shape = input.sizes()](const Tensor& g) {
        LossGrad lg = loss_grad(g, reduction, total);
        Tensor drows = Tensor::empty({R, C}, g.dtype());
        dispatch_floating(g.dtype(), [&]<class T>() {
          nll_backward<T>(drows.data_ptr<T>(), lg.g.data_ptr<T>(), lg.stride, static_cast<T>(lg.scale),
                          target.data_ptr<std::int64_t>(), weight.defined() ? weight.data_ptr<T>() : nullptr, ignore,
                          R, C);
        });
        return Grads{rows_to_input(drows, shape)};
      },
      {target, options.weight});
}


namespace {

void check_pair(const char* op, const Tensor& input, const Tensor& target) {
  TG_CHECK(input.defined() && target.defined(), "[{}] expected defined input and target", op);
  TG_CHECK(input.sizes() == target.sizes(), "[{}] expected input and target of one shape, got {} and {}", op,
           input.sizes(), target.sizes());
  TG_CHECK(is_floating(input.dtype()) && input.dtype() == target.dtype(),
           "[{}] expected input and target of one floating point dtype, got {} and {}", op, dtype_name(input.dtype()),
           dtype_name(target.dtype()));
}

// mse_loss, l1_loss and smooth_l1_loss: one kernel pair, one tape entry with gradients to both.
Tensor pointwise_loss_op(const char* op, const char* grad_fn, const Tensor& input, const Tensor& target,
                         Reduction reduction, Pointwise kind, double beta) {
  check_pair(op, input, target);
  const std::int64_t M = input.numel();
  Tensor ic = native::contiguous(input), tc = native::contiguous(target);
  Tensor loss = reduction == Reduction::None ? Tensor::empty(input.sizes(), input.dtype()) : Tensor();
  double sum = 0;
  dispatch_floating(input.dtype(), [&]<class T>() {
    sum = pointwise_forward<T>(reduction == Reduction::None ? loss.data_ptr<T>() : nullptr, ic.data_ptr<T>(),
                               tc.data_ptr<T>(), kind, static_cast<T>(beta), M);
  });
  Tensor out = reduce_loss(loss, sum, static_cast<double>(M), reduction, input.dtype());
  const bool gi = input.requires_grad(), gt = target.requires_grad();
  return autograd::record(grad_fn, out, {input, target}, [ic, tc, gi, gt, reduction, kind, beta, M](const Tensor& g) {
    LossGrad lg = loss_grad(g, reduction, static_cast<double>(M));
    Tensor di = gi ? Tensor::empty(ic.sizes(), ic.dtype()) : Tensor();
    Tensor dt = gt ? Tensor::empty(ic.sizes(), ic.dtype()) : Tensor();
    dispatch_floating(ic.dtype(), [&]<class T>() {
      pointwise_backward<T>(gi ? di.data_ptr<T>() : nullptr, gt ? dt.data_ptr<T>() : nullptr, lg.g.data_ptr<T>(),
                            lg.stride, static_cast<T>(lg.scale), ic.data_ptr<T>(), tc.data_ptr<T>(), kind,
                            static_cast<T>(beta), M);
    });
    return Grads{di, dt};
  });
}

// weight or pos_weight expanded to the input's shape (contiguous); undefined stays undefined.
Tensor expand_weight(const char* op, const char* name, const Tensor& w, const Tensor& input) {
  if (!w.defined()) return w;
  bool fits = w.dim() <= input.dim();
  for (std::int64_t d = 1; fits && d <= w.dim(); ++d)
    fits = w.size(-d) == 1 || w.size(-d) == input.size(-d);
  TG_CHECK(fits, "[{}] expected {} broadcastable to the input's shape {}, got {}", op, name, input.sizes(), w.sizes());
  TG_CHECK(w.dtype() == input.dtype(), "[{}] expected {} of dtype {} (the input's), got {}", op, name,
           dtype_name(input.dtype()), dtype_name(w.dtype()));
  return native::contiguous(native::expand(w, input.sizes()));
}

}  // namespace

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  return pointwise_loss_op("mse_loss", "MseLossBackward0", input, target, reduction, Pointwise::Mse, 0.0);
}

// PyTorch 1.13 composes l1_loss from abs and the reduction: its grad_fn is the reduction's.
Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  const char* grad_fn = reduction == Reduction::None  ? "AbsBackward0"
                        : reduction == Reduction::Sum ? "SumBackward0"
                                                      : "MeanBackward0";
  return pointwise_loss_op("l1_loss", grad_fn, input, target, reduction, Pointwise::L1, 0.0);
}

Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, Reduction reduction, double beta) {
  TG_CHECK(beta >= 0.0, "[smooth_l1_loss] expected beta >= 0, got {}", beta);
  return pointwise_loss_op("smooth_l1_loss", "SmoothL1LossBackward0", input, target, reduction, Pointwise::SmoothL1,
                           beta);
}

Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                        const BCEWithLogitsLossOptions& options) {
  const char* op = "binary_cross_entropy_with_logits";
  check_pair(op, input, target);
  Tensor w = expand_weight(op, "weight", options.weight, input);
  Tensor q = expand_weight(op, "pos_weight", options.pos_weight, input);
  const std::int64_t M = input.numel();
  const Reduction reduction = options.reduction;
  Tensor xc = native::contiguous(input), yc = native::contiguous(target);
  Tensor loss = reduction == Reduction::None ? Tensor::empty(input.sizes(), input.dtype()) : Tensor();
  double sum = 0;
  dispatch_floating(input.dtype(), [&]<class T>() {
    auto ptr = [](const Tensor& t) { return t.defined() ? t.data_ptr<T>() : nullptr; };
    sum = bce_with_logits_forward<T>(ptr(loss), xc.data_ptr<T>(), yc.data_ptr<T>(), ptr(w), ptr(q), M);
  });
  Tensor out = reduce_loss(loss, sum, static_cast<double>(M), reduction, input.dtype());
  const bool gx = input.requires_grad(), gy = target.requires_grad();
  return autograd::record(
      "BinaryCrossEntropyWithLogitsBackward0", out, {input, target},
      [xc, yc, w, q, gx, gy, reduction, M](const Tensor& g) {
        LossGrad lg = loss_grad(g, reduction, static_cast<double>(M));
        Tensor dx = gx ? Tensor::empty(xc.sizes(), xc.dtype()) : Tensor();
        Tensor dy = gy ? Tensor::empty(xc.sizes(), xc.dtype()) : Tensor();
        dispatch_floating(xc.dtype(), [&]<class T>() {
          auto ptr = [](const Tensor& t) { return t.defined() ? t.data_ptr<T>() : nullptr; };
          bce_with_logits_backward<T>(ptr(dx), ptr(dy), lg.g.data_ptr<T>(), lg.stride, static_cast<T>(lg.scale),
                                      xc.data_ptr<T>(), yc.data_ptr<T>(), ptr(w), ptr(q), M);
        });
        return Grads{dx, dy};
      },
      {input, target, options.weight, options.pos_weight});
}

// --- the modules ---------------------------------------------------------------------------

namespace nn {

CrossEntropyLoss::CrossEntropyLoss(Reduction reduction)
    : CrossEntropyLoss(CrossEntropyLossOptions{.reduction = reduction}) {}

CrossEntropyLoss::CrossEntropyLoss(CrossEntropyLossOptions opts) : options(std::move(opts)) {
  TG_CHECK(options.label_smoothing >= 0.0 && options.label_smoothing <= 1.0,
           "[CrossEntropyLoss] expected label_smoothing in [0, 1], got {}", options.label_smoothing);
  if (options.weight.defined()) register_buffer("weight", options.weight);
}

NLLLoss::NLLLoss(Reduction reduction) : NLLLoss(NLLLossOptions{.reduction = reduction}) {}

NLLLoss::NLLLoss(NLLLossOptions opts) : options(std::move(opts)) {
  if (options.weight.defined()) register_buffer("weight", options.weight);
}

SmoothL1Loss::SmoothL1Loss(Reduction r, double beta_) : reduction(r), beta(beta_) {
  TG_CHECK(beta >= 0.0, "[SmoothL1Loss] expected beta >= 0, got {}", beta);
}

BCEWithLogitsLoss::BCEWithLogitsLoss(BCEWithLogitsLossOptions opts) : options(std::move(opts)) {
  if (options.weight.defined()) register_buffer("weight", options.weight);
  if (options.pos_weight.defined()) register_buffer("pos_weight", options.pos_weight);
}

}  // namespace nn

}  // namespace tg
