// tg::data::TensorDataset: the samples are the rows (dim 0) of an inputs tensor and a targets
// tensor, as torch.utils.data.TensorDataset(X, y). Layer: data; may use core, knows nothing of
// models or apps.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "tapegrad/data/dataset.h"

namespace tg::data {

class TensorDataset : public Dataset {
 public:
  // Keeps both tensors (shared, not copied); throws unless both have a first dim, of one size.
  TensorDataset(Tensor inputs, Tensor targets);

  std::int64_t size() const override { return inputs_.size(0); }
  // {inputs[indices], targets[indices]}: copies of the rows, in the order given, outside the tape.
  std::pair<Tensor, Tensor> get_batch(const std::vector<std::int64_t>& indices) const override;

  const Tensor& inputs() const { return inputs_; }
  const Tensor& targets() const { return targets_; }

 private:
  Tensor inputs_, targets_;
};

}  // namespace tg::data
