// Folding eval-mode batch normalization into the preceding Conv2d or Linear (layers/fusion.h).
// Layer: layers.
#include "tapegrad/layers/fusion.h"

#include <cmath>
#include <memory>
#include <optional>
#include <typeinfo>
#include <vector>

#include "tapegrad/autograd/tape.h"
#include "tapegrad/core/native.h"
#include "tapegrad/core/random.h"
#include "tapegrad/layers/pooling.h"

namespace tg::nn::utils {

namespace {

void check_eval(const Module& m, const Module& bn, const char* op) {
  TG_CHECK(!m.is_training() && !bn.is_training(),
           "[{}] fusion only for eval: expected {} and {} in evaluation mode (call eval()), got {} and {}", op,
           m.name(), bn.name(), m.is_training() ? "training" : "eval", bn.is_training() ? "training" : "eval");
}

// Per channel f of the batch norm: scale[f] = weight[f] / √(running_var[f] + eps) and
// shift[f] = bias[f] − running_mean[f] · scale[f], in double, so that bn(v) = v · scale + shift.
struct Affine {
  std::vector<double> scale, shift;
};

Affine bn_affine(const BatchNormBase& bn, std::int64_t channels, const char* op, const std::string& layer) {
  TG_CHECK(bn.running_mean.defined() && bn.running_var.defined(),
           "[{}] expected a {} with running statistics (track_running_stats=True)", op, bn.name());
  TG_CHECK(bn.num_features == channels, "[{}] expected a {} of {} features for {}, got {}", op, bn.name(), channels,
           layer, bn.num_features);
  const std::vector<double> mean = bn.running_mean.to_vector<double>(), var = bn.running_var.to_vector<double>();
  const std::vector<double> w = bn.weight.defined() ? bn.weight.to_vector<double>() : std::vector<double>(mean.size(), 1.0);
  const std::vector<double> b = bn.bias.defined() ? bn.bias.to_vector<double>() : std::vector<double>(mean.size(), 0.0);
  Affine a{std::vector<double>(mean.size()), std::vector<double>(mean.size())};
  for (std::size_t f = 0; f < mean.size(); ++f) {
    a.scale[f] = w[f] / std::sqrt(var[f] + bn.options.eps);
    a.shift[f] = b[f] - mean[f] * a.scale[f];
  }
  return a;
}

// weight [F, ...] scaled row by row and bias' = bias · scale + shift, as tensors of dtype.
std::pair<Tensor, Tensor> fold(const Tensor& weight, const Tensor& bias, const Affine& a, DType dtype) {
  std::vector<double> w = weight.to_vector<double>();
  const std::size_t F = a.scale.size(), per_row = w.size() / F;
  for (std::size_t f = 0; f < F; ++f)
    for (std::size_t i = 0; i < per_row; ++i) w[f * per_row + i] *= a.scale[f];
  std::vector<double> b = bias.defined() ? bias.to_vector<double>() : std::vector<double>(F, 0.0);
  for (std::size_t f = 0; f < F; ++f) b[f] = b[f] * a.scale[f] + a.shift[f];
  return {native::to(tensor(w, weight.sizes()), dtype), native::to(tensor(b, Shape{static_cast<std::int64_t>(F)}), dtype)};
}

// Gives a freshly constructed module's parameter (not shared with any other module) the values, dtype
// and requires_grad of `value`, in its own TensorImpl: the member and the registered parameter see it.
void assign(const Tensor& param, const Tensor& value, bool requires_grad) {
  TensorImpl& impl = *param.impl();
  impl.storage = value.storage();
  impl.sizes = value.sizes();
  impl.strides = value.strides();
  impl.offset = value.storage_offset();
  impl.dtype = value.dtype();
  Tensor(param).requires_grad_(requires_grad);
}

// Runs make() without drawing from the global generator: new modules initialize their parameters
// randomly, and fusion overwrites them.
template <class Make>
auto without_drawing(Make make) {
  const std::string state = get_rng_state();
  auto module = make();
  set_rng_state(state);
  return module;
}

}  // namespace

Conv2d fuse_conv_bn_eval(const Conv2d& conv, const BatchNorm2d& bn) {
  check_eval(conv, bn, "fuse_conv_bn_eval");
  const Affine a = bn_affine(bn, conv.out_channels, "fuse_conv_bn_eval", conv.to_string());
  NoGradGuard no_grad;
  Conv2d fused = without_drawing([&] {
    return Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, true, conv.groups);
  });
  auto [w, b] = fold(conv.weight, conv.bias, a, conv.weight.dtype());
  assign(fused.weight, w, conv.weight.requires_grad());
  assign(fused.bias, b, conv.bias.defined() && conv.bias.requires_grad());
  fused.eval();
  return fused;
}

Linear fuse_linear_bn_eval(const Linear& linear, const BatchNorm1d& bn) {
  check_eval(linear, bn, "fuse_linear_bn_eval");
  const Affine a = bn_affine(bn, linear.out_features, "fuse_linear_bn_eval", linear.to_string());
  NoGradGuard no_grad;
  Linear fused = without_drawing([&] { return Linear(linear.in_features, linear.out_features, true); });
  auto [w, b] = fold(linear.weight, linear.bias, a, linear.weight.dtype());
  assign(fused.weight, w, linear.weight.requires_grad());
  assign(fused.bias, b, linear.bias.defined() && linear.bias.requires_grad());
  fused.eval();
  return fused;
}

namespace {

bool any_training(const Module& m) {
  if (m.is_training()) return true;
  for (const auto& [_, child] : m.named_children())
    if (any_training(*child)) return true;
  return false;
}

// A batch norm with an activation (BatchNormAct) is no affine map: it stays.
bool folds(const BatchNormBase* bn) {
  return bn && bn->running_mean.defined() && bn->running_var.defined() && !dynamic_cast<const BatchNormAct1d*>(bn) &&
         !dynamic_cast<const BatchNormAct2d*>(bn);
}

Identity identity_like(const Module& m) {
  Identity identity;
  identity.train(m.is_training());
  return identity;
}

// The walk the passes share: a new Sequential, in the model's mode, whose children are the model's,
// except where rewrite(child, i, out) pushes replacements for children [i, i + k) onto out and
// returns k > 0 (child(j) is the j-th child, or null past the end). Nested Sequentials are walked
// too; every other child is shared with the model, not copied.
template <class Rewrite>
Sequential rewrite_sequential(const Sequential& model, const Rewrite& rewrite) {
  Sequential out;
  out.train(model.is_training());  // before it has children: theirs stay as they are
  const auto& children = model.named_children();
  auto child = [&](std::size_t j) -> const Module* { return j < children.size() ? children[j].second.get() : nullptr; };
  for (std::size_t i = 0; i < children.size();) {
    if (const std::size_t taken = rewrite(child, i, out)) {
      i += taken;
      continue;
    }
    const std::shared_ptr<Module>& m = children[i++].second;
    if (auto* seq = dynamic_cast<const Sequential*>(m.get())) out.push_back(rewrite_sequential(*seq, rewrite));
    else out.push_back(m);
  }
  return out;
}

}  // namespace

Sequential fold_batchnorm(const Sequential& model) {
  TG_CHECK(!any_training(model),
           "[fold_batchnorm] expected a model in evaluation mode (call eval() first): batch norm folds its running "
           "statistics, which training mode does not use");
  return rewrite_sequential(model, [](auto child, std::size_t i, Sequential& out) -> std::size_t {
    const Module* next = child(i + 1);
    if (auto* conv = dynamic_cast<const Conv2d*>(child(i)); conv && folds(dynamic_cast<const BatchNorm2d*>(next))) {
      out.push_back(fuse_conv_bn_eval(*conv, *dynamic_cast<const BatchNorm2d*>(next)));
      return 2;
    }
    if (auto* lin = dynamic_cast<const Linear*>(child(i)); lin && folds(dynamic_cast<const BatchNorm1d*>(next))) {
      out.push_back(fuse_linear_bn_eval(*lin, *dynamic_cast<const BatchNorm1d*>(next)));
      return 2;
    }
    return 0;
  });
}

namespace {

bool pools_2x2(const Module* m) {
  const auto* pool = dynamic_cast<const AvgPool2d*>(m);
  return pool && pool->kernel_size == Size2(2) && pool->stride == Size2(2) && pool->padding == Size2(0);
}

// The fused module for a plain BatchNorm1d / 2d (not a subclass: SyncBatchNorm has its own
// normalize) followed by a Sigmoid or ReLU, or null; a BatchNorm2d's takes in the AvgPool2d(2) after
// them when `pool` (pools_2x2 of the module after the activation).
std::shared_ptr<Module> fused_batchnorm(const Module& bn, const Module* next, bool pool) {
  std::optional<BatchNormActivation> act;
  if (dynamic_cast<const Sigmoid*>(next)) act = BatchNormActivation::Sigmoid;
  if (dynamic_cast<const ReLU*>(next)) act = BatchNormActivation::ReLU;
  if (!act) return nullptr;
  if (typeid(bn) == typeid(BatchNorm1d))
    return std::make_shared<BatchNormAct1d>(static_cast<const BatchNorm1d&>(bn), *act);
  if (typeid(bn) == typeid(BatchNorm2d))
    return std::make_shared<BatchNormAct2d>(static_cast<const BatchNorm2d&>(bn), *act, pool);
  return nullptr;
}

std::optional<ConvActivation> conv_activation(const Module* m) {
  if (dynamic_cast<const Sigmoid*>(m)) return ConvActivation::Sigmoid;
  if (dynamic_cast<const ReLU*>(m)) return ConvActivation::ReLU;
  return std::nullopt;
}

// fuse_batchnorm_activation's rewrite of children [i, ...).
template <class Child>
std::size_t fuse_batchnorm_at(const Child& child, std::size_t i, Sequential& out) {
  const bool pool = typeid(*child(i)) == typeid(BatchNorm2d) && pools_2x2(child(i + 2));
  std::shared_ptr<Module> fused = fused_batchnorm(*child(i), child(i + 1), pool);
  if (!fused) return 0;
  out.push_back(fused);
  out.push_back(identity_like(*child(i + 1)));
  if (pool) out.push_back(identity_like(*child(i + 2)));
  return pool ? 3 : 2;
}

}  // namespace

Sequential fuse_batchnorm_activation(const Sequential& model) {
  return rewrite_sequential(model, [](auto child, std::size_t i, Sequential& out) { return fuse_batchnorm_at(child, i, out); });
}

Sequential fuse_conv_batchnorm_activation(const Sequential& model) {
  return rewrite_sequential(model, [](auto child, std::size_t i, Sequential& out) -> std::size_t {
    const Module* bn = child(i + 1);
    if (typeid(*child(i)) == typeid(Conv2d) && bn && typeid(*bn) == typeid(BatchNorm2d)) {
      const bool pool = pools_2x2(child(i + 3));
      if (auto fused = std::dynamic_pointer_cast<BatchNormAct2d>(fused_batchnorm(*bn, child(i + 2), pool))) {
        out.push_back(std::make_shared<ConvBatchNormAct2d>(static_cast<const Conv2d&>(*child(i)), *fused));
        out.push_back(identity_like(*bn));
        out.push_back(identity_like(*child(i + 2)));
        if (pool) out.push_back(identity_like(*child(i + 3)));
        return pool ? 4 : 3;
      }
    }
    return fuse_batchnorm_at(child, i, out);
  });
}

Sequential fuse_conv_activation(const Sequential& model) {
  return rewrite_sequential(model, [](auto child, std::size_t i, Sequential& out) -> std::size_t {
    const Module& module = *child(i);
    const std::optional<ConvActivation> act = conv_activation(child(i + 1));
    if (typeid(module) != typeid(Conv2d) || !act) return 0;
    const bool pool = pools_2x2(child(i + 2));
    out.push_back(std::make_shared<ConvAct2d>(static_cast<const Conv2d&>(module), *act, pool));
    out.push_back(identity_like(*child(i + 1)));
    if (pool) out.push_back(identity_like(*child(i + 2)));
    return pool ? 3 : 2;
  });
}

}  // namespace tg::nn::utils
