// A labelled image dataset for the training tests: class k is a bright 8x4 block at its own place
// in a noisy 28x28 image (as the contract's train_tour), drawn from a fixed seed. Tests only.
#pragma once

#include <cstdint>
#include <vector>

#include "tapegrad.h"

namespace tg_test {

inline tg::data::TensorDataset blocks(std::int64_t n, std::uint64_t seed) {
  tg::manual_seed(seed);
  tg::Tensor y = tg::randint(0, 10, {n});
  tg::Tensor X = tg::rand({n, 1, 28, 28}) * 0.3;
  const std::vector<std::int64_t> labels = y.to_vector<std::int64_t>();
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t r0 = (labels[i] / 5) * 12 + 2, c0 = (labels[i] % 5) * 5 + 1;
    X.select(0, i).select(0, 0).slice(0, r0, r0 + 8).slice(1, c0, c0 + 4).add_(0.7);
  }
  return tg::data::TensorDataset(X, y);
}

}  // namespace tg_test
