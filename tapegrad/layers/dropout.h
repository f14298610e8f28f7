// dropout: zeroes elements with probability p and scales the rest by 1/(1−p) in training, the
// identity in evaluation; the function and nn::Dropout. Layer: layers.
#pragma once

#include "tapegrad/layers/module.h"

namespace tg {

// Zeroes each element with probability p and scales the rest by 1/(1−p) when training;
// the identity otherwise. Draws from the global generator.
Tensor dropout(const Tensor& x, double p = 0.5, bool training = true);

}  // namespace tg

namespace tg::nn {

// Zeroes elements with probability p in training (scaling the rest by 1/(1−p)); identity in eval.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "Dropout"; }
  std::string extra_repr() const override;
  double p;
};

}  // namespace tg::nn
