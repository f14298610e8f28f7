// train_step: examples/sec of LeNet-BN training steps (batch 256, synthetic data, the model and
// recipe of apps/lenet_bn) on 1 and N threads; what bench/compare_torch.py runs. Layer: bench.
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "apps/lenet/trainer.h"

int main(int argc, char** argv) try {
  int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  int steps = argc > 2 ? std::atoi(argv[2]) : 40;
  std::int64_t batch = argc > 3 ? std::atoll(argv[3]) : 256;
  tg::set_num_threads(threads);
  tg::manual_seed(0);
  tg::nn::Sequential net = lenet::make_lenet_bn();
  tg::optim::SGD opt(net.parameters(), {.lr = 1.0});
  tg::nn::CrossEntropyLoss loss_fn;
  tg::Tensor X = tg::rand({batch, 1, 28, 28});
  tg::Tensor y = tg::randint(0, 10, {batch});
  auto step = [&] {
    tg::Tensor loss = loss_fn(net(X), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    return loss.item<double>();
  };
  for (int i = 0; i < 5; ++i) step();
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) step();
  double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("tapegrad %d threads: %.0f ex/s (%.2f ms/step)\n", threads, steps * batch / dt, dt / steps * 1e3);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "train_step: %s\n", e.what());
  return 1;
}
