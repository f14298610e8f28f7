// nn::AvgPool2d and nn::MaxPool2d over [N, C, H, W]; the stride defaults to the kernel.
// Layer: layers.
#pragma once

#include <optional>

#include "tapegrad/layers/functional.h"
#include "tapegrad/layers/module.h"

namespace tg::nn {

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(Size2 kernel_size, std::optional<Size2> stride = std::nullopt, Size2 padding = 0);
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "AvgPool2d"; }
  std::string extra_repr() const override;
  Size2 kernel_size, stride, padding;
};

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(Size2 kernel_size, std::optional<Size2> stride = std::nullopt, Size2 padding = 0);
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "MaxPool2d"; }
  std::string extra_repr() const override;
  Size2 kernel_size, stride, padding;
};

}  // namespace tg::nn
