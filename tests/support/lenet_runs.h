// The small LeNet-BN runs the app and data-parallel tests train: batch 32, lr 0.5, a seed of the
// test's own. Tests only.
#pragma once

#include <cstdint>

#include "apps/lenet/trainer.h"

namespace tg_test {

inline lenet::TrainOptions small_lenet_run(std::int64_t epochs, std::uint64_t seed) {
  lenet::TrainOptions o;
  o.epochs = epochs;
  o.batch_size = 32;
  o.lr = 0.5;
  o.seed = seed;
  return o;
}

}  // namespace tg_test
