// Batch normalization: the batch_norm function (hand-derived backward, one tape entry) and
// nn::BatchNorm1d / BatchNorm2d with PyTorch's semantics: batch statistics and running-average
// updates in training (momentum 0.1; no momentum means a cumulative average), running
// statistics in evaluation. Buffers running_mean, running_var, num_batches_tracked. Also
// batch_norm_act and nn::BatchNormAct1d / 2d: batch norm with a Sigmoid or ReLU fused into its passes.
// Layer: layers.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "tapegrad/layers/conv2d.h"
#include "tapegrad/layers/module.h"
#include "tapegrad/layers/size2.h"

namespace tg {

// PyTorch's batch_norm for x [N, C], [N, C, L] or [N, C, H, W]. Training: normalize with the
// batch's biased variance and, when running_mean/running_var are defined, update them in place
// as (1 − momentum)·running + momentum·batch (running_var with the unbiased variance). Eval:
// normalize with the running statistics. weight and bias [C] may be undefined (no affine).
// Throws "Expected more than 1 value per channel when training" for one value per channel.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum = 0.1, double eps = 1e-5);

// The activations batch_norm_act fuses into batch norm.
enum class BatchNormActivation { Sigmoid, ReLU };
const char* activation_name(BatchNormActivation act);  // "Sigmoid", "ReLU": the modules' names

// act(batch_norm(x, ...)) as one op, for the memory-bound passes: the normalized output is activated
// run by run while it is in cache, and the backward forms batch norm's gradient dy = ds·act'(s) from
// the saved output s inside batch norm's own two passes. No tensor between the two either way: the
// forward reads x twice and writes once (batch_norm then sigmoid: three reads and two writes), the
// backward reads ds, s and x twice and writes dx (unfused: six reads, two writes). Arguments,
// statistics and errors as batch_norm's ("[batch_norm_act] ..."); the values are those of
// batch_norm followed by Tensor::sigmoid / relu, to rounding. grad_fn "BatchNormSigmoidBackward0" or
// "BatchNormReluBackward0".
// With avg_pool_2x2, x [N, C, H, W] with H, W >= 2, and the output is avg_pool2d(act(batch norm), 2)
// [N, C, H/2, W/2]: each activated plane is pooled while it is in cache, and the backward spreads the
// pool's gradient over each plane inside batch norm's two passes, so the full-size activation
// gradient is never written (the forward writes the activation once, for the backward, and its pool;
// the backward reads the pool's gradient, s and x twice and writes dx). The values are those of the
// three ops to rounding; grad_fn "BatchNormSigmoidAvgPoolBackward0" or "BatchNormReluAvgPoolBackward0".
Tensor batch_norm_act(const Tensor& x, BatchNormActivation act, const Tensor& running_mean, const Tensor& running_var,
                      const Tensor& weight, const Tensor& bias, bool training, double momentum = 0.1,
                      double eps = 1e-5, bool avg_pool_2x2 = false);

// batch_norm_act(conv2d(x, conv_weight, conv_bias, stride, padding, groups), act, ...) as one op, for a
// convolution whose output only the batch norm reads: in training, with float32 and stride 1, the
// forward takes the batch's moments chunk by chunk as the convolution writes its output, and the
// backward forms batch norm's input gradient chunk by chunk inside the convolution's own backward,
// so that the full-size gradient between the two is never written to memory. The values are those
// of the two ops, bit for bit (the same kernels, in the same order per value); one tape entry,
// grad_fn "ConvolutionBatchNormSigmoidAvgPoolBackward0" and the like, with gradients for x,
// conv_weight, conv_bias, weight and bias. Otherwise (evaluation, float64, a stride, an unbatched
// input) it runs the two ops, recorded as each records. Errors as conv2d's and batch_norm_act's
// ("[conv2d] ...", "[conv2d_batch_norm_act] ...").
Tensor conv2d_batch_norm_act(const Tensor& x, const Tensor& conv_weight, const Tensor& conv_bias, Size2 stride,
                             Size2 padding, std::int64_t groups, BatchNormActivation act, const Tensor& running_mean,
                             const Tensor& running_var, const Tensor& weight, const Tensor& bias, bool training,
                             double momentum = 0.1, double eps = 1e-5, bool avg_pool_2x2 = false);

// --- batch_norm's kernels in pieces, for a batch norm whose statistics span more than one tensor
// (SyncBatchNorm reduces them across ranks between the pieces). None records. x and dy [N, C, *]
// of one floating dtype; mean, var, rstd, weight, bias [C] of that dtype; weight, bias may be
// undefined. Sums come in float64 [C].

// Over the count = N·S values of each channel of x: sum = Σ x and m2 = Σ (x − mean)², two-pass.
struct BatchNormMoments {
  Tensor sum, m2;
  std::int64_t count = 0;
};
BatchNormMoments batch_norm_moments(const Tensor& x);
// {y, rstd}: y = (x − mean)·rstd·weight + bias, rstd = 1/sqrt(var + eps), var the biased variance.
std::pair<Tensor, Tensor> batch_norm_normalize(const Tensor& x, const Tensor& mean, const Tensor& var,
                                               const Tensor& weight, const Tensor& bias, double eps);
// running = (1 − momentum)·running + momentum·batch, in place; running_var takes the unbiased
// variance var·count/(count − 1). A count of 0 leaves them, as in PyTorch.
void batch_norm_update_running_stats(const Tensor& running_mean, const Tensor& running_var, const Tensor& mean,
                                     const Tensor& var, std::int64_t count, double momentum);
// {Σ dy, Σ dy·(x − mean)} per channel, float64 [C].
std::pair<Tensor, Tensor> batch_norm_grad_sums(const Tensor& dy, const Tensor& x, const Tensor& mean);
// Training mode's dx, from the two sums over `count` values per channel (which may span more
// than x: other ranks' values too).
Tensor batch_norm_grad_input(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                             const Tensor& weight, const Tensor& sum_dy, const Tensor& sum_dy_xmu, std::int64_t count);

}  // namespace tg

namespace tg::nn {

struct BatchNormOptions {
  double eps = 1e-5;
  std::optional<double> momentum = 0.1;
  bool affine = true;
  bool track_running_stats = true;
};

class BatchNormBase : public Module {
 public:
  Tensor forward(const Tensor& input) override;
  // What forward does around its batch_norm call: the momentum (a cumulative average without one),
  // batch or running statistics by mode, and num_batches_tracked counted once the call succeeds;
  // normalize_fn(use_batch_stats, momentum) makes the output. For modules that run a batch norm fused
  // with what comes before it (ConvBatchNormAct2d); forward(x) is forward_with over normalize(x, ...).
  Tensor forward_with(const std::function<Tensor(bool use_batch_stats, double momentum)>& normalize_fn);
  void reset_running_stats();
  void reset_parameters();
  std::string extra_repr() const override;

  std::int64_t num_features;
  BatchNormOptions options;
  Tensor weight, bias;                                  // undefined without affine
  Tensor running_mean, running_var, num_batches_tracked;  // undefined without tracking

 protected:
  BatchNormBase(std::int64_t num_features, BatchNormOptions options);
  virtual void check_input(const Tensor& input) const = 0;
  // forward's batch_norm call, after the checks and the num_batches_tracked step (SyncBatchNorm
  // reduces the statistics across ranks here).
  virtual Tensor normalize(const Tensor& input, bool use_batch_stats, double momentum);
  // clone()'s last step: the five tensor members pointed at the copy's.
  void rebind_state(const Rebind& r) {
    for (Tensor* t : {&weight, &bias, &running_mean, &running_var, &num_batches_tracked}) r(*t);
  }
};

// Input [N, C] or [N, C, L].
class BatchNorm1d : public BatchNormBase {
 public:
  explicit BatchNorm1d(std::int64_t num_features, BatchNormOptions options = {});
  std::string name() const override { return "BatchNorm1d"; }
  std::shared_ptr<Module> clone() const override {
    return clone_as(*this, [](BatchNorm1d& m, const Rebind& r) { m.rebind_state(r); });
  }

 protected:
  void check_input(const Tensor& input) const override;
};

// Input [N, C, H, W].
class BatchNorm2d : public BatchNormBase {
 public:
  explicit BatchNorm2d(std::int64_t num_features, BatchNormOptions options = {});
  std::string name() const override { return "BatchNorm2d"; }
  std::shared_ptr<Module> clone() const override {
    return clone_as(*this, [](BatchNorm2d& m, const Rebind& r) { m.rebind_state(r); });
  }

 protected:
  void check_input(const Tensor& input) const override;
};

// BatchNorm1d or BatchNorm2d with an activation fused into it (batch_norm_act): the module the
// opt-in pass nn::utils::fuse_batchnorm_activation puts in place of a batch norm followed by a
// Sigmoid or ReLU, and for BatchNorm2d with avg_pool_2x2, by the AvgPool2d(2) after them too. Its
// parameters, buffers, options and state_dict keys are the batch norm's (made from one, it shares
// them); it prints as "BatchNormAct2d(6, eps=1e-05, ..., activation=Sigmoid)", with
// ", avg_pool2d=2" when it pools.
template <class BatchNorm>
  requires std::is_same_v<BatchNorm, BatchNorm1d> || std::is_same_v<BatchNorm, BatchNorm2d>
class BatchNormAct : public BatchNorm {
 public:
  BatchNormAct(std::int64_t features, BatchNormActivation act, BatchNormOptions opts = {}, bool avg_pool_2x2_ = false)
      : BatchNorm(features, opts), activation(act), avg_pool_2x2(avg_pool_2x2_) {
    check_pool();
  }
  // Shares bn's tensors and takes its mode, as a Module copy does.
  BatchNormAct(const BatchNorm& bn, BatchNormActivation act, bool avg_pool_2x2_ = false)
      : BatchNorm(bn), activation(act), avg_pool_2x2(avg_pool_2x2_) {
    check_pool();
  }

  std::string name() const override {
    return std::is_same_v<BatchNorm, BatchNorm1d> ? "BatchNormAct1d" : "BatchNormAct2d";
  }
  std::shared_ptr<Module> clone() const override {
    return Module::clone_as(*this, [](BatchNormAct& m, const Module::Rebind& r) { m.rebind_state(r); });
  }
  std::string extra_repr() const override {
    return BatchNorm::extra_repr() + ", activation=" + activation_name(activation) +
           (avg_pool_2x2 ? ", avg_pool2d=2" : "");
  }

  BatchNormActivation activation;
  bool avg_pool_2x2;  // the output is the activation's AvgPool2d(2) (BatchNormAct2d only)

 protected:
  Tensor normalize(const Tensor& input, bool use_batch_stats, double momentum) override {
    return batch_norm_act(input, activation, this->running_mean, this->running_var, this->weight, this->bias,
                          use_batch_stats, momentum, this->options.eps, avg_pool_2x2);
  }

 private:
  void check_pool() const {
    TG_CHECK((!avg_pool_2x2 || std::is_same_v<BatchNorm, BatchNorm2d>),
             "[{}] expected avg_pool_2x2 only on BatchNormAct2d (a 2x2 pool needs [N, C, H, W] input)", name());
  }
};

using BatchNormAct1d = BatchNormAct<BatchNorm1d>;
using BatchNormAct2d = BatchNormAct<BatchNorm2d>;

// A Conv2d followed by a BatchNormAct2d (batch norm, Sigmoid or ReLU, and optionally AvgPool2d(2)), run
// as one op (conv2d_batch_norm_act): what the opt-in pass nn::utils::fuse_conv_batchnorm_activation
// (layers/fusion.h) puts in the Conv2d's place, as PyTorch's fuse_modules puts its ConvBnReLU2d.
// Its children are the two modules, "0" and "1", so state_dict keys are PyTorch's for a fused
// module ("0.0.weight", "0.1.running_mean", ...); made from existing modules it shares their tensors
// and takes the batch norm's mode. The children's own hooks do not run (neither is called).
class ConvBatchNormAct2d : public Module {
 public:
  ConvBatchNormAct2d(const Conv2d& conv, const BatchNormAct2d& bn);
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "ConvBatchNormAct2d"; }
  std::shared_ptr<Module> clone() const override {
    return clone_as(*this, [](ConvBatchNormAct2d& m, const Rebind& r) { r(m.conv); r(m.bn); });
  }

  std::shared_ptr<Conv2d> conv;
  std::shared_ptr<BatchNormAct2d> bn;
};

}  // namespace tg::nn
