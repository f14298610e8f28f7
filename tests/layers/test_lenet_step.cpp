// One full LeNet-BN training step against PyTorch (scripts/gen_lenet_step_refs.py): from the same
// seed, PyTorch's default initialization and inputs come out draw for draw the same, so the loss,
// every parameter's gradient, the SGD update and the running statistics can be compared directly.
// Tag [layers].
#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

#include "tapegrad.h"

#include "lenet_step_refs.inc"

using tg::Tensor;
namespace nn = tg::nn;

namespace {

std::vector<double> summary(const Tensor& t) {
  std::vector<double> v = t.to_vector<double>();
  double s = 0, sq = 0;
  for (double x : v) {
    s += x;
    sq += x * x;
  }
  std::vector<double> out{s, sq};
  for (std::size_t i = 0; i < 8 && i < v.size(); ++i) out.push_back(v[i]);
  return out;
}

void check_against(const nn::NamedTensors& got, const std::vector<std::pair<std::string, std::vector<double>>>& want,
                   bool use_grad, double tol) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    INFO(want[i].first);
    REQUIRE(got[i].first == want[i].first);
    std::vector<double> s = summary(use_grad ? got[i].second.grad() : got[i].second);
    REQUIRE(s.size() == want[i].second.size());
    for (std::size_t k = 0; k < s.size(); ++k) {
      INFO("entry " << k << " of {sum, sum of squares, first values}");
      CHECK(s[k] == Approx(want[i].second[k]).margin(tol).epsilon(tol));
    }
  }
}

}  // namespace

TEST_CASE("a full LeNet-BN training step matches PyTorch's", "[layers]") {
  tg::manual_seed(0);
  // Braces: C++ evaluates a braced list left to right (function arguments in no fixed order), so
  // the layers draw their initial weights in PyTorch's order.
  nn::Sequential net{nn::Conv2d(1, 6, 5), nn::BatchNorm2d(6), nn::Sigmoid(), nn::AvgPool2d(2, 2),
                     nn::Conv2d(6, 16, 5), nn::BatchNorm2d(16), nn::Sigmoid(), nn::AvgPool2d(2, 2), nn::Flatten(),
                     nn::Linear(256, 120), nn::BatchNorm1d(120), nn::Sigmoid(), nn::Linear(120, 84),
                     nn::BatchNorm1d(84), nn::Sigmoid(), nn::Linear(84, 10)};
  Tensor X = tg::randn({16, 1, 28, 28});
  Tensor y = tg::randint(0, 10, {16});
  tg::optim::SGD opt(net.parameters(), {.lr = 0.1, .momentum = 0.9, .weight_decay = 1e-3});
  Tensor loss = nn::CrossEntropyLoss()(net(X), y);
  CHECK(loss.item<double>() == Approx(kLenetLoss).epsilon(1e-6));
  opt.zero_grad();
  loss.backward();
  check_against(net.named_parameters(), kLenetGrads, true, 1e-4);
  opt.step();
  check_against(net.named_parameters(), kLenetParamsAfter, false, 1e-5);
  nn::NamedTensors buffers;
  for (auto& [name, b] : net.named_buffers())
    if (b.dtype() != tg::kInt64) buffers.emplace_back(name, b);
  check_against(buffers, kLenetBuffers, false, 1e-5);
  for (auto& [name, b] : net.named_buffers())
    if (b.dtype() == tg::kInt64) CHECK(b.item<std::int64_t>() == 1);
}
