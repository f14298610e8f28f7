// Inference with batch normalization folded into the layer before it (PyTorch's
// torch.nn.utils.fusion): an eval-mode BatchNorm is an affine map per channel, so a Conv2d or
// Linear followed by one is a single Conv2d or Linear with rescaled weights and a new bias. And
// batch norm fused with the activation after it (fuse_batchnorm_activation), and a convolution with
// the activation and average pool after it (fuse_conv_activation). Layer: layers.
#pragma once

#include "tapegrad/layers/activation.h"
#include "tapegrad/layers/batchnorm.h"
#include "tapegrad/layers/conv2d.h"
#include "tapegrad/layers/linear.h"
#include "tapegrad/layers/sequential.h"

namespace tg::nn::utils {

// PyTorch's fuse_conv_bn_eval: a new Conv2d (always with a bias, parameters in conv's dtype) equal to
// bn(conv(x)) in evaluation mode, with s = bn.weight / √(bn.running_var + bn.eps) per filter:
//   weight = conv.weight · s,   bias = (conv.bias − bn.running_mean) · s + bn.bias
// (a missing conv bias counts as 0, a missing bn affine as weight 1 and bias 0). The inputs are not
// changed, and the random generator is not drawn from. Throws when either module is in training
// mode ("fusion only for eval"), when bn tracks no running statistics, or when the sizes disagree.
Conv2d fuse_conv_bn_eval(const Conv2d& conv, const BatchNorm2d& bn);

// The same for a Linear followed by a BatchNorm1d (PyTorch's fuse_linear_bn_eval):
//   weight = linear.weight · s (per output row),   bias = (linear.bias − bn.running_mean) · s + bn.bias.
Linear fuse_linear_bn_eval(const Linear& linear, const BatchNorm1d& bn);

// A new eval-mode Sequential in which every Conv2d directly followed by a BatchNorm2d, and every
// Linear directly followed by a BatchNorm1d, is one fused layer, recursing into nested Sequentials
// (a pair split across a nested Sequential's boundary stays as it is, as does a BatchNorm without
// running statistics). Children are renumbered "0", "1", ...; the other layers are the source's own
// modules, shared as a Module copy shares its tensors. The source is not changed. Throws when the
// model (or any module in it) is in training mode: call eval() first.
Sequential fold_batchnorm(const Sequential& model);

// Opt-in fusion for training and inference alike: a new Sequential in which every BatchNorm1d or
// BatchNorm2d directly followed by a Sigmoid or ReLU is one BatchNormAct1d / BatchNormAct2d
// (layers/batchnorm.h), which for a BatchNorm2d takes in an AvgPool2d with kernel 2, stride 2 and no
// padding after the activation too (avg_pool_2x2), and the places of the activation and the pool
// hold an Identity each, as PyTorch's fuse_modules does, so that children keep their names and the
// state_dict its keys. Recurses into nested
// Sequentials. Every module is the source's own or shares its tensors (parameters, buffers,
// gradients): an optimizer made over either model trains both, and the source is not changed. The
// result starts in the mode of the source's modules; the fused ones are its own, so switch modes
// through the result (train()/eval() on the source does not reach them).
Sequential fuse_batchnorm_activation(const Sequential& model);

// Opt-in fusion for training, fuse_batchnorm_activation's and more: a new Sequential in which every
// Conv2d (exactly, not a subclass) directly followed by a BatchNorm2d and a Sigmoid or ReLU, and
// those by an AvgPool2d with kernel 2, stride 2 and no padding when there is one, is one
// ConvBatchNormAct2d (layers/batchnorm.h) in the Conv2d's place, with an Identity in the place of each
// of the others; every other batch norm and activation pair fuses as fuse_batchnorm_activation fuses
// it. As with PyTorch's fuse_modules, the fused layer's parameters and buffers are its children's,
// "0" (the Conv2d) and "1" (the BatchNormAct2d): state_dict keys of a fused layer at "0" are
// "0.0.weight", "0.1.running_mean" and so on. The fused modules share the source's tensors (an
// optimizer made over either model trains both; save the source's state_dict for its own keys), the
// source is not changed, and the result starts in the source modules' mode (switch it through the
// result). Recurses into nested Sequentials.
Sequential fuse_conv_batchnorm_activation(const Sequential& model);

// Opt-in fusion for inference: a new Sequential in which every Conv2d (exactly, not a subclass)
// directly followed by a Sigmoid or ReLU, and that by an AvgPool2d with kernel 2, stride 2 and no
// padding when there is one, is one ConvAct2d (layers/conv2d.h), and the places of the activation and
// the pool hold an Identity each, as PyTorch's fuse_modules does: children keep their names and the
// state_dict its keys. Recurses into nested Sequentials (a pattern split across a nested Sequential's
// boundary stays as it is). The fused layers share the Conv2d's tensors, the other modules are the
// source's own, and the source is not changed. The result computes what the source does in every
// mode: ConvAct2d runs the plain functions whenever a gradient is wanted, its fused kernel otherwise.
Sequential fuse_conv_activation(const Sequential& model);

}  // namespace tg::nn::utils
