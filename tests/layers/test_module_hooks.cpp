// Module hooks, as PyTorch's: forward hooks (order, replacement, removal), full backward hooks
// (grad_input and grad_output values, replacement, an input that needs no gradient), and the
// module path anomaly mode names. Values are hand-derived from a Linear with set weights. Tag [layers].
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "tapegrad.h"

using Catch::Contains;
using tg::Tensor;
namespace nn = tg::nn;

namespace {

std::vector<double> vals(const Tensor& t) { return t.to(tg::kFloat64).to_vector<double>(); }

// y = W x + b with W = [[1, 2], [3, 4]], b = [0.5, -0.5] (exact in float32).
std::shared_ptr<nn::Linear> known_linear() {
  auto lin = std::make_shared<nn::Linear>(2, 2);
  tg::NoGradGuard no_grad;
  lin->weight.copy_(tg::tensor(std::vector<float>{1, 2, 3, 4}, {2, 2}));
  lin->bias.copy_(tg::tensor(std::vector<float>{0.5f, -0.5f}));
  return lin;
}

Tensor f32(std::vector<float> v) { return tg::tensor(v); }

// A module whose forward is sqrt: its backward at 0 makes a nan from a zero gradient.
class Sqrt : public nn::Module {
 public:
  Tensor forward(const Tensor& input) override { return input.sqrt(); }
  std::string name() const override { return "Sqrt"; }
};

}  // namespace

TEST_CASE("forward hooks run in order after forward and may replace the output", "[layers][hooks]") {
  nn::Sigmoid sig;
  Tensor x = tg::tensor(std::vector<double>{0.0, 2.0});
  std::vector<std::string> order;
  sig.register_forward_hook([&](nn::Module& m, const Tensor& input, const Tensor& output) {
    order.push_back("first " + m.name());
    CHECK(vals(input) == vals(x));
    CHECK(vals(output) == vals(x.sigmoid()));
  });
  tg::RemovableHandle doubling = sig.register_forward_hook([&](nn::Module&, const Tensor&, const Tensor& output) {
    order.push_back("second");
    return output * 2.0;
  });
  std::vector<double> third_saw;
  sig.register_forward_hook([&](nn::Module&, const Tensor&, const Tensor& output) {
    order.push_back("third");
    third_saw = vals(output);
  });
  Tensor y = sig(x);
  CHECK(order == std::vector<std::string>{"first Sigmoid", "second", "third"});
  CHECK(third_saw == vals(x.sigmoid() * 2.0));  // the replacement
  CHECK(vals(y) == vals(x.sigmoid() * 2.0));
  CHECK(vals(sig.forward(x)) == vals(x.sigmoid()));  // forward() itself runs no hooks, as PyTorch
  doubling.remove();
  order.clear();
  CHECK(vals(sig(x)) == vals(x.sigmoid()));
  CHECK(order == std::vector<std::string>{"first Sigmoid", "third"});
}

TEST_CASE("Sequential calls its children through their hooks", "[layers][hooks]") {
  nn::Sequential net{nn::ReLU(), nn::Tanh()};
  std::vector<double> relu_out;
  net[0]->register_forward_hook([&](nn::Module&, const Tensor&, const Tensor& out) { relu_out = vals(out); });
  net(tg::tensor(std::vector<double>{-1.0, 0.5}));
  CHECK(relu_out == std::vector<double>{0.0, 0.5});
}

TEST_CASE("full backward hooks see grad_input and grad_output and may replace grad_input", "[layers][hooks]") {
  auto lin = known_linear();
  Tensor x = f32({1, -1}).requires_grad_();
  // y = W x + b = [-0.5, -1.5]; loss = Σ y²: grad_output = 2y = [-1, -3], grad_input = Wᵀ 2y = [-10, -14].
  std::vector<std::string> order;
  std::vector<double> seen_in, seen_out, second_in;
  lin->register_full_backward_hook([&](nn::Module& m, const Tensor& grad_input, const Tensor& grad_output) {
    order.push_back("first " + m.name());
    seen_in = vals(grad_input);
    seen_out = vals(grad_output);
    return grad_input * 0.5;
  });
  tg::RemovableHandle second =
      lin->register_full_backward_hook([&](nn::Module&, const Tensor& grad_input, const Tensor&) {
        order.push_back("second");
        second_in = vals(grad_input);
      });
  Tensor y = (*lin)(x);
  CHECK(vals(y) == std::vector<double>{-0.5, -1.5});
  CHECK(order.empty());  // nothing runs in forward
  (y * y).sum().backward();
  CHECK(order == std::vector<std::string>{"first Linear", "second"});
  CHECK(seen_out == std::vector<double>{-1, -3});
  CHECK(seen_in == std::vector<double>{-10, -14});
  CHECK(second_in == std::vector<double>{-5, -7});  // the first hook's replacement
  CHECK(vals(x.grad()) == std::vector<double>{-5, -7});
  CHECK(vals(lin->weight.grad()) == std::vector<double>{-1, 1, -3, 3});  // parameters are not affected

  SECTION("a removed hook stays silent") {
    second.remove();
    order.clear();
    x.set_grad(Tensor());
    (*lin)(x).sum().backward();  // grad_output = [1, 1], grad_input = [4, 6], halved
    CHECK(order == std::vector<std::string>{"first Linear"});
    CHECK(vals(x.grad()) == std::vector<double>{2, 3});
  }
  SECTION("no hook runs under no_grad, nor records anything") {
    tg::NoGradGuard no_grad;
    Tensor z = (*lin)(x);
    CHECK_FALSE(z.requires_grad());
  }
}

TEST_CASE("a full backward hook on a module whose input needs no gradient", "[layers][hooks][errors]") {
  auto lin = known_linear();
  Tensor x = f32({1, -1});
  int calls = 0;
  std::vector<double> seen_out;
  lin->register_full_backward_hook([&](nn::Module&, const Tensor& grad_input, const Tensor& grad_output) {
    ++calls;
    CHECK_FALSE(grad_input.defined());
    seen_out = vals(grad_output);
  });
  (*lin)(x).sum().backward();
  CHECK(calls == 1);
  CHECK(seen_out == std::vector<double>{1, 1});
  CHECK(vals(lin->bias.grad()) == std::vector<double>{1, 1});
  lin->register_full_backward_hook([](nn::Module&, const Tensor&, const Tensor& g) { return g; });
  CHECK_THROWS_WITH((*lin)(x).sum().backward(),
                    Contains("[register_full_backward_hook]") && Contains("Linear") && Contains("return nothing"));
}

TEST_CASE("anomaly mode names the module path an op was recorded in", "[layers][hooks][errors]") {
  Tensor x = tg::tensor(std::vector<double>{0.0, 1.0}).requires_grad_();
  nn::Sequential net{nn::ReLU(), nn::Sequential{nn::Tanh(), Sqrt()}};
  Tensor y = net(x);
  (y * 0.0).sum().backward();  // off: the nan goes into .grad unnoticed
  CHECK(vals(x.grad())[1] == 0.0);
  tg::autograd::DetectAnomalyGuard anomaly;
  Tensor z = net(x);
  CHECK_THROWS_WITH((z * 0.0).sum().backward(),
                    "[backward] SqrtBackward0 returned nan values in its 0th output; it was recorded in module "
                    "1.1 (Sqrt)");
  Sqrt alone;
  Tensor w = alone(x);
  CHECK_THROWS_WITH((w * 0.0).sum().backward(), Contains("recorded in module Sqrt"));
}
