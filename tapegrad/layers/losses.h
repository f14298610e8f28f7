// Losses: cross_entropy (fused log-softmax + NLL), mse_loss, and softmax / log_softmax; the
// functions (hand-derived backwards) and the modules CrossEntropyLoss and MSELoss, called as
// loss(input, target). Layer: layers.
#pragma once

#include "tapegrad/layers/module.h"

namespace tg {

enum class Reduction { None, Mean, Sum };

// Fused log-softmax + NLL. logits [N, C], target int64 [N] of class indices in [0, C).
Tensor cross_entropy(const Tensor& logits, const Tensor& target, Reduction reduction = Reduction::Mean);
Tensor log_softmax(const Tensor& x, std::int64_t dim);
Tensor softmax(const Tensor& x, std::int64_t dim);
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);

}  // namespace tg

namespace tg::nn {

class CrossEntropyLoss : public Module {
 public:
  explicit CrossEntropyLoss(Reduction r = Reduction::Mean) : reduction(r) {}
  using Module::forward;
  Tensor forward(const Tensor& input, const Tensor& target) const { return cross_entropy(input, target, reduction); }
  Tensor operator()(const Tensor& input, const Tensor& target) const { return forward(input, target); }
  std::string name() const override { return "CrossEntropyLoss"; }
  Reduction reduction;
};

class MSELoss : public Module {
 public:
  explicit MSELoss(Reduction r = Reduction::Mean) : reduction(r) {}
  using Module::forward;
  Tensor forward(const Tensor& input, const Tensor& target) const { return mse_loss(input, target, reduction); }
  Tensor operator()(const Tensor& input, const Tensor& target) const { return forward(input, target); }
  std::string name() const override { return "MSELoss"; }
  Reduction reduction;
};

}  // namespace tg::nn
