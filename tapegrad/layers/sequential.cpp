// nn::Sequential: children named "0", "1", ... run in order. Layer: layers.
#include "tapegrad/layers/sequential.h"

namespace tg::nn {

void Sequential::push_back(std::shared_ptr<Module> module) {
  register_module(std::to_string(named_children().size()), std::move(module));
}

Tensor Sequential::forward(const Tensor& input) {
  Tensor x = input;
  for (const auto& [_, m] : named_children()) x = (*m)(x);  // through each child's hooks
  return x;
}

const std::shared_ptr<Module>& Sequential::operator[](std::size_t i) const {
  TG_CHECK(i < size(), "[Sequential] index {} is out of range for {} modules", i, size());
  return named_children()[i].second;
}

}  // namespace tg::nn
