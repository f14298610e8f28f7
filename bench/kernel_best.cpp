// kernel_best: the best time of each of LeNet-BN's heavy kernels over many runs in one process, at
// batch 256 on 1 thread: conv1 and conv2, forward and forward + backward, the fused batch norm
// + sigmoid + 2×2 average pool (batch_norm_act, training) at both of its shapes, and each block's
// convolution with it, as two ops and as one (conv2d_batch_norm_act). On a shared
// machine a best-of-many is the figure least disturbed by other work; compare two libraries by
// alternating processes (LD_LIBRARY_PATH) and taking each row's best, as docs/BENCHMARKS.md does.
//   kernel_best [runs=60]
// Prints one line a kernel: <name> <best ms>. The backward rows include clearing the leaves'
// gradients, and for batch norm copying x's gradient (3.5 or 1 MB) into the leaf's .grad.
// Layer: bench.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <initializer_list>
#include <utility>

#include "tapegrad.h"

namespace {

using tg::Tensor;

template <class F>
double best_ms(int runs, F run) {
  double best = 1e30;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    run();
    best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

void clear_grads(std::initializer_list<Tensor*> leaves) {
  for (Tensor* t : leaves)
    if (t->requires_grad()) t->set_grad(Tensor());
}

void conv(const char* name, std::int64_t C, std::int64_t H, std::int64_t F, bool input_grad, int runs) {
  tg::manual_seed(0);
  Tensor x = tg::randn({256, C, H, H});
  if (input_grad) x.requires_grad_();  // conv1's input is the data: no dx
  Tensor w = tg::randn({F, C, 5, 5}).requires_grad_(), b = tg::randn({F}).requires_grad_();
  const Tensor dy = tg::randn({256, F, H - 4, H - 4});
  const double fwd = best_ms(runs, [&] {
    tg::NoGradGuard no_grad;
    Tensor y = tg::conv2d(x, w, b);
  });
  const double fwd_bwd = best_ms(runs, [&] {
    tg::conv2d(x, w, b).backward(dy);
    clear_grads({&x, &w, &b});
  });
  std::printf("%s_fwd %.3f\n%s_fwdbwd %.3f\n", name, fwd, name, fwd_bwd);
}

void batch_norm(const char* name, std::int64_t C, std::int64_t H, int runs) {
  tg::manual_seed(0);
  Tensor x = tg::randn({256, C, H, H}).requires_grad_();
  Tensor w = (tg::rand({C}) + 0.5).requires_grad_(), b = tg::randn({C}).requires_grad_();
  Tensor running_mean = tg::zeros({C}), running_var = tg::ones({C});
  const Tensor dp = tg::randn({256, C, H / 2, H / 2});
  auto forward = [&] {
    return tg::batch_norm_act(x, tg::BatchNormActivation::Sigmoid, running_mean, running_var, w, b, true, 0.1, 1e-5,
                              true);
  };
  const double fwd = best_ms(runs, [&] {
    tg::NoGradGuard no_grad;
    Tensor p = forward();
  });
  const double fwd_bwd = best_ms(runs, [&] {
    forward().backward(dp);
    clear_grads({&x, &w, &b});
  });
  std::printf("%s_fwd %.3f\n%s_fwdbwd %.3f\n", name, fwd, name, fwd_bwd);
}

// A convolution (5×5, C → F channels on H×H) with the batch norm, sigmoid and 2×2 pool after it in
// training, as LeNet-BN's blocks run: conv2d then batch_norm_act, and conv2d_batch_norm_act.
void conv_batch_norm(const char* name, std::int64_t C, std::int64_t H, std::int64_t F, bool input_grad, int runs) {
  tg::manual_seed(0);
  Tensor x = tg::randn({256, C, H, H});
  if (input_grad) x.requires_grad_();
  Tensor cw = (tg::randn({F, C, 5, 5}) * 0.2).requires_grad_(), cb = tg::randn({F}).requires_grad_();
  Tensor w = (tg::rand({F}) + 0.5).requires_grad_(), b = tg::randn({F}).requires_grad_();
  Tensor running_mean = tg::zeros({F}), running_var = tg::ones({F});
  const Tensor dp = tg::randn({256, F, (H - 4) / 2, (H - 4) / 2});
  const auto act = tg::BatchNormActivation::Sigmoid;
  auto two_ops = [&] {
    return tg::batch_norm_act(tg::conv2d(x, cw, cb), act, running_mean, running_var, w, b, true, 0.1, 1e-5, true);
  };
  auto fused = [&] {
    return tg::conv2d_batch_norm_act(x, cw, cb, 1, 0, 1, act, running_mean, running_var, w, b, true, 0.1, 1e-5, true);
  };
  for (auto [kind, forward] : {std::pair<const char*, std::function<Tensor()>>{"two_ops", two_ops}, {"fused", fused}}) {
    const double fwd = best_ms(runs, [&] {
      tg::NoGradGuard no_grad;
      Tensor p = forward();
    });
    const double fwd_bwd = best_ms(runs, [&] {
      forward().backward(dp);
      clear_grads({&x, &cw, &cb, &w, &b});
    });
    std::printf("%s_%s_fwd %.3f\n%s_%s_fwdbwd %.3f\n", name, kind, fwd, name, kind, fwd_bwd);
  }
}

}  // namespace

int main(int argc, char** argv) try {
  const int runs = argc > 1 ? std::atoi(argv[1]) : 60;
  if (runs < 1) {
    std::fprintf(stderr, "usage: kernel_best [runs >= 1]\n");
    return 2;
  }
  tg::set_num_threads(1);
  conv("conv1_1x28x28_6x5x5", 1, 28, 6, false, runs);
  conv("conv2_6x12x12_16x5x5", 6, 12, 16, true, runs);
  batch_norm("batch_norm_sigmoid_pool_6x24x24", 6, 24, runs);
  batch_norm("batch_norm_sigmoid_pool_16x8x8", 16, 8, runs);
  conv_batch_norm("conv1_bn_sigmoid_pool", 1, 28, 6, false, runs);
  conv_batch_norm("conv2_bn_sigmoid_pool", 6, 12, 16, true, runs);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "kernel_best: %s\n", e.what());
  return 1;
}
