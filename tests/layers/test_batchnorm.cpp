// Tests of tg::batch_norm and the BatchNorm modules: forward, running statistics and gradients
// against PyTorch 1.13 (bn_loss_refs.inc, from scripts/gen_layer_refs_bn_loss.py) in float32 and
// float64, float64 gradchecks in training and eval mode, agreement with d2l's batch norm written in
// composed ops, the modules' running statistics and defaults, and every bad input; batch_norm_act
// against batch_norm followed by the activation, its gradchecks, and the BatchNormAct modules.
// Tags [layers] [gradcheck] [errors].
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tapegrad/core/native.h"
#include "tapegrad/core/simd.h"
#include "tapegrad/layers/functional.h"
#include "tapegrad.h"

#include "bn_loss_refs.inc"
#include "ref_helpers.h"

namespace {

using ref::make;
using ref::mismatch;
using ref::tolerance;

// d2l's batch norm from scratch (training mode), composed from differentiable ops: the tape
// derives its gradient.
Tensor d2l_batch_norm(const Tensor& X, const Tensor& gamma, const Tensor& beta, double eps) {
  Shape dims = X.dim() == 2 ? Shape{0} : Shape{0, 2, 3};
  Tensor mean = X.mean(dims, true);
  Tensor var = (X - mean).pow(2).mean(dims, true);
  Tensor X_hat = (X - mean) / (var + eps).sqrt();
  return gamma * X_hat + beta;
}

// Runs `composed` and `fused` (x, weight, bias, running_mean, running_var -> output) on the same
// random inputs of `shape` (C = shape[1]), back-propagates the same random gradient of the output's
// shape through both, and checks outputs, input, weight and bias gradients and running statistics
// agree within tol.
using BatchNormFn = std::function<Tensor(Tensor&, Tensor&, Tensor&, Tensor&, Tensor&)>;
void check_fused_batch_norm(const Shape& shape, tg::DType dtype, double tol, const BatchNormFn& composed,
                            const BatchNormFn& fused) {
  const std::int64_t C = shape[1];
  const Tensor x = tg::native::to(tg::randn(shape) * 1.5 + 0.3, dtype);
  const Tensor w = tg::native::to(tg::rand({C}) + 0.5, dtype), b = tg::native::to(tg::randn({C}) * 0.5, dtype);
  const Tensor rm = tg::native::to(tg::randn({C}) * 0.2, dtype), rv = tg::native::to(tg::rand({C}) + 0.5, dtype);
  auto leaf = [](const Tensor& t) { return tg::native::clone(t).requires_grad_(); };
  Tensor x1 = leaf(x), w1 = leaf(w), b1 = leaf(b), rm1 = tg::native::clone(rm), rv1 = tg::native::clone(rv);
  Tensor x2 = leaf(x), w2 = leaf(w), b2 = leaf(b), rm2 = tg::native::clone(rm), rv2 = tg::native::clone(rv);
  Tensor y1 = composed(x1, w1, b1, rm1, rv1), y2 = fused(x2, w2, b2, rm2, rv2);
  REQUIRE(y2.sizes() == y1.sizes());
  const Tensor dy = tg::native::to(tg::randn(y1.sizes()), dtype);
  y1.backward(dy);
  y2.backward(dy);
  CHECK(mismatch(y2, y1.to_vector<double>(), tol) == "");
  CHECK(mismatch(x2.grad(), x1.grad().to_vector<double>(), tol) == "");
  CHECK(mismatch(w2.grad(), w1.grad().to_vector<double>(), tol) == "");
  CHECK(mismatch(b2.grad(), b1.grad().to_vector<double>(), tol) == "");
  CHECK(mismatch(rm2, rm1.to_vector<double>(), tol) == "");
  CHECK(mismatch(rv2, rv1.to_vector<double>(), tol) == "");
}

// A gradcheck row of batch_norm_act (avg_pool_2x2 as given) over x [shape] and, when affine, weight
// and bias [C], with running statistics of its own.
ref::GradcheckRow batch_norm_act_row(const char* name, tg::BatchNormActivation act, bool training, bool affine,
                                     Shape shape, const char* grad_fn, bool pool = false) {
  const std::int64_t C = shape[1];
  tg::manual_seed(4);
  const Tensor rm = tg::randn({C}, tg::kFloat64) * 0.2, rv = tg::rand({C}, tg::kFloat64) + 0.5;
  std::vector<Shape> inputs{shape};
  if (affine) inputs.insert(inputs.end(), {Shape{C}, Shape{C}});
  return ref::GradcheckRow{name,
                           [=](const ref::Inputs& in) {
                             Tensor w = affine ? in[1] : Tensor(), b = affine ? in[2] : Tensor();
                             return tg::batch_norm_act(in[0], act, tg::native::clone(rm), tg::native::clone(rv), w, b,
                                                       training, 0.1, 1e-5, pool);
                           },
                           inputs, grad_fn};
}

}  // namespace

TEST_CASE("batch_norm matches PyTorch: outputs, running statistics and gradients", "[layers]") {
  const tg::DType dtype = GENERATE(tg::kFloat32, tg::kFloat64);
  const double tol = tolerance(dtype);
  for (const bn_loss_refs::BatchNormRef& r : bn_loss_refs::kBatchNorm) {
    const std::int64_t C = r.shape[1];
    INFO(r.name << " in " << tg::dtype_name(dtype));
    Tensor x = make(r.x, r.shape, dtype, true);
    Tensor weight = make(r.weight, {C}, dtype, true), bias = make(r.bias, {C}, dtype, true);
    Tensor running_mean = make(r.running_mean, {C}, dtype), running_var = make(r.running_var, {C}, dtype);
    std::size_t entries = tg::autograd::tape_size();
    Tensor y = tg::batch_norm(x, running_mean, running_var, weight, bias, r.training, r.momentum, r.eps);
    CHECK(tg::autograd::tape_size() == entries + 1);
    CHECK(y.grad_fn_name() == "NativeBatchNormBackward0");
    CHECK(y.dtype() == dtype);
    CHECK(y.sizes() == r.shape);
    CHECK(mismatch(y, r.y, tol) == "");
    if (running_mean.defined()) {
      CHECK(mismatch(running_mean, r.running_mean_after, tol) == "");
      CHECK(mismatch(running_var, r.running_var_after, tol) == "");
    }
    y.backward(make(r.w, r.shape, dtype));
    CHECK(mismatch(x.grad(), r.dx, tol) == "");
    if (weight.defined()) {
      CHECK(mismatch(weight.grad(), r.dweight, tol) == "");
      CHECK(mismatch(bias.grad(), r.dbias, tol) == "");
    }
  }
}

TEST_CASE("batch_norm updates the running statistics in place, with the unbiased variance", "[layers]") {
  // One channel of 4 values {1, 2, 3, 6}: mean 3, biased var 3.5, unbiased var 14/3.
  Tensor x = tg::tensor(std::vector<double>{1, 2, 3, 6}, {4, 1});
  Tensor rm = tg::full({1}, 1.0, tg::kFloat64), rv = tg::full({1}, 2.0, tg::kFloat64);
  Tensor rm_view = rm.slice(0, 0, 1);  // a view: the update must write through the shared storage
  const auto version = rm.storage()->version();
  Tensor y = tg::batch_norm(x, rm, rv, {}, {}, true, 0.5, 0.0);
  CHECK(rm_view.item<double>() == Approx(0.5 * 1 + 0.5 * 3));
  CHECK(rv.item<double>() == Approx(0.5 * 2 + 0.5 * 14.0 / 3));
  CHECK(rm.storage()->version() > version);
  std::vector<double> want{-2 / std::sqrt(3.5), -1 / std::sqrt(3.5), 0, 3 / std::sqrt(3.5)};
  CHECK(mismatch(y, want, 1e-12) == "");

  SECTION("eval mode reads them and leaves them alone") {
    Tensor e = tg::batch_norm(x, rm, rv, {}, {}, false, 0.5, 0.0);
    CHECK(rm.item<double>() == Approx(2.0));
    std::vector<double> expect;
    for (double v : {1.0, 2.0, 3.0, 6.0}) expect.push_back((v - 2.0) / std::sqrt(rv.item<double>()));
    CHECK(mismatch(e, expect, 1e-12) == "");
  }
  SECTION("an empty batch leaves them alone, as PyTorch") {
    Tensor empty = tg::zeros({0, 1}, tg::kFloat64);
    CHECK(tg::batch_norm(empty, rm, rv, {}, {}, true).sizes() == Shape{0, 1});
    CHECK(rm.item<double>() == Approx(2.0));
    CHECK(rv.item<double>() == Approx(0.5 * 2 + 0.5 * 14.0 / 3));
  }
}

TEST_CASE("batch_norm's variance is two-pass: a large mean does not cancel the variance", "[layers]") {
  // float32 values 10000 + {−1, 1}·k: E[x²] − E[x]² would lose every digit of the variance.
  std::vector<float> v;
  for (int i = 0; i < 64; ++i) v.push_back(10000.0f + static_cast<float>((i % 2 ? 1 : -1) * (1 + i % 3)));
  Tensor x = tg::tensor(v, {64, 1});
  Tensor rm = tg::zeros({1}), rv = tg::ones({1});
  Tensor y = tg::batch_norm(x, rm, rv, {}, {}, true, 1.0, 0.0);
  std::vector<double> xd(v.begin(), v.end());
  double mean = 0, var = 0;
  for (double d : xd) mean += d / 64;
  for (double d : xd) var += (d - mean) * (d - mean) / 64;
  CHECK(rm.item<double>() == Approx(mean).epsilon(1e-7));
  CHECK(rv.item<double>() == Approx(var * 64 / 63).epsilon(1e-5));
  std::vector<double> want;
  for (double d : xd) want.push_back((d - mean) / std::sqrt(var));
  CHECK(mismatch(y, want, 1e-4) == "");
}

TEST_CASE("batch_norm_moments over chunks of samples, the last one partial, match float64's two passes",
          "[layers]") {
  // 70 samples are chunks of 32, 32 and 6; a sample's 105 values are 64 lanes in registers and 41
  // through memory; the mean of 1000 is far from zero, so a one-pass E[x²] − E[x]² would lose the
  // variance.
  const tg::DType dtype = GENERATE(tg::kFloat32, tg::kFloat64);
  tg::manual_seed(41);
  const Tensor x = tg::native::to(tg::randn({70, 3, 5, 7}) * 2.0 + 1000.0, dtype);
  const tg::BatchNormMoments moments = tg::batch_norm_moments(x);
  CHECK(moments.count == 70 * 35);
  const std::vector<double> v = x.to_vector<double>();
  std::vector<double> sum(3, 0.0), m2(3, 0.0);
  for (std::size_t i = 0; i < v.size(); ++i) sum[i / 35 % 3] += v[i];
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double d = v[i] - sum[i / 35 % 3] / (70 * 35);
    m2[i / 35 % 3] += d * d;
  }
  const bool f32 = dtype == tg::kFloat32;
  CHECK(mismatch(moments.sum, sum, f32 ? 1e-6 : 1e-14) == "");
  CHECK(mismatch(moments.m2, m2, f32 ? 1e-5 : 1e-10) == "");
}

TEST_CASE("batch_norm in eval mode: the backward is a per-channel scale", "[layers]") {
  Tensor x = tg::randn({3, 2, 4}, tg::kFloat64).requires_grad_();
  Tensor rm = tg::tensor(std::vector<double>{0.5, -1.0}), rv = tg::tensor(std::vector<double>{4.0, 0.25});
  Tensor w = tg::tensor(std::vector<double>{2.0, -3.0});
  Tensor dy = tg::randn({3, 2, 4}, tg::kFloat64);
  tg::batch_norm(x, rm, rv, w, {}, false, 0.1, 1e-5).backward(dy);
  std::vector<double> g = dy.to_vector<double>(), want;
  for (std::size_t i = 0; i < g.size(); ++i) {
    std::size_t c = (i / 4) % 2;
    want.push_back(g[i] * (c == 0 ? 2.0 / std::sqrt(4.0 + 1e-5) : -3.0 / std::sqrt(0.25 + 1e-5)));
  }
  CHECK(mismatch(x.grad(), want, 1e-12) == "");
}

TEST_CASE("batch_norm computes gradients only for inputs that require them", "[layers]") {
  Tensor x = tg::randn({4, 3, 2, 2}, tg::kFloat64);
  Tensor w = tg::ones({3}, tg::kFloat64).requires_grad_(), b = tg::zeros({3}, tg::kFloat64);
  Tensor y = tg::batch_norm(x, {}, {}, w, b, true);
  y.backward(tg::randn({4, 3, 2, 2}, tg::kFloat64));
  CHECK(w.grad().defined());
  CHECK_FALSE(x.grad().defined());
  CHECK_FALSE(b.grad().defined());
  CHECK_FALSE(tg::batch_norm(x, {}, {}, tg::ones({3}, tg::kFloat64), b, true).requires_grad());
  tg::NoGradGuard no_grad;
  CHECK_FALSE(tg::batch_norm(x, {}, {}, w, b, true).requires_grad());
}

TEST_CASE("batch_norm agrees with d2l's batch norm in composed ops, forward and backward", "[layers]") {
  const tg::DType dtype = GENERATE(tg::kFloat32, tg::kFloat64);
  const double tol = dtype == tg::kFloat32 ? 1e-5 : 1e-10;
  // Small shapes, and one above the parallel grain so the threaded path runs too.
  const Shape shape = GENERATE(Shape{8, 5}, Shape{4, 3, 5, 5}, Shape{16, 4, 24, 24});
  INFO(tg::dtype_name(dtype) << " " << fmt::format("{}", shape));
  const std::int64_t C = shape[1];
  Shape param_shape(shape.size(), 1);
  param_shape[1] = C;
  tg::manual_seed(42);
  Tensor x0 = (tg::randn(shape, tg::kFloat64) * 2.0 + 0.5).to(dtype);
  Tensor g0 = (tg::rand({C}, tg::kFloat64) + 0.5).to(dtype), b0 = tg::randn({C}, tg::kFloat64).to(dtype);
  Tensor w = tg::randn(shape, tg::kFloat64).to(dtype);

  Tensor x1 = x0.clone().requires_grad_(), gamma1 = g0.reshape(param_shape).requires_grad_();
  Tensor beta1 = b0.reshape(param_shape).requires_grad_();
  Tensor y1 = d2l_batch_norm(x1, gamma1, beta1, 1e-5);
  (y1 * w).sum().backward();

  Tensor x2 = x0.clone().requires_grad_(), gamma2 = g0.clone().requires_grad_(), beta2 = b0.clone().requires_grad_();
  Tensor y2 = tg::batch_norm(x2, {}, {}, gamma2, beta2, true, 0.1, 1e-5);
  (y2 * w).sum().backward();

  CHECK(mismatch(y2, y1.to_vector<double>(), tol) == "");
  CHECK(mismatch(x2.grad(), x1.grad().to_vector<double>(), tol) == "");
  CHECK(mismatch(gamma2.grad(), gamma1.grad().to_vector<double>(), tol) == "");
  CHECK(mismatch(beta2.grad(), beta1.grad().to_vector<double>(), tol) == "");
}

TEST_CASE("batch_norm takes non-contiguous inputs", "[layers]") {
  Tensor base = tg::randn({2, 5, 3, 4}, tg::kFloat64);
  Tensor x = base.permute({0, 1, 3, 2});  // [2, 5, 4, 3], strided
  Tensor w = tg::randn({10}, tg::kFloat64).slice(0, 0, 10, 2);
  Tensor a = tg::batch_norm(x, {}, {}, w, {}, true);
  Tensor b = tg::batch_norm(x.contiguous(), {}, {}, w.contiguous(), {}, true);
  CHECK(mismatch(a, b.to_vector<double>(), 1e-14) == "");
}

TEST_CASE("batch_norm gradchecks in float64, training and eval", "[layers][gradcheck]") {
  struct Row {
    const char* name;
    Shape shape;
    bool training, affine;
  };
  const Row rows[] = {
      {"1d train [6, 3]", {6, 3}, true, true},        {"1d train [3, 2, 4]", {3, 2, 4}, true, true},
      {"2d train [2, 3, 3, 2]", {2, 3, 3, 2}, true, true}, {"2d train no affine", {3, 2, 2, 2}, true, false},
      {"1d eval [5, 3]", {5, 3}, false, true},         {"1d eval [2, 3, 4]", {2, 3, 4}, false, true},
      {"2d eval [2, 3, 3, 2]", {2, 3, 3, 2}, false, true}, {"2d eval no affine", {2, 2, 3, 2}, false, false},
  };
  for (const Row& row : rows) {
    INFO(row.name);
    tg::manual_seed(7);
    const std::int64_t C = row.shape[1];
    Tensor x = (tg::randn(row.shape, tg::kFloat64) * 1.5 + 0.3).requires_grad_();
    Tensor rm = tg::randn({C}, tg::kFloat64) * 0.2, rv = tg::rand({C}, tg::kFloat64) + 0.5;
    std::vector<Tensor> inputs{x};
    if (row.affine) {
      inputs.push_back((tg::rand({C}, tg::kFloat64) + 0.5).requires_grad_());
      inputs.push_back(tg::randn({C}, tg::kFloat64).requires_grad_());
    }
    auto fn = [&](const std::vector<Tensor>& in) {
      Tensor w = row.affine ? in[1] : Tensor(), b = row.affine ? in[2] : Tensor();
      return tg::batch_norm(in[0], rm, rv, w, b, row.training, 0.1, 1e-5);
    };
    tg::autograd::GradcheckResult result = tg::autograd::gradcheck(fn, inputs);
    CHECK(result.message == "");
    CHECK(result.ok);
  }
}

TEST_CASE("batch_norm rejects bad input with the op's name and the shapes", "[layers][errors]") {
  Tensor x = tg::randn({2, 4, 3});
  Tensor c4 = tg::ones({4}), c3 = tg::ones({3});
  CHECK_THROWS_WITH(tg::batch_norm(tg::randn({4}), {}, {}, {}, {}, true),
                    Contains("[batch_norm]") && Contains("[N, C, H, W]") && Contains("got [4]"));
  CHECK_THROWS_WITH(tg::batch_norm(tg::randn({1, 1, 1, 1, 1, 2}), {}, {}, {}, {}, true),
                    Contains("[batch_norm]") && Contains("[1, 1, 1, 1, 1, 2]"));
  CHECK_THROWS_WITH(tg::batch_norm(tg::ones({2, 4}, tg::kInt64), {}, {}, {}, {}, true),
                    Contains("[batch_norm]") && Contains("int64"));
  CHECK_THROWS_WITH(tg::batch_norm(x, {}, {}, c3, {}, true),
                    Contains("[batch_norm] expected weight of shape [4] (C = 4 for input [2, 4, 3]), got [3]"));
  CHECK_THROWS_WITH(tg::batch_norm(x, {}, {}, c4, c3, true), Contains("[batch_norm] expected bias") && Contains("[3]"));
  CHECK_THROWS_WITH(tg::batch_norm(x, c3, c4, {}, {}, true),
                    Contains("[batch_norm] expected running_mean") && Contains("C = 4") && Contains("[3]"));
  CHECK_THROWS_WITH(tg::batch_norm(x, c4, tg::ones({4, 1}), {}, {}, true),
                    Contains("[batch_norm] expected running_var") && Contains("[4, 1]"));
  CHECK_THROWS_WITH(tg::batch_norm(x, {}, {}, tg::ones({4}, tg::kFloat64), {}, true),
                    Contains("[batch_norm] expected weight of dtype float32") && Contains("float64"));
  CHECK_THROWS_WITH(tg::batch_norm(x, c4, {}, {}, {}, true),
                    Contains("[batch_norm]") && Contains("both defined or both undefined"));
  CHECK_THROWS_WITH(tg::batch_norm(x, {}, {}, {}, {}, false),
                    Contains("[batch_norm]") && Contains("evaluation mode"));
  CHECK_THROWS_WITH(tg::batch_norm(tg::randn({1, 4}), {}, {}, {}, {}, true),
                    "[batch_norm] Expected more than 1 value per channel when training, got input size [1, 4]");
  CHECK_THROWS_WITH(tg::batch_norm(tg::randn({1, 4, 1, 1}), {}, {}, {}, {}, true),
                    Contains("got input size [1, 4, 1, 1]"));
  CHECK_NOTHROW(tg::batch_norm(tg::randn({1, 4}), c4, c4, {}, {}, false));  // eval needs no batch statistics

  SECTION("a rejected call leaves the running statistics as they were") {
    Tensor rm = tg::zeros({4}), rv = tg::ones({4});
    CHECK_THROWS(tg::batch_norm(x, rm, rv, c3, {}, true));
    CHECK(rm.to_vector<double>() == std::vector<double>(4, 0.0));
    CHECK(rv.to_vector<double>() == std::vector<double>(4, 1.0));
    CHECK(rm.storage()->version() == 0);
  }
}

TEST_CASE("BatchNorm modules keep PyTorch's running statistics", "[layers]") {
  tg::manual_seed(5);
  Tensor x = tg::randn({6, 3, 2, 2}) * 2.0 + 1.0;
  nn::BatchNorm2d bn(3);
  bn(x);
  ref::check_close(bn.running_mean, (x.mean({0, 2, 3}) * 0.1).to_vector<double>(), 1e-6);
  ref::check_close(bn.running_var, (x.var({0, 2, 3}) * 0.1 + 0.9).to_vector<double>(), 1e-6);
  nn::BatchNorm2d cumulative(3, {.momentum = std::nullopt});
  cumulative(x);
  cumulative(x * 3.0);
  // momentum None: the running mean is the plain average of the batch means
  ref::check_close(cumulative.running_mean, (x.mean({0, 2, 3}) * 2.0).to_vector<double>(), 1e-5);
  CHECK(cumulative.num_batches_tracked.item<std::int64_t>() == 2);
  bn.eval();
  Tensor y = bn(x);
  Tensor rm = bn.running_mean.reshape({1, 3, 1, 1}), rv = bn.running_var.reshape({1, 3, 1, 1});
  ref::check_close(y, ((x - rm) / (rv + 1e-5).sqrt()).to_vector<double>(), 1e-5);
  CHECK(bn.num_batches_tracked.item<std::int64_t>() == 1);  // eval does not count
  nn::BatchNorm1d untracked(3, {.track_running_stats = false});
  untracked.eval();  // no running statistics: batch statistics even in eval
  Tensor h = tg::randn({8, 3});
  ref::check_close(untracked(h).mean({0}), {0, 0, 0}, 1e-5);
  CHECK(untracked.named_buffers().empty());
}

TEST_CASE("BatchNorm2d starts from PyTorch's weight and running variance of ones", "[layers]") {
  nn::BatchNorm2d bn(3);
  CHECK(bn.weight.to_vector<double>() == std::vector<double>{1, 1, 1});
  CHECK(bn.running_var.to_vector<double>() == std::vector<double>{1, 1, 1});
}

TEST_CASE("the BatchNorm modules name themselves in shape errors", "[layers][errors]") {
  CHECK_THROWS_WITH(nn::BatchNorm2d(3)(tg::ones({2, 3, 4})), Contains("[BatchNorm2d]") && Contains("3D"));
  CHECK_THROWS_WITH(nn::BatchNorm2d(3)(tg::ones({2, 5, 4, 4})), Contains("[BatchNorm2d]") && Contains("5"));
  CHECK_THROWS_WITH(nn::BatchNorm1d(3)(tg::ones({2, 3, 4, 4})), Contains("[BatchNorm1d]"));
}

TEST_CASE("batch_norm_act is batch_norm then sigmoid or relu: outputs, running statistics, gradients", "[layers]") {
  const tg::DType dtype = GENERATE(tg::kFloat32, tg::kFloat64);
  const bool training = GENERATE(true, false);
  struct Act {
    tg::BatchNormActivation act;
    const char* grad_fn;
    Tensor (*apply)(const Tensor&);
  };
  const Act acts[] = {
      {tg::BatchNormActivation::Sigmoid, "BatchNormSigmoidBackward0", [](const Tensor& t) { return t.sigmoid(); }},
      {tg::BatchNormActivation::ReLU, "BatchNormReluBackward0", [](const Tensor& t) { return t.relu(); }}};
  // [N, C] rows; runs shorter than the 16 lanes; runs of lanes and a tail; whole lanes.
  const Shape shapes[] = {{6, 3}, {3, 2, 5}, {4, 3, 7, 9}, {2, 2, 16, 16}};
  const double tol = dtype == tg::kFloat32 ? 1e-6 : 1e-13;
  for (const Act& a : acts)
    for (const Shape& shape : shapes) {
      INFO(fmt::format("{} {} {}", a.grad_fn, shape, training ? "training" : "eval"));
      tg::manual_seed(11);
      check_fused_batch_norm(
          shape, dtype, tol,
          [&](Tensor& x, Tensor& w, Tensor& b, Tensor& rm, Tensor& rv) {
            return a.apply(tg::batch_norm(x, rm, rv, w, b, training, 0.1, 1e-5));
          },
          [&](Tensor& x, Tensor& w, Tensor& b, Tensor& rm, Tensor& rv) {
            Tensor y = tg::batch_norm_act(x, a.act, rm, rv, w, b, training, 0.1, 1e-5);
            CHECK(y.grad_fn_name() == a.grad_fn);
            return y;
          });
    }
}

TEST_CASE("batch_norm_act gradchecks in float64, training and eval, with and without affine", "[layers][gradcheck]") {
  using A = tg::BatchNormActivation;
  const char *sigmoid_pool = "BatchNormSigmoidAvgPoolBackward0", *relu_pool = "BatchNormReluAvgPoolBackward0";
  ref::check_gradcheck_rows({
      batch_norm_act_row("sigmoid 1d train", A::Sigmoid, true, true, {6, 3}, "BatchNormSigmoidBackward0"),
      batch_norm_act_row("sigmoid 2d train", A::Sigmoid, true, true, {2, 3, 5, 4}, "BatchNormSigmoidBackward0"),
      batch_norm_act_row("sigmoid 2d train no affine", A::Sigmoid, true, false, {3, 2, 3, 3},
                         "BatchNormSigmoidBackward0"),
      batch_norm_act_row("sigmoid 1d eval", A::Sigmoid, false, true, {2, 3, 4}, "BatchNormSigmoidBackward0"),
      batch_norm_act_row("sigmoid 2d eval", A::Sigmoid, false, true, {2, 3, 5, 4}, "BatchNormSigmoidBackward0"),
      batch_norm_act_row("relu 1d train", A::ReLU, true, true, {6, 3}, "BatchNormReluBackward0"),
      batch_norm_act_row("relu 2d train", A::ReLU, true, true, {2, 3, 5, 4}, "BatchNormReluBackward0"),
      batch_norm_act_row("relu 2d eval no affine", A::ReLU, false, false, {2, 2, 3, 3}, "BatchNormReluBackward0"),
      batch_norm_act_row("sigmoid pool train", A::Sigmoid, true, true, {2, 3, 4, 6}, sigmoid_pool, true),
      batch_norm_act_row("sigmoid pool train odd sides", A::Sigmoid, true, false, {2, 2, 5, 3}, sigmoid_pool, true),
      batch_norm_act_row("sigmoid pool eval", A::Sigmoid, false, true, {2, 2, 4, 5}, sigmoid_pool, true),
      batch_norm_act_row("relu pool train", A::ReLU, true, true, {3, 2, 4, 4}, relu_pool, true),
  });
}

TEST_CASE("batch_norm_act rejects bad input under its own name", "[layers][errors]") {
  const Tensor x = tg::randn({2, 4, 3});
  CHECK_THROWS_WITH(tg::batch_norm_act(x, tg::BatchNormActivation::Sigmoid, {}, {}, tg::ones({3}), {}, true),
                    "[batch_norm_act] expected weight of shape [4] (C = 4 for input [2, 4, 3]), got [3]");
  CHECK_THROWS_WITH(tg::batch_norm_act(tg::randn({1, 4}), tg::BatchNormActivation::ReLU, {}, {}, {}, {}, true),
                    "[batch_norm_act] Expected more than 1 value per channel when training, got input size [1, 4]");
}

TEST_CASE("BatchNormAct2d is a BatchNorm2d with its activation: state, printing, outputs", "[layers]") {
  tg::manual_seed(6);
  nn::BatchNorm2d bn(3);
  nn::BatchNormAct2d fused(bn, tg::BatchNormActivation::Sigmoid);
  CHECK(fused.to_string() ==
        "BatchNormAct2d(3, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True, activation=Sigmoid)");
  CHECK(bn.to_string() == "BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)");
  const nn::NamedTensors a = bn.state_dict(), b = fused.state_dict();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].first == b[i].first);
    CHECK(a[i].second.is_same(b[i].second));  // shared, not copied
  }
  const Tensor x = tg::randn({4, 3, 5, 5});
  fused(x);  // updates the shared running statistics once
  CHECK(bn.num_batches_tracked.item<std::int64_t>() == 1);
  fused.eval();
  bn.eval();
  CHECK(mismatch(fused(x), bn(x).sigmoid().to_vector<double>(), 1e-6) == "");
  nn::BatchNormAct1d relu(4, tg::BatchNormActivation::ReLU, {.momentum = std::nullopt});
  CHECK(relu.to_string() ==
        "BatchNormAct1d(4, eps=1e-05, momentum=None, affine=True, track_running_stats=True, activation=ReLU)");
  CHECK_THROWS_WITH(relu(tg::ones({2, 3})), Contains("[BatchNormAct1d] expected 4 channels"));
}

TEST_CASE("batch_norm_act with avg_pool_2x2 is batch_norm, the activation and avg_pool2d(2)", "[layers]") {
  const tg::DType dtype = GENERATE(tg::kFloat32, tg::kFloat64);
  const bool training = GENERATE(true, false);
  const tg::BatchNormActivation act = GENERATE(tg::BatchNormActivation::Sigmoid, tg::BatchNormActivation::ReLU);
  const bool sigmoid = act == tg::BatchNormActivation::Sigmoid;
  // Even sides; odd sides (the last row and column in no window); rows of more than eight windows
  // (the vector rows) with an odd width; the smallest plane; widths of whole eight-float groups, whose
  // float32 gradient forms in registers (PooledRowsGrad): one row to a sixteen-lane vector, two, and
  // vectors across rows (LeNet-BN's conv1). Then inputs of 1 MiB and more, whose backward sums come
  // from the window slopes the forward writes: LeNet-BN's conv2 and conv1 at batch 64 and 80, an
  // odd-sided plane. Their weight and bias gradients sum 16k-46k values a channel, with cancellation:
  // against float64, both float32 paths are off by up to 1.6e-5 there.
  const Shape shapes[] = {{4, 3, 8, 6}, {3, 2, 7, 9}, {2, 2, 5, 35}, {5, 2, 2, 2},   {2, 3, 4, 16},
                          {3, 2, 4, 8}, {2, 3, 6, 24}, {64, 16, 8, 8}, {80, 6, 24, 24}, {32, 8, 33, 31}};
  for (const Shape& shape : shapes) {
    const double tol = (dtype == tg::kFloat32 ? 1e-6 : 1e-13) * (tg::numel_of(shape) >= (1 << 18) ? 20 : 1);
    INFO(fmt::format("{} {} {}", sigmoid ? "sigmoid" : "relu", shape, training ? "training" : "eval"));
    tg::manual_seed(12);
    check_fused_batch_norm(
        shape, dtype, tol,
        [&](Tensor& x, Tensor& w, Tensor& b, Tensor& rm, Tensor& rv) {
          Tensor s = tg::batch_norm(x, rm, rv, w, b, training, 0.1, 1e-5);
          return tg::avg_pool2d(sigmoid ? s.sigmoid() : s.relu(), 2);
        },
        [&](Tensor& x, Tensor& w, Tensor& b, Tensor& rm, Tensor& rv) {
          Tensor p = tg::batch_norm_act(x, act, rm, rv, w, b, training, 0.1, 1e-5, true);
          CHECK(p.grad_fn_name() == (sigmoid ? "BatchNormSigmoidAvgPoolBackward0" : "BatchNormReluAvgPoolBackward0"));
          return p;
        });
  }
}

TEST_CASE("batch_norm_act's pool and BatchNormAct2d's refuse what a 2x2 pool cannot take", "[layers][errors]") {
  const auto S = tg::BatchNormActivation::Sigmoid;
  CHECK_THROWS_WITH(tg::batch_norm_act(tg::randn({2, 3, 4}), S, {}, {}, {}, {}, true, 0.1, 1e-5, true),
                    "[batch_norm_act] expected input of shape [N, C, H, W] with H, W >= 2 for the 2x2 average pool, "
                    "got [2, 3, 4]");
  CHECK_THROWS_WITH(tg::batch_norm_act(tg::randn({2, 3, 1, 4}), S, {}, {}, {}, {}, true, 0.1, 1e-5, true),
                    "[batch_norm_act] expected input of shape [N, C, H, W] with H, W >= 2 for the 2x2 average pool, "
                    "got [2, 3, 1, 4]");
  CHECK_THROWS_WITH(nn::BatchNormAct1d(3, S, {}, true),
                    "[BatchNormAct1d] expected avg_pool_2x2 only on BatchNormAct2d (a 2x2 pool needs [N, C, H, W] "
                    "input)");
  nn::BatchNormAct2d pooled(3, S, {}, true);
  CHECK(pooled.to_string() == "BatchNormAct2d(3, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True, "
                              "activation=Sigmoid, avg_pool2d=2)");
  const Tensor before = tg::native::clone(pooled.running_mean);
  CHECK_THROWS_WITH(pooled(tg::randn({2, 3, 5, 1})), Contains("[batch_norm_act] expected input of shape"));
  CHECK(mismatch(pooled.running_mean, before.to_vector<double>(), 0) == "");  // a refused batch changes nothing
  CHECK(pooled.num_batches_tracked.item<std::int64_t>() == 0);
}

TEST_CASE("batch norm's kernels give AVX2's bits on AVX-512, and agree with the portable build within rounding",
          "[layers]") {
  // Runs of whole 64-lane chunks, of a chunk and a tail, of tails only, odd planes under the pool,
  // planes 8 and 24 wide (on AVX-512 pooled from registers), the same from 1 MiB (with the window
  // slopes, from registers too) and an odd-sided plane of 1 MiB, and [N, C] rows; every mode of
  // batch_norm_act, training and eval, float32 and float64.
  const Shape shapes[] = {{2, 3, 8, 8},    {4, 3, 70},      {3, 2, 130},     {3, 5, 9, 11}, {5, 4, 6, 6},
                          {3, 2, 4, 24},   {64, 16, 8, 8},  {80, 6, 24, 24}, {32, 8, 33, 31}, {33, 7}};
  const tg::DType dtype = GENERATE(tg::kFloat32, tg::kFloat64);
  const bool training = GENERATE(true, false);
  enum Mode { kPlain, kSigmoid, kRelu, kSigmoidPool, kReluPool };
  for (const Shape& shape : shapes)
    for (Mode mode : {kPlain, kSigmoid, kRelu, kSigmoidPool, kReluPool}) {
      const bool pool = mode == kSigmoidPool || mode == kReluPool;
      if (pool && shape.size() != 4) continue;
      INFO(fmt::format("{} mode {} {} {}", shape, static_cast<int>(mode), tg::dtype_name(dtype),
                       training ? "training" : "eval"));
      // Outputs, gradients of x, weight and bias, running statistics, under the given instruction set.
      auto run = [&](tg::simd::Isa isa) {
        const tg::simd::IsaLimit limit(isa);
        tg::manual_seed(21);
        const std::int64_t C = shape[1];
        Tensor x = tg::native::to(tg::randn(shape) * 2.0 + 0.7, dtype).requires_grad_();
        Tensor w = tg::native::to(tg::rand({C}) + 0.5, dtype).requires_grad_();
        Tensor b = tg::native::to(tg::randn({C}), dtype).requires_grad_();
        Tensor rm = tg::native::to(tg::randn({C}), dtype), rv = tg::native::to(tg::rand({C}) + 0.5, dtype);
        const auto act = mode == kSigmoid || mode == kSigmoidPool ? tg::BatchNormActivation::Sigmoid
                                                                  : tg::BatchNormActivation::ReLU;
        Tensor y = mode == kPlain ? tg::batch_norm(x, rm, rv, w, b, training, 0.1, 1e-5)
                                  : tg::batch_norm_act(x, act, rm, rv, w, b, training, 0.1, 1e-5, pool);
        y.backward(tg::native::to(tg::randn(y.sizes()), dtype));
        return std::vector<Tensor>{y, x.grad(), w.grad(), b.grad(), rm, rv};
      };
      const std::vector<Tensor> avx512 = run(tg::simd::Isa::Avx512), avx2 = run(tg::simd::Isa::Avx2),
                                portable = run(tg::simd::Isa::Portable);
      const double tol = dtype == tg::kFloat32 ? 1e-5 : 1e-12;
      for (std::size_t k = 0; k < avx512.size(); ++k) {
        CAPTURE(k);
        CHECK(avx2[k].to_vector<double>() == avx512[k].to_vector<double>());
        CHECK(mismatch(portable[k], avx512[k].to_vector<double>(), tol) == "");
      }
    }
}

namespace {

// conv2d_batch_norm_act's case: the convolution's arguments, batch norm's mode, what requires grad.
struct ConvBatchNormCase {
  Shape x;
  std::int64_t filters, padding, groups;
  tg::BatchNormActivation act;
  bool pool, x_grad, conv_bias;
};

// Outputs, running statistics and the gradients of x, conv weight, conv bias, weight and bias, from
// the fused op or from conv2d then batch_norm_act, under the given instruction set and thread count.
std::vector<Tensor> conv_batch_norm_run(const ConvBatchNormCase& c, bool fused, tg::simd::Isa isa, int threads) {
  const tg::simd::IsaLimit limit(isa);
  const int saved_threads = tg::get_num_threads();
  tg::set_num_threads(threads);
  tg::manual_seed(31);
  const std::int64_t C = c.x[1], F = c.filters;
  Tensor x = tg::rand(c.x) * 2.0 - 0.5;
  if (c.x_grad) x.requires_grad_();
  Tensor cw = (tg::randn({F, C / c.groups, 5, 5}) * 0.3).requires_grad_();
  Tensor cb = c.conv_bias ? tg::randn({F}).requires_grad_() : Tensor();
  Tensor w = (tg::rand({F}) + 0.5).requires_grad_(), b = tg::randn({F}).requires_grad_();
  Tensor rm = tg::randn({F}), rv = tg::rand({F}) + 0.5;
  Tensor y = fused ? tg::conv2d_batch_norm_act(x, cw, cb, 1, c.padding, c.groups, c.act, rm, rv, w, b, true, 0.1,
                                               1e-5, c.pool)
                   : tg::batch_norm_act(tg::conv2d(x, cw, cb, 1, c.padding, c.groups), c.act, rm, rv, w, b, true, 0.1,
                                        1e-5, c.pool);
  tg::manual_seed(32);
  y.backward(tg::randn(y.sizes()));
  tg::set_num_threads(saved_threads);
  return {y, rm, rv, x.grad(), cw.grad(), c.conv_bias ? cb.grad() : Tensor(), w.grad(), b.grad()};
}

}  // namespace

TEST_CASE("conv2d_batch_norm_act gives conv2d then batch_norm_act's bits: outputs, statistics, every gradient",
          "[layers]") {
  using A = tg::BatchNormActivation;
  // LeNet-BN's two blocks (conv1 at 37 samples: a chunk and a part), padding, groups, ReLU without the
  // pool, no conv bias; on each instruction set, on one thread and two.
  const ConvBatchNormCase cases[] = {
      {{37, 1, 28, 28}, 6, 0, 1, A::Sigmoid, true, false, true},
      {{80, 1, 28, 28}, 6, 0, 1, A::Sigmoid, true, false, true},  // 1 MiB: with the window slopes
      {{70, 6, 12, 12}, 16, 0, 1, A::Sigmoid, true, true, true},
      {{9, 4, 9, 11}, 6, 2, 2, A::ReLU, false, true, false},
      {{33, 3, 10, 10}, 5, 1, 1, A::ReLU, true, false, true},
  };
  const tg::simd::Isa isa = GENERATE(tg::simd::Isa::Avx512, tg::simd::Isa::Avx2, tg::simd::Isa::Portable);
  const int threads = GENERATE(1, 2);
  for (const ConvBatchNormCase& c : cases) {
    INFO(fmt::format("x {} filters {} isa {} threads {}", c.x, c.filters, static_cast<int>(isa), threads));
    const std::vector<Tensor> fused = conv_batch_norm_run(c, true, isa, threads),
                              plain = conv_batch_norm_run(c, false, isa, threads);
    for (std::size_t k = 0; k < fused.size(); ++k) {
      CAPTURE(k);
      REQUIRE(fused[k].defined() == plain[k].defined());
      if (fused[k].defined()) CHECK(fused[k].to_vector<double>() == plain[k].to_vector<double>());
    }
  }
}

TEST_CASE("conv2d_batch_norm_act records one entry, and runs the two ops where it cannot fuse", "[layers]") {
  using A = tg::BatchNormActivation;
  tg::manual_seed(5);
  const Tensor x = tg::rand({4, 2, 8, 8});
  const Tensor cw = tg::randn({3, 2, 3, 3}).requires_grad_(), cb = tg::randn({3}).requires_grad_();
  const Tensor w = tg::ones({3}).requires_grad_(), b = tg::zeros({3}).requires_grad_();
  const Tensor rm = tg::zeros({3}), rv = tg::ones({3});
  CHECK(tg::conv2d_batch_norm_act(x, cw, cb, 1, 0, 1, A::Sigmoid, rm, rv, w, b, true, 0.1, 1e-5, true).grad_fn_name() ==
        "ConvolutionBatchNormSigmoidAvgPoolBackward0");
  CHECK(tg::conv2d_batch_norm_act(x, cw, cb, 1, 0, 1, A::ReLU, rm, rv, w, b, true).grad_fn_name() ==
        "ConvolutionBatchNormReluBackward0");
  // Evaluation and strides: batch_norm_act's entry after conv2d's, and the same values.
  CHECK(tg::conv2d_batch_norm_act(x, cw, cb, 1, 0, 1, A::ReLU, rm, rv, w, b, false).grad_fn_name() ==
        "BatchNormReluBackward0");
  const Tensor strided = tg::conv2d_batch_norm_act(x, cw, cb, 2, 1, 1, A::Sigmoid, tg::zeros({3}), tg::ones({3}), w, b,
                                                   true);
  const Tensor expected =
      tg::batch_norm_act(tg::conv2d(x, cw, cb, 2, 1), A::Sigmoid, tg::zeros({3}), tg::ones({3}), w, b, true);
  CHECK(strided.grad_fn_name() == "BatchNormSigmoidBackward0");
  CHECK(strided.to_vector<double>() == expected.to_vector<double>());
}

TEST_CASE("conv2d_batch_norm_act gradchecks in float64 (the two ops)", "[layers][gradcheck]") {
  using A = tg::BatchNormActivation;
  auto row = [](const char* name, A act, bool pool, const char* grad_fn) {
    return ref::GradcheckRow{name,
                             [=](const ref::Inputs& in) {
                               return tg::conv2d_batch_norm_act(in[0], in[1], in[2], 1, 1, 1, act, {}, {}, in[3], in[4],
                                                                true, 0.1, 1e-5, pool);
                             },
                             {{2, 2, 5, 4}, {3, 2, 3, 3}, {3}, {3}, {3}},
                             grad_fn};
  };
  ref::check_gradcheck_rows({row("sigmoid pool", A::Sigmoid, true, "BatchNormSigmoidAvgPoolBackward0"),
                             row("relu", A::ReLU, false, "BatchNormReluBackward0")});
}

TEST_CASE("conv2d_batch_norm_act rejects bad input under conv2d's name and its own", "[layers][errors]") {
  using A = tg::BatchNormActivation;
  const Tensor x = tg::rand({2, 3, 8, 8}), cw = tg::randn({4, 3, 3, 3});
  CHECK_THROWS_WITH(tg::conv2d_batch_norm_act(x, tg::randn({4, 2, 3, 3}), {}, 1, 0, 1, A::ReLU, {}, {}, {}, {}, true),
                    "[conv2d] expected input [2, 3, 8, 8] to have 2 channels (weight [4, 2, 3, 3], groups=1), got 3 "
                    "channels");
  CHECK_THROWS_WITH(tg::conv2d_batch_norm_act(x, cw, {}, 1, 0, 1, A::ReLU, {}, {}, tg::ones({3}), {}, true),
                    "[conv2d_batch_norm_act] expected weight of shape [4] (C = 4 for input [2, 4, 6, 6]), got [3]");
  CHECK_THROWS_WITH(tg::conv2d_batch_norm_act(tg::rand({1, 3, 3, 3}), cw, {}, 1, 0, 1, A::ReLU, {}, {}, {}, {}, true),
                    "[conv2d_batch_norm_act] Expected more than 1 value per channel when training, got input size "
                    "[1, 4, 1, 1]");
  CHECK_THROWS_WITH(
      tg::conv2d_batch_norm_act(tg::rand({2, 3, 3, 3}), cw, {}, 1, 0, 1, A::ReLU, {}, {}, {}, {}, true, 0.1, 1e-5, true),
      "[conv2d_batch_norm_act] expected a convolution output of at least [2, 2] for the 2x2 average pool, got "
      "[2, 4, 1, 1]");
}
