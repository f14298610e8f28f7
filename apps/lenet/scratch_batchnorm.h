// The seed notebook's batch normalization written from scratch, as a user writes it: composed
// tensor ops (the tape derives the gradient), moving averages with d2l's momentum convention
// (0.9 keeps the old value), prediction mode chosen by is_grad_enabled(). Layer: apps.
#pragma once

#include <tuple>

#include <tapegrad.h>

namespace lenet {

inline std::tuple<tg::Tensor, tg::Tensor, tg::Tensor> batch_norm_scratch(
    const tg::Tensor& X, const tg::Tensor& gamma, const tg::Tensor& beta, const tg::Tensor& moving_mean,
    const tg::Tensor& moving_var, double eps, double momentum) {
  if (!tg::is_grad_enabled()) {  // prediction: the moving statistics
    tg::Tensor X_hat = (X - moving_mean) / (moving_var + eps).sqrt();
    return {gamma * X_hat + beta, moving_mean, moving_var};
  }
  TG_CHECK(X.dim() == 2 || X.dim() == 4, "[BatchNorm] expected 2D or 4D input, got shape {}", X.sizes());
  tg::Shape dims = X.dim() == 2 ? tg::Shape{0} : tg::Shape{0, 2, 3};
  tg::Tensor mean = X.mean(dims, /*keepdim=*/true);
  tg::Tensor var = (X - mean).pow(2).mean(dims, /*keepdim=*/true);
  tg::Tensor X_hat = (X - mean) / (var + eps).sqrt();
  tg::Tensor new_mean = momentum * moving_mean + (1.0 - momentum) * mean;
  tg::Tensor new_var = momentum * moving_var + (1.0 - momentum) * var;
  return {gamma * X_hat + beta, new_mean.detach(), new_var.detach()};
}

// d2l's BatchNorm(num_features, num_dims): parameters gamma/beta and buffers moving_mean/var of
// shape [1, C] (num_dims 2) or [1, C, 1, 1] (num_dims 4).
class ScratchBatchNorm : public tg::nn::Module {
 public:
  ScratchBatchNorm(std::int64_t num_features, int num_dims) : num_features_(num_features) {
    tg::Shape shape = num_dims == 2 ? tg::Shape{1, num_features} : tg::Shape{1, num_features, 1, 1};
    gamma = register_parameter("gamma", tg::ones(shape));
    beta = register_parameter("beta", tg::zeros(shape));
    moving_mean = register_buffer("moving_mean", tg::zeros(shape));
    moving_var = register_buffer("moving_var", tg::ones(shape));
  }
  tg::Tensor forward(const tg::Tensor& X) override {
    auto [Y, mean, var] = batch_norm_scratch(X, gamma, beta, moving_mean, moving_var, 1e-5, 0.9);
    if (tg::is_grad_enabled()) {
      moving_mean.copy_(mean);
      moving_var.copy_(var);
    }
    return Y;
  }
  std::string name() const override { return "BatchNorm"; }
  std::string extra_repr() const override { return std::to_string(num_features_); }

  tg::Tensor gamma, beta, moving_mean, moving_var;

 private:
  std::int64_t num_features_;
};

}  // namespace lenet
