// Loss modules: CrossEntropyLoss (int64 class targets) and MSELoss; called as loss(input,
// target). Layer: layers.
#pragma once

#include "tapegrad/layers/functional.h"
#include "tapegrad/layers/module.h"

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
