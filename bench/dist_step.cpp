// dist_step: LeNet-BN training steps on the ranks of an MPI job, for docs/BENCHMARKS.md's
// data-parallel section. Each step takes a global batch (random Fashion-MNIST-shaped images),
// each rank its share, through DistributedDataParallel. Run as
//   mpiexec -n W dist_step [--steps N] [--batch B] [--threads T] [--bucket-mb X] [--sync-bn] [--no-comm]
// --no-comm keeps every backward inside no_sync (the compute alone, for the communication share).
// Rank 0 prints ms per step (the median of 5 repeats) and global examples/sec.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "apps/lenet/trainer.h"
#include "tapegrad.h"

int main(int argc, char** argv) {
  tg::dist::init(&argc, &argv);
  int steps = 40, threads = 1;
  std::int64_t batch = 256;
  double bucket_mb = 25;
  bool sync_bn = false, no_comm = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--steps") steps = std::stoi(argv[++i]);
    else if (a == "--batch") batch = std::stoll(argv[++i]);
    else if (a == "--threads") threads = std::stoi(argv[++i]);
    else if (a == "--bucket-mb") bucket_mb = std::stod(argv[++i]);
    else if (a == "--sync-bn") sync_bn = true;
    else if (a == "--no-comm") no_comm = true;
  }
  tg::set_num_threads(threads);
  const int W = tg::dist::world_size(), r = tg::dist::rank();
  tg::manual_seed(0);
  tg::nn::Sequential net = lenet::make_lenet_bn();
  if (sync_bn) tg::nn::convert_sync_batchnorm(net);
  tg::nn::DistributedDataParallel ddp(net, {.bucket_cap_mb = bucket_mb});
  tg::optim::SGD opt(ddp.parameters(), {.lr = 0.1});
  tg::nn::CrossEntropyLoss loss_fn;
  const std::int64_t lo = batch * r / W, hi = batch * (r + 1) / W;
  tg::Tensor X = tg::rand({hi - lo, 1, 28, 28}), y = tg::randint(0, 10, {hi - lo});
  auto step = [&] {
    tg::Tensor loss = loss_fn(ddp(X), y);
    opt.zero_grad();
    if (no_comm) {
      auto local = ddp.no_sync();
      loss.backward();
    } else {
      loss.backward();
    }
    opt.step();
  };
  for (int i = 0; i < 5; ++i) step();
  std::vector<double> ms;
  for (int rep = 0; rep < 5; ++rep) {
    tg::dist::barrier();
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < steps; ++i) step();
    tg::dist::barrier();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / steps);
  }
  std::sort(ms.begin(), ms.end());
  if (r == 0)
    std::printf("W=%d threads=%d batch=%lld bucket_mb=%g buckets=%zu sync_bn=%d no_comm=%d: %.3f ms/step, %.0f ex/s\n",
                W, threads, static_cast<long long>(batch), bucket_mb, ddp.bucket_sizes().size(), sync_bn, no_comm,
                ms[2], static_cast<double>(batch) / ms[2] * 1000.0);
  return 0;
}
