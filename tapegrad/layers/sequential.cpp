// nn::ModuleList's indexing and nn::Sequential's forward. Layer: layers.
#include "tapegrad/layers/sequential.h"

namespace tg::nn {

ModuleList::ModuleList(const std::vector<std::shared_ptr<Module>>& modules) { extend(modules); }

void ModuleList::push_back(std::shared_ptr<Module> module) {
  register_module(std::to_string(named_children().size()), std::move(module));
}

void ModuleList::extend(const std::vector<std::shared_ptr<Module>>& modules) {
  for (const std::shared_ptr<Module>& m : modules) push_back(m);
}

const std::shared_ptr<Module>& ModuleList::operator[](std::size_t i) const {
  TG_CHECK(i < size(), "[{}] index {} is out of range for {} modules", name(), i, size());
  return named_children()[i].second;
}

Tensor Sequential::forward(const Tensor& input) {
  Tensor x = input;
  for (const auto& [_, m] : named_children()) x = (*m)(x);  // through each child's hooks
  return x;
}

}  // namespace tg::nn
