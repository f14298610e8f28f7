// End to end on plain tensors: d2l chapter 3's linear regression from scratch. Synthetic data
// y = Xw + b + noise, minibatch SGD written with requires_grad_ leaves, backward, updates under
// NoGradGuard and grad().zero_(). It must recover the true weights. Layer: tests/autograd.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <vector>

#include "tapegrad.h"

namespace {

using tg::Tensor;

Tensor linreg(const Tensor& X, const Tensor& w, const Tensor& b) { return X.matmul(w) + b; }

Tensor squared_loss(const Tensor& y_hat, const Tensor& y) { return (y_hat - y.reshape(y_hat.sizes())).pow(2) / 2.0; }

void sgd(const std::vector<Tensor>& params, double lr, std::int64_t batch_size) {
  tg::NoGradGuard no_grad;
  for (Tensor p : params) {
    p.sub_(p.grad() * (lr / static_cast<double>(batch_size)));
    p.grad().zero_();
  }
}

}  // namespace

TEST_CASE("linear regression from scratch recovers the true weights", "[autograd]") {
  tg::manual_seed(42);
  const std::int64_t n = 1000, batch_size = 10;
  const double lr = 0.03;
  const int num_epochs = 3;

  // synthetic_data(true_w, true_b, 1000)
  Tensor true_w = tg::tensor(std::vector<float>{2.0f, -3.4f}, {2, 1});
  const double true_b = 4.2;
  Tensor features = tg::randn({n, 2});
  Tensor labels = features.matmul(true_w) + true_b;
  labels = labels + tg::randn(labels.sizes()) * 0.01;
  CHECK(labels.sizes() == tg::Shape({n, 1}));
  CHECK_FALSE(labels.requires_grad());

  Tensor w = (tg::randn({2, 1}) * 0.01).requires_grad_();
  Tensor b = tg::zeros({1}).requires_grad_();
  std::size_t tape_before = tg::autograd::tape_size();

  auto epoch_loss = [&] {
    tg::NoGradGuard no_grad;
    return squared_loss(linreg(features, w, b), labels).mean().item<double>();
  };
  double initial_loss = epoch_loss();
  std::vector<double> losses;
  for (int epoch = 0; epoch < num_epochs; ++epoch) {
    Tensor order = tg::randperm(n);  // data_iter: a fresh shuffle each epoch
    for (std::int64_t i = 0; i < n; i += batch_size) {
      Tensor idx = order.slice(0, i, i + batch_size);
      Tensor X = features.index_select(0, idx), y = labels.index_select(0, idx);
      Tensor l = squared_loss(linreg(X, w, b), y);
      l.sum().backward();
      sgd({w, b}, lr, batch_size);
    }
    losses.push_back(epoch_loss());
  }

  INFO("initial loss " << initial_loss << ", epoch losses " << losses[0] << " " << losses[1] << " " << losses[2]);
  CHECK(initial_loss > 1.0);
  CHECK(losses[0] < 0.1);  // d2l prints about 0.04, 0.0002, 0.00005
  CHECK(losses[1] < losses[0]);
  CHECK(losses[2] < losses[1]);
  CHECK(losses[2] < 1e-4);  // near the noise floor, 0.01² / 2
  std::vector<float> wv = w.to_vector<float>();
  CHECK(std::fabs(wv[0] - 2.0) < 1e-2);
  CHECK(std::fabs(wv[1] - (-3.4)) < 1e-2);
  CHECK(std::fabs(b.item<float>() - true_b) < 1e-2);
  // The parameters are still leaves, their gradients were zeroed, and nothing is left on the tape.
  CHECK(w.is_leaf());
  CHECK(b.is_leaf());
  CHECK(w.grad().sizes() == tg::Shape({2, 1}));
  CHECK(w.grad().to_vector<float>() == std::vector<float>{0.0f, 0.0f});
  CHECK(b.grad().item<float>() == 0.0f);
  CHECK(tg::autograd::tape_size() == tape_before);
}
