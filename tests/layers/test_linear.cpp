// Tests of tg::linear and the Linear module: forward and gradients against PyTorch 1.13
// (bn_loss_refs.inc) in float32 and float64, empty batches, the two-thread backward, float64
// gradchecks, and every bad input. Tags [layers] [gradcheck] [errors].
#include <catch2/catch.hpp>

#include <vector>

#include "tapegrad/core/native.h"
#include "tapegrad/layers/functional.h"
#include "tapegrad.h"

#include "bn_loss_refs.inc"
#include "ref_helpers.h"

namespace {

using ref::Inputs;
using ref::make;
using ref::mismatch;
using ref::tolerance;

}  // namespace

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

TEST_CASE("linear gradchecks in float64", "[layers][gradcheck]") {
  ref::check_gradcheck_rows({
      {"linear 2-D", [](const Inputs& in) { return tg::linear(in[0], in[1], in[2]); }, {{4, 3}, {5, 3}, {5}},
       "AddmmBackward0"},
      {"linear 3-D", [](const Inputs& in) { return tg::linear(in[0], in[1], in[2]); }, {{2, 3, 4}, {2, 4}, {2}},
       "ViewBackward0"},
      {"linear no bias", [](const Inputs& in) { return tg::linear(in[0], in[1]); }, {{4, 3}, {2, 3}}, "MmBackward0"},
  });
}

TEST_CASE("linear rejects bad input with the op's name", "[layers][errors]") {
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
}

TEST_CASE("the Linear module names itself in shape errors", "[layers][errors]") {
  CHECK_THROWS_WITH(nn::Linear(4, 3)(tg::ones({2, 5})), Contains("[Linear]") && Contains("[2, 5]"));
}
