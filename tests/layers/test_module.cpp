// Modules: registration and PyTorch's names, train/eval and zero_grad through the children, and
// printing like PyTorch. Tag [layers].
#include <catch2/catch.hpp>

#include <sstream>
#include <string>

#include "tapegrad.h"

#include "two_layer.h"

using Catch::Contains;
using tg::Tensor;
namespace nn = tg::nn;

TEST_CASE("modules register parameters, buffers and children under PyTorch's names", "[layers]") {
  TwoLayer m;
  auto params = m.named_parameters();
  REQUIRE(params.size() == 5);
  CHECK(params[0].first == "scale");
  CHECK(params[1].first == "fc1.weight");
  CHECK(params[2].first == "fc1.bias");
  CHECK(params[3].first == "bn.weight");
  CHECK(params[4].first == "bn.bias");
  CHECK(params[1].second.is_same(m.fc1->weight));
  for (const auto& [_, p] : params) CHECK(p.requires_grad());
  auto buffers = m.named_buffers();
  REQUIRE(buffers.size() == 4);
  CHECK(buffers[0].first == "steps");
  CHECK(buffers[1].first == "bn.running_mean");
  CHECK(buffers[3].first == "bn.num_batches_tracked");
  CHECK(!buffers[1].second.requires_grad());
  CHECK(m.named_parameters(false).size() == 1);
  CHECK(m.children().size() == 2);
  auto state = m.state_dict();
  REQUIRE(state.size() == 9);
  CHECK(state[2].first == "fc1.weight");
  CHECK(state[6].first == "bn.running_mean");
  CHECK_THROWS_WITH(m.register_parameter("scale", tg::ones({1})), Contains("already exists"));
  CHECK_THROWS_WITH(m.register_buffer("a.b", tg::ones({1})), Contains("\".\""));
}

TEST_CASE("train, eval and zero_grad reach every child", "[layers]") {
  TwoLayer m;
  CHECK(m.is_training());
  m.eval();
  CHECK(!m.is_training());
  CHECK(!m.bn->is_training());
  m.train();
  CHECK(m.bn->is_training());
  Tensor x = tg::randn({5, 4});
  m(x).sum().backward();
  CHECK(m.fc1->weight.grad().defined());
  CHECK(m.bn->num_batches_tracked.item<std::int64_t>() == 1);
  m.zero_grad();
  for (const Tensor& p : m.parameters()) CHECK(p.grad().abs().sum().item<float>() == 0.0f);
}

TEST_CASE("modules print like PyTorch", "[layers]") {
  nn::Sequential net(nn::Conv2d(1, 6, 5), nn::BatchNorm2d(6), nn::Sigmoid(), nn::AvgPool2d(2, 2),
                     nn::Conv2d(6, 16, 5, {1, 2}, 1, false), nn::BatchNorm2d(16, {.momentum = std::nullopt, .affine = false}),
                     nn::Sigmoid(), nn::MaxPool2d(2), nn::Flatten(), nn::Linear(256, 120), nn::BatchNorm1d(120),
                     nn::ReLU(), nn::Dropout(0.25), nn::Linear(84, 10, false), nn::Tanh(), nn::Sequential(nn::ReLU()));
  // repr(nn.Sequential(...)) of the same model in PyTorch 1.13
  std::string want =
      "Sequential(\n  (0): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))\n  (1): BatchNorm2d(6, eps=1e-05, "
      "momentum=0.1, affine=True, track_running_stats=True)\n  (2): Sigmoid()\n  (3): AvgPool2d(kernel_size=2, "
      "stride=2, padding=0)\n  (4): Conv2d(6, 16, kernel_size=(5, 5), stride=(1, 2), padding=(1, 1), bias=False)\n  "
      "(5): BatchNorm2d(16, eps=1e-05, momentum=None, affine=False, track_running_stats=True)\n  (6): Sigmoid()\n  "
      "(7): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)\n  (8): "
      "Flatten(start_dim=1, end_dim=-1)\n  (9): Linear(in_features=256, out_features=120, bias=True)\n  (10): "
      "BatchNorm1d(120, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n  (11): ReLU()\n  (12): "
      "Dropout(p=0.25, inplace=False)\n  (13): Linear(in_features=84, out_features=10, bias=False)\n  (14): "
      "Tanh()\n  (15): Sequential(\n    (0): ReLU()\n  )\n)";
  CHECK(net.to_string() == want);
  std::ostringstream os;
  os << net;
  CHECK(os.str() == want);
  CHECK(net.size() == 16);
  CHECK(net[3]->name() == "AvgPool2d");
  CHECK_THROWS_WITH(net[16], Contains("[Sequential]"));
}

TEST_CASE("Module::to converts floating parameters, buffers and gradients in place, keeping each tensor",
          "[layers]") {
  TwoLayer m;
  m(tg::randn({5, 4})).sum().backward();
  auto before = m.state_dict();
  std::vector<std::vector<double>> values;
  for (const auto& [_, t] : before) values.push_back(t.to_vector<double>());
  Tensor weight = m.fc1->weight;  // a handle taken before: it sees the conversion
  std::vector<double> grad = weight.grad().to_vector<double>();
  CHECK(&m.to(tg::kFloat64) == &m);
  auto after = m.state_dict();
  REQUIRE(after.size() == before.size());
  for (std::size_t i = 0; i < after.size(); ++i) {
    INFO(after[i].first);
    CHECK(after[i].second.is_same(before[i].second));
    CHECK(after[i].second.dtype() == (after[i].first.ends_with("num_batches_tracked") || after[i].first == "steps"
                                          ? tg::kInt64
                                          : tg::kFloat64));
    CHECK(after[i].second.to_vector<double>() == values[i]);  // float32 -> float64 is exact
  }
  CHECK(weight.dtype() == tg::kFloat64);
  CHECK(weight.requires_grad());
  CHECK(weight.grad().dtype() == tg::kFloat64);
  CHECK(weight.grad().to_vector<double>() == grad);
  Tensor y = m(tg::randn({5, 4}, tg::kFloat64));  // the module runs in float64 now
  CHECK(y.dtype() == tg::kFloat64);
  m.to(tg::kFloat32);
  CHECK(m.bn->running_var.dtype() == tg::kFloat32);
  CHECK_THROWS_WITH(m.to(tg::kInt64), Contains("[Module::to] expected a floating point dtype (float32 or float64), got int64"));
  CHECK(m.fc1->weight.dtype() == tg::kFloat32);
}

TEST_CASE("replace_module puts a module in a child's place, under its name", "[layers]") {
  nn::Sequential net{nn::Linear(2, 3), nn::Sigmoid()};
  auto relu = net.replace_module("1", std::make_shared<nn::ReLU>());
  CHECK(net[1].get() == relu.get());
  CHECK(net.named_children()[1].first == "1");
  tg::manual_seed(0);
  CHECK(net(tg::randn({8, 2}) * 10).min().item<float>() == 0.0f);  // ReLU's zeros; a sigmoid is never 0
  CHECK_THROWS_WITH(net.replace_module("2", std::make_shared<nn::ReLU>()),
                    Contains("[Module] expected a submodule named \"2\" to replace, got none"));
  CHECK(net.size() == 2);
}
