// infer_step: images/sec of LeNet-BN inference (evaluation mode, no tape) on one batch of uniform
// random images, the model of apps/lenet_bn as trained (mode 0), with its batch norm folded
// (nn::utils::fold_batchnorm, mode 1), or folded and then each convolution with the sigmoid and
// average pool after it run as one layer (nn::utils::fuse_conv_activation, mode 2); what
// bench/compare_torch.py --inference runs.
//   infer_step [threads=1] [steps=40] [batch=256] [mode=2]
// Prints one line in train_step's format, the mean output as the "loss":
//   tapegrad <threads> threads: <ex/s> ex/s (<ms> ms/step) loss <mean output> data random
// Layer: bench.
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "apps/lenet/trainer.h"

int main(int argc, char** argv) try {
  int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  int steps = argc > 2 ? std::atoi(argv[2]) : 40;
  std::int64_t batch = argc > 3 ? std::atoll(argv[3]) : 256;
  int mode = argc > 4 ? std::atoi(argv[4]) : 2;
  if (threads < 1 || steps < 1 || batch < 1 || mode < 0 || mode > 2) {
    std::fprintf(stderr, "usage: infer_step [threads >= 1] [steps >= 1] [batch >= 1] [mode 0 unfolded | 1 folded | "
                         "2 folded + fused conv epilogues]\n");
    return 2;
  }
  tg::set_num_threads(threads);
  tg::manual_seed(0);
  tg::nn::Sequential net = lenet::make_lenet_bn();
  net.eval();
  if (mode >= 1) net = tg::nn::utils::fold_batchnorm(net);
  if (mode == 2) net = tg::nn::utils::fuse_conv_activation(net);
  const tg::Tensor X = tg::rand({batch, 1, 28, 28});
  tg::NoGradGuard no_grad;
  auto step = [&] { return net(X).mean().item<double>(); };
  for (int i = 0; i < 5; ++i) step();
  double out = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) out = step();
  double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("tapegrad %d threads: %.0f ex/s (%.3f ms/step) loss %.4f data random\n", threads,
              static_cast<double>(steps * batch) / dt, dt / steps * 1e3, out);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "infer_step: %s\n", e.what());
  return 1;
}
