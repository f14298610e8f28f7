// nn::Flatten: a view of dims start_dim..end_dim as one (default: all but the batch dim).
// Layer: layers.
#pragma once

#include <fmt/format.h>

#include "tapegrad/layers/module.h"

namespace tg::nn {

// Flattens dims start_dim..end_dim (default: all but the batch dim).
class Flatten : public Module {
 public:
  explicit Flatten(std::int64_t start = 1, std::int64_t end = -1) : start_dim(start), end_dim(end) {}
  Tensor forward(const Tensor& input) override { return input.flatten(start_dim, end_dim); }
  std::string name() const override { return "Flatten"; }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  std::string extra_repr() const override { return fmt::format("start_dim={}, end_dim={}", start_dim, end_dim); }
  std::int64_t start_dim, end_dim;
};

}  // namespace tg::nn
