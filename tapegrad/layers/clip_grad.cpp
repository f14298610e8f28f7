// Gradient clipping: the norms accumulate in double over raw memory, one pass per gradient; the
// scale is applied in the gradient's dtype, as PyTorch computes clip_coef in it. Layer: layers.
#include "tapegrad/layers/clip_grad.h"

#include <cmath>
#include <limits>

#include "tapegrad/autograd/tape.h"
#include "tapegrad/core/native.h"

namespace tg::nn::utils {

namespace {

// One gradient's norm of order p (inf: max |g|; NaN propagates, as torch's).
double grad_norm(const Tensor& grad, double p) {
  Tensor g = native::contiguous(grad);
  return dispatch_floating(g.dtype(), [&]<class T>() {
    const T* x = g.data_ptr<T>();
    const std::int64_t n = g.numel();
    double acc = 0.0;
    if (std::isinf(p)) {
      for (std::int64_t i = 0; i < n; ++i) {
        double a = std::fabs(static_cast<double>(x[i]));
        if (std::isnan(a) || a > acc) acc = a;
        if (std::isnan(acc)) break;
      }
      return acc;
    }
    if (p == 2.0) {
      for (std::int64_t i = 0; i < n; ++i) acc += static_cast<double>(x[i]) * static_cast<double>(x[i]);
      return std::sqrt(acc);
    }
    for (std::int64_t i = 0; i < n; ++i) acc += std::pow(std::fabs(static_cast<double>(x[i])), p);
    return std::pow(acc, 1.0 / p);
  });
}

std::vector<Tensor> defined_grads(const std::vector<Tensor>& parameters) {
  std::vector<Tensor> grads;
  for (const Tensor& p : parameters)
    if (p.defined() && p.grad().defined()) grads.push_back(p.grad());
  return grads;
}

}  // namespace

double clip_grad_norm_(const std::vector<Tensor>& parameters, double max_norm, double norm_type,
                       bool error_if_nonfinite) {
  TG_CHECK(norm_type > 0.0, "[clip_grad_norm_] expected a positive norm_type (or inf), got {}", norm_type);
  TG_CHECK(max_norm >= 0.0, "[clip_grad_norm_] expected max_norm >= 0, got {}", max_norm);
  NoGradGuard no_grad;
  std::vector<Tensor> grads = defined_grads(parameters);
  if (grads.empty()) return 0.0;
  // torch.norm of the per-gradient norms: the same number as one norm over all elements.
  double total = 0.0;
  for (const Tensor& g : grads) {
    double norm = grad_norm(g, norm_type);
    if (std::isinf(norm_type)) total = (std::isnan(norm) || norm > total) ? norm : total;
    else total += norm_type == 2.0 ? norm * norm : std::pow(norm, norm_type);
  }
  if (!std::isinf(norm_type)) total = norm_type == 2.0 ? std::sqrt(total) : std::pow(total, 1.0 / norm_type);
  TG_CHECK(!error_if_nonfinite || std::isfinite(total),
           "[clip_grad_norm_] the total norm of order {} of the gradients is {}, so they cannot be clipped "
           "(error_if_nonfinite)", norm_type, total);
  for (const Tensor& g : grads) {
    dispatch_floating(g.dtype(), [&]<class T>() {
      const T coef = static_cast<T>(max_norm) / (static_cast<T>(total) + static_cast<T>(1e-6));
      if (!(coef >= T(1))) native::binary_(native::BinaryOp::Mul, g, static_cast<double>(coef));
    });
  }
  return total;
}

void clip_grad_value_(const std::vector<Tensor>& parameters, double clip_value) {
  TG_CHECK(clip_value >= 0.0, "[clip_grad_value_] expected clip_value >= 0, got {}", clip_value);
  NoGradGuard no_grad;
  for (const Tensor& g : defined_grads(parameters)) native::copy_(g, native::clamp(g, -clip_value, clip_value));
}

}  // namespace tg::nn::utils
