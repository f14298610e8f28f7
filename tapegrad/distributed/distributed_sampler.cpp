// tg::data::DistributedSampler, line for line PyTorch 1.13's. Layer: distributed.
#include "tapegrad/distributed/distributed_sampler.h"

#include <numeric>
#include <string>

#include "tapegrad/core/random.h"
#include "tapegrad/distributed/collectives.h"

namespace tg::data {

DistributedSampler::DistributedSampler(std::int64_t dataset_size, DistributedSamplerOptions options)
    : dataset_size_(dataset_size), options_(options) {
  TG_CHECK(dataset_size >= 0, "[DistributedSampler] expected a dataset size >= 0, got {}", dataset_size);
  num_replicas_ = options.num_replicas ? *options.num_replicas : dist::world_size();
  rank_ = options.rank ? *options.rank : dist::rank();
  TG_CHECK(num_replicas_ >= 1, "[DistributedSampler] expected num_replicas >= 1, got {}", num_replicas_);
  TG_CHECK(rank_ >= 0 && rank_ < num_replicas_,
           "[DistributedSampler] Invalid rank {}, rank should be in the interval [0, {}]", rank_, num_replicas_ - 1);
  // drop_last cuts to the largest multiple of num_replicas; otherwise pad up to the next one.
  if (options.drop_last && dataset_size % num_replicas_ != 0)
    num_samples_ = (dataset_size - num_replicas_ + num_replicas_ - 1) / num_replicas_;
  else
    num_samples_ = (dataset_size + num_replicas_ - 1) / num_replicas_;
}

std::vector<std::int64_t> DistributedSampler::indices() const {
  std::vector<std::int64_t> order(static_cast<std::size_t>(dataset_size_));
  if (options_.shuffle) {
    // PyTorch draws from a torch.Generator seeded with seed + epoch; tapegrad has one generator,
    // so the permutation comes from it reseeded, and its state is put back afterwards.
    const std::string saved = get_rng_state();
    manual_seed(options_.seed + static_cast<std::uint64_t>(epoch_));
    order = randperm(dataset_size_).to_vector<std::int64_t>();
    set_rng_state(saved);
  } else {
    std::iota(order.begin(), order.end(), std::int64_t{0});
  }
  const std::size_t total = static_cast<std::size_t>(total_size());
  if (order.size() < total && !order.empty()) {  // pad by repeating the order from its start
    const std::size_t n = order.size();
    for (std::size_t i = 0; order.size() < total; ++i) order.push_back(order[i % n]);
  }
  order.resize(total);
  std::vector<std::int64_t> share;
  share.reserve(static_cast<std::size_t>(num_samples_));
  for (std::size_t i = static_cast<std::size_t>(rank_); i < total; i += static_cast<std::size_t>(num_replicas_))
    share.push_back(order[i]);
  return share;
}

}  // namespace tg::data
