// tg::data::Sampler: where a DataLoader takes each epoch's order of sample indices from, as
// torch.utils.data.Sampler (DistributedSampler, in distributed/, gives each rank its share).
// Layer: data; may use core, knows nothing of models or apps.
#pragma once

#include <cstdint>
#include <vector>

namespace tg::data {

class Sampler {
 public:
  virtual ~Sampler() = default;
  // This epoch's indices, in the order the loader batches them; size() of them, each in
  // [0, dataset size).
  virtual std::vector<std::int64_t> indices() const = 0;
  virtual std::int64_t size() const = 0;
};

}  // namespace tg::data
