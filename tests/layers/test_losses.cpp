// Tests of the functional losses, softmax family, linear and dropout: forward and gradients against
// PyTorch 1.13 (bn_loss_refs.inc) in float32 and float64, one float64 gradcheck table, dropout's
// statistics and mask reuse, and every bad input. Tags [layers] [gradcheck] [errors].
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tapegrad/core/native.h"
#include "tapegrad/layers/functional.h"
#include "tapegrad.h"

#include "bn_loss_refs.inc"
#include "ref_helpers.h"

using Catch::Contains;
using tg::Reduction;
using tg::Shape;
using tg::Tensor;

namespace {

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

TEST_CASE("linear matches PyTorch for 1-D, 2-D and 3-D input, with and without bias", "[layers]") {
  const tg::DType dtype = GENERATE(tg::kFloat32, tg::kFloat64);
  for (const bn_loss_refs::LinearRef& r : bn_loss_refs::kLinear) {
    INFO(r.name << " in " << tg::dtype_name(dtype));
    Tensor x = make(r.x, r.x_shape, dtype, true), weight = make(r.weight, r.weight_shape, dtype, true);
    Tensor bias = make(r.bias, {r.weight_shape[0]}, dtype, true);
    Tensor y = tg::linear(x, weight, bias);
    Shape out = r.x_shape;
    out.back() = r.weight_shape[0];
    CHECK(y.sizes() == out);
    const bool matrix = r.x_shape.size() == 2;
    CHECK(y.grad_fn_name() == (matrix ? (bias.defined() ? "AddmmBackward0" : "MmBackward0")
                                      : (bias.defined() ? "ViewBackward0" : "UnsafeViewBackward0")));
    CHECK(mismatch(y, r.y, tolerance(dtype)) == "");
    y.backward(make(r.w, out, dtype));
    CHECK(mismatch(x.grad(), r.dx, tolerance(dtype)) == "");
    CHECK(mismatch(weight.grad(), r.dweight, tolerance(dtype)) == "");
    if (bias.defined()) CHECK(mismatch(bias.grad(), r.dbias, tolerance(dtype)) == "");
  }
}

TEST_CASE("linear handles empty batches and zero features", "[layers]") {
  Tensor w = tg::randn({3, 0}).requires_grad_(), b = tg::tensor(std::vector<float>{1, 2, 3}).requires_grad_();
  Tensor y = tg::linear(tg::zeros({2, 0}), w, b);
  CHECK(y.to_vector<double>() == std::vector<double>{1, 2, 3, 1, 2, 3});
  y.sum().backward();
  CHECK(b.grad().to_vector<double>() == std::vector<double>{2, 2, 2});
  Tensor w2 = tg::randn({4, 5}).requires_grad_();
  Tensor e = tg::linear(tg::zeros({0, 5}), w2);
  CHECK(e.sizes() == Shape{0, 4});
  e.sum().backward();
  CHECK(w2.grad().to_vector<double>() == std::vector<double>(20, 0.0));
}

TEST_CASE("a large linear's two backward GEMMs, one per thread, equal the one-thread result and matmul's", "[layers]") {
  // At LeNet's first linear (256×256·120 multiply-adds per GEMM) two threads run dx and dweight as
  // one whole GEMM each, in parallel; one thread runs them in turn. Each GEMM is the same call.
  tg::manual_seed(21);
  Tensor x0 = tg::randn({256, 256}), w0 = tg::randn({120, 256}), b0 = tg::randn({120}), gy = tg::randn({256, 120});
  auto run = [&](int threads) {
    const int before = tg::get_num_threads();
    tg::set_num_threads(threads);
    Tensor x = x0.detach().requires_grad_(), w = w0.detach().requires_grad_(), b = b0.detach().requires_grad_();
    tg::linear(x, w, b).backward(gy);
    tg::set_num_threads(before);
    return std::vector<std::vector<double>>{x.grad().to_vector<double>(), w.grad().to_vector<double>(),
                                            b.grad().to_vector<double>()};
  };
  const std::vector<std::vector<double>> one = run(1), two = run(2);
  CHECK(one == two);
  // float64 references: dx = gy · w, dweight = gyᵀ · x, dbias = Σ gy.
  Tensor gy64 = tg::native::to(gy, tg::kFloat64), x64 = tg::native::to(x0, tg::kFloat64);
  Tensor w64 = tg::native::to(w0, tg::kFloat64);
  CHECK(mismatch(tg::native::to(tg::tensor(two[0], {256, 256}), tg::kFloat32), gy64.matmul(w64).to_vector<double>(),
                 1e-4) == "");
  CHECK(mismatch(tg::native::to(tg::tensor(two[1], {120, 256}), tg::kFloat32),
                 gy64.transpose(0, 1).matmul(x64).to_vector<double>(), 1e-4) == "");
  CHECK(mismatch(tg::native::to(tg::tensor(two[2], {120}), tg::kFloat32), gy64.sum({0}).to_vector<double>(), 1e-4) ==
        "");
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

TEST_CASE("dropout keeps 1 − p of the values, scaled by 1/(1 − p), and reuses its mask", "[layers]") {
  tg::manual_seed(3);
  Tensor x = (tg::rand({200, 200}, tg::kFloat64) + 1.0).requires_grad_();  // above the parallel grain
  Tensor y = tg::dropout(x, 0.3, true);
  CHECK(y.grad_fn_name() == "NativeDropoutBackward0");
  std::vector<double> xv = x.to_vector<double>(), yv = y.to_vector<double>();
  std::size_t zeros = 0;
  bool scaled = true;
  for (std::size_t i = 0; i < xv.size(); ++i) {
    if (yv[i] == 0) ++zeros;
    else scaled = scaled && std::fabs(yv[i] - xv[i] / 0.7) < 1e-12;
  }
  CHECK(scaled);
  CHECK(static_cast<double>(zeros) / 40000.0 == Approx(0.3).margin(0.01));  // 4.4 sigma
  y.backward(tg::ones({200, 200}, tg::kFloat64));
  std::vector<double> want;  // the same mask: 0 where dropped, 1/(1 − p) where kept
  for (double v : yv) want.push_back(v == 0 ? 0.0 : 1.0 / 0.7);
  CHECK(x.grad().to_vector<double>() == want);

  tg::manual_seed(11);
  Tensor a = tg::dropout(x, 0.5, true);
  tg::manual_seed(11);
  CHECK(tg::dropout(x, 0.5, true).to_vector<double>() == a.to_vector<double>());
  CHECK(tg::dropout(x, 1.0, true).to_vector<double>() == std::vector<double>(40000, 0.0));
  CHECK(tg::dropout(x, 0.5, false).is_same(x));  // eval: the identity, the very tensor
  CHECK(tg::dropout(x, 0.0, true).is_same(x));
  Tensor f = tg::dropout(tg::ones({64, 64}), 0.25, true);  // float32 draws its mask in float32
  CHECK(f.dtype() == tg::kFloat32);
  CHECK(f.max().item<double>() == Approx(1 / 0.75));
}

TEST_CASE("losses, softmax, linear and dropout gradcheck in float64", "[layers][gradcheck]") {
  using Inputs = std::vector<Tensor>;
  struct Row {
    const char* name;
    std::function<Tensor(const Inputs&)> fn;
    std::vector<Shape> inputs;
    const char* grad_fn;
  };
  const Tensor target = tg::tensor(std::vector<std::int64_t>{2, 0, 4, 4, 1});
  const Row rows[] = {
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
      {"linear 2-D", [](const Inputs& in) { return tg::linear(in[0], in[1], in[2]); }, {{4, 3}, {5, 3}, {5}},
       "AddmmBackward0"},
      {"linear 3-D", [](const Inputs& in) { return tg::linear(in[0], in[1], in[2]); }, {{2, 3, 4}, {2, 4}, {2}},
       "ViewBackward0"},
      {"linear no bias", [](const Inputs& in) { return tg::linear(in[0], in[1]); }, {{4, 3}, {2, 3}}, "MmBackward0"},
      {"dropout", [](const Inputs& in) { tg::manual_seed(5); return tg::dropout(in[0], 0.4, true); }, {{4, 5}},
       "NativeDropoutBackward0"},
  };
  for (const Row& row : rows) {
    INFO(row.name);
    tg::manual_seed(2);
    Inputs inputs;
    for (const Shape& s : row.inputs) inputs.push_back(tg::randn(s, tg::kFloat64).requires_grad_());
    CHECK(row.fn(inputs).grad_fn_name() == row.grad_fn);
    tg::autograd::GradcheckResult result = tg::autograd::gradcheck(row.fn, inputs);
    CHECK(result.message == "");
    CHECK(result.ok);
  }
}

TEST_CASE("losses, softmax, linear and dropout reject bad input with the op's name", "[layers][errors]") {
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

  CHECK_THROWS_WITH(tg::linear(tg::randn({5, 3}), tg::randn({4, 5})),
                    "[linear] input [5, 3] has 3 features, weight [4, 5] expects 5");
  CHECK_THROWS_WITH(tg::linear(tg::randn({5, 3}), tg::randn({3})),
                    Contains("[linear]") && Contains("[out_features, in_features]") && Contains("[3]"));
  CHECK_THROWS_WITH(tg::linear(tg::randn({5, 3}), tg::randn({4, 3}), tg::randn({5})),
                    Contains("[linear] expected bias of shape [4] for weight [4, 3], got [5]"));
  CHECK_THROWS_WITH(tg::linear(tg::randn({5, 3}), tg::randn({4, 3}, tg::kFloat64)),
                    Contains("[linear]") && Contains("float32") && Contains("float64"));
  CHECK_THROWS_WITH(tg::linear(tg::scalar_tensor(1.0), tg::randn({4, 3})),
                    Contains("[linear]") && Contains("[*, in_features]"));

  CHECK_THROWS_WITH(tg::dropout(logits, 1.5), Contains("[dropout]") && Contains("[0, 1]") && Contains("1.5"));
  CHECK_THROWS_WITH(tg::dropout(logits, -0.1), Contains("[dropout]") && Contains("-0.1"));
  CHECK_THROWS_WITH(tg::dropout(logits, -0.1, false), Contains("[dropout]"));
  CHECK_THROWS_WITH(tg::dropout(tg::ones({2}, tg::kInt64), 0.5), Contains("[dropout]") && Contains("int64"));
}
