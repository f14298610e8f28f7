// linear_regression: d2l's first model (chapter 3) on plain tensors: synthetic data
// y = Xw + b + noise, minibatch SGD written by hand with the tape's gradients. Layer: apps.
#include <cstdio>
#include <iostream>

#include <tapegrad.h>

int main() try {
  tg::manual_seed(0);
  tg::Tensor true_w = tg::tensor(std::vector<float>{2.0f, -3.4f}, {2});
  double true_b = 4.2;
  tg::Tensor X = tg::randn({1000, 2});
  tg::Tensor y = tg::matmul(X, true_w) + true_b + tg::randn({1000}) * 0.01;

  tg::Tensor w = (tg::randn({2}) * 0.01).requires_grad_();
  tg::Tensor b = tg::zeros({1}).requires_grad_();
  const double lr = 0.03;
  const std::int64_t batch = 10;
  for (int epoch = 1; epoch <= 3; ++epoch) {
    tg::Tensor order = tg::randperm(1000);
    for (std::int64_t i = 0; i < 1000; i += batch) {
      tg::Tensor idx = order.slice(0, i, i + batch);
      tg::Tensor Xb = X.index_select(0, idx), yb = y.index_select(0, idx);
      tg::Tensor loss = ((tg::matmul(Xb, w) + b - yb).pow(2) / 2.0).sum();
      loss.backward();
      tg::NoGradGuard no_grad;
      w.sub_(w.grad() * (lr / batch));
      b.sub_(b.grad() * (lr / batch));
      w.grad().zero_();
      b.grad().zero_();
    }
    tg::NoGradGuard no_grad;
    double l = ((tg::matmul(X, w) + b - y).pow(2) / 2.0).mean().item<double>();
    std::printf("epoch %d, loss %f\n", epoch, l);
  }
  std::cout << "error in estimating w: " << true_w - w.detach() << "\n";
  std::cout << "error in estimating b: " << (true_b - b.detach()) << "\n";
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "linear_regression: %s\n", e.what());
  return 1;
}
