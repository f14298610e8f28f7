// conv2d: 2-D convolution over [N, C, H, W] with weight [out, in/groups, kh, kw]; the function
// (hand-derived backward, one tape entry) and nn::Conv2d with PyTorch's default initialization.
// Layer: layers.
#pragma once

#include "tapegrad/layers/module.h"
#include "tapegrad/layers/size2.h"

namespace tg {

// x [N, C, H, W] (or unbatched [C, H, W] -> [F, OH, OW]), weight [F, C/groups, KH, KW], bias [F] or
// undefined -> [N, F, OH, OW],
// OH = (H + 2·pad_h − KH) / stride_h + 1.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = {}, Size2 stride = 1, Size2 padding = 0,
              std::int64_t groups = 1);

}  // namespace tg

namespace tg::nn {

class Conv2d : public Module {
 public:
  Conv2d(std::int64_t in_channels, std::int64_t out_channels, Size2 kernel_size, Size2 stride = 1, Size2 padding = 0,
         bool bias = true, std::int64_t groups = 1);
  Tensor forward(const Tensor& input) override;
  void reset_parameters();
  std::string name() const override { return "Conv2d"; }
  std::shared_ptr<Module> clone() const override {
    return clone_as(*this, [](Conv2d& m, const Rebind& r) { r(m.weight); r(m.bias); });
  }
  std::string extra_repr() const override;

  std::int64_t in_channels, out_channels;
  Size2 kernel_size, stride, padding;
  std::int64_t groups;
  Tensor weight, bias;
};

}  // namespace tg::nn
