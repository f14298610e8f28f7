// The losses and the softmax family, each a kernel pair with a hand-derived backward recorded as
// one tape entry: cross_entropy (log-softmax fused with NLL), log_softmax, softmax, mse_loss.
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

// The per-element losses for none; a 0-dim sum or mean (nan for no elements, as PyTorch) otherwise.
Tensor reduce_loss(const Tensor& per_element, double sum, std::int64_t count, Reduction reduction, DType dtype) {
  if (reduction == Reduction::None) return per_element;
  return full({}, reduction == Reduction::Sum ? sum : sum / static_cast<double>(count), dtype);
}

// --- cross_entropy: N samples, C classes ------------------------------------------------------

// Per row n, with max[n] = max_c logits[n, c] (so no exp overflows):
//   logsum[n] = log Σ_c exp(logits[n, c] − max[n]),  loss[n] = logsum[n] − (logits[n, target[n]] − max[n]).
// The shifted logits are never re-added to max, which would round away the loss's digits.
template <class T>
void cross_entropy_forward(T* loss, T* max, T* logsum, const T* logits, const std::int64_t* target, std::int64_t N,
                           std::int64_t C) {
  parallel_for(0, N, N * C, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t n = lo; n < hi; ++n) {
      const T* row = logits + n * C;
      T mx = -std::numeric_limits<T>::infinity();
      for (std::int64_t c = 0; c < C; ++c) mx = std::max(mx, row[c]);
      T s = 0;
      for (std::int64_t c = 0; c < C; ++c) s += std::exp(row[c] - mx);
      max[n] = mx;
      logsum[n] = std::log(s);
      loss[n] = logsum[n] - (row[target[n]] - mx);
    }
  });
}

// p = softmax(logits) = exp(logits − max − logsum), loss[n] = logsum[n] − (logits[n, target[n]] − max[n]):
//   dlogits[n, c] = dloss[n] · (p[n, c] − [c == target[n]]),
// with dloss[n] = g[n] (none: stride 1) or g·scale for every n (sum: 1, mean: 1/N; stride 0).
template <class T>
void cross_entropy_backward(T* dlogits, const T* dloss, std::int64_t dloss_stride, T scale, const T* logits,
                            const T* max, const T* logsum, const std::int64_t* target, std::int64_t N, std::int64_t C) {
  parallel_for(0, N, N * C, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t n = lo; n < hi; ++n) {
      const T g = dloss[n * dloss_stride] * scale, mx = max[n], ls = logsum[n];
      const T* row = logits + n * C;
      T* drow = dlogits + n * C;
      for (std::int64_t c = 0; c < C; ++c) drow[c] = g * std::exp((row[c] - mx) - ls);
      drow[target[n]] -= g;
    }
  });
}

// --- softmax and log_softmax: x viewed as [outer, D, inner], normalized along D -----------------
// Each (outer, inner) line is strided by `inner`; the inner positions are processed together so
// every pass reads rows of `inner` contiguous values.

// With max over D (so no exp overflows) and sum = Σ_D exp(x − max):
//   log_softmax: y = (x − max) − log sum,  softmax: y = exp(x − max) / sum.
template <class T>
void softmax_forward(T* y, const T* x, std::int64_t outer, std::int64_t D, std::int64_t inner, bool log) {
  parallel_for(0, outer, outer * D * inner, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<T> mx(static_cast<std::size_t>(inner)), sum(static_cast<std::size_t>(inner));
    for (std::int64_t o = lo; o < hi; ++o) {
      const T* xo = x + o * D * inner;
      T* yo = y + o * D * inner;
      std::fill(mx.begin(), mx.end(), -std::numeric_limits<T>::infinity());
      std::fill(sum.begin(), sum.end(), T(0));
      for (std::int64_t d = 0; d < D; ++d)
        for (std::int64_t i = 0; i < inner; ++i) mx[i] = std::max(mx[i], xo[d * inner + i]);
      for (std::int64_t d = 0; d < D; ++d)
        for (std::int64_t i = 0; i < inner; ++i) sum[i] += std::exp(xo[d * inner + i] - mx[i]);
      for (std::int64_t i = 0; i < inner; ++i) sum[i] = log ? std::log(sum[i]) : T(1) / sum[i];
      for (std::int64_t d = 0; d < D; ++d)
        for (std::int64_t i = 0; i < inner; ++i) {
          T v = xo[d * inner + i] - mx[i];
          yo[d * inner + i] = log ? v - sum[i] : std::exp(v) * sum[i];
        }
    }
  });
}

// From the output y, summing along D:
//   log_softmax: y = x − lse, ∂lse/∂x = exp(y)   ⇒  dx = dy − exp(y) · Σ_D dy
//   softmax:     ∂y_j/∂x_k = y_j ([j = k] − y_k) ⇒  dx = y · (dy − Σ_D dy·y)
template <class T>
void softmax_backward(T* dx, const T* dy, const T* y, std::int64_t outer, std::int64_t D, std::int64_t inner,
                      bool log) {
  parallel_for(0, outer, outer * D * inner, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<T> sum(static_cast<std::size_t>(inner));
    for (std::int64_t o = lo; o < hi; ++o) {
      const std::int64_t base = o * D * inner;
      std::fill(sum.begin(), sum.end(), T(0));
      for (std::int64_t d = 0; d < D; ++d)
        for (std::int64_t i = 0; i < inner; ++i) {
          std::int64_t j = base + d * inner + i;
          sum[i] += log ? dy[j] : dy[j] * y[j];
        }
      for (std::int64_t d = 0; d < D; ++d)
        for (std::int64_t i = 0; i < inner; ++i) {
          std::int64_t j = base + d * inner + i;
          dx[j] = log ? dy[j] - std::exp(y[j]) * sum[i] : y[j] * (dy[j] - sum[i]);
        }
    }
  });
}

// --- mse_loss: M elements ----------------------------------------------------------------------

// d = input − target; loss = d² per element, returned for none and summed (in double) otherwise.
template <class T>
double mse_forward(T* loss, const T* input, const T* target, std::int64_t M) {
  double s = 0;
  for (std::int64_t i = 0; i < M; ++i) {
    T d = input[i] - target[i];
    if (loss) loss[i] = d * d;
    s += static_cast<double>(d * d);
  }
  return s;
}

// loss = Σ (input − target)² · scale:  dinput = 2·(input − target)·dloss·scale,  dtarget = −dinput,
// with dloss per element (none: stride 1) or one value (stride 0) and scale 1/M for mean.
template <class T>
void mse_backward(T* dinput, T* dtarget, const T* dloss, std::int64_t dloss_stride, T scale, const T* input,
                  const T* target, std::int64_t M) {
  parallel_for(0, M, M, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i) {
      T d = T(2) * (input[i] - target[i]) * dloss[i * dloss_stride] * scale;
      if (dinput) dinput[i] = d;
      if (dtarget) dtarget[i] = -d;
    }
  });
}

// A loss's gradient: contiguous, with its stride (0 when one value stands for all) and scale.
struct LossGrad {
  Tensor g;
  std::int64_t stride;
  double scale;
};

LossGrad loss_grad(const Tensor& g, Reduction reduction, std::int64_t count) {
  if (reduction == Reduction::None) return {native::contiguous(g), 1, 1.0};
  return {native::contiguous(g), 0, reduction == Reduction::Mean ? 1.0 / static_cast<double>(count) : 1.0};
}

// [outer, D, inner] for a normalization along `dim`; a 0-dim tensor is one line of one value.
void split_at(const Tensor& x, std::int64_t dim, std::int64_t& outer, std::int64_t& D, std::int64_t& inner) {
  outer = D = inner = 1;
  if (x.dim() == 0) return;
  for (std::int64_t d = 0; d < x.dim(); ++d) (d < dim ? outer : d == dim ? D : inner) *= x.sizes()[d];
}

Tensor softmax_op(const Tensor& x, std::int64_t dim, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  TG_CHECK(is_floating(x.dtype()), "[{}] expected a floating point input, got {}", op, dtype_name(x.dtype()));
  std::int64_t d = wrap_dim(dim, x.dim(), op), outer, D, inner;
  split_at(x, d, outer, D, inner);
  Tensor xc = native::contiguous(x);
  Tensor y = Tensor::empty(x.sizes(), x.dtype());
  dispatch_floating(x.dtype(), [&]<class T>() {
    softmax_forward<T>(y.data_ptr<T>(), xc.data_ptr<T>(), outer, D, inner, log);
  });
  return autograd::record(
      log ? "LogSoftmaxBackward0" : "SoftmaxBackward0", y, {x},
      [y_saved = native::alias(y), outer, D, inner, log](const Tensor& g) {
        Tensor dy = native::contiguous(g);
        Tensor dx = Tensor::empty(dy.sizes(), dy.dtype());
        dispatch_floating(dy.dtype(), [&]<class T>() {
          softmax_backward<T>(dx.data_ptr<T>(), dy.data_ptr<T>(), y_saved.data_ptr<T>(), outer, D, inner, log);
        });
        return Grads{dx};
      },
      {y});
}

}  // namespace

// --- the differentiable functions ----------------------------------------------------------------

Tensor cross_entropy(const Tensor& logits, const Tensor& target, Reduction reduction) {
  TG_CHECK(logits.dim() == 2, "[cross_entropy] expected logits of shape [N, C], got {}", logits.sizes());
  TG_CHECK(is_floating(logits.dtype()), "[cross_entropy] expected floating point logits, got {}",
           dtype_name(logits.dtype()));
  TG_CHECK(target.dtype() == kInt64, "[cross_entropy] expected target of dtype int64 (class indices), got {}",
           dtype_name(target.dtype()));
  const std::int64_t N = logits.size(0), C = logits.size(1);
  TG_CHECK(target.sizes() == Shape{N}, "[cross_entropy] expected target of shape [{}] for logits {}, got {}", N,
           logits.sizes(), target.sizes());
  Tensor tc = native::contiguous(target);
  const std::int64_t* t = tc.data_ptr<std::int64_t>();
  for (std::int64_t n = 0; n < N; ++n)
    TG_CHECK(t[n] >= 0 && t[n] < C, "[cross_entropy] target {} is out of bounds for {} classes", t[n], C);

  Tensor xc = native::contiguous(logits);
  Tensor loss = Tensor::empty({N}, logits.dtype());
  Tensor max = Tensor::empty({N}, logits.dtype()), logsum = Tensor::empty({N}, logits.dtype());
  double sum = 0;
  dispatch_floating(logits.dtype(), [&]<class T>() {
    cross_entropy_forward<T>(loss.data_ptr<T>(), max.data_ptr<T>(), logsum.data_ptr<T>(), xc.data_ptr<T>(), t, N, C);
    const T* l = loss.data_ptr<T>();
    for (std::int64_t n = 0; n < N; ++n) sum += static_cast<double>(l[n]);
  });
  Tensor out = reduce_loss(loss, sum, N, reduction, logits.dtype());
  return autograd::record(
      "NllLossBackward0", out, {logits},
      [xc, tc, max, logsum, reduction, N, C](const Tensor& g) {
        LossGrad lg = loss_grad(g, reduction, N);
        Tensor dlogits = Tensor::empty({N, C}, xc.dtype());
        dispatch_floating(xc.dtype(), [&]<class T>() {
          cross_entropy_backward<T>(dlogits.data_ptr<T>(), lg.g.data_ptr<T>(), lg.stride, static_cast<T>(lg.scale),
                                    xc.data_ptr<T>(), max.data_ptr<T>(), logsum.data_ptr<T>(),
                                    tc.data_ptr<std::int64_t>(), N, C);
        });
        return Grads{dlogits};
      },
      {logits, target});
}

Tensor log_softmax(const Tensor& x, std::int64_t dim) { return softmax_op(x, dim, true); }
Tensor softmax(const Tensor& x, std::int64_t dim) { return softmax_op(x, dim, false); }

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  TG_CHECK(input.sizes() == target.sizes(), "[mse_loss] expected input and target of one shape, got {} and {}",
           input.sizes(), target.sizes());
  TG_CHECK(is_floating(input.dtype()) && input.dtype() == target.dtype(),
           "[mse_loss] expected input and target of one floating point dtype, got {} and {}",
           dtype_name(input.dtype()), dtype_name(target.dtype()));
  const std::int64_t M = input.numel();
  Tensor ic = native::contiguous(input), tc = native::contiguous(target);
  Tensor loss = reduction == Reduction::None ? Tensor::empty(input.sizes(), input.dtype()) : Tensor();
  double sum = 0;
  dispatch_floating(input.dtype(), [&]<class T>() {
    sum = mse_forward<T>(reduction == Reduction::None ? loss.data_ptr<T>() : nullptr, ic.data_ptr<T>(),
                         tc.data_ptr<T>(), M);
  });
  Tensor out = reduce_loss(loss, sum, M, reduction, input.dtype());
  const bool gi = input.requires_grad(), gt = target.requires_grad();
  return autograd::record(
      "MseLossBackward0", out, {input, target},
      [ic, tc, gi, gt, reduction, M](const Tensor& g) {
        LossGrad lg = loss_grad(g, reduction, M);
        Tensor di = gi ? Tensor::empty(ic.sizes(), ic.dtype()) : Tensor();
        Tensor dt = gt ? Tensor::empty(ic.sizes(), ic.dtype()) : Tensor();
        dispatch_floating(ic.dtype(), [&]<class T>() {
          mse_backward<T>(gi ? di.data_ptr<T>() : nullptr, gt ? dt.data_ptr<T>() : nullptr, lg.g.data_ptr<T>(),
                          lg.stride, static_cast<T>(lg.scale), ic.data_ptr<T>(), tc.data_ptr<T>(), M);
        });
        return Grads{di, dt};
      });
}

}  // namespace tg
