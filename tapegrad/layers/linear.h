// nn::Linear: y = x · weightᵀ + bias, weight [out, in] (PyTorch's layout), PyTorch's default
// initialization. Layer: layers.
#pragma once

#include "tapegrad/layers/module.h"

namespace tg::nn {

class Linear : public Module {
 public:
  Linear(std::int64_t in_features, std::int64_t out_features, bool bias = true);
  Tensor forward(const Tensor& input) override;
  void reset_parameters();  // kaiming_uniform_(a = √5) weight, U(±1/√in) bias
  std::string name() const override { return "Linear"; }
  std::string extra_repr() const override;

  std::int64_t in_features, out_features;
  Tensor weight, bias;  // bias undefined without one
};

}  // namespace tg::nn
