// seed_notebook: the "Dive into Deep Learning" batch-norm notebook in C++: randn(3, 2, 5, 5),
// printing, the built-in BatchNorm2d, the mean over (0, 2, 3), and batch norm from scratch,
// checked against the built-in layer. The printed tensors are PyTorch's, digit for digit.
// Layer: apps.
#include <cstdio>
#include <iostream>

#include "apps/lenet/scratch_batchnorm.h"

int main() try {
  tg::manual_seed(0);
  tg::Tensor x = tg::randn({3, 2, 5, 5});
  std::cout << "In [34]: x = torch.randn(3, 2, 5, 5)\n" << x << "\n\n";

  tg::nn::BatchNorm2d BN(2);
  tg::Tensor y = BN(x);
  std::cout << "In [36]: BN = nn.BatchNorm2d(2); BN(x)\n" << y << "\n\n";

  tg::Tensor mean = x.mean({0, 2, 3}, /*keepdim=*/true);
  std::cout << "In [37]: x.mean(dim=(0, 2, 3), keepdim=True)\n" << mean << "\n\n";

  lenet::ScratchBatchNorm scratch(2, 4);
  tg::Tensor z = scratch(x);
  double diff = (z - y).abs().max().item<double>();
  std::cout << "batch norm from scratch vs nn.BatchNorm2d: max |difference| = " << diff << "\n";
  std::cout << "moving_mean (d2l, momentum 0.9):  " << scratch.moving_mean.reshape({2}) << "\n";
  std::cout << "running_mean (PyTorch, momentum 0.1): " << BN.running_mean << "\n";
  return diff < 1e-5 ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "seed_notebook: %s\n", e.what());
  return 1;
}
