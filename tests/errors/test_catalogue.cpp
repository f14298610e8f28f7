// The catalogue of bad calls: every public function and module, called wrongly (shapes, dtypes,
// ranks, dims, negative and zero sizes, empty and undefined tensors, in-place writes into expanded
// views, out-of-range indices, options out of range, bad state dicts and files). Each call must
// throw tg::Error whose message starts with the op in brackets; afterwards the objects involved
// are as they were and still work: tensors keep their values, modules give the same output,
// the optimizer steps, the scheduler schedules. Over 400 calls here, and the distributed ones in
// test_catalogue_dist.cpp. Tag [errors].
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "tapegrad.h"
#include "tests/errors/catalogue.h"
#include "tests/support/files.h"

using tg::Shape;
using tg::Tensor;
using tg_test::expect_errors;
using tg_test::values;

namespace {

// Names, shapes, dtypes and values of a state dict: equal snapshots, equal states.
std::vector<std::pair<std::string, std::vector<double>>> snapshot(const tg::nn::NamedTensors& state) {
  std::vector<std::pair<std::string, std::vector<double>>> out;
  for (const auto& [name, t] : state)
    out.emplace_back(fmt::format("{} {} {}", name, t.sizes(), tg::dtype_name(t.dtype())), values(t));
  return out;
}

// Visits indices in reverse.
class Reverse : public tg::data::Sampler {
 public:
  explicit Reverse(std::int64_t n) : n_(n) {}
  std::vector<std::int64_t> indices() const override {
    std::vector<std::int64_t> out;
    for (std::int64_t i = n_; i-- > 0;) out.push_back(i);
    return out;
  }
  std::int64_t size() const override { return n_; }

 private:
  std::int64_t n_;
};

}  // namespace

TEST_CASE("catalogue: views, shapes, indices and element access", "[errors]") {
  const Tensor x = tg::arange(6).reshape({2, 3}).to(tg::kFloat32);
  const Tensor s = tg::scalar_tensor(1.0);
  const std::vector<double> before = values(x);
  expect_errors({
      {"view", [&] { x.view({4, 2}); }},
      {"view", [&] { x.view({-1, -1}); }},
      {"view", [&] { x.view({-2, 3}); }},
      {"view", [&] { x.t().view({6}); }},  // spans two contiguous runs
      {"reshape", [&] { x.reshape({5}); }},
      {"reshape", [&] { x.reshape({-1, 4}); }},
      {"reshape", [&] { x.reshape({0, -1}); }},
      {"transpose", [&] { x.transpose(0, 2); }},
      {"transpose", [&] { x.transpose(-3, 0); }},
      {"t", [&] { x.unsqueeze(0).t(); }},
      {"permute", [&] { x.permute({0}); }},
      {"permute", [&] { x.permute({0, 0}); }},
      {"permute", [&] { x.permute({0, 2}); }},
      {"slice", [&] { x.slice(2, 0, 1); }},
      {"slice", [&] { x.slice(0, 0, 2, 0); }},
      {"slice", [&] { x.slice(0, 0, 2, -1); }},
      {"slice", [&] { s.slice(0, 0, 1); }},
      {"select", [&] { x.select(0, 2); }},
      {"select", [&] { x.select(1, -4); }},
      {"select", [&] { x.select(5, 0); }},
      {"select", [&] { s.select(0, 0); }},
      {"unsqueeze", [&] { x.unsqueeze(3); }},
      {"unsqueeze", [&] { x.unsqueeze(-4); }},
      {"squeeze", [&] { x.squeeze(2); }},
      {"expand", [&] { x.expand({3}); }},
      {"expand", [&] { x.expand({2, 4}); }},
      {"expand", [&] { x.expand({-1, 2, 3}); }},
      {"flatten", [&] { x.flatten(1, 0); }},
      {"flatten", [&] { x.flatten(0, 2); }},
      {"size", [&] { x.size(2); }},
      {"size", [&] { s.size(0); }},
      {"stride", [&] { x.stride(-3); }},
      {"index_select", [&] { x.index_select(0, tg::zeros({1})); }},
      {"index_select", [&] { x.index_select(0, tg::zeros({1, 1}, tg::kInt64)); }},
      {"index_select", [&] { x.index_select(0, tg::tensor(std::vector<std::int64_t>{0, 2})); }},
      {"index_select", [&] { x.index_select(1, tg::tensor(std::vector<std::int64_t>{-4})); }},
      {"index_select", [&] { x.index_select(2, tg::zeros({1}, tg::kInt64)); }},
      {"item", [&] { x.item<float>(); }},
      {"item", [&] { tg::zeros({0}).item<float>(); }},
      {"data_ptr", [&] { x.data_ptr<double>(); }},
      {"Tensor", [&] { Tensor().sizes(); }},
      {"Tensor", [&] { x.add(Tensor()); }},
  });
  CHECK(values(x) == before);
  CHECK(x.sum().item<float>() == 15.0f);
}

TEST_CASE("catalogue: elementwise math, broadcasting, reductions and matmul", "[errors]") {
  const Tensor a = tg::arange(6).reshape({2, 3}).to(tg::kFloat32), b = tg::ones({4});
  const Tensor ints = tg::arange(4), empty = tg::zeros({0, 3});
  const std::vector<double> before = values(a);
  expect_errors({
      {"add", [&] { a.add(b); }},
      {"add", [&] { (void)(a + b); }},
      {"sub", [&] { a.sub(b); }},
      {"mul", [&] { (void)(a * b); }},
      {"div", [&] { a.div(b); }},
      {"pow", [&] { a.pow(b); }},
      {"maximum", [&] { a.maximum(b); }},
      {"minimum", [&] { a.minimum(b); }},
      {"eq", [&] { a.eq(b); }},
      {"lt", [&] { a.lt(tg::ones({2, 2})); }},
      {"ge", [&] { a.ge(tg::ones({3, 3})); }},
      {"clamp", [&] { a.clamp(std::optional<tg::Scalar>(), std::optional<tg::Scalar>()); }},
      {"clamp", [&] { a.clamp(tg::ones({3, 3}), std::nullopt); }},
      {"sum", [&] { a.sum({2}); }},
      {"sum", [&] { a.sum({0, 0}); }},
      {"sum", [&] { a.sum({-3}); }},
      {"mean", [&] { ints.mean(); }},
      {"mean", [&] { a.mean({5}); }},
      {"var", [&] { ints.var(); }},
      {"var", [&] { a.var({3}); }},
      {"std", [&] { a.std({1, 1}); }},
      {"min", [&] { empty.min(); }},
      {"max", [&] { empty.max({0}); }},
      {"argmax", [&] { empty.argmax(); }},
      {"argmax", [&] { a.argmax(2); }},
      {"argmin", [&] { empty.argmin(0); }},
      {"matmul", [&] { tg::matmul(tg::ones({3}), b); }},
      {"matmul", [&] { tg::matmul(tg::scalar_tensor(1.0), a); }},
      {"matmul", [&] { tg::matmul(a, a); }},
      {"matmul", [&] { tg::matmul(a, a.t().to(tg::kFloat64)); }},
      {"matmul", [&] { tg::matmul(tg::ones({2, 3, 4, 5}), tg::ones({2, 5, 6})); }},
      {"matmul", [&] { a.matmul(tg::ones({2})); }},
  });
  CHECK(values(a) == before);
  CHECK(values(tg::matmul(a, a.t())) == std::vector<double>{5, 14, 14, 50});
}

TEST_CASE("catalogue: in-place writes", "[errors]") {
  Tensor base = tg::zeros({3});
  Tensor expanded = base.expand({2, 3});
  Tensor x = tg::arange(6).reshape({2, 3}).to(tg::kFloat32), ints = tg::arange(3);
  Tensor w = tg::ones({3}).requires_grad_();
  const std::vector<double> before = values(x);
  expect_errors({
      {"add_", [&] { expanded.add_(tg::ones({2, 3})); }},
      {"add_", [&] { expanded.add_(1.0); }},
      {"mul_", [&] { expanded.mul_(2.0); }},
      {"mul_", [&] { expanded.mul_(tg::ones({3})); }},
      {"sub_", [&] { expanded.sub_(tg::ones({3})); }},
      {"div_", [&] { expanded.div_(2.0); }},
      {"copy_", [&] { expanded.copy_(tg::ones({2, 3})); }},
      {"uniform_", [&] { tg::uniform_(expanded); }},
      {"normal_", [&] { tg::normal_(expanded); }},
      {"add_", [&] { x.add_(tg::ones({3, 3})); }},
      {"add_", [&] { x.add_(tg::ones({2, 2, 3})); }},
      {"mul_", [&] { x.mul_(tg::ones({2, 3, 1})); }},
      {"copy_", [&] { x.copy_(tg::ones({4})); }},
      {"add_", [&] { ints.add_(1.5); }},
      {"mul_", [&] { ints.mul_(tg::ones({3})); }},
      {"sub_", [&] { ints.sub_(tg::ones({3}, tg::kFloat64)); }},
      {"fill_", [&] { ints.fill_(NAN); }},
      {"fill_", [&] { ints.fill_(1e300); }},
      {"add_", [&] { w.add_(1.0); }},  // a leaf that requires grad
      {"copy_", [&] { x.select(0, 0).copy_(w); }},
  });
  CHECK(values(base) == std::vector<double>{0, 0, 0});
  CHECK(values(x) == before);
  CHECK(values(ints) == std::vector<double>{0, 1, 2});
  CHECK(values(w) == std::vector<double>{1, 1, 1});
  x.add_(1.0);
  CHECK(values(x)[0] == 1.0);
}

TEST_CASE("catalogue: factories, random numbers, threads", "[errors]") {
  tg::manual_seed(3);
  const std::string state = tg::get_rng_state();
  Tensor t = tg::zeros({2});
  expect_errors({
      {"zeros", [&] { tg::zeros({-1}); }},
      {"ones", [&] { tg::ones({2, -3}); }},
      {"full", [&] { tg::full({-1}, 0.0); }},
      {"full", [&] { tg::full({1}, INFINITY, tg::kInt64); }},
      {"empty", [&] { tg::empty({-5}); }},
      {"empty", [&] { tg::empty({std::int64_t{1} << 62}); }},
      {"tensor", [&] { tg::tensor(std::vector<float>{1, 2, 3}, {2, 2}); }},
      {"tensor", [&] { tg::tensor(std::vector<float>{1}, {-1, -1}); }},
      {"arange", [&] { tg::arange(0, 10, 0); }},
      {"arange", [&] { tg::arange(10, 0, 1); }},
      {"arange", [&] { tg::arange(0.0, INFINITY); }},
      {"arange", [&] { tg::arange(NAN); }},
      {"rand", [&] { tg::rand({-1}); }},
      {"rand", [&] { tg::rand({2}, tg::kInt64); }},
      {"randn", [&] { tg::randn({2, -2}); }},
      {"randint", [&] { tg::randint(5, 5, {2}); }},
      {"randint", [&] { tg::randint(0, {3}); }},
      {"randint", [&] { tg::randint(0, 10, {-3}); }},
      {"randperm", [&] { tg::randperm(-1); }},
      {"randperm", [&] { tg::randperm(std::int64_t{1} << 26, tg::kFloat32); }},
      {"uniform_", [&] { tg::uniform_(t, 1.0, 0.0); }},
      {"uniform_", [&] { tg::uniform_(t, -INFINITY, 0.0); }},
      {"uniform_", [&] { tg::uniform_(tg::zeros({2}, tg::kInt64)); }},
      {"normal_", [&] { tg::normal_(t, 0.0, -1.0); }},
      {"normal_", [&] { tg::normal_(Tensor()); }},
      {"set_rng_state", [&] { tg::set_rng_state("abc"); }},
      {"set_rng_state", [&] { tg::set_rng_state(std::string(state.size(), '\xff')); }},
      {"set_num_threads", [&] { tg::set_num_threads(0); }},
      {"set_num_threads", [&] { tg::set_num_threads(1 << 20); }},
  });
  CHECK(tg::get_rng_state() == state);  // refused draws and states took nothing from the generator
  CHECK(values(t) == std::vector<double>{0, 0});
  tg::manual_seed(3);
  const Tensor expected = tg::rand({2});
  tg::set_rng_state(state);
  CHECK(values(tg::rand({2})) == values(expected));
}

TEST_CASE("catalogue: autograd", "[errors]") {
  Tensor w = tg::tensor(std::vector<float>{1, 2}).requires_grad_();
  Tensor plain = tg::ones({2});
  Tensor y = w * 3.0;
  expect_errors({
      {"requires_grad_", [&] { tg::arange(3).requires_grad_(); }},
      {"requires_grad_", [&] { y.requires_grad_(false); }},
      {"backward", [&] { y.backward(); }},  // two elements, no gradient given
      {"backward", [&] { y.backward(tg::ones({3})); }},
      {"backward", [&] { plain.sum().backward(); }},
      {"set_grad", [&] { w.set_grad(tg::ones({3})); }},
      {"set_grad", [&] { w.set_grad(tg::ones({2}, tg::kFloat64)); }},
      {"register_hook", [&] { plain.register_hook([](const Tensor& g) { return g; }); }},
      {"register_post_accumulate_grad_hook", [&] { y.register_post_accumulate_grad_hook([](const Tensor&) {}); }},
      {"autograd::grad", [&] { tg::autograd::grad({y.sum()}, {plain}); }},
      {"autograd::grad", [&] { tg::autograd::grad({y.sum()}, {w}, {tg::ones({2}), tg::ones({2})}); }},
      {"record", [&] { tg::autograd::record("Mine", Tensor(), {w}, [](const Tensor& g) { return std::vector{g}; }); }},
      {"record", [&] { tg::autograd::record("Mine", tg::arange(2), {w}, [](const Tensor& g) { return std::vector{g}; }); }},
      {"record", [&] { tg::autograd::record("Mine", tg::ones({2}), {w}, nullptr); }},
  });
  // A saved tensor modified in place before backward.
  Tensor x = tg::ones({2}).requires_grad_();
  Tensor h = x * 1.0;
  Tensor z = (h * h).sum();
  {
    tg::NoGradGuard no_grad;
    h.add_(1.0);
  }
  expect_errors({{"backward", [&] { z.backward(); }}});
  // Everything still works.
  y.sum().backward();
  CHECK(values(w.grad()) == std::vector<double>{3, 3});
  CHECK(!plain.requires_grad());
}

TEST_CASE("catalogue: functional layers", "[errors]") {
  const Tensor x2 = tg::ones({2, 3}), img = tg::ones({1, 2, 5, 5}), w4 = tg::ones({4, 2, 3, 3});
  const Tensor logits = tg::zeros({2, 3}), target = tg::tensor(std::vector<std::int64_t>{0, 2});
  const Tensor rm = tg::zeros({2}), rv = tg::ones({2});
  expect_errors({
      {"linear", [&] { tg::linear(x2, tg::ones({4, 5})); }},
      {"linear", [&] { tg::linear(tg::scalar_tensor(1.0), tg::ones({4, 1})); }},
      {"linear", [&] { tg::linear(x2, tg::ones({4, 3}), tg::ones({3})); }},
      {"linear", [&] { tg::linear(x2, tg::ones({4, 3}, tg::kFloat64)); }},
      {"linear", [&] { tg::linear(tg::ones({2, 3}, tg::kInt64), tg::ones({4, 3}, tg::kInt64)); }},
      {"linear", [&] { tg::linear(x2, tg::ones({3})); }},
      {"conv2d", [&] { tg::conv2d(tg::ones({5, 5}), w4); }},
      {"conv2d", [&] { tg::conv2d(img, tg::ones({4, 2, 3})); }},
      {"conv2d", [&] { tg::conv2d(img, tg::ones({4, 3, 3, 3})); }},
      {"conv2d", [&] { tg::conv2d(img, w4, {}, 0); }},
      {"conv2d", [&] { tg::conv2d(img, w4, {}, 1, -1); }},
      {"conv2d", [&] { tg::conv2d(img, w4, {}, 1, 0, 0); }},
      {"conv2d", [&] { tg::conv2d(img, tg::ones({3, 1, 3, 3}), {}, 1, 0, 2); }},
      {"conv2d", [&] { tg::conv2d(img, tg::ones({4, 2, 7, 7})); }},
      {"conv2d", [&] { tg::conv2d(tg::ones({1, 2, 5, 5}, tg::kInt64), tg::ones({4, 2, 3, 3}, tg::kInt64)); }},
      {"conv2d", [&] { tg::conv2d(img, w4, tg::ones({3})); }},
      {"conv2d", [&] { tg::conv2d(img, Tensor()); }},
      {"avg_pool2d", [&] { tg::avg_pool2d(tg::ones({5, 5}), 2); }},
      {"avg_pool2d", [&] { tg::avg_pool2d(img, 0); }},
      {"avg_pool2d", [&] { tg::avg_pool2d(img, 2, tg::Size2(0)); }},
      {"avg_pool2d", [&] { tg::avg_pool2d(img, 2, std::nullopt, 2); }},
      {"avg_pool2d", [&] { tg::avg_pool2d(img, 6); }},
      {"avg_pool2d", [&] { tg::avg_pool2d(tg::ones({1, 2, 5, 5}, tg::kInt64), 2); }},
      {"max_pool2d", [&] { tg::max_pool2d(tg::ones({5, 5}), 2); }},
      {"max_pool2d", [&] { tg::max_pool2d(img, tg::Size2(2, -1)); }},
      {"max_pool2d", [&] { tg::max_pool2d(tg::ones({1, 0, 5, 5}), 2); }},
      {"batch_norm", [&] { tg::batch_norm(tg::ones({4}), rm, rv, {}, {}, true, 0.1, 1e-5); }},
      {"batch_norm", [&] { tg::batch_norm(tg::ones({4, 2}), rm, rv, tg::ones({3}), {}, true, 0.1, 1e-5); }},
      {"batch_norm", [&] { tg::batch_norm(tg::ones({1, 2}), rm, rv, {}, {}, true, 0.1, 1e-5); }},
      {"batch_norm", [&] { tg::batch_norm(tg::ones({4, 2}), {}, {}, {}, {}, false, 0.1, 1e-5); }},
      {"batch_norm", [&] { tg::batch_norm(tg::ones({4, 2}), rm, {}, {}, {}, true, 0.1, 1e-5); }},
      {"batch_norm", [&] { tg::batch_norm(tg::ones({4, 2}, tg::kInt64), {}, {}, {}, {}, true, 0.1, 1e-5); }},
      {"batch_norm", [&] { tg::batch_norm(tg::ones({4, 2}), rm.to(tg::kFloat64), rv, {}, {}, true, 0.1, 1e-5); }},
      {"conv2d_batch_norm_act", [&] {
         tg::conv2d_batch_norm_act(tg::rand({2, 1, 5, 5}), tg::ones({2, 1, 3, 3}), {}, 1, 0, 1,
                                   tg::BatchNormActivation::ReLU, rm, rv, tg::ones({3}), {}, true);
       }},
      {"conv2d_batch_norm_act", [&] {
         tg::conv2d_batch_norm_act(tg::rand({1, 1, 3, 3}), tg::ones({2, 1, 3, 3}), {}, 1, 0, 1,
                                   tg::BatchNormActivation::ReLU, rm, rv, {}, {}, true);
       }},
      {"conv2d", [&] {
         tg::conv2d_batch_norm_act(tg::rand({2, 3, 5, 5}), tg::ones({2, 1, 3, 3}), {}, 1, 0, 1,
                                   tg::BatchNormActivation::Sigmoid, rm, rv, {}, {}, true);
       }},
      {"cross_entropy", [&] { tg::cross_entropy(tg::zeros({3}), target); }},
      {"cross_entropy", [&] { tg::cross_entropy(logits, target.to(tg::kFloat32)); }},
      {"cross_entropy", [&] { tg::cross_entropy(logits, tg::zeros({3}, tg::kInt64)); }},
      {"cross_entropy", [&] { tg::cross_entropy(logits, tg::tensor(std::vector<std::int64_t>{0, 3})); }},
      {"cross_entropy", [&] { tg::cross_entropy(logits, tg::tensor(std::vector<std::int64_t>{-1, 0})); }},
      {"cross_entropy", [&] { tg::cross_entropy(tg::zeros({2, 3}, tg::kInt64), target); }},
      {"mse_loss", [&] { tg::mse_loss(x2, tg::ones({3, 2})); }},
      {"mse_loss", [&] { tg::mse_loss(x2, tg::ones({2, 3}, tg::kFloat64)); }},
      {"softmax", [&] { tg::softmax(x2, 2); }},
      {"softmax", [&] { tg::softmax(tg::arange(3), 0); }},
      {"log_softmax", [&] { tg::log_softmax(x2, -3); }},
      {"dropout", [&] { tg::dropout(x2, 1.5); }},
      {"dropout", [&] { tg::dropout(x2, -0.1); }},
      {"dropout", [&] { tg::dropout(tg::arange(3), 0.5); }},
      {"dropout1d", [&] { tg::dropout1d(img, 0.5); }},
      {"dropout2d", [&] { tg::dropout2d(x2, 0.5); }},
      {"leaky_relu", [&] { tg::leaky_relu(tg::arange(3)); }},
      {"gelu", [&] { tg::gelu(x2, "fast"); }},
      {"silu", [&] { tg::silu(Tensor()); }},
  });
  CHECK(values(rm) == std::vector<double>{0, 0});
  CHECK(values(rv) == std::vector<double>{1, 1});
  CHECK(tg::conv2d(img, w4).sizes() == Shape({1, 4, 3, 3}));
  CHECK(tg::cross_entropy(logits, target).item<float>() == Approx(std::log(3.0)));
}

TEST_CASE("catalogue: modules, their options and their inputs", "[errors]") {
  tg::manual_seed(0);
  tg::nn::Linear linear(4, 2);
  tg::nn::Conv2d conv(1, 2, 3);
  tg::nn::BatchNorm1d bn1(3);
  tg::nn::BatchNorm2d bn2(2);
  tg::nn::Sequential seq(tg::nn::Linear(4, 3), tg::nn::ReLU(), tg::nn::Linear(3, 2));
  tg::nn::CrossEntropyLoss ce;
  tg::nn::MSELoss mse;
  tg::nn::Flatten flatten(2, 1);
  tg::nn::Softmax softmax(5);
  tg::nn::MaxPool2d pool(6);  // larger than the images
  const Tensor vec = tg::arange(8).reshape({2, 4}).to(tg::kFloat32), img = tg::rand({2, 1, 5, 5});
  const Tensor linear_out = linear(vec), conv_out = conv(img), seq_out = seq(vec);
  const auto bn1_state = snapshot(bn1.state_dict()), bn2_state = snapshot(bn2.state_dict());
  expect_errors({
      {"Linear", [&] { tg::nn::Linear(-1, 2); }},
      {"Linear", [&] { tg::nn::Linear(2, -2); }},
      {"Linear", [&] { linear(tg::ones({2, 5})); }},
      {"Linear", [&] { linear(tg::scalar_tensor(1.0)); }},
      {"Conv2d", [&] { tg::nn::Conv2d(-1, 6, 5); }},
      {"Conv2d", [&] { tg::nn::Conv2d(1, 6, 0); }},
      {"Conv2d", [&] { tg::nn::Conv2d(3, 6, 3, 1, 0, true, 2); }},
      {"Conv2d", [&] { tg::nn::Conv2d(1, 6, 3, 0); }},
      {"Conv2d", [&] { tg::nn::Conv2d(1, 6, 3, 1, -1); }},
      {"Conv2d", [&] { tg::nn::Conv2d(2, 4, 3, 1, 0, true, 0); }},
      {"Conv2d", [&] { conv(tg::ones({5, 5})); }},
      {"Conv2d", [&] { conv(tg::ones({1, 3, 5, 5})); }},
      {"conv2d", [&] { conv(tg::ones({1, 1, 2, 2})); }},  // smaller than the kernel
      {"BatchNorm", [&] { tg::nn::BatchNorm1d(0); }},
      {"BatchNorm", [&] { tg::nn::BatchNorm2d(-3); }},
      {"BatchNorm1d", [&] { bn1(tg::ones({2, 3, 4, 4})); }},
      {"BatchNorm1d", [&] { bn1(tg::ones({3})); }},
      {"BatchNorm1d", [&] { bn1(tg::ones({2, 4})); }},
      {"BatchNorm2d", [&] { bn2(tg::ones({2, 2, 3})); }},
      {"BatchNorm2d", [&] { bn2(tg::ones({2, 3, 4, 4})); }},
      {"batch_norm", [&] { bn2(tg::ones({1, 2, 1, 1})); }},
      {"batch_norm", [&] { bn1(tg::ones({4, 3}, tg::kFloat64)); }},
      {"max_pool2d", [&] { pool(img); }},
      {"avg_pool2d", [&] { tg::nn::AvgPool2d(0)(img); }},
      {"Dropout", [&] { tg::nn::Dropout(1.5); }},
      {"Dropout1d", [&] { tg::nn::Dropout1d(2.0); }},
      {"Dropout2d", [&] { tg::nn::Dropout2d(-1.0); }},
      {"GELU", [&] { tg::nn::GELU("fast"); }},
      {"flatten", [&] { flatten(img); }},
      {"softmax", [&] { softmax(vec); }},
      {"cross_entropy", [&] { ce(tg::zeros({2, 3}), tg::tensor(std::vector<std::int64_t>{5, 0})); }},
      {"mse_loss", [&] { mse(vec, tg::ones({4})); }},
      {"CrossEntropyLoss", [&] { ce.forward(vec); }},
      {"Sequential", [&] { seq[3]; }},
      {"Linear", [&] { seq(tg::ones({2, 5})); }},
      {"Module", [&] { linear.register_parameter("weight", tg::ones({1})); }},
      {"Module", [&] { linear.register_buffer("a.b", tg::ones({1})); }},
      {"Module", [&] { linear.register_parameter("extra", Tensor()); }},
      {"Module", [&] { seq.register_module("0", std::make_shared<tg::nn::ReLU>()); }},
      {"Module", [&] { seq.register_module<tg::nn::ReLU>("extra", nullptr); }},
      {"Module", [&] { seq.replace_module("7", std::make_shared<tg::nn::ReLU>()); }},
      {"Module::to", [&] { seq.to(tg::kInt64); }},
      {"init", [&] { tg::nn::init::xavier_uniform_(tg::zeros({3})); }},
      {"init", [&] { tg::nn::init::calculate_gain("bogus"); }},
      {"init", [&] { tg::nn::init::kaiming_uniform_(tg::zeros({2, 2}), 0.0, "fan"); }},
      {"uniform_", [&] { tg::nn::init::uniform_(tg::zeros({2}), 1.0, -1.0); }},
  });
  // Same outputs and states as before the bad calls.
  CHECK(values(linear(vec)) == values(linear_out));
  CHECK(values(conv(img)) == values(conv_out));
  CHECK(values(seq(vec)) == values(seq_out));
  CHECK(seq.size() == 3);
  CHECK(snapshot(bn1.state_dict()) == bn1_state);
  CHECK(snapshot(bn2.state_dict()) == bn2_state);
  CHECK(linear.named_parameters().size() == 2);
  CHECK(linear.named_buffers().empty());
  CHECK(bn2(tg::rand({2, 2, 3, 3})).sizes() == Shape({2, 2, 3, 3}));
  CHECK(bn2.num_batches_tracked.item<std::int64_t>() == 1);
}

TEST_CASE("catalogue: saving and loading, bad state dicts and files", "[errors]") {
  tg_test::TempDir dir;
  tg::manual_seed(0);
  tg::nn::Sequential net(tg::nn::Linear(3, 2), tg::nn::BatchNorm1d(2));
  tg::nn::Sequential other(tg::nn::Linear(3, 4));
  tg::nn::Linear wide(3, 2);
  const std::string good = dir.file("net.safetensors"), other_file = dir.file("other.safetensors");
  tg::save(net, good);
  tg::save(other, other_file);
  const std::string bytes = tg_test::read_raw(good);
  const std::string truncated = dir.file("truncated"), not_st = dir.file("text"), f64 = dir.file("f64");
  REQUIRE(tg_test::write_raw(truncated, bytes.substr(0, bytes.size() - 3)));
  REQUIRE(tg_test::write_raw(not_st, "hello, world, this is not a safetensors file"));
  tg::save_tensors({{"0.weight", tg::ones({2, 3}, tg::kFloat64)}}, f64);
  const auto state = snapshot(net.state_dict());
  const Tensor in = tg::rand({4, 3});
  net.eval();
  const Tensor out = net(in);
  expect_errors({
      {"load", [&] { tg::load(net, dir.file("missing.safetensors")); }},
      {"load", [&] { tg::load(net, dir.str()); }},
      {"load", [&] { tg::load(net, truncated); }},
      {"load", [&] { tg::load(net, not_st); }},
      {"load", [&] { tg::load(net, other_file); }},  // missing and unexpected keys, another shape
      {"load", [&] { tg::load(wide, other_file); }},
      {"load", [&] { tg::load(other, f64); }},        // float64 into float32, keys missing
      {"load", [&] { tg::load_into(net.state_dict(), tg::load_tensors(other_file), other_file); }},
      {"load", [&] { tg::load_tensors(truncated); }},
      {"save", [&] { tg::save(net, dir.file("no/such/dir/net.safetensors")); }},
      {"save", [&] { tg::save_tensors({{"a", tg::ones({1})}, {"a", tg::ones({1})}}, dir.file("dup")); }},
      {"save", [&] { tg::save_tensors({{"", tg::ones({1})}}, dir.file("empty_name")); }},
      {"save", [&] { tg::save_tensors({{"__metadata__", tg::ones({1})}}, dir.file("reserved")); }},
  });
  CHECK(snapshot(net.state_dict()) == state);
  CHECK(values(net(in)) == values(out));
  CHECK(tg_test::read_raw(good) == bytes);
  tg::load(net, good);
  CHECK(values(net(in)) == values(out));
}

namespace {

// `state` with `name` set to `value` (added when absent).
tg::nn::NamedTensors with_entry(tg::nn::NamedTensors state, const std::string& name, const Tensor& value) {
  for (auto& [n, t] : state)
    if (n == name) {
      t = value;
      return state;
    }
  state.emplace_back(name, value);
  return state;
}

// `state` without `name`.
tg::nn::NamedTensors without_entry(tg::nn::NamedTensors state, const std::string& name) {
  std::erase_if(state, [&](const auto& entry) { return entry.first == name; });
  return state;
}

}  // namespace

TEST_CASE("catalogue: optimizers", "[errors]") {
  tg::manual_seed(0);
  tg::nn::Linear net(3, 2);
  tg::optim::SGD sgd(net.parameters(), {.lr = 0.1, .momentum = 0.9});
  tg::optim::Adam adam(net.parameters(), {.lr = 0.01});
  tg::optim::AdamW adamw(net.parameters());
  tg::optim::RMSprop rmsprop(net.parameters(), {.momentum = 0.5});
  tg::optim::Adagrad adagrad(net.parameters());
  const std::vector<tg::optim::Optimizer*> optimizers{&sgd, &adam, &adamw, &rmsprop, &adagrad};
  auto step_all = [&] {
    for (tg::optim::Optimizer* opt : optimizers) {
      opt->zero_grad();
      net(tg::ones({4, 3})).sum().backward();
      opt->step();
    }
  };
  step_all();
  const auto params = snapshot(net.state_dict());
  std::vector<std::vector<std::pair<std::string, std::vector<double>>>> states;
  for (tg::optim::Optimizer* opt : optimizers) states.push_back(snapshot(opt->state_dict()));
  tg_test::TempDir dir;
  const std::string model_file = dir.file("model.safetensors");
  tg::save(net, model_file);
  const tg::nn::NamedTensors sgd_state = sgd.state_dict(), adam_state = adam.state_dict();
  const Tensor detached = tg::ones({2}), nonleaf = net.weight * 2.0;
  const std::vector<Tensor> ps = net.parameters();
  expect_errors({
      {"SGD", [&] { tg::optim::SGD(std::vector<Tensor>{}, {.lr = 0.1}); }},
      {"SGD", [&] { tg::optim::SGD({net.weight, net.weight}, {.lr = 0.1}); }},
      {"SGD", [&] { tg::optim::SGD({detached}, {.lr = 0.1}); }},
      {"SGD", [&] { tg::optim::SGD({nonleaf}, {.lr = 0.1}); }},
      {"SGD", [&] { tg::optim::SGD({Tensor()}, {.lr = 0.1}); }},
      {"SGD", [&] { tg::optim::SGD({{.params = {net.weight}}, {.params = {net.weight}}}, {.lr = 0.1}); }},
      {"SGD", [&] { tg::optim::SGD(ps, {}); }},
      {"SGD", [&] { tg::optim::SGD(ps, {.lr = -0.1}); }},
      {"SGD", [&] { tg::optim::SGD(ps, {.lr = 0.1, .momentum = -0.5}); }},
      {"SGD", [&] { tg::optim::SGD(ps, {.lr = 0.1, .momentum = NAN}); }},
      {"SGD", [&] { tg::optim::SGD(ps, {.lr = 0.1, .weight_decay = -1e-4}); }},
      {"SGD", [&] { tg::optim::SGD(ps, {.lr = 0.1, .nesterov = true}); }},
      {"SGD", [&] { tg::optim::SGD(ps, {.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .nesterov = true}); }},
      {"SGD", [&] { tg::optim::SGD({{.params = ps, .options = {.lr = -1.0}}}, {.lr = 0.1}); }},
      {"Adam", [&] { tg::optim::Adam(ps, {.lr = -1e-3}); }},
      {"Adam", [&] { tg::optim::Adam(ps, {.betas = {1.0, 0.999}}); }},
      {"Adam", [&] { tg::optim::Adam(ps, {.betas = {0.9, -0.1}}); }},
      {"Adam", [&] { tg::optim::Adam(ps, {.eps = -1e-8}); }},
      {"Adam", [&] { tg::optim::Adam(ps, {.weight_decay = NAN}); }},
      {"AdamW", [&] { tg::optim::AdamW(ps, {.betas = {0.9, 1.5}}); }},
      {"AdamW", [&] { tg::optim::AdamW(ps, {.weight_decay = -0.01}); }},
      {"AdamW", [&] { tg::optim::AdamW(std::vector<Tensor>{}); }},
      {"RMSprop", [&] { tg::optim::RMSprop(ps, {.lr = -0.01}); }},
      {"RMSprop", [&] { tg::optim::RMSprop(ps, {.momentum = -0.9}); }},
      {"RMSprop", [&] { tg::optim::RMSprop(ps, {.alpha = -0.99}); }},
      {"RMSprop", [&] { tg::optim::RMSprop(ps, {.eps = NAN}); }},
      {"Adagrad", [&] { tg::optim::Adagrad(ps, {.lr_decay = -1.0}); }},
      {"Adagrad", [&] { tg::optim::Adagrad(ps, {.initial_accumulator_value = -1.0}); }},
      {"Adagrad", [&] { tg::optim::Adagrad(ps, {.eps = -1.0}); }},
      {"SGD", [&] { sgd.set_lr(-1.0); }},
      {"SGD", [&] { sgd.set_lr(3, 0.1); }},
      {"SGD", [&] { sgd.lr(3); }},
      {"SGD", [&] { sgd.options(3); }},
      {"SGD", [&] { sgd.group_params(1); }},
      {"SGD", [&] { sgd.state(2); }},
      {"SGD", [&] { sgd.hyperparameter(0, "betas"); }},
      {"SGD", [&] { sgd.set_hyperparameter(0, "momentum", {-1.0}); }},
      {"SGD", [&] { sgd.set_hyperparameter(0, "momentum", {0.1, 0.2}); }},
      {"SGD", [&] { sgd.set_hyperparameter(0, "nesterov", {0.5}); }},
      {"SGD", [&] { sgd.set_hyperparameter(0, "momentum", {0.0}); }},  // its momentum buffers exist
      {"Adam", [&] { adam.set_hyperparameter(0, "betas", {0.9, 1.0}); }},
      {"Adam", [&] { adam.set_hyperparameter(0, "amsgrad", {1.0}); }},
      {"Adam", [&] { adam.set_initial_lr(4, 0.1); }},
      {"SGD", [&] { sgd.load_state_dict({}); }},
      {"SGD", [&] { sgd.load_state_dict(with_entry(sgd_state, "state.0.velocity", tg::zeros({2, 3}))); }},
      {"SGD", [&] { sgd.load_state_dict(with_entry(sgd_state, "state.0.momentum_buffer", tg::zeros({3, 2}))); }},
      {"SGD",
       [&] { sgd.load_state_dict(with_entry(sgd_state, "state.0.momentum_buffer", tg::zeros({2, 3}, tg::kFloat64))); }},
      {"SGD", [&] { sgd.load_state_dict(with_entry(sgd_state, "state.9.momentum_buffer", tg::zeros({2}))); }},
      {"SGD", [&] { sgd.load_state_dict(with_entry(sgd_state, "state.x.momentum_buffer", tg::zeros({2}))); }},
      {"SGD", [&] { sgd.load_state_dict(with_entry(sgd_state, "param_groups.0.lr", tg::scalar_tensor(-1.0, tg::kFloat64))); }},
      {"SGD", [&] { sgd.load_state_dict(with_entry(sgd_state, "param_groups.0.lr", tg::scalar_tensor(0.1))); }},
      {"SGD", [&] { sgd.load_state_dict(with_entry(sgd_state, "param_groups.1.lr", tg::scalar_tensor(0.1, tg::kFloat64))); }},
      {"SGD", [&] { sgd.load_state_dict(without_entry(sgd_state, "param_groups.0.momentum")); }},
      {"SGD", [&] { sgd.load_state_dict(with_entry(sgd_state, "param_groups.0.params", tg::arange(3))); }},
      {"SGD", [&] { sgd.load_state_dict(with_entry(sgd_state, "param_groups.0.params", tg::zeros({2}, tg::kInt64))); }},
      {"SGD", [&] { sgd.load_state_dict(adam_state); }},
      {"Adam", [&] { adam.load_state_dict(with_entry(adam_state, "state.0.step", tg::scalar_tensor(-1.0))); }},
      {"Adam", [&] { adam.load_state_dict(with_entry(adam_state, "state.0.step", tg::scalar_tensor(1.5))); }},
      {"Adam", [&] { adam.load_state_dict(with_entry(adam_state, "state.1.exp_avg", tg::zeros({3}))); }},
      {"Adam", [&] { adam.load_state_dict(sgd_state); }},
      {"SGD", [&] { tg::load(sgd, model_file); }},
      {"load", [&] { tg::load(sgd, dir.file("missing")); }},
  });
  CHECK(snapshot(net.state_dict()) == params);
  for (std::size_t k = 0; k < optimizers.size(); ++k) CHECK(snapshot(optimizers[k]->state_dict()) == states[k]);
  CHECK(sgd.lr() == 0.1);
  CHECK(adam.lr() == 0.01);
  step_all();
  CHECK(snapshot(net.state_dict()) != params);
}

TEST_CASE("catalogue: learning-rate schedulers", "[errors]") {
  tg::manual_seed(0);
  tg::nn::Linear net(3, 2);
  tg::optim::SGD sgd(net.parameters(), {.lr = 0.1, .momentum = 0.9});
  tg::optim::Adagrad adagrad(net.parameters());  // no momentum and no betas to cycle
  tg::optim::SGD fresh(net.parameters(), {.lr = 0.1, .momentum = 0.9});  // no scheduler has set its initial_lr
  tg::optim::StepLR step_lr(sgd, 2);
  tg::optim::MultiStepLR multi_step(sgd, {1, 3});
  tg::optim::ExponentialLR exponential(sgd, 0.5);
  tg::optim::ReduceLROnPlateau plateau(sgd, {.patience = 0});
  const tg::nn::NamedTensors step_state = step_lr.state_dict(), plateau_state = plateau.state_dict();
  const auto multi_state = snapshot(multi_step.state_dict()), exponential_state = snapshot(exponential.state_dict());
  const auto sgd_state = snapshot(sgd.state_dict()), fresh_state = snapshot(fresh.state_dict());
  const auto adagrad_state = snapshot(adagrad.state_dict());
  tg_test::TempDir dir;
  const std::string model_file = dir.file("model.safetensors");
  tg::save(net, model_file);
  using tg::optim::LambdaLR;
  expect_errors({
      {"StepLR", [&] { tg::optim::StepLR(fresh, 0); }},
      {"StepLR", [&] { tg::optim::StepLR(fresh, -2); }},
      {"StepLR", [&] { step_lr.step(-1); }},
      {"StepLR", [&] { step_lr.load_state_dict({}); }},
      {"StepLR", [&] { step_lr.load_state_dict(with_entry(step_state, "step_size", tg::full({1}, 5.0, tg::kFloat64))); }},
      {"StepLR", [&] { step_lr.load_state_dict(with_entry(step_state, "last_epoch", tg::scalar_tensor(1.0))); }},
      {"StepLR", [&] { step_lr.load_state_dict(with_entry(step_state, "base_lrs", tg::ones({3}, tg::kFloat64))); }},
      {"StepLR", [&] { step_lr.load_state_dict(with_entry(step_state, "extra", tg::ones({1}))); }},
      {"StepLR", [&] { tg::load(step_lr, model_file); }},
      {"MultiStepLR", [&] { multi_step.step(-2); }},
      {"MultiStepLR", [&] { multi_step.load_state_dict(step_state); }},
      {"ExponentialLR", [&] { exponential.load_state_dict(with_entry(exponential.state_dict(), "gamma", tg::ones({2}, tg::kFloat64))); }},
      {"CosineAnnealingLR", [&] { tg::optim::CosineAnnealingLR(fresh, 0); }},
      {"LambdaLR", [&] { LambdaLR(fresh, std::vector<LambdaLR::Lambda>{}); }},
      {"LambdaLR", [&] { LambdaLR(fresh, LambdaLR::Lambda()); }},
      {"LambdaLR", [&] { LambdaLR(fresh, [](std::int64_t) { return -1.0; }); }},
      {"LinearLR", [&] { tg::optim::LinearLR(fresh, {.start_factor = 0.0}); }},
      {"LinearLR", [&] { tg::optim::LinearLR(fresh, {.end_factor = 1.5}); }},
      {"LinearLR", [&] { tg::optim::LinearLR(fresh, {.total_iters = 0}); }},
      {"OneCycleLR", [&] { tg::optim::OneCycleLR(fresh, {0.1}, {}); }},  // neither total_steps nor epochs
      {"OneCycleLR", [&] { tg::optim::OneCycleLR(fresh, {0.1}, {.total_steps = 0}); }},
      {"OneCycleLR", [&] { tg::optim::OneCycleLR(fresh, {0.1}, {.epochs = 2}); }},
      {"OneCycleLR", [&] { tg::optim::OneCycleLR(fresh, {0.1}, {.total_steps = 10, .pct_start = 1.5}); }},
      {"OneCycleLR", [&] { tg::optim::OneCycleLR(fresh, {0.1}, {.total_steps = 10, .anneal_strategy = "cubic"}); }},
      {"OneCycleLR", [&] { tg::optim::OneCycleLR(fresh, {0.1, 0.2}, {.total_steps = 10}); }},
      {"OneCycleLR", [&] { tg::optim::OneCycleLR(adagrad, {0.1}, {.total_steps = 10}); }},
      {"ReduceLROnPlateau", [&] { tg::optim::ReduceLROnPlateau(fresh, {.mode = "up"}); }},
      {"ReduceLROnPlateau", [&] { tg::optim::ReduceLROnPlateau(fresh, {.factor = 1.0}); }},
      {"ReduceLROnPlateau", [&] { tg::optim::ReduceLROnPlateau(fresh, {.threshold_mode = "pct"}); }},
      {"ReduceLROnPlateau", [&] { tg::optim::ReduceLROnPlateau(fresh, {.min_lr = {0.0, 0.1}}); }},
      {"ReduceLROnPlateau", [&] { plateau.load_state_dict(with_entry(plateau_state, "factor", tg::full({1}, 0.5, tg::kFloat64))); }},
      {"ReduceLROnPlateau", [&] { plateau.load_state_dict(without_entry(plateau_state, "best")); }},
  });
  CHECK(snapshot(sgd.state_dict()) == sgd_state);
  CHECK(snapshot(fresh.state_dict()) == fresh_state);
  CHECK(snapshot(adagrad.state_dict()) == adagrad_state);
  CHECK(snapshot(step_lr.state_dict()) == snapshot(step_state));
  CHECK(snapshot(multi_step.state_dict()) == multi_state);
  CHECK(snapshot(exponential.state_dict()) == exponential_state);
  CHECK(snapshot(plateau.state_dict()) == snapshot(plateau_state));
  // They still schedule: at epoch 1 StepLR keeps the lr, MultiStepLR cuts it by 10 and
  // ExponentialLR halves it (chained: 0.1 · 0.1 · 0.5).
  step_lr.step();
  multi_step.step();
  exponential.step();
  CHECK(sgd.lr() == Approx(0.005));
  plateau.step(1.0);
  plateau.step(2.0);  // no better, patience 0: the lr is cut by 10
  CHECK(sgd.lr() == Approx(0.0005));
  // OneCycleLR refuses to step past total_steps (PyTorch counts the construction's step as 0).
  tg::optim::SGD other(net.parameters(), {.lr = 0.1, .momentum = 0.9});
  tg::optim::OneCycleLR one_cycle(other, {0.1}, {.total_steps = 1});
  one_cycle.step();
  expect_errors({{"OneCycleLR", [&] { one_cycle.step(); }}});
  CHECK(one_cycle.last_epoch() == 1);
}

TEST_CASE("catalogue: datasets and loaders", "[errors]") {
  tg_test::TempDir dir;
  const std::vector<std::uint8_t> pixels(3 * 2 * 2, 7);
  REQUIRE(tg_test::write_raw(dir.file("train-images-idx3-ubyte"), tg_test::idx_bytes(0x803, {3, 2, 2}, pixels)));
  REQUIRE(tg_test::write_raw(dir.file("train-labels-idx1-ubyte"), tg_test::idx_bytes(0x801, {3}, {1, 2, 3})));
  REQUIRE(tg_test::write_raw(dir.file("t10k-images-idx3-ubyte"), tg_test::idx_bytes(0x803, {3, 2, 2}, pixels)));
  REQUIRE(tg_test::write_raw(dir.file("t10k-labels-idx1-ubyte"), tg_test::idx_bytes(0x801, {2}, {1, 2})));
  tg::data::FashionMNIST set(dir.str());
  tg::data::TensorDataset numbers(tg::arange(5).to(tg::kFloat32).unsqueeze(1), tg::arange(5));  // sample i is i
  Reverse reverse(5);
  expect_errors({
      {"DataLoader", [&] { tg::data::DataLoader(numbers, {.batch_size = 0}); }},
      {"DataLoader", [&] { tg::data::DataLoader(numbers, {.batch_size = -5}); }},
      {"DataLoader", [&] { tg::data::DataLoader(numbers, reverse, {.batch_size = 2, .shuffle = true}); }},
      {"FashionMNIST", [&] { tg::data::FashionMNIST(dir.file("missing")); }},
      {"FashionMNIST", [&] { tg::data::FashionMNIST(dir.str(), false); }},  // 3 images, 2 labels
      {"MNIST", [&] { tg::data::MNIST(dir.file("missing")); }},
      {"FashionMNIST", [&] { set.get_batch({-1}); }},
      {"FashionMNIST", [&] { set.get_batch({0, 3}); }},
      {"text_labels", [&] { set.text_labels(tg::zeros({2})); }},
      {"text_labels", [&] { set.text_labels(tg::tensor(std::vector<std::int64_t>{12})); }},
      {"read_idx", [&] { tg::data::read_idx_images(dir.file("missing")); }},
      {"read_idx", [&] { tg::data::read_idx_labels(dir.file("train-images-idx3-ubyte")); }},
      {"read_idx", [&] { tg::data::read_idx_images(dir.str()); }},
  });
  CHECK(set.size() == 3);
  auto [x, y] = set.get_batch({2, 0});
  CHECK(values(y) == std::vector<double>{3, 1});
  CHECK(x.sizes() == Shape({2, 1, 2, 2}));
  std::vector<std::int64_t> order;
  for (const auto& [xs, ys] : tg::data::DataLoader(numbers, reverse, {.batch_size = 2}))
    for (double v : values(xs)) order.push_back(static_cast<std::int64_t>(v));
  CHECK(order == std::vector<std::int64_t>{4, 3, 2, 1, 0});
}

TEST_CASE("catalogue: joining, selecting, sorting and normalizing (autograd/functions.h)", "[errors]") {
  const Tensor a = tg::arange(6).reshape({2, 3}).to(tg::kFloat32), ints = tg::arange(6).reshape({2, 3});
  const Tensor idx = tg::tensor(std::vector<std::int64_t>{0, 1, 2, 0, 1, 2}).reshape({2, 3});
  const Tensor mask = a.gt(2.0);
  const std::vector<double> before = values(a);
  expect_errors({
      {"cat", [&] { tg::cat({}); }},
      {"cat", [&] { tg::cat({a, tg::ones({2, 4})}); }},
      {"cat", [&] { tg::cat({a, tg::ones({3})}); }},
      {"cat", [&] { tg::cat({a, a}, 2); }},
      {"cat", [&] { tg::cat({a, Tensor()}); }},
      {"stack", [&] { tg::stack({}); }},
      {"stack", [&] { tg::stack({a, tg::ones({3, 2})}); }},
      {"stack", [&] { tg::stack({a, a}, 3); }},
      {"where", [&] { tg::where(mask, a, tg::ones({4})); }},
      {"where", [&] { tg::where(a, a, a); }},  // a float condition
      {"where", [&] { a.where(tg::ones({3, 3}, tg::kInt64), 0.0); }},
      {"masked_fill", [&] { a.masked_fill(tg::ones({4}, tg::kInt64), 0.0); }},
      {"masked_fill", [&] { a.masked_fill(a, 0.0); }},
      {"masked_fill", [&] { a.masked_fill(mask, tg::ones({2})); }},  // a value that is not 0-dim
      {"gather", [&] { a.gather(0, tg::zeros({2, 3})); }},
      {"gather", [&] { a.gather(0, tg::zeros({6}, tg::kInt64)); }},
      {"gather", [&] { a.gather(0, idx); }},  // index 2 along a dim of size 2
      {"gather", [&] { a.gather(2, idx); }},
      {"gather", [&] { tg::gather(a, 1, -idx - 1); }},
      {"scatter_add", [&] { a.scatter_add(1, idx, tg::ones({2})); }},
      {"scatter_add", [&] { a.scatter_add(0, idx, tg::ones({2, 3})); }},
      {"scatter_add", [&] { a.scatter_add(1, idx, tg::ones({2, 3}, tg::kFloat64)); }},
      {"scatter_add", [&] { tg::scatter_add(a, 1, idx.to(tg::kFloat32), a); }},
      {"one_hot", [&] { tg::one_hot(a); }},
      {"one_hot", [&] { tg::one_hot(ints, 3); }},
      {"one_hot", [&] { tg::one_hot(-ints); }},
      {"one_hot", [&] { tg::one_hot(ints, -2); }},
      {"topk", [&] { a.topk(4); }},
      {"topk", [&] { a.topk(-1); }},
      {"topk", [&] { a.topk(1, 2); }},
      {"topk", [&] { tg::topk(tg::scalar_tensor(1.0), 2); }},
      {"sort", [&] { a.sort(2); }},
      {"sort", [&] { tg::sort(a, -3); }},
      {"softmax", [&] { a.softmax(0, tg::kInt64); }},
      {"log_softmax", [&] { tg::log_softmax(ints, 1); }},
      {"logsumexp", [&] { a.logsumexp({2}); }},
      {"norm", [&] { a.norm(2, {3}); }},
      {"norm", [&] { ints.norm(); }},
      {"norm", [&] { tg::norm(a, 2, {0, 0}); }},
  });
  CHECK(values(a) == before);
  CHECK(values(tg::cat({a, a}, 1).sum({0})) == std::vector<double>{3, 5, 7, 3, 5, 7});
  CHECK(values(a.gather(1, idx)) == before);
  CHECK(values(tg::one_hot(tg::arange(2)).sum()) == std::vector<double>{2});
}

TEST_CASE("catalogue: LayerNorm, Embedding, gradient clipping and batch-norm folding", "[errors]") {
  tg::manual_seed(0);
  tg::nn::LayerNorm ln(std::int64_t{3});
  tg::nn::Embedding emb(4, 2, 0);
  tg::nn::Linear linear(3, 2);
  tg::nn::BatchNorm1d bn1(2), bn3(3);
  tg::nn::Conv2d conv(1, 2, 3);
  tg::nn::BatchNorm2d bn2(2), bn_wrong(3);
  tg::nn::BatchNorm2d no_stats(2, {.track_running_stats = false});
  tg::nn::Sequential seq(tg::nn::Linear(3, 2), tg::nn::BatchNorm1d(2));
  const Tensor x = tg::arange(6).reshape({2, 3}).to(tg::kFloat32);
  const Tensor tokens = tg::tensor(std::vector<std::int64_t>{1, 3, 0});
  const Tensor ln_out = ln(x), emb_out = emb(tokens);
  linear(x).sum().backward();
  const std::vector<double> grad = values(linear.weight.grad());
  const std::vector<Tensor> params = linear.parameters();
  expect_errors({
      {"LayerNorm", [&] { tg::nn::LayerNorm(Shape{}); }},
      {"LayerNorm", [&] { tg::nn::LayerNorm(std::int64_t{-3}); }},
      {"layer_norm", [&] { ln(tg::ones({2, 4})); }},
      {"layer_norm", [&] { ln(tg::scalar_tensor(1.0)); }},
      {"layer_norm", [&] { ln(tg::ones({2, 3}, tg::kInt64)); }},
      {"layer_norm", [&] { ln(tg::ones({2, 3}, tg::kFloat64)); }},
      {"layer_norm", [&] { tg::layer_norm(x, {3}, tg::ones({2})); }},
      {"layer_norm", [&] { tg::layer_norm(x, {2, 3}, {}, tg::ones({3})); }},
      {"Embedding", [&] { tg::nn::Embedding(-1, 2); }},
      {"Embedding", [&] { tg::nn::Embedding(4, -1); }},
      {"Embedding", [&] { tg::nn::Embedding(4, 2, 4); }},
      {"Embedding", [&] { tg::nn::Embedding(4, 2, -5); }},
      {"Embedding", [&] { tg::nn::Embedding::from_pretrained(tg::ones({4})); }},
      {"embedding", [&] { emb(tokens.to(tg::kFloat32)); }},
      {"embedding", [&] { emb(tg::tensor(std::vector<std::int64_t>{4})); }},
      {"embedding", [&] { emb(tg::tensor(std::vector<std::int64_t>{-1})); }},
      {"embedding", [&] { tg::embedding(tokens, tg::ones({4})); }},
      {"clip_grad_norm_", [&] { tg::nn::utils::clip_grad_norm_(params, -1.0); }},
      {"clip_grad_norm_", [&] { tg::nn::utils::clip_grad_norm_(params, 1.0, 0.0); }},
      {"clip_grad_norm_", [&] { tg::nn::utils::clip_grad_norm_(params, 1.0, NAN); }},
      {"clip_grad_value_", [&] { tg::nn::utils::clip_grad_value_(params, -0.5); }},
      {"fuse_conv_bn_eval", [&] { tg::nn::utils::fuse_conv_bn_eval(conv, bn2); }},  // training mode
      {"fuse_linear_bn_eval", [&] { tg::nn::utils::fuse_linear_bn_eval(linear, bn1); }},
      {"fold_batchnorm", [&] { tg::nn::utils::fold_batchnorm(seq); }},
  });
  linear.weight.grad().fill_(NAN);
  expect_errors({{"clip_grad_norm_", [&] { tg::nn::utils::clip_grad_norm_(params, 1.0, 2.0, true); }}});
  linear.weight.grad().copy_(tg::tensor(grad, {2, 3}));
  for (tg::nn::Module* m : std::initializer_list<tg::nn::Module*>{&conv, &bn2, &bn_wrong, &no_stats, &linear, &bn1, &bn3})
    m->eval();
  expect_errors({
      {"fuse_conv_bn_eval", [&] { tg::nn::utils::fuse_conv_bn_eval(conv, bn_wrong); }},
      {"fuse_conv_bn_eval", [&] { tg::nn::utils::fuse_conv_bn_eval(conv, no_stats); }},
      {"fuse_linear_bn_eval", [&] { tg::nn::utils::fuse_linear_bn_eval(linear, bn3); }},
  });
  CHECK(values(ln(x)) == values(ln_out));
  CHECK(values(emb(tokens)) == values(emb_out));
  CHECK(values(linear.weight.grad()) == grad);
  CHECK(tg::nn::utils::clip_grad_norm_(params, 1e6) > 0.0);
  CHECK(tg::nn::utils::fuse_conv_bn_eval(conv, bn2).weight.sizes() == Shape({2, 1, 3, 3}));
}
