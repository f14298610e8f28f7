// The functional layer ops, each with a hand-derived backward recorded as one tape entry:
// linear, conv2d, batch_norm, pooling, losses, dropout. Modules (layers/*.h) call these.
// Layer: layers; must not know optimizers.
#pragma once

#include <cstdint>
#include <optional>

#include "tapegrad/core/tensor.h"

namespace tg {

// A 2-D size (kernel, stride, padding): one number for both dims, or {h, w}.
struct Size2 {
  Size2(std::int64_t both) : h(both), w(both) {}  // NOLINT: implicit on purpose
  Size2(std::int64_t h_, std::int64_t w_) : h(h_), w(w_) {}
  std::int64_t h, w;
  bool operator==(const Size2&) const = default;
};

// y = x · wᵀ + b.  x [*, in], weight [out, in], bias [out] or undefined.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});

// x [N, C, H, W], weight [F, C/groups, KH, KW], bias [F] or undefined -> [N, F, OH, OW],
// OH = (H + 2·pad_h − KH) / stride_h + 1.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = {}, Size2 stride = 1, Size2 padding = 0,
              std::int64_t groups = 1);

// x [N, C, H, W] -> [N, C, OH, OW]; stride defaults to the kernel. avg_pool2d counts padding
// zeros in the average (PyTorch's count_include_pad=True); max_pool2d saves its argmax.
Tensor avg_pool2d(const Tensor& x, Size2 kernel, std::optional<Size2> stride = std::nullopt, Size2 padding = 0);
Tensor max_pool2d(const Tensor& x, Size2 kernel, std::optional<Size2> stride = std::nullopt, Size2 padding = 0);

// PyTorch's batch_norm for x [N, C], [N, C, L] or [N, C, H, W]. Training: normalize with the
// batch's biased variance and, when running_mean/running_var are defined, update them in place
// as (1 − momentum)·running + momentum·batch (running_var with the unbiased variance). Eval:
// normalize with the running statistics. weight and bias [C] may be undefined (no affine).
// Throws "Expected more than 1 value per channel when training" for one value per channel.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum = 0.1, double eps = 1e-5);

enum class Reduction { None, Mean, Sum };

// Fused log-softmax + NLL. logits [N, C], target int64 [N] of class indices in [0, C).
Tensor cross_entropy(const Tensor& logits, const Tensor& target, Reduction reduction = Reduction::Mean);
Tensor log_softmax(const Tensor& x, std::int64_t dim);
Tensor softmax(const Tensor& x, std::int64_t dim);
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);

// Zeroes each element with probability p and scales the rest by 1/(1−p) when training;
// the identity otherwise. Draws from the global generator.
Tensor dropout(const Tensor& x, double p = 0.5, bool training = true);

}  // namespace tg
