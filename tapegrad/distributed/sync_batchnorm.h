// SyncBatchNorm: batch normalization whose training statistics span every rank's share of the
// global batch, so that W ranks compute what one BatchNorm computes on the whole batch (PyTorch's
// torch.nn.SyncBatchNorm, which runs on CUDA only; this one runs on CPU over MPI). Forward and
// backward each make one all-reduce of per-channel sums. Layer: distributed.
#pragma once

#include "tapegrad/layers/batchnorm.h"

namespace tg {

// batch_norm in training mode over the union of every rank's x [N_r, C, *] (N_r may differ per
// rank; C, the dtype and the trailing sizes may not). Forward: one all-reduce of each channel's
// (count, Σ x, Σ (x − mean)²), the ranks' moments merged pairwise with Chan's formula, so the
// variance keeps full accuracy; running statistics (when defined) take the global mean and the
// unbiased variance over the global count. Backward (one tape entry): one all-reduce of Σ dy and
// Σ dy·(x − mean) for dx; weight and bias get this rank's share of their gradient (a
// DistributedDataParallel around the model sums the shares). Every rank must call it, and
// backward, in the same order, with x requiring grad on all ranks or on none.
Tensor sync_batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                       const Tensor& bias, double momentum = 0.1, double eps = 1e-5);

}  // namespace tg

namespace tg::nn {

// Input [N, C, *]. Training: sync_batch_norm across the ranks (plain batch_norm in a world of
// one). Evaluation: the running statistics, no communication. Needs tg::dist::init() to train.
class SyncBatchNorm : public BatchNormBase {
 public:
  explicit SyncBatchNorm(std::int64_t num_features, BatchNormOptions options = {});
  // Over `bn`'s own tensors (shared, not copied), options and mode.
  explicit SyncBatchNorm(const BatchNormBase& bn);
  std::string name() const override { return "SyncBatchNorm"; }
  std::shared_ptr<Module> clone() const override {
    return clone_as(*this, [](SyncBatchNorm& m, const Rebind& r) { m.rebind_state(r); });
  }

 protected:
  void check_input(const Tensor& input) const override;
  Tensor normalize(const Tensor& input, bool use_batch_stats, double momentum) override;
};

// Replaces every BatchNorm1d and BatchNorm2d below `module` (at any depth) by a SyncBatchNorm over
// the same tensors, under the same name, in the same mode, as PyTorch's
// SyncBatchNorm.convert_sync_batchnorm. `module` itself stays what it is. Throws, changing nothing,
// when a batch norm below runs fused with its activation (nn::utils::fuse_batchnorm_activation and
// fuse_conv_batchnorm_activation make those): convert first, fuse after.
void convert_sync_batchnorm(Module& module);

}  // namespace tg::nn
