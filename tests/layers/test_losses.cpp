// Tests of the functional losses and the softmax family: forward and gradients against PyTorch
// 1.13 (bn_loss_refs.inc) in float32 and float64, the threaded path against composed ops, a
// float64 gradcheck table, and every bad input. Tags [layers] [gradcheck] [errors].
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "tapegrad/layers/functional.h"
#include "tapegrad.h"

#include "bn_loss_refs.inc"
#include "ref_helpers.h"

using Catch::Contains;
using tg::Reduction;
using tg::Shape;
using tg::Tensor;
namespace nn = tg::nn;

namespace {

using ref::Inputs;
using ref::make;
using ref::mismatch;
using ref::tolerance;

Shape loss_shape(Reduction r, std::int64_t n) { return r == Reduction::None ? Shape{n} : Shape{}; }

}  // namespace

TEST_CASE("cross_entropy matches PyTorch for mean, sum and none", "[layers]") {
  const tg::DType dtype = GENERATE(tg::kFloat32, tg::kFloat64);
  for (const bn_loss_refs::CrossEntropyRef& r : bn_loss_refs::kCrossEntropy) {
    INFO(r.name << " in " << tg::dtype_name(dtype));
    Tensor logits = make(r.logits, {r.n, r.c}, dtype, true);
    Tensor loss = tg::cross_entropy(logits, tg::tensor(r.target), r.reduction);
    CHECK(loss.grad_fn_name() == "NllLossBackward0");
    CHECK(loss.sizes() == loss_shape(r.reduction, r.n));
    CHECK(mismatch(loss, r.loss, tolerance(dtype)) == "");
    loss.backward(make(r.w, loss.sizes(), dtype));
    CHECK(mismatch(logits.grad(), r.dlogits, tolerance(dtype)) == "");
  }
}

TEST_CASE("cross_entropy is stable for huge logits and exact for a hand-checked row", "[layers]") {
  // log(e^0 + e^0) = log 2 for any shift of both logits, even where exp overflows.
  for (float shift : {0.0f, 1e4f, -1e4f}) {
    Tensor logits = tg::tensor(std::vector<float>{shift, shift}, {1, 2}).requires_grad_();
    Tensor loss = tg::cross_entropy(logits, tg::tensor(std::vector<std::int64_t>{1}));
    CHECK(loss.item<double>() == Approx(std::log(2.0)));
    loss.backward();
    CHECK(logits.grad().to_vector<double>() == std::vector<double>{0.5, -0.5});
  }
}

TEST_CASE("log_softmax and softmax match PyTorch along any dim", "[layers]") {
  const tg::DType dtype = GENERATE(tg::kFloat32, tg::kFloat64);
  for (const bn_loss_refs::SoftmaxRef& r : bn_loss_refs::kSoftmax) {
    INFO(r.name << " in " << tg::dtype_name(dtype));
    Tensor x = make(r.x, r.shape, dtype, true);
    Tensor y = r.log ? tg::log_softmax(x, r.dim) : tg::softmax(x, r.dim);
    CHECK(y.grad_fn_name() == (r.log ? "LogSoftmaxBackward0" : "SoftmaxBackward0"));
    CHECK(mismatch(y, r.y, tolerance(dtype)) == "");
    y.backward(make(r.w, r.shape, dtype));
    CHECK(mismatch(x.grad(), r.dx, tolerance(dtype)) == "");
  }
  Tensor s = tg::softmax(tg::tensor(std::vector<double>{1000, 1000, 1000, 1000}, {2, 2}), 0);
  CHECK(s.to_vector<double>() == std::vector<double>{0.5, 0.5, 0.5, 0.5});
  CHECK(tg::log_softmax(tg::scalar_tensor(3.0), 0).item<double>() == 0.0);
}

TEST_CASE("mse_loss matches PyTorch, with gradients to input and target", "[layers]") {
  const tg::DType dtype = GENERATE(tg::kFloat32, tg::kFloat64);
  for (const bn_loss_refs::MseRef& r : bn_loss_refs::kMse) {
    INFO(r.name << " in " << tg::dtype_name(dtype));
    Tensor input = make(r.input, r.shape, dtype, true), target = make(r.target, r.shape, dtype, true);
    Tensor loss = tg::mse_loss(input, target, r.reduction);
    CHECK(loss.grad_fn_name() == "MseLossBackward0");
    CHECK(loss.sizes() == (r.reduction == Reduction::None ? r.shape : Shape{}));
    CHECK(mismatch(loss, r.loss, tolerance(dtype)) == "");
    loss.backward(make(r.w, loss.sizes(), dtype));
    CHECK(mismatch(input.grad(), r.dinput, tolerance(dtype)) == "");
    CHECK(mismatch(target.grad(), r.dtarget, tolerance(dtype)) == "");
  }
  Tensor a = tg::tensor(std::vector<double>{1, 2}).requires_grad_(), b = tg::tensor(std::vector<double>{0, 4});
  tg::mse_loss(a, b).backward();  // ((1)² + (−2)²) / 2
  CHECK(a.grad().to_vector<double>() == std::vector<double>{1.0, -2.0});
  CHECK_FALSE(b.grad().defined());
}

TEST_CASE("large losses and softmax take the threaded path and agree with composed ops", "[layers]") {
  tg::manual_seed(9);
  auto close = [](const Tensor& a, const Tensor& b) { return mismatch(a, b.to_vector<double>(), 1e-12); };
  Tensor w = tg::randn({4000, 10}, tg::kFloat64);
  Tensor x1 = (tg::randn({4000, 10}, tg::kFloat64) * 3.0).requires_grad_();
  Tensor x2 = x1.detach().clone().requires_grad_();
  Tensor sm = tg::softmax(x1, 1);
  Tensor e = (x2 - x2.max({1}, true)).exp();
  Tensor sm_ref = e / e.sum({1}, true);
  CHECK(close(sm, sm_ref) == "");
  (sm * w).sum().backward();
  (sm_ref * w).sum().backward();
  CHECK(close(x1.grad(), x2.grad()) == "");

  x1.set_grad({});
  x2.set_grad({});
  Tensor target = tg::randint(10, {4000});
  Tensor onehot = tg::arange(10).eq(target.unsqueeze(1)).to(tg::kFloat64);
  Tensor ce = tg::cross_entropy(x1, target, Reduction::None);
  Tensor ce_ref = -(tg::log_softmax(x2, 1) * onehot).sum({1});
  CHECK(close(ce, ce_ref) == "");
  (ce * w.select(1, 0)).sum().backward();
  (ce_ref * w.select(1, 0)).sum().backward();
  CHECK(close(x1.grad(), x2.grad()) == "");

  Tensor a1 = tg::randn({200, 200}, tg::kFloat64).requires_grad_(), b1 = tg::randn({200, 200}, tg::kFloat64);
  Tensor a2 = a1.detach().clone().requires_grad_();
  Tensor mse = tg::mse_loss(a1, b1);
  Tensor mse_ref = (a2 - b1).pow(2).mean();
  CHECK(mse.item<double>() == Approx(mse_ref.item<double>()).epsilon(1e-12));
  mse.backward();
  mse_ref.backward();
  CHECK(close(a1.grad(), a2.grad()) == "");
}

TEST_CASE("losses and softmax gradcheck in float64", "[layers][gradcheck]") {
  const Tensor target = tg::tensor(std::vector<std::int64_t>{2, 0, 4, 4, 1});
  ref::check_gradcheck_rows({
      {"cross_entropy mean", [&](const Inputs& in) { return tg::cross_entropy(in[0], target); }, {{5, 5}},
       "NllLossBackward0"},
      {"cross_entropy sum", [&](const Inputs& in) { return tg::cross_entropy(in[0], target, Reduction::Sum); },
       {{5, 5}}, "NllLossBackward0"},
      {"cross_entropy none", [&](const Inputs& in) { return tg::cross_entropy(in[0], target, Reduction::None); },
       {{5, 5}}, "NllLossBackward0"},
      {"log_softmax dim 1", [](const Inputs& in) { return tg::log_softmax(in[0], 1); }, {{3, 4, 2}},
       "LogSoftmaxBackward0"},
      {"log_softmax dim 0", [](const Inputs& in) { return tg::log_softmax(in[0], 0); }, {{3, 4}},
       "LogSoftmaxBackward0"},
      {"softmax dim -1", [](const Inputs& in) { return tg::softmax(in[0], -1); }, {{3, 4}}, "SoftmaxBackward0"},
      {"softmax dim 1", [](const Inputs& in) { return tg::softmax(in[0], 1); }, {{2, 3, 4}}, "SoftmaxBackward0"},
      {"mse_loss mean", [](const Inputs& in) { return tg::mse_loss(in[0], in[1]); }, {{3, 4}, {3, 4}},
       "MseLossBackward0"},
      {"mse_loss sum", [](const Inputs& in) { return tg::mse_loss(in[0], in[1], Reduction::Sum); }, {{3, 4}, {3, 4}},
       "MseLossBackward0"},
      {"mse_loss none", [](const Inputs& in) { return tg::mse_loss(in[0], in[1], Reduction::None); },
       {{2, 3}, {2, 3}}, "MseLossBackward0"},
  });
}

TEST_CASE("losses and softmax reject bad input with the op's name", "[layers][errors]") {
  Tensor logits = tg::randn({2, 3});
  auto idx = [](std::vector<std::int64_t> v) { return tg::tensor(v); };
  CHECK_THROWS_WITH(tg::cross_entropy(logits, idx({7, 0})), "[cross_entropy] target 7 is out of bounds for 3 classes");
  CHECK_THROWS_WITH(tg::cross_entropy(logits, idx({0, -1})), Contains("[cross_entropy] target -1 is out of bounds"));
  CHECK_THROWS_WITH(tg::cross_entropy(logits, tg::zeros({2})),
                    Contains("[cross_entropy]") && Contains("int64") && Contains("float32"));
  CHECK_THROWS_WITH(tg::cross_entropy(logits, idx({0, 1, 2})),
                    Contains("[cross_entropy] expected target of shape [2] for logits [2, 3], got [3]"));
  CHECK_THROWS_WITH(tg::cross_entropy(tg::randn({2, 3, 4}), idx({0, 1})),
                    Contains("[cross_entropy]") && Contains("[N, C]") && Contains("[2, 3, 4]"));
  CHECK_THROWS_WITH(tg::cross_entropy(tg::ones({2, 3}, tg::kInt64), idx({0, 1})),
                    Contains("[cross_entropy]") && Contains("int64"));

  CHECK_THROWS_WITH(tg::log_softmax(logits, 2), Contains("[log_softmax]") && Contains("out of range"));
  CHECK_THROWS_WITH(tg::softmax(logits, -3), Contains("[softmax]") && Contains("out of range"));
  CHECK_THROWS_WITH(tg::softmax(tg::ones({2}, tg::kInt64), 0), Contains("[softmax]") && Contains("int64"));

  CHECK_THROWS_WITH(tg::mse_loss(tg::randn({3, 2}), tg::randn({2, 3})),
                    Contains("[mse_loss]") && Contains("[3, 2]") && Contains("[2, 3]"));
  CHECK_THROWS_WITH(tg::mse_loss(tg::randn({3}), tg::randn({1})), Contains("[mse_loss]") && Contains("[1]"));
  CHECK_THROWS_WITH(tg::mse_loss(tg::randn({3}), tg::randn({3}, tg::kFloat64)),
                    Contains("[mse_loss]") && Contains("float32") && Contains("float64"));
}

TEST_CASE("the loss modules name themselves in errors", "[layers][errors]") {
  CHECK_THROWS_WITH(nn::CrossEntropyLoss().forward(tg::ones({2})), Contains("[CrossEntropyLoss]"));
}
