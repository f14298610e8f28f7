// tg::data::TensorDataset: checks once, then gathers rows with index_select. Layer: data; may use
// core, knows nothing of models or apps.
#include "tapegrad/data/tensor_dataset.h"

#include "tapegrad/core/native.h"

namespace tg::data {

TensorDataset::TensorDataset(Tensor inputs, Tensor targets) : inputs_(std::move(inputs)), targets_(std::move(targets)) {
  TG_CHECK(inputs_.defined() && targets_.defined(), "[TensorDataset] expected defined inputs and targets");
  TG_CHECK(inputs_.dim() >= 1 && targets_.dim() >= 1,
           "[TensorDataset] expected inputs and targets with a first (sample) dim, got shapes {} and {}",
           inputs_.sizes(), targets_.sizes());
  TG_CHECK(inputs_.size(0) == targets_.size(0),
           "[TensorDataset] size mismatch between tensors: expected as many targets as inputs (dim 0), got shapes {} "
           "and {}",
           inputs_.sizes(), targets_.sizes());
}

std::pair<Tensor, Tensor> TensorDataset::get_batch(const std::vector<std::int64_t>& indices) const {
  for (std::int64_t i : indices)
    TG_CHECK(i >= 0 && i < size(), "[TensorDataset] expected sample indices in [0, {}), got {}", size(), i);
  Tensor index = tensor(indices);
  return {native::index_select(inputs_, 0, index), native::index_select(targets_, 0, index)};
}

}  // namespace tg::data
