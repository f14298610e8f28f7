// train_step: examples/sec of LeNet-BN training steps (the model and recipe of apps/lenet_bn:
// SGD lr 1.0, cross-entropy) on a given number of threads; what bench/compare_torch.py runs.
//   train_step [threads=1] [steps=40] [batch=256] [data_dir] [anomaly|unfused|bnfused]...
// With data_dir (a Fashion-MNIST directory), step k trains on samples [k·batch, (k+1)·batch) of the
// training split (wrapping around), assembled from the uint8 images each step as the DataLoader
// does; without it (or given as ""), on one batch of uniform random images. The word `anomaly`
// runs every step in anomaly mode (tg::autograd::DetectAnomalyGuard). Each convolution, the batch norm,
// sigmoid and pool after it run as one layer, and each other batch norm with its sigmoid
// (nn::utils::fuse_conv_batchnorm_activation, as lenet_bn --fuse), unless the word `unfused` is given;
// `bnfused` fuses the batch norms with their activations only (fuse_batchnorm_activation). Prints one line:
//   tapegrad <threads> threads: <ex/s> ex/s (<ms> ms/step) loss <last loss> data <fashion-mnist|random>[ anomaly][ unfused| bnfused]
// Layer: bench.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "apps/lenet/trainer.h"

int main(int argc, char** argv) try {
  int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  int steps = argc > 2 ? std::atoi(argv[2]) : 40;
  std::int64_t batch = argc > 3 ? std::atoll(argv[3]) : 256;
  std::string data_dir = argc > 4 ? argv[4] : "";
  bool anomaly = false, fused = true, conv_fused = true;
  for (int i = 5; i < argc; ++i) {
    anomaly |= std::string(argv[i]) == "anomaly";
    fused &= std::string(argv[i]) != "unfused";
    conv_fused &= std::string(argv[i]) != "bnfused";
  }
  if (threads < 1 || steps < 1 || batch < 2) {
    std::fprintf(stderr, "usage: train_step [threads >= 1] [steps >= 1] [batch >= 2] [fashion-mnist dir] [anomaly|unfused|bnfused]...\n");
    return 2;
  }
  tg::set_num_threads(threads);
  std::optional<tg::autograd::DetectAnomalyGuard> anomaly_mode;
  if (anomaly) anomaly_mode.emplace();
  tg::manual_seed(0);
  tg::nn::Sequential net = lenet::make_lenet_bn();
  if (fused)
    net = conv_fused ? tg::nn::utils::fuse_conv_batchnorm_activation(net) : tg::nn::utils::fuse_batchnorm_activation(net);
  tg::optim::SGD opt(net.parameters(), {.lr = 1.0});
  tg::nn::CrossEntropyLoss loss_fn;

  std::unique_ptr<tg::data::FashionMNIST> data;
  if (!data_dir.empty()) data = std::make_unique<tg::data::FashionMNIST>(data_dir, true);
  tg::Tensor X_random, y_random;
  if (!data) {
    X_random = tg::rand({batch, 1, 28, 28});
    y_random = tg::randint(0, 10, {batch});
  }
  std::vector<std::int64_t> indices(static_cast<std::size_t>(batch));
  std::int64_t next = 0;  // the first sample of the next batch
  auto next_batch = [&]() -> std::pair<tg::Tensor, tg::Tensor> {
    if (!data) return {X_random, y_random};
    if (next + batch > data->size()) next = 0;
    std::iota(indices.begin(), indices.end(), next);
    next += batch;
    return data->get_batch(indices);
  };

  auto step = [&] {
    auto [X, y] = next_batch();
    tg::Tensor loss = loss_fn(net(X), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    return loss.item<double>();
  };
  for (int i = 0; i < 5; ++i) step();
  double loss = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) loss = step();
  double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("tapegrad %d threads: %.0f ex/s (%.2f ms/step) loss %.4f data %s%s%s\n", threads,
              static_cast<double>(steps * batch) / dt, dt / steps * 1e3, loss, data ? "fashion-mnist" : "random",
              anomaly ? " anomaly" : "", !fused ? " unfused" : conv_fused ? "" : " bnfused");
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "train_step: %s\n", e.what());
  return 1;
}
