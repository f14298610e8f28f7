// The small LeNet-BN runs the app and data-parallel tests train: batch 32, lr 0.5, a seed of the
// test's own; and a model stepped on one fixed batch, for the tests of what a steady step costs.
// Tests only.
#pragma once

#include <cstdint>

#include "apps/lenet/trainer.h"
#include "tapegrad.h"

namespace tg_test {

inline lenet::TrainOptions small_lenet_run(std::int64_t epochs, std::uint64_t seed) {
  lenet::TrainOptions o;
  o.epochs = epochs;
  o.batch_size = 32;
  o.lr = 0.5;
  o.seed = seed;
  return o;
}

// LeNet-BN (seed 5) with SGD at lr 0.1, trained step by step on one random batch of 16.
struct FixedBatchLeNet {
  tg::nn::Sequential net = (tg::manual_seed(5), lenet::make_lenet_bn());
  tg::optim::SGD opt{net.parameters(), {.lr = 0.1}};
  tg::nn::CrossEntropyLoss loss_fn;
  tg::Tensor X = tg::rand({16, 1, 28, 28}), y = tg::randint(0, 10, {16});

  void step() {
    tg::Tensor loss = loss_fn(net(X), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
};

}  // namespace tg_test
