// avg_pool2d and max_pool2d over [N, C, H, W] (the stride defaults to the kernel); the functions
// (hand-derived backwards) and nn::AvgPool2d / nn::MaxPool2d. Layer: layers.
#pragma once

#include <optional>

#include "tapegrad/layers/module.h"
#include "tapegrad/layers/size2.h"

namespace tg {

// x [N, C, H, W] -> [N, C, OH, OW], or unbatched [C, H, W] -> [C, OH, OW]; stride defaults to the kernel. avg_pool2d counts padding
// zeros in the average (PyTorch's count_include_pad=True); max_pool2d saves its argmax.
Tensor avg_pool2d(const Tensor& x, Size2 kernel, std::optional<Size2> stride = std::nullopt, Size2 padding = 0);
Tensor max_pool2d(const Tensor& x, Size2 kernel, std::optional<Size2> stride = std::nullopt, Size2 padding = 0);

}  // namespace tg

namespace tg::nn {

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(Size2 kernel_size, std::optional<Size2> stride = std::nullopt, Size2 padding = 0);
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "AvgPool2d"; }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  std::string extra_repr() const override;
  Size2 kernel_size, stride, padding;
};

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(Size2 kernel_size, std::optional<Size2> stride = std::nullopt, Size2 padding = 0);
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "MaxPool2d"; }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  std::string extra_repr() const override;
  Size2 kernel_size, stride, padding;
};

}  // namespace tg::nn
