// conv2d: 2-D convolution over [N, C, H, W] with weight [out, in/groups, kh, kw]; the function
// (hand-derived backward, one tape entry) and nn::Conv2d with PyTorch's default initialization.
// Also conv2d_act and nn::ConvAct2d: the convolution with the activation (and a 2×2 average pool)
// after it fused into its kernel, for inference. Layer: layers.
#pragma once

#include "tapegrad/layers/module.h"
#include "tapegrad/layers/size2.h"

namespace tg {

// x [N, C, H, W] (or unbatched [C, H, W] -> [F, OH, OW]), weight [F, C/groups, KH, KW], bias [F] or
// undefined -> [N, F, OH, OW],
// OH = (H + 2·pad_h − KH) / stride_h + 1.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = {}, Size2 stride = 1, Size2 padding = 0,
              std::int64_t groups = 1);

// The activations conv2d_act fuses into the convolution.
enum class ConvActivation { None, Sigmoid, ReLU };
const char* activation_name(ConvActivation act);  // "None", "Sigmoid", "ReLU"

// act(conv2d(x, weight, bias, stride, padding, groups)) and then, with avg_pool_2x2,
// avg_pool2d(·, 2, 2): one op for inference. When no input needs a gradient (or grad mode is off) a
// float32 stride-1 convolution applies the activation and the pooling to its accumulators in
// registers (layers/conv2d_direct.h), so the convolution's output is never written; the values are
// those of the three functions, to rounding. Otherwise (a gradient wanted, float64, a stride) it runs
// the three functions, recorded on the tape as each records. Arguments and errors as conv2d's; with
// avg_pool_2x2, a convolution output smaller than 2×2 throws ("[conv2d_act] ...").
Tensor conv2d_act(const Tensor& x, const Tensor& weight, const Tensor& bias, Size2 stride, Size2 padding,
                  std::int64_t groups, ConvActivation act, bool avg_pool_2x2 = false);

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

  // Throws "[<module>] expected input of shape [N, C, H, W] or [C, H, W] ..." unless input fits.
  void check_input(const Tensor& input, const char* module) const;
};

// A Conv2d followed by an activation and, when avg_pool_2x2, by AvgPool2d(2) (kernel 2, stride 2, no
// padding), as one layer (conv2d_act): what the opt-in pass nn::utils::fuse_conv_activation
// (layers/fusion.h) puts in the Conv2d's place. Made from a Conv2d it shares its tensors and takes its
// mode (a Module copy), so parameters and state_dict keys are the Conv2d's. Prints as
// "ConvAct2d(1, 6, kernel_size=(5, 5), stride=(1, 1), activation=Sigmoid, avg_pool2d=2)".
class ConvAct2d : public Conv2d {
 public:
  ConvAct2d(const Conv2d& conv, ConvActivation act, bool avg_pool_2x2_ = false)
      : Conv2d(conv), activation(act), avg_pool_2x2(avg_pool_2x2_) {}
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "ConvAct2d"; }
  std::shared_ptr<Module> clone() const override {
    return clone_as(*this, [](ConvAct2d& m, const Rebind& r) { r(m.weight); r(m.bias); });
  }
  std::string extra_repr() const override;

  ConvActivation activation;
  bool avg_pool_2x2;
};

}  // namespace tg::nn
