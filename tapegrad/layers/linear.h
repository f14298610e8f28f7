// linear: y = x · weightᵀ + bias with weight [out, in] (PyTorch's layout); the function
// (hand-derived backward, one tape entry) and nn::Linear with PyTorch's default initialization.
// Layer: layers.
#pragma once

#include "tapegrad/layers/module.h"

namespace tg {

// y = x · wᵀ + b.  x [*, in], weight [out, in], bias [out] or undefined.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});

}  // namespace tg

namespace tg::nn {

class Linear : public Module {
 public:
  Linear(std::int64_t in_features, std::int64_t out_features, bool bias = true);
  Tensor forward(const Tensor& input) override;
  void reset_parameters();  // kaiming_uniform_(a = √5) weight, U(±1/√in) bias
  std::string name() const override { return "Linear"; }
  std::shared_ptr<Module> clone() const override {
    return clone_as(*this, [](Linear& m, const Rebind& r) { r(m.weight); r(m.bias); });
  }
  std::string extra_repr() const override;

  std::int64_t in_features, out_features;
  Tensor weight, bias;  // bias undefined without one
};

}  // namespace tg::nn
