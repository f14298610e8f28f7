// Batch normalization: the batch_norm function (hand-derived backward, one tape entry) and
// nn::BatchNorm1d / BatchNorm2d with PyTorch's semantics: batch statistics and running-average
// updates in training (momentum 0.1; no momentum means a cumulative average), running
// statistics in evaluation. Buffers running_mean, running_var, num_batches_tracked.
// Layer: layers.
#pragma once

#include <optional>

#include "tapegrad/layers/module.h"

namespace tg {

// PyTorch's batch_norm for x [N, C], [N, C, L] or [N, C, H, W]. Training: normalize with the
// batch's biased variance and, when running_mean/running_var are defined, update them in place
// as (1 − momentum)·running + momentum·batch (running_var with the unbiased variance). Eval:
// normalize with the running statistics. weight and bias [C] may be undefined (no affine).
// Throws "Expected more than 1 value per channel when training" for one value per channel.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum = 0.1, double eps = 1e-5);

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
};

// Input [N, C] or [N, C, L].
class BatchNorm1d : public BatchNormBase {
 public:
  explicit BatchNorm1d(std::int64_t num_features, BatchNormOptions options = {});
  std::string name() const override { return "BatchNorm1d"; }

 protected:
  void check_input(const Tensor& input) const override;
};

// Input [N, C, H, W].
class BatchNorm2d : public BatchNormBase {
 public:
  explicit BatchNorm2d(std::int64_t num_features, BatchNormOptions options = {});
  std::string name() const override { return "BatchNorm2d"; }

 protected:
  void check_input(const Tensor& input) const override;
};

}  // namespace tg::nn
