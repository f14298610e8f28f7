// Tests of tg::dropout and the Dropout module: the kept fraction, the scale, mask reuse, the
// identity cases, a float64 gradcheck, and every bad input. Tags [layers] [gradcheck] [errors].
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "tapegrad/layers/functional.h"
#include "tapegrad.h"

#include "ref_helpers.h"

using ref::Inputs;

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

TEST_CASE("dropout gradchecks in float64", "[layers][gradcheck]") {
  ref::check_gradcheck_rows({
      {"dropout", [](const Inputs& in) { tg::manual_seed(5); return tg::dropout(in[0], 0.4, true); }, {{4, 5}},
       "NativeDropoutBackward0"},
  });
}

TEST_CASE("dropout rejects bad input with the op's name", "[layers][errors]") {
  Tensor logits = tg::randn({2, 3});
  CHECK_THROWS_WITH(tg::dropout(logits, 1.5), Contains("[dropout]") && Contains("[0, 1]") && Contains("1.5"));
  CHECK_THROWS_WITH(tg::dropout(logits, -0.1), Contains("[dropout]") && Contains("-0.1"));
  CHECK_THROWS_WITH(tg::dropout(logits, -0.1, false), Contains("[dropout]"));
  CHECK_THROWS_WITH(tg::dropout(tg::ones({2}, tg::kInt64), 0.5), Contains("[dropout]") && Contains("int64"));
}

TEST_CASE("the Dropout module names itself in errors", "[layers][errors]") {
  CHECK_THROWS_WITH(nn::Dropout(1.5), Contains("[Dropout]"));
}
