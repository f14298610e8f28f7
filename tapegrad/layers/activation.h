// The activations: elementwise, parameter-free modules. Sigmoid, Tanh and ReLU go through the
// tensor ops (autograd/ops.cpp); leaky_relu, gelu and silu are functions here with their kernel
// pairs in activation.cpp; Softmax and LogSoftmax wrap tg::softmax / tg::log_softmax along a dim.
// Layer: layers.
#pragma once

#include <string>

#include "tapegrad/layers/module.h"

namespace tg {

// x where x > 0, negative_slope · x elsewhere. grad_fn LeakyReluBackward0.
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
// x · Φ(x) with Φ the standard normal CDF ("none"), or PyTorch's tanh approximation ("tanh").
// Throws for any other `approximate`. grad_fn GeluBackward0.
Tensor gelu(const Tensor& x, const std::string& approximate = "none");
// x · sigmoid(x) (also called swish). grad_fn SiluBackward0.
Tensor silu(const Tensor& x);

}  // namespace tg

namespace tg::nn {

class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& input) override { return input.sigmoid(); }
  std::string name() const override { return "Sigmoid"; }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
};

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& input) override { return input.relu(); }
  std::string name() const override { return "ReLU"; }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
};

class Tanh : public Module {
 public:
  Tensor forward(const Tensor& input) override { return input.tanh(); }
  std::string name() const override { return "Tanh"; }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
};

class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(double slope = 0.01) : negative_slope(slope) {}
  Tensor forward(const Tensor& input) override { return leaky_relu(input, negative_slope); }
  std::string name() const override { return "LeakyReLU"; }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  std::string extra_repr() const override;
  double negative_slope;
};

// approximate: "none" (the exact erf form) or "tanh"; the constructor throws for anything else.
class GELU : public Module {
 public:
  explicit GELU(std::string approximate = "none");
  Tensor forward(const Tensor& input) override { return gelu(input, approximate); }
  std::string name() const override { return "GELU"; }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  std::string extra_repr() const override { return "approximate='" + approximate + "'"; }
  std::string approximate;
};

class SiLU : public Module {
 public:
  Tensor forward(const Tensor& input) override { return silu(input); }
  std::string name() const override { return "SiLU"; }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
};

// Normalizes along `dim` (negative counts from the end), as torch.nn.Softmax(dim).
class Softmax : public Module {
 public:
  explicit Softmax(std::int64_t dim_) : dim(dim_) {}
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "Softmax"; }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  std::string extra_repr() const override;
  std::int64_t dim;
};

class LogSoftmax : public Module {
 public:
  explicit LogSoftmax(std::int64_t dim_) : dim(dim_) {}
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "LogSoftmax"; }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  std::string extra_repr() const override;
  std::int64_t dim;
};

// Returns its input, the very tensor (a placeholder, e.g. for a skipped block).
class Identity : public Module {
 public:
  Tensor forward(const Tensor& input) override { return input; }
  std::string name() const override { return "Identity"; }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
};

}  // namespace tg::nn
