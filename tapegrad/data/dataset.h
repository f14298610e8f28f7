// tg::data::Dataset: what a DataLoader reads, a sized collection that assembles a batch from a
// list of sample indices. Layer: data; knows nothing of models or apps.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "tapegrad/core/tensor.h"

namespace tg::data {

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual std::int64_t size() const = 0;
  // {inputs, targets} for the samples at `indices`, in that order, stacked along a new first
  // dimension of size indices.size(). Throws for an index outside [0, size()). Must be safe to
  // call from several threads at once (it only reads).
  virtual std::pair<Tensor, Tensor> get_batch(const std::vector<std::int64_t>& indices) const = 0;
};

}  // namespace tg::data
