// Broadcasting elementwise math, type promotion, reductions, matmul against a naive loop, and
// one bad-input test per op. Tag [core].
#include <catch2/catch.hpp>

#include <cmath>

#include "tapegrad/core/native.h"
#include "tapegrad.h"

using Catch::Contains;
using tg::Shape;
using tg::Tensor;

namespace {
Tensor f32(std::vector<float> v, Shape s) { return tg::tensor(v, s); }
Tensor f64(std::vector<double> v, Shape s) { return tg::tensor(v, s); }
std::vector<double> vals(const Tensor& t) { return t.to_vector<double>(); }
void check_close(const Tensor& t, const std::vector<double>& want, double tol = 1e-6) {
  std::vector<double> got = vals(t);
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want[i]).margin(tol));
}
}  // namespace

TEST_CASE("broadcasting follows NumPy's rules", "[core]") {
  Tensor col = f32({1, 2, 3}, {3, 1});
  Tensor row = f32({10, 20}, {2});
  Tensor s = col + row;
  CHECK(s.sizes() == Shape({3, 2}));
  CHECK(vals(s) == std::vector<double>{11, 21, 12, 22, 13, 23});
  CHECK((tg::ones({2, 1, 4}) * tg::ones({3, 1})).sizes() == Shape({2, 3, 4}));
  CHECK((tg::ones({}) + tg::ones({2, 2})).sizes() == Shape({2, 2}));
  CHECK((tg::ones({0, 3}) + tg::ones({3})).sizes() == Shape({0, 3}));
  CHECK(vals(10.0 - col) == std::vector<double>{9, 8, 7});
  CHECK(vals(6.0 / col) == std::vector<double>{6, 3, 2});
  CHECK(vals(col - 1) == std::vector<double>{0, 1, 2});
  CHECK(vals(2 * col) == std::vector<double>{2, 4, 6});
  CHECK_THROWS_WITH(tg::ones({3, 2}) * tg::ones({2, 3}), Contains("[mul]") && Contains("[3, 2]") && Contains("[2, 3]"));
  CHECK_THROWS_WITH(tg::ones({2}) - tg::ones({3}), Contains("[sub]"));
  CHECK_THROWS_WITH(tg::ones({2}) / tg::ones({3}), Contains("[div]"));
}

TEST_CASE("type promotion follows PyTorch", "[core]") {
  Tensor i = tg::arange(4);
  CHECK(i.dtype() == tg::kInt64);
  CHECK((i * 2).dtype() == tg::kInt64);
  CHECK((i * 2.0).dtype() == tg::kFloat32);
  CHECK((i / 2).dtype() == tg::kFloat32);  // true division
  check_close(i / 2, {0, 0.5, 1, 1.5});
  CHECK((i + tg::ones({4})).dtype() == tg::kFloat32);
  CHECK((tg::ones({4}) + tg::ones({4}, tg::kFloat64)).dtype() == tg::kFloat64);
  CHECK((tg::ones({4}, tg::kFloat64) * 0.5f).dtype() == tg::kFloat64);
  CHECK(i.exp().dtype() == tg::kFloat32);
  CHECK(i.abs().dtype() == tg::kInt64);
  CHECK(i.eq(2).dtype() == tg::kInt64);
  CHECK(vals(i.pow(2)) == std::vector<double>{0, 1, 4, 9});
  CHECK(tg::arange(0, 1, 0.25).dtype() == tg::kFloat32);
  check_close(tg::arange(0, 1, 0.25), {0, 0.25, 0.5, 0.75});
  CHECK(vals(tg::arange(5, 0, -2)) == std::vector<double>{5, 3, 1});
}

TEST_CASE("unary math and comparisons", "[core]") {
  Tensor x = f64({-2, -0.5, 0, 0.5, 2}, {5});
  check_close(x.abs(), {2, 0.5, 0, 0.5, 2});
  check_close(x.relu(), {0, 0, 0, 0.5, 2});
  check_close(-x, {2, 0.5, 0, -0.5, -2});
  check_close(x.exp(), {std::exp(-2.0), std::exp(-0.5), 1, std::exp(0.5), std::exp(2.0)}, 1e-12);
  check_close(x.sigmoid(), {1 / (1 + std::exp(2.0)), 1 / (1 + std::exp(0.5)), 0.5, 1 / (1 + std::exp(-0.5)),
                            1 / (1 + std::exp(-2.0))}, 1e-12);
  check_close(x.tanh(), {std::tanh(-2.0), std::tanh(-0.5), 0, std::tanh(0.5), std::tanh(2.0)}, 1e-12);
  check_close(x.abs().sqrt(), {std::sqrt(2.0), std::sqrt(0.5), 0, std::sqrt(0.5), std::sqrt(2.0)}, 1e-12);
  check_close((x.abs() + 1).log(), {std::log(3.0), std::log(1.5), 0, std::log(1.5), std::log(3.0)}, 1e-12);
  check_close(x.pow(2), {4, 0.25, 0, 0.25, 4});
  check_close(x.pow(f64({1, 2, 3, 2, 0.5}, {5}).abs()), {-2, 0.25, 0, 0.25, std::sqrt(2.0)}, 1e-12);
  check_close(x.clamp(-1, 1), {-1, -0.5, 0, 0.5, 1});
  check_close(x.maximum(f64({0}, {1})), {0, 0, 0, 0.5, 2});
  check_close(x.minimum(f64({0}, {1})), {-2, -0.5, 0, 0, 0});
  CHECK(vals(x.gt(0.0)) == std::vector<double>{0, 0, 0, 1, 1});
  CHECK(vals(x.le(0.0)) == std::vector<double>{1, 1, 1, 0, 0});
  CHECK(vals(x.ne(x)) == std::vector<double>{0, 0, 0, 0, 0});
  CHECK(std::isnan(f32({-1}, {1}).log().sqrt().item<float>()));
  check_close(x.clamp(1, -1), {-1, -1, -1, -1, -1});  // min > max: every element becomes max, as PyTorch
}

TEST_CASE("in-place ops write through views and check shapes", "[core]") {
  Tensor a = tg::zeros({2, 3});
  a.add_(f32({1, 2, 3}, {3}));
  a.select(0, 1).mul_(2.0);
  a.add_(tg::ones({2, 3}), -1);
  CHECK(vals(a) == std::vector<double>{0, 1, 2, 1, 3, 5});
  a.sub_(tg::ones({1}));
  a.div_(2);
  check_close(a, {-0.5, 0, 0.5, 0, 1, 2});
  a.copy_(f32({7, 8, 9}, {3}));
  CHECK(vals(a) == std::vector<double>{7, 8, 9, 7, 8, 9});
  a.copy_(tg::arange(6).reshape({2, 3}));  // dtype converts
  CHECK(vals(a) == std::vector<double>{0, 1, 2, 3, 4, 5});
  a.t().copy_(a.t().contiguous() * 2.0);  // overlapping source and destination
  CHECK(vals(a) == std::vector<double>{0, 2, 4, 6, 8, 10});
  a.zero_();
  CHECK(a.sum().item<double>() == 0.0);
  std::uint64_t v = a.storage()->version();
  a.fill_(1);
  CHECK(a.storage()->version() == v + 1);
  Tensor before = a.clone();
  CHECK_THROWS_WITH(a.add_(tg::ones({3, 3})), Contains("[add_]") && Contains("[2, 3]"));
  CHECK_THROWS_WITH(a.copy_(tg::ones({4})), Contains("[copy_]") && Contains("[4]"));
  CHECK_THROWS_WITH(tg::arange(3).mul_(0.5), Contains("[mul_]") && Contains("float32"));
  CHECK(vals(a) == vals(before));  // nothing half written
}

TEST_CASE("reductions over any set of dims", "[core]") {
  Tensor a = tg::arange(24).to(tg::kFloat64).reshape({2, 3, 4});
  CHECK(a.sum().dim() == 0);
  CHECK(a.sum().item<double>() == 276);
  CHECK(vals(a.sum({0, 2})) == std::vector<double>{60, 92, 124});
  CHECK(a.sum({0, 2}, true).sizes() == Shape({1, 3, 1}));
  CHECK(vals(a.sum({-1})) == vals(a.sum({2})));
  check_close(a.mean({1}), {4, 5, 6, 7, 16, 17, 18, 19});
  check_close(a.var({0}), std::vector<double>(12, 72.0));
  check_close(a.var({0}, false), std::vector<double>(12, 36.0));
  check_close(a.var({0, 2}, true, true), {42.571428571428, 42.571428571428, 42.571428571428}, 1e-9);  // PyTorch
  check_close(a.std({2}), std::vector<double>(6, std::sqrt(5.0 / 3.0)), 1e-12);
  CHECK(a.max().item<double>() == 23);
  CHECK(a.min().item<double>() == 0);
  CHECK(vals(a.max({1})) == std::vector<double>{8, 9, 10, 11, 20, 21, 22, 23});
  CHECK(vals(a.min({0, 1}, true)) == std::vector<double>{0, 1, 2, 3});
  CHECK(a.argmax().item<std::int64_t>() == 23);
  CHECK(vals(a.argmax(1)) == std::vector<double>{2, 2, 2, 2, 2, 2, 2, 2});
  CHECK(vals(a.argmin(-1, true)) == std::vector<double>{0, 0, 0, 0, 0, 0});
  CHECK(a.argmin(-1, true).sizes() == Shape({2, 3, 1}));
  CHECK(vals(f32({3, 1, 3, 0}, {4}).argmax()) == std::vector<double>{0});  // first of ties
  CHECK(tg::arange(5).sum().dtype() == tg::kInt64);
  CHECK(tg::arange(5).sum().item<std::int64_t>() == 10);
  CHECK(tg::zeros({0}).sum().item<float>() == 0.0f);
  CHECK(std::isnan(f32({1, NAN, 3}, {3}).max().item<float>()));
  // float32 sums accumulate in double
  CHECK(tg::full({1 << 24}, 1.0f).sum().item<float>() == 16777216.0f);
  Tensor big = tg::full({3}, 1e8f) + f32({1, 2, 3}, {3});
  CHECK(big.mean().item<float>() == Approx(1e8 + 2).epsilon(1e-7));
}

TEST_CASE("reduction errors name the op", "[core][errors]") {
  Tensor a = tg::ones({2, 3});
  CHECK_THROWS_WITH(a.sum({2}), Contains("[sum]") && Contains("2"));
  CHECK_THROWS_WITH(a.mean({0, 0}), Contains("[mean]") && Contains("multiple"));
  CHECK_THROWS_WITH(tg::arange(3).mean(), Contains("[mean]") && Contains("int64"));
  CHECK_THROWS_WITH(tg::arange(3).var(), Contains("[var]"));
  CHECK_THROWS_WITH(tg::zeros({0}).max(), Contains("[max]"));
  CHECK_THROWS_WITH(tg::zeros({2, 0}).argmax(1), Contains("[argmax]"));
  CHECK_THROWS_WITH(a.argmax(3), Contains("[argmax]") && Contains("3"));
}

namespace {
std::vector<double> naive_matmul(const std::vector<double>& a, const std::vector<double>& b, int m, int k, int n) {
  std::vector<double> c(static_cast<std::size_t>(m * n), 0.0);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j)
      for (int p = 0; p < k; ++p) c[i * n + j] += a[i * k + p] * b[p * n + j];
  return c;
}
}  // namespace

TEST_CASE("matmul agrees with a naive loop for every layout", "[core]") {
  tg::manual_seed(1);
  auto dtype = GENERATE(tg::kFloat32, tg::kFloat64);
  double tol = dtype == tg::kFloat32 ? 1e-4 : 1e-12;
  Tensor A = tg::randn({5, 7}, dtype), B = tg::randn({7, 3}, dtype);
  std::vector<double> want = naive_matmul(vals(A), vals(B), 5, 7, 3);
  check_close(tg::matmul(A, B), want, tol);
  check_close(tg::matmul(A.t().contiguous().t(), B), want, tol);              // A passed transposed
  check_close(tg::matmul(A, B.t().contiguous().t()), want, tol);              // B passed transposed
  Tensor Aw = tg::randn({5, 14}, dtype).slice(1, 0, 14, 2);                    // no BLAS layout: copied
  Aw.copy_(A);
  check_close(tg::matmul(Aw, B), want, tol);
  // 1-D operands
  Tensor v = tg::randn({7}, dtype);
  check_close(tg::matmul(A, v), naive_matmul(vals(A), vals(v), 5, 7, 1), tol);
  CHECK(tg::matmul(A, v).sizes() == Shape({5}));
  CHECK(tg::matmul(v, B).sizes() == Shape({3}));
  check_close(tg::matmul(v, B), naive_matmul(vals(v), vals(B), 1, 7, 3), tol);
  CHECK(tg::matmul(v, v).dim() == 0);
  // batched with broadcast batch dims
  Tensor bA = tg::randn({2, 1, 5, 7}, dtype), bB = tg::randn({3, 7, 3}, dtype);
  Tensor out = tg::matmul(bA, bB);
  CHECK(out.sizes() == Shape({2, 3, 5, 3}));
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      check_close(out.select(0, i).select(0, j),
                  naive_matmul(vals(bA.select(0, i).select(0, 0)), vals(bB.select(0, j)), 5, 7, 3), tol);
  // int64 and empty
  CHECK(vals(tg::matmul(tg::arange(6).reshape({2, 3}), tg::arange(3))) == std::vector<double>{5, 14});
  CHECK(tg::matmul(tg::ones({2, 0}), tg::ones({0, 3})).sum().item<float>() == 0.0f);
}

TEST_CASE("matmul errors", "[core][errors]") {
  CHECK_THROWS_WITH(tg::matmul(tg::ones({2, 3}), tg::ones({2, 3})),
                    Contains("[matmul]") && Contains("[2, 3]") && Contains("2x3"));
  CHECK_THROWS_WITH(tg::matmul(tg::ones({}), tg::ones({2})), Contains("[matmul]"));
  CHECK_THROWS_WITH(tg::matmul(tg::ones({2, 2}), tg::ones({2, 2}, tg::kFloat64)), Contains("float64"));
  CHECK_THROWS_WITH(tg::matmul(tg::ones({2, 2, 3}), tg::ones({3, 3, 1})), Contains("[matmul]"));
}

TEST_CASE("factories and element access", "[core]") {
  CHECK(vals(tg::full({2}, 2.5)) == std::vector<double>{2.5, 2.5});
  CHECK(tg::zeros({2}, tg::kInt64).dtype() == tg::kInt64);
  CHECK(tg::ones_like(tg::zeros({2, 2}, tg::kFloat64)).dtype() == tg::kFloat64);
  CHECK(tg::scalar_tensor(3).dim() == 0);
  CHECK(tg::tensor(std::vector<double>{1, 2}).sizes() == Shape({2}));
  Tensor t = f32({1.5f, 2.5f}, {2});
  CHECK(t.select(0, 1).item<double>() == 2.5);
  CHECK(t.select(0, 1).item<std::int64_t>() == 2);
  CHECK(*t.data_ptr<float>() == 1.5f);
  CHECK_THROWS_WITH(t.data_ptr<double>(), Contains("[data_ptr]") && Contains("float64"));
  CHECK_THROWS_WITH(t.item<float>(), Contains("[item]") && Contains("2"));
  CHECK_THROWS_WITH(tg::tensor(std::vector<float>{1, 2, 3}, {2, 2}), Contains("[tensor]") && Contains("[2, 2]"));
  CHECK_THROWS_WITH(tg::zeros({2, -1}), Contains("[zeros] expected non-negative sizes, got [2, -1]"));
  CHECK_THROWS_WITH(tg::arange(0, 5, 0), Contains("[arange]"));
  CHECK_THROWS_WITH(tg::arange(5, 0, 1), Contains("[arange]"));
  CHECK_THROWS_WITH(Tensor().sizes(), Contains("undefined"));
}

TEST_CASE("view op errors name the op and the offending value", "[core][errors]") {
  Tensor a = tg::ones({3, 4});
  CHECK_THROWS_WITH(a.transpose(0, 5), Contains("[transpose]") && Contains("5"));
  CHECK_THROWS_WITH(a.select(0, 3), Contains("[select]") && Contains("3"));
  CHECK_THROWS_WITH(a.slice(0, 0, 2, 0), Contains("[slice]"));
  CHECK_THROWS_WITH(a.permute({0}), Contains("[permute]"));
  CHECK_THROWS_WITH(a.permute({0, 0}), Contains("[permute]") && Contains("repeated"));
  CHECK_THROWS_WITH(a.unsqueeze(3), Contains("[unsqueeze]"));
  CHECK_THROWS_WITH(a.squeeze(2), Contains("[squeeze]"));
  CHECK_THROWS_WITH(a.expand({2, 4}), Contains("[expand]") && Contains("[3, 4]") && Contains("[2, 4]"));
  CHECK_THROWS_WITH(a.reshape({5, 3}), Contains("[reshape]") && Contains("[5, 3]"));
  CHECK_THROWS_WITH(a.reshape({-1, -1}), Contains("[reshape]"));
  CHECK_THROWS_WITH(a.flatten(1, 0), Contains("[flatten]"));
  CHECK_THROWS_WITH(a.size(2), Contains("[size]"));
  CHECK(a.size(-1) == 4);
}
