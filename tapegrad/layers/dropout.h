// dropout: zeroes elements (dropout) or whole channels (dropout1d, dropout2d) with probability p
// and scales the rest by 1/(1−p) in training, the identity in evaluation; the functions and
// nn::Dropout, Dropout1d, Dropout2d. Layer: layers.
#pragma once

#include "tapegrad/layers/module.h"

namespace tg {

// Zeroes each element with probability p and scales the rest by 1/(1−p) when training;
// the identity otherwise. Draws from the global generator.
Tensor dropout(const Tensor& x, double p = 0.5, bool training = true);
// Channel-wise: x [N, C, L] or unbatched [C, L]; each (sample, channel) row is zeroed whole.
Tensor dropout1d(const Tensor& x, double p = 0.5, bool training = true);
// Channel-wise: x [N, C, H, W]; each (sample, channel) plane is zeroed whole. A 3-D input is
// taken as [N, C, L], as PyTorch 1.13 takes it (not as an unbatched [C, H, W]).
Tensor dropout2d(const Tensor& x, double p = 0.5, bool training = true);

}  // namespace tg

namespace tg::nn {

// Zeroes elements with probability p in training (scaling the rest by 1/(1−p)); identity in eval.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "Dropout"; }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  std::string extra_repr() const override;
  double p;

 protected:
  Dropout(double p, const char* module);  // names `module` when p is out of range
};

// dropout1d in training: input [N, C, L] or [C, L].
class Dropout1d : public Dropout {
 public:
  explicit Dropout1d(double p = 0.5);
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "Dropout1d"; }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
};

// dropout2d in training: input [N, C, H, W] (or [N, C, L], as PyTorch 1.13).
class Dropout2d : public Dropout {
 public:
  explicit Dropout2d(double p = 0.5);
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "Dropout2d"; }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
};

}  // namespace tg::nn
