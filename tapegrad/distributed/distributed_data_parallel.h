// nn::DistributedDataParallel: data-parallel training of one model replicated on every rank, as
// torch.nn.parallel.DistributedDataParallel. Each rank runs forward and backward on its share of
// the batch; during backward the gradients are averaged across ranks, bucket by bucket, each
// bucket all-reduced without blocking (MPI_Iallreduce) as soon as all its gradients are final, so
// communication overlaps the rest of backward. Layer: distributed.
#pragma once

#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "tapegrad/core/removable_handle.h"
#include "tapegrad/layers/module.h"

namespace tg::nn {

struct DistributedDataParallelOptions {
  // Gradients are grouped, in reverse order of parameters() (roughly the order backward finishes
  // them), into buckets of at most this many MiB (one parameter may exceed it alone).
  double bucket_cap_mb = 25.0;
  // Rank 0's buffers (running statistics) are broadcast to every rank before each forward.
  bool broadcast_buffers = true;
};

namespace detail {
class Reducer;
}

class DistributedDataParallel : public Module {
 public:
  // Wraps `module` (shared: training the wrapper trains it) as the child "module", so the state
  // dict names read "module.0.weight". Every rank must construct it at the same point; it checks
  // that all ranks' models have the same parameter and buffer names, shapes and dtypes (else
  // throws on every rank, naming the difference) and broadcasts rank 0's values to all.
  explicit DistributedDataParallel(std::shared_ptr<Module> module, DistributedDataParallelOptions options = {});
  // Around a copy of `module` that shares its tensors and children (Module copies are shallow).
  template <class M>
    requires(std::is_base_of_v<Module, M> && !std::is_same_v<M, DistributedDataParallel>)
  explicit DistributedDataParallel(const M& module, DistributedDataParallelOptions options = {})
      : DistributedDataParallel(std::shared_ptr<Module>(std::make_shared<M>(module)), options) {}
  ~DistributedDataParallel() override;
  DistributedDataParallel(const DistributedDataParallel&) = delete;
  DistributedDataParallel& operator=(const DistributedDataParallel&) = delete;

  // The wrapped module's forward. Throws when the previous backward left gradients unreduced (a
  // parameter that took no part in the loss: its bucket never filled).
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "DistributedDataParallel"; }
  const std::shared_ptr<Module>& module() const { return module_; }

  // Within its scope, backward accumulates gradients locally without communication (gradient
  // accumulation); the first backward after it averages the accumulated gradients.
  class NoSync {
   public:
    explicit NoSync(std::shared_ptr<detail::Reducer> reducer);
    ~NoSync();
    NoSync(const NoSync&) = delete;
    NoSync& operator=(const NoSync&) = delete;

   private:
    std::shared_ptr<detail::Reducer> reducer_;
    bool previous_;
  };
  [[nodiscard]] NoSync no_sync() { return NoSync(reducer_); }

  // The buckets' parameter counts, in the order they are reduced.
  std::vector<std::int64_t> bucket_sizes() const;

 private:
  std::shared_ptr<Module> module_;
  DistributedDataParallelOptions options_;
  std::shared_ptr<detail::Reducer> reducer_;
  std::vector<RemovableHandle> hooks_;
};

}  // namespace tg::nn
