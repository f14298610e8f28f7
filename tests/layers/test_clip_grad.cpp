// nn::utils::clip_grad_norm_ and clip_grad_value_ against PyTorch (torch 1.13,
// scripts/gen_clip_grad_refs.py): the total norm of each order, the clipped gradients, float32,
// and the errors. Tag [layers].
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "tapegrad.h"

using Catch::Contains;
using tg::Tensor;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// The script's parameters: four, the third without a gradient.
std::vector<Tensor> params(tg::DType dtype = tg::kFloat64) {
  auto with_grad = [&](std::vector<double> g, tg::Shape shape) {
    Tensor p = tg::zeros(shape, dtype).requires_grad_();
    p.set_grad(tg::tensor(g, shape).to(dtype));
    return p;
  };
  return {with_grad({0.5, -1.5, 2.0, 0.25}, {2, 2}), with_grad({3.0, -0.5, 0.125}, {3}),
          tg::zeros({2}, dtype).requires_grad_(), with_grad({-4.0}, {1})};
}

std::vector<double> grads(const std::vector<Tensor>& ps) {
  std::vector<double> out;
  for (const Tensor& p : ps)
    if (p.grad().defined())
      for (double v : p.grad().to_vector<double>()) out.push_back(v);
  return out;
}

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol = 1e-14) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want[i]).epsilon(tol).margin(tol));
}

void check_clip_norm(double norm_type, double max_norm, double total, const std::vector<double>& want) {
  CAPTURE(norm_type, max_norm);
  std::vector<Tensor> ps = params();
  CHECK(tg::nn::utils::clip_grad_norm_(ps, max_norm, norm_type) == Approx(total).epsilon(1e-14));
  check_close(grads(ps), want);
  std::vector<Tensor> single = params(tg::kFloat32);
  CHECK(tg::nn::utils::clip_grad_norm_(single, max_norm, norm_type) == Approx(total).epsilon(1e-6));
  check_close(grads(single), want, 1e-6);
}

void check_clip_value(double clip_value, const std::vector<double>& want) {
  std::vector<Tensor> ps = params();
  tg::nn::utils::clip_grad_value_(ps, clip_value);
  check_close(grads(ps), want);
}

}  // namespace

TEST_CASE("clip_grad_norm_ and clip_grad_value_ match PyTorch", "[layers]") {
#include "clip_grad_refs.inc"
}

TEST_CASE("clip_grad_norm_ with no gradients, non-finite norms and bad arguments", "[layers][errors]") {
  std::vector<Tensor> none = {tg::zeros({2}).requires_grad_()};
  CHECK(tg::nn::utils::clip_grad_norm_(none, 1.0) == 0.0);
  std::vector<Tensor> ps = params();
  CHECK_THROWS_WITH(tg::nn::utils::clip_grad_norm_(ps, 1.0, 0.0), Contains("[clip_grad_norm_]") && Contains("norm_type"));
  CHECK_THROWS_WITH(tg::nn::utils::clip_grad_norm_(ps, -1.0), Contains("[clip_grad_norm_]") && Contains("max_norm"));
  CHECK_THROWS_WITH(tg::nn::utils::clip_grad_value_(ps, -1.0), Contains("[clip_grad_value_]") && Contains("-1"));
  ps[1].grad().fill_(kInf);
  std::vector<double> before = grads(ps);
  CHECK_THROWS_WITH(tg::nn::utils::clip_grad_norm_(ps, 1.0, 2.0, true),
                    Contains("[clip_grad_norm_]") && Contains("inf") && Contains("error_if_nonfinite"));
  CHECK(grads(ps) == before);
  // Without the flag an infinite norm scales every gradient by 0, as torch's (inf · 0 is NaN).
  CHECK(tg::nn::utils::clip_grad_norm_(ps, 1.0) == kInf);
  std::vector<double> after = grads(ps);
  CHECK(after[0] == 0.0);
  CHECK(std::isnan(after[4]));
}
