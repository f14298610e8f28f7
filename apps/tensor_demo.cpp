// tensor_demo: the tensor core and the tape at work, printed as PyTorch prints. A runnable tour
// for a first look; errors become one line and a non-zero exit. Layer: apps.
#include <cstdio>
#include <iostream>

#include "tapegrad.h"

int main() try {
  tg::manual_seed(0);
  tg::Tensor x = tg::randn({3, 2, 5, 5});  // the seed notebook's input: PyTorch prints the same
  std::cout << "x = torch.randn(3, 2, 5, 5) after manual_seed(0), first channel of the first sample:\n"
            << x.select(0, 0).select(0, 0) << "\n\n";

  tg::Tensor a = tg::arange(12).to(tg::kFloat32).reshape({3, 4});
  std::cout << "a =\n" << a << "\n";
  std::cout << "a.t() shares storage, strides " << fmt::format("{}", a.t().strides()) << ":\n" << a.t() << "\n";
  std::cout << "a - a.mean({1}, keepdim):\n" << a - a.mean({1}, true) << "\n";
  std::cout << "a @ a.t():\n" << tg::matmul(a, a.t()) << "\n\n";

  tg::Tensor w = tg::randn({4, 2}).requires_grad_();
  tg::Tensor loss = tg::matmul(a, w).sigmoid().pow(2).mean();
  std::cout << "loss = " << loss << "\n";
  loss.backward();
  std::cout << "dloss/dw =\n" << w.grad() << "\n";
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "tensor_demo: %s\n", e.what());
  return 1;
}
