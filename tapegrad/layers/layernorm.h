// Layer normalization: the layer_norm function (hand-derived backward, one tape entry) over the
// trailing dims of its input, and nn::LayerNorm with PyTorch's semantics (statistics of each
// sample alone, the same in training and evaluation; elementwise affine weight 1, bias 0).
// Layer: layers.
#pragma once

#include "tapegrad/layers/module.h"

namespace tg {

// x [*, normalized_shape...]: each sample's last D = ∏ normalized_shape values are normalized
// with their mean and biased variance, then scaled by weight and shifted by bias (both of shape
// normalized_shape, or undefined for none). grad_fn NativeLayerNormBackward0.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = {}, const Tensor& bias = {},
                  double eps = 1e-5);

}  // namespace tg

namespace tg::nn {

struct LayerNormOptions {
  double eps = 1e-5;
  bool elementwise_affine = true;
};

class LayerNorm : public Module {
 public:
  explicit LayerNorm(Shape normalized_shape, LayerNormOptions options = {});
  explicit LayerNorm(std::int64_t size, LayerNormOptions opts = {}) : LayerNorm(Shape{size}, opts) {}
  Tensor forward(const Tensor& input) override;
  void reset_parameters();  // weight 1, bias 0
  std::string name() const override { return "LayerNorm"; }
  std::shared_ptr<Module> clone() const override {
    return clone_as(*this, [](LayerNorm& m, const Rebind& r) { r(m.weight); r(m.bias); });
  }
  std::string extra_repr() const override;

  Shape normalized_shape;
  LayerNormOptions options;
  Tensor weight, bias;  // undefined without elementwise_affine
};

}  // namespace tg::nn
