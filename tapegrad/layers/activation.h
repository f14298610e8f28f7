// The activation modules: elementwise, parameter-free, differentiable through the tensor ops
// (sigmoid, tanh, relu in autograd/ops.cpp, whose backwards run from the saved output).
// Layer: layers.
#pragma once

#include "tapegrad/layers/module.h"

namespace tg::nn {

class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& input) override { return input.sigmoid(); }
  std::string name() const override { return "Sigmoid"; }
};

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& input) override { return input.relu(); }
  std::string name() const override { return "ReLU"; }
};

class Tanh : public Module {
 public:
  Tensor forward(const Tensor& input) override { return input.tanh(); }
  std::string name() const override { return "Tanh"; }
};

}  // namespace tg::nn
