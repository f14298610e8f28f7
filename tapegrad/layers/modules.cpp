// The layer modules: parameters and buffers with PyTorch's default initialization, shape checks
// named after the layer, and forward through the functional ops. Layer: layers.
#include <cmath>

#include "tapegrad/autograd/tape.h"
#include "tapegrad/core/native.h"
#include "tapegrad/layers/activation.h"
#include "tapegrad/layers/batchnorm.h"
#include "tapegrad/layers/conv2d.h"
#include "tapegrad/layers/init.h"
#include "tapegrad/layers/linear.h"
#include "tapegrad/layers/pooling.h"
#include "tapegrad/layers/sequential.h"

namespace tg::nn {

namespace {

std::string size2(const Size2& s) { return fmt::format("({}, {})", s.h, s.w); }

// PyTorch's reset_parameters for Linear and Conv2d: kaiming_uniform_(a = √5) for the weight,
// then U(−1/√fan_in, 1/√fan_in) for the bias.
void default_init(const Tensor& weight, const Tensor& bias) {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    double fan_in = static_cast<double>(init::fan_in_and_fan_out(weight).first);
    double bound = fan_in > 0 ? 1.0 / std::sqrt(fan_in) : 0.0;
    init::uniform_(bias, -bound, bound);
  }
}

}  // namespace

// --- Linear -----------------------------------------------------------------------------------

Linear::Linear(std::int64_t in, std::int64_t out, bool with_bias) : in_features(in), out_features(out) {
  TG_CHECK(in >= 0 && out >= 0, "[Linear] expected non-negative features, got in_features={}, out_features={}", in,
           out);
  weight = register_parameter("weight", empty({out, in}));
  if (with_bias) bias = register_parameter("bias", empty({out}));
  reset_parameters();
}

void Linear::reset_parameters() { default_init(weight, bias); }

Tensor Linear::forward(const Tensor& input) {
  TG_CHECK(input.dim() >= 1 && input.size(-1) == in_features,
           "[Linear] expected input of shape [*, {}], got {}", in_features, input.sizes());
  return linear(input, weight, bias);
}

std::string Linear::extra_repr() const {
  return fmt::format("in_features={}, out_features={}, bias={}", in_features, out_features,
                     bias.defined() ? "True" : "False");
}

// --- Conv2d -----------------------------------------------------------------------------------

Conv2d::Conv2d(std::int64_t in, std::int64_t out, Size2 kernel, Size2 stride_, Size2 padding_, bool with_bias,
               std::int64_t groups_)
    : in_channels(in), out_channels(out), kernel_size(kernel), stride(stride_), padding(padding_), groups(groups_) {
  TG_CHECK(groups > 0 && in % groups == 0 && out % groups == 0,
           "[Conv2d] in_channels ({}) and out_channels ({}) must be divisible by groups ({})", in, out, groups);
  TG_CHECK(kernel.h > 0 && kernel.w > 0 && stride.h > 0 && stride.w > 0 && padding.h >= 0 && padding.w >= 0,
           "[Conv2d] expected positive kernel_size and stride and non-negative padding, got kernel_size={}, "
           "stride={}, padding={}", size2(kernel), size2(stride), size2(padding));
  weight = register_parameter("weight", empty({out, in / groups, kernel.h, kernel.w}));
  if (with_bias) bias = register_parameter("bias", empty({out}));
  reset_parameters();
}

void Conv2d::reset_parameters() { default_init(weight, bias); }

Tensor Conv2d::forward(const Tensor& input) {
  TG_CHECK(input.dim() == 4 && input.size(1) == in_channels,
           "[Conv2d] expected input of shape [N, {}, H, W], got {}", in_channels, input.sizes());
  return conv2d(input, weight, bias, stride, padding, groups);
}

std::string Conv2d::extra_repr() const {
  std::string s = fmt::format("{}, {}, kernel_size={}, stride={}", in_channels, out_channels, size2(kernel_size),
                              size2(stride));
  if (padding != Size2(0)) s += ", padding=" + size2(padding);
  if (groups != 1) s += fmt::format(", groups={}", groups);
  if (!bias.defined()) s += ", bias=False";
  return s;
}

// --- BatchNorm --------------------------------------------------------------------------------

BatchNormBase::BatchNormBase(std::int64_t features, BatchNormOptions opts) : num_features(features), options(opts) {
  TG_CHECK(features > 0, "[BatchNorm] expected a positive num_features, got {}", features);
  if (options.affine) {
    weight = register_parameter("weight", empty({features}));
    bias = register_parameter("bias", empty({features}));
  }
  if (options.track_running_stats) {
    running_mean = register_buffer("running_mean", empty({features}));
    running_var = register_buffer("running_var", empty({features}));
    num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, kInt64));
  }
  reset_parameters();
}

void BatchNormBase::reset_running_stats() {
  if (!options.track_running_stats) return;
  NoGradGuard no_grad;
  native::fill_(running_mean, 0);
  native::fill_(running_var, 1);
  native::fill_(num_batches_tracked, 0);
}

void BatchNormBase::reset_parameters() {
  reset_running_stats();
  if (options.affine) {
    init::ones_(weight);
    init::zeros_(bias);
  }
}

Tensor BatchNormBase::forward(const Tensor& input) {
  check_input(input);
  TG_CHECK(input.size(1) == num_features, "[{}] expected {} channels (dim 1), got input of shape {}", name(),
           num_features, input.sizes());
  double momentum = options.momentum.value_or(0.0);
  if (is_training() && options.track_running_stats) {
    NoGradGuard no_grad;
    native::binary_(native::BinaryOp::Add, num_batches_tracked, 1);
    if (!options.momentum) momentum = 1.0 / static_cast<double>(num_batches_tracked.item<std::int64_t>());
  }
  // Batch statistics in training, and in evaluation too when no running statistics are kept.
  bool use_batch_stats = is_training() || !options.track_running_stats;
  return batch_norm(input, running_mean, running_var, weight, bias, use_batch_stats, momentum, options.eps);
}

std::string BatchNormBase::extra_repr() const {
  std::string m = options.momentum ? fmt::format("{}", *options.momentum) : "None";
  return fmt::format("{}, eps={}, momentum={}, affine={}, track_running_stats={}", num_features, options.eps, m,
                     options.affine ? "True" : "False",
                     options.track_running_stats ? "True" : "False");
}

BatchNorm1d::BatchNorm1d(std::int64_t features, BatchNormOptions opts) : BatchNormBase(features, opts) {}

void BatchNorm1d::check_input(const Tensor& input) const {
  TG_CHECK(input.dim() == 2 || input.dim() == 3, "[BatchNorm1d] expected 2D or 3D input (got {}D input of shape {})",
           input.dim(), input.sizes());
}

BatchNorm2d::BatchNorm2d(std::int64_t features, BatchNormOptions opts) : BatchNormBase(features, opts) {}

void BatchNorm2d::check_input(const Tensor& input) const {
  TG_CHECK(input.dim() == 4, "[BatchNorm2d] expected 4D input (got {}D input of shape {})", input.dim(),
           input.sizes());
}

// --- pooling ----------------------------------------------------------------------------------

AvgPool2d::AvgPool2d(Size2 kernel, std::optional<Size2> stride_, Size2 padding_)
    : kernel_size(kernel), stride(stride_.value_or(kernel)), padding(padding_) {}

Tensor AvgPool2d::forward(const Tensor& input) { return avg_pool2d(input, kernel_size, stride, padding); }

// PyTorch prints a pooling size as one number when both dims agree.
static std::string pool_size(const Size2& s) { return s.h == s.w ? fmt::format("{}", s.h) : size2(s); }

std::string AvgPool2d::extra_repr() const {
  return fmt::format("kernel_size={}, stride={}, padding={}", pool_size(kernel_size), pool_size(stride),
                     pool_size(padding));
}

MaxPool2d::MaxPool2d(Size2 kernel, std::optional<Size2> stride_, Size2 padding_)
    : kernel_size(kernel), stride(stride_.value_or(kernel)), padding(padding_) {}

Tensor MaxPool2d::forward(const Tensor& input) { return max_pool2d(input, kernel_size, stride, padding); }

std::string MaxPool2d::extra_repr() const {
  return fmt::format("kernel_size={}, stride={}, padding={}, dilation=1, ceil_mode=False", pool_size(kernel_size),
                     pool_size(stride), pool_size(padding));
}

// --- Flatten, Dropout -------------------------------------------------------------------------

std::string Flatten::extra_repr() const { return fmt::format("start_dim={}, end_dim={}", start_dim, end_dim); }

Dropout::Dropout(double p_) : p(p_) {
  TG_CHECK(p >= 0.0 && p <= 1.0, "[Dropout] dropout probability has to be between 0 and 1, but got {}", p);
}

Tensor Dropout::forward(const Tensor& input) { return dropout(input, p, is_training()); }

std::string Dropout::extra_repr() const { return fmt::format("p={}, inplace=False", p); }

// --- Sequential -------------------------------------------------------------------------------

void Sequential::push_back(std::shared_ptr<Module> module) {
  register_module(std::to_string(named_children().size()), std::move(module));
}

Tensor Sequential::forward(const Tensor& input) {
  Tensor x = input;
  for (const auto& [_, m] : named_children()) x = m->forward(x);
  return x;
}

const std::shared_ptr<Module>& Sequential::operator[](std::size_t i) const {
  TG_CHECK(i < size(), "[Sequential] index {} is out of range for {} modules", i, size());
  return named_children()[i].second;
}

}  // namespace tg::nn
