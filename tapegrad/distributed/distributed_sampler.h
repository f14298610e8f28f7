// tg::data::DistributedSampler: each rank's share of a dataset, with PyTorch 1.13's
// torch.utils.data.distributed.DistributedSampler semantics, index for index: each epoch one
// permutation drawn from seed + epoch (the same on every rank), padded by repeating its start to a
// multiple of num_replicas (or cut to one with drop_last), of which rank r takes
// indices[r::num_replicas]. Layer: distributed (its defaults come from tg::dist).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "tapegrad/data/sampler.h"

namespace tg::data {

struct DistributedSamplerOptions {
  std::optional<std::int64_t> num_replicas;  // default: tg::dist::world_size()
  std::optional<std::int64_t> rank;          // default: tg::dist::rank()
  bool shuffle = true;
  std::uint64_t seed = 0;
  bool drop_last = false;
};

class DistributedSampler : public Sampler {
 public:
  // Throws for num_replicas < 1 or a rank outside [0, num_replicas).
  explicit DistributedSampler(std::int64_t dataset_size, DistributedSamplerOptions options = {});

  // The epoch whose permutation indices() returns; call it before each epoch's loop, on every rank.
  void set_epoch(std::int64_t epoch) { epoch_ = epoch; }
  std::int64_t epoch() const { return epoch_; }

  // This rank's share: size() indices. Drawing the permutation leaves the global generator's
  // stream where it was.
  std::vector<std::int64_t> indices() const override;
  std::int64_t size() const override { return num_samples_; }
  // num_samples · num_replicas: every rank's indices together.
  std::int64_t total_size() const { return num_samples_ * num_replicas_; }
  std::int64_t num_replicas() const { return num_replicas_; }
  std::int64_t rank() const { return rank_; }

 private:
  std::int64_t dataset_size_;
  std::int64_t num_replicas_;
  std::int64_t rank_;
  DistributedSamplerOptions options_;
  std::int64_t num_samples_;
  std::int64_t epoch_ = 0;
};

}  // namespace tg::data
