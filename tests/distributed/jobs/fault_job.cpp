// fault_job: a DistributedDataParallel training loop in which one rank fails on purpose, for the
// fault tests (test_faults.cpp). `mpiexec -n W fault_job MODE`: MODE "none" trains 20 steps and
// exits 0; "throw" makes the last rank throw at step 3; "kill" makes it die by SIGKILL at step 3.
// The others are then waiting in a collective: the job must still end. Tests only.
#include <csignal>
#include <cstdio>
#include <string>

#include "tapegrad.h"

int main(int argc, char** argv) try {
  tg::dist::init(&argc, &argv);
  const std::string mode = argc > 1 ? argv[1] : "none";
  const int W = tg::dist::world_size(), r = tg::dist::rank();
  tg::manual_seed(1);
  tg::nn::Sequential net{tg::nn::Linear(8, 16), tg::nn::BatchNorm1d(16), tg::nn::Sigmoid(), tg::nn::Linear(16, 4)};
  tg::nn::convert_sync_batchnorm(net);
  tg::nn::DistributedDataParallel ddp(net);
  tg::optim::SGD opt(ddp.parameters(), {.lr = 0.1});
  tg::nn::CrossEntropyLoss loss_fn;
  for (int step = 0; step < 20; ++step) {
    if (step == 3 && r == W - 1) {
      if (mode == "throw") TG_CHECK(false, "[fault_job] rank {} fails at step {} on purpose", r, step);
      if (mode == "kill") std::raise(SIGKILL);
    }
    tg::Tensor x = tg::randn({16, 8}), y = tg::randint(0, 4, {16});
    tg::Tensor loss = loss_fn(ddp(x), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  if (r == 0) std::printf("fault_job: 20 steps on %d ranks\n", W);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "fault_job: rank %d: %s\n", tg::dist::is_initialized() ? tg::dist::rank() : 0, e.what());
  tg::dist::abort(1);
}
