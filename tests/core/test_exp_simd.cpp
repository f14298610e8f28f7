// The vectorized float32 exp, sigmoid and tanh (core/elementwise.cpp) against libm in float64:
// special values, the overflow and underflow bounds (subnormal results included), ulp sweeps,
// and the same bits from the vector body, the scalar tail and the strided path. Tag [core].
#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include "tapegrad/core/native.h"
#include "tapegrad/core/simd.h"

using tg::Tensor;

namespace {

using Lim = std::numeric_limits<float>;
using UnaryFn = std::function<Tensor(const Tensor&)>;

const UnaryFn kExp = [](const Tensor& t) { return tg::native::unary(tg::native::UnaryOp::Exp, t); };
const UnaryFn kSigmoid = [](const Tensor& t) { return tg::native::unary(tg::native::UnaryOp::Sigmoid, t); };
const UnaryFn kTanh = [](const Tensor& t) { return tg::native::unary(tg::native::UnaryOp::Tanh, t); };

std::vector<float> run(const UnaryFn& f, const std::vector<float>& x) {
  Tensor t = tg::tensor(x);
  REQUIRE(t.dtype() == tg::kFloat32);
  return f(t).to_vector<float>();
}

float run1(const UnaryFn& f, float x) { return run(f, {x})[0]; }

std::uint32_t bits(float f) { return std::bit_cast<std::uint32_t>(f); }

// Distance in representable floats (+0 and -0 coincide; the largest float is 1 from infinity).
std::int64_t ulps(float a, float b) {
  auto ordered = [](float f) {
    const std::int32_t i = std::bit_cast<std::int32_t>(f);
    return i >= 0 ? std::int64_t{i} : -std::int64_t{i & 0x7fffffff};
  };
  const std::int64_t d = ordered(a) - ordered(b);
  return d < 0 ? -d : d;
}

float exp_ref(float x) { return static_cast<float>(std::exp(static_cast<double>(x))); }
float sigmoid_ref(float x) { return static_cast<float>(1.0 / (1.0 + std::exp(-static_cast<double>(x)))); }
float tanh_ref(float x) { return static_cast<float>(std::tanh(static_cast<double>(x))); }

std::vector<float> linspace(double lo, double hi, int n) {
  std::vector<float> v(n);
  for (int i = 0; i < n; ++i) v[i] = static_cast<float>(lo + (hi - lo) * i / (n - 1));
  return v;
}

// `count` consecutive floats starting `before` steps below x.
std::vector<float> floats_around(float x, int before, int count) {
  for (int i = 0; i < before; ++i) x = std::nextafter(x, -Lim::infinity());
  std::vector<float> v(count);
  for (int i = 0; i < count; ++i, x = std::nextafter(x, Lim::infinity())) v[i] = x;
  return v;
}

// The largest ulp distance between f over xs and ref (at most 2); infinities and NaNs must match.
std::int64_t max_ulps(const UnaryFn& f, float (*ref)(float), const std::vector<float>& xs) {
  const std::vector<float> got = run(f, xs);
  REQUIRE(got.size() == xs.size());
  std::int64_t worst = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const float want = ref(xs[i]);
    INFO("x = " << xs[i] << " (" << std::hexfloat << xs[i] << "), got " << got[i] << ", want " << want
                << std::defaultfloat);
    REQUIRE(std::isinf(got[i]) == std::isinf(want));
    REQUIRE(std::isnan(got[i]) == std::isnan(want));
    if (std::isinf(want)) REQUIRE(got[i] == want);
    if (!std::isnan(want)) {
      REQUIRE(ulps(got[i], want) <= 2);
      worst = std::max(worst, ulps(got[i], want));
    }
  }
  return worst;
}

}  // namespace

TEST_CASE("float32 exp of special values: NaN, infinities, zeros", "[core]") {
  const float nan = Lim::quiet_NaN(), inf = Lim::infinity();
  const std::vector<float> got = run(kExp, {nan, inf, -inf, 0.0f, -0.0f, -nan, Lim::max(), -Lim::max()});
  CHECK(std::isnan(got[0]));
  CHECK(got[1] == inf);
  CHECK(got[2] == 0.0f);
  CHECK(got[3] == 1.0f);
  CHECK(got[4] == 1.0f);
  CHECK(std::isnan(got[5]));
  CHECK(got[6] == inf);
  CHECK(got[7] == 0.0f);
  CHECK(run1(kExp, Lim::denorm_min()) == 1.0f);
  CHECK(run1(kExp, 1.0f) == exp_ref(1.0f));
  CHECK(run1(kExp, -1.0f) == Approx(std::exp(-1.0)).epsilon(3e-7));
}

TEST_CASE("float32 exp at the overflow bound matches expf", "[core]") {
  const float last_finite = 0x1.62e42ep+6f;  // 88.7228317: the largest x whose expf is finite
  REQUIRE(std::isfinite(std::exp(last_finite)));
  REQUIRE(std::isinf(std::exp(std::nextafter(last_finite, 100.0f))));

  CHECK(run1(kExp, 88.7f) == Approx(std::exp(double{88.7f})).epsilon(3e-7));
  CHECK(run1(kExp, 88.72f) == Approx(std::exp(double{88.72f})).epsilon(3e-7));
  CHECK(std::isfinite(run1(kExp, last_finite)));
  CHECK(ulps(run1(kExp, last_finite), std::exp(last_finite)) <= 1);
  CHECK(run1(kExp, std::nextafter(last_finite, 100.0f)) == Lim::infinity());
  for (float x : {88.73f, 88.9f, 89.0f, 89.5f, 100.0f, 1e10f}) CHECK(run1(kExp, x) == std::exp(x));
  CHECK(max_ulps(kExp, exp_ref, floats_around(last_finite, 3000, 6000)) <= 2);
}

TEST_CASE("float32 exp at the underflow bound gives subnormals, then 0, as expf does", "[core]") {
  const double denorm = Lim::denorm_min();
  CHECK(run1(kExp, -87.33f) == Approx(std::exp(double{-87.33f})).epsilon(1e-6));  // just above FLT_MIN
  const float sub = run1(kExp, -100.0f);
  CHECK(sub > 0.0f);
  CHECK(sub < Lim::min());
  CHECK(std::fabs(sub - std::exp(-100.0)) <= denorm);
  CHECK(ulps(sub, std::exp(-100.0f)) <= 1);
  CHECK(ulps(run1(kExp, -95.0f), exp_ref(-95.0f)) <= 1);
  CHECK(run1(kExp, -103.27f) == Lim::denorm_min());
  CHECK(run1(kExp, -103.97f) == Lim::denorm_min());  // exp = 0.501 · 2^-149 rounds up
  CHECK(run1(kExp, -103.98f) == 0.0f);               // 0.496 · 2^-149 rounds to 0
  for (float x : {-104.0f, -104.5f, -110.0f, -1e10f}) CHECK(run1(kExp, x) == 0.0f);
  CHECK(max_ulps(kExp, exp_ref, floats_around(-103.97f, 3000, 6000)) <= 1);
  CHECK(max_ulps(kExp, exp_ref, floats_around(-87.3365f, 3000, 6000)) <= 2);  // across FLT_MIN
}

TEST_CASE("float32 exp is within 2 ulps of the float64 result over [-100, 88]", "[core]") {
  std::vector<float> xs = linspace(-100.0, 88.0, 4001);
  const std::vector<float> near0 = linspace(-1.0, 1.0, 2001);
  xs.insert(xs.end(), near0.begin(), near0.end());
  CHECK(max_ulps(kExp, exp_ref, xs) <= 2);
  for (float x : {-50.0f, -10.0f, -0.5f, 0.25f, 3.0f, 42.0f})
    CHECK(run1(kExp, x) == Approx(std::exp(static_cast<double>(x))).epsilon(3e-7));
}

TEST_CASE("float32 sigmoid of special values and within 2 ulps of float64 over [-104, 88]", "[core]") {
  const float nan = Lim::quiet_NaN(), inf = Lim::infinity();
  const std::vector<float> got = run(kSigmoid, {nan, inf, -inf, 0.0f, -0.0f, 20.0f, 200.0f, -200.0f});
  CHECK(std::isnan(got[0]));
  CHECK(got[1] == 1.0f);
  CHECK(got[2] == 0.0f);
  CHECK(got[3] == 0.5f);
  CHECK(got[4] == 0.5f);
  CHECK(got[5] == 1.0f);
  CHECK(got[6] == 1.0f);
  CHECK(got[7] == 0.0f);
  CHECK(run1(kSigmoid, -20.0f) == Approx(1.0 / (1.0 + std::exp(20.0))).epsilon(3e-7));
  CHECK(run1(kSigmoid, -87.0f) == Approx(1.0 / (1.0 + std::exp(87.0))).epsilon(1e-6));
  CHECK(max_ulps(kSigmoid, sigmoid_ref, linspace(-87.0, 88.0, 4001)) <= 2);
  CHECK(max_ulps(kSigmoid, sigmoid_ref, linspace(-1.0, 1.0, 2001)) <= 2);
  // Below -87.3 the result is subnormal (sigmoid is computed from exp(-|x|), which never overflows),
  // and below -103.97 it rounds to 0, as in float64.
  CHECK(max_ulps(kSigmoid, sigmoid_ref, linspace(-104.0, -87.0, 4001)) <= 2);
  CHECK(run1(kSigmoid, -100.0f) > 0.0f);
  CHECK(run1(kSigmoid, -100.0f) < Lim::min());
  CHECK(run1(kSigmoid, -104.0f) == 0.0f);
}

TEST_CASE("float32 sigmoid: at most 2 ulps from float64 over a sweep of all floats, every instruction set", "[core]") {
  // Every 4099th bit pattern (about a million floats of every sign and exponent: huge |x|, subnormal
  // x and results, NaNs, infinities), plus the special values. The largest error seen is 2 ulps
  // here and over all 2^32 floats (checked once offline, on the AVX2 and portable versions): the
  // worst case sits near x = -1.1, where exp(-|x|) and the division each round.
  std::vector<float> xs;
  for (std::uint64_t u = 0; u < (std::uint64_t{1} << 32); u += 4099)
    xs.push_back(std::bit_cast<float>(static_cast<std::uint32_t>(u)));
  const std::vector<float> specials = {Lim::quiet_NaN(), -Lim::quiet_NaN(), Lim::infinity(), -Lim::infinity(),
                                       0.0f, -0.0f, Lim::max(), -Lim::max(), Lim::denorm_min(), -Lim::min()};
  xs.insert(xs.end(), specials.begin(), specials.end());
  std::vector<float> want(xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i) want[i] = sigmoid_ref(xs[i]);
  for (tg::simd::Isa isa : {tg::simd::Isa::Portable, tg::simd::Isa::Avx2, tg::simd::Isa::Avx512}) {
    const tg::simd::IsaLimit limit(isa);
    CAPTURE(tg::simd::isa_name(tg::simd::active_isa()));
    const std::vector<float> got = run(kSigmoid, xs);
    REQUIRE(got.size() == xs.size());
    std::int64_t worst = 0, nan_mismatches = 0;
    float worst_x = 0.0f;
    for (std::size_t i = 0; i < xs.size(); ++i) {
      if (std::isnan(want[i]) || std::isnan(got[i])) {  // NaN in, NaN out, and only then
        nan_mismatches += std::isnan(want[i]) != std::isnan(got[i]);
        continue;
      }
      if (ulps(got[i], want[i]) > worst) worst = ulps(got[i], want[i]), worst_x = xs[i];
    }
    CAPTURE(worst_x);
    CHECK(nan_mismatches == 0);
    CHECK(worst <= 2);
  }
  CHECK(run1(kSigmoid, Lim::infinity()) == 1.0f);
  CHECK(run1(kSigmoid, -Lim::infinity()) == 0.0f);
}

TEST_CASE("float32 sigmoid backward is g·y·(1 − y) in one pass, the same bits on every instruction set", "[core]") {
  const std::vector<float> g = linspace(-3.0, 2.0, 1001), y = linspace(0.0, 1.0, 1001);
  std::vector<float> want(g.size());
  for (std::size_t i = 0; i < g.size(); ++i) want[i] = g[i] * y[i] * (1.0f - y[i]);
  for (tg::simd::Isa isa : {tg::simd::Isa::Portable, tg::simd::Isa::Avx2, tg::simd::Isa::Avx512}) {
    const tg::simd::IsaLimit limit(isa);
    CAPTURE(tg::simd::isa_name(tg::simd::active_isa()));
    const Tensor dx =
        tg::native::activation_backward(tg::native::ActivationGrad::Sigmoid, tg::tensor(g), tg::tensor(y));
    CHECK(dx.to_vector<float>() == want);
  }
}

TEST_CASE("float32 tanh of special values and within 2 ulps of float64 over [-12, 12]", "[core]") {
  const float nan = Lim::quiet_NaN(), inf = Lim::infinity();
  const std::vector<float> got =
      run(kTanh, {nan, inf, -inf, 0.0f, -0.0f, 10.0f, -20.0f, Lim::max(), 1e-5f, -Lim::denorm_min()});
  CHECK(std::isnan(got[0]));
  CHECK(got[1] == 1.0f);
  CHECK(got[2] == -1.0f);
  CHECK(got[3] == 0.0f);
  CHECK(!std::signbit(got[3]));
  CHECK(got[4] == 0.0f);
  CHECK(std::signbit(got[4]));
  CHECK(got[5] == 1.0f);
  CHECK(got[6] == -1.0f);
  CHECK(got[7] == 1.0f);
  CHECK(got[8] == 1e-5f);
  CHECK(got[9] == -Lim::denorm_min());
  CHECK(run1(kTanh, 0.5f) == Approx(std::tanh(0.5)).epsilon(3e-7));
  CHECK(max_ulps(kTanh, tanh_ref, linspace(-12.0, 12.0, 4001)) <= 2);
  CHECK(max_ulps(kTanh, tanh_ref, linspace(-0.01, 0.01, 2001)) <= 2);
  CHECK(max_ulps(kTanh, tanh_ref, floats_around(0x1p-12f, 500, 1000)) <= 2);  // the x-itself cutoff
}

TEST_CASE("float32 exp, sigmoid and tanh give the same bits in vector body, tail and strided path", "[core]") {
  const std::vector<float> xs = linspace(-30.0, 30.0, 1003);
  const auto [name, f] =
      GENERATE(table<const char*, UnaryFn>({{"exp", kExp}, {"sigmoid", kSigmoid}, {"tanh", kTanh}}));
  CAPTURE(name);
  const std::vector<float> whole = run(f, xs);
  for (std::size_t n : {1, 2, 3, 7, 8, 15, 16, 17, 31, 33}) {
    for (std::size_t start : {std::size_t{0}, std::size_t{5}, std::size_t{500}, xs.size() - n}) {
      CAPTURE(n, start);
      const std::vector<float> part(xs.begin() + start, xs.begin() + start + n);
      const std::vector<float> got = run(f, part);
      REQUIRE(got.size() == n);
      for (std::size_t i = 0; i < n; ++i) CHECK(bits(got[i]) == bits(whole[start + i]));
    }
  }
  std::vector<float> doubled(2 * xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i) doubled[2 * i] = xs[i];
  const Tensor every_other = tg::native::slice(tg::tensor(doubled), 0, 0, static_cast<std::int64_t>(doubled.size()), 2);
  REQUIRE(!every_other.is_contiguous());
  const std::vector<float> strided = f(every_other).to_vector<float>();
  REQUIRE(strided.size() == xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i) CHECK(bits(strided[i]) == bits(whole[i]));
}

TEST_CASE("float32 exp of a tensor split across threads gives the bits of the single-threaded pieces", "[core]") {
  const std::vector<float> xs = linspace(-100.0, 88.0, 50001);  // above kParallelGrain
  const std::vector<float> got = run(kExp, xs);
  REQUIRE(got.size() == xs.size());
  std::int64_t worst = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) worst = std::max(worst, ulps(got[i], exp_ref(xs[i])));
  CHECK(worst <= 2);
  for (std::size_t start = 0; start < xs.size(); start += 1000) {
    const std::size_t end = std::min(start + 1000, xs.size());
    const std::vector<float> piece = run(kExp, std::vector<float>(xs.begin() + start, xs.begin() + end));
    for (std::size_t i = start; i < end; ++i) REQUIRE(bits(got[i]) == bits(piece[i - start]));
  }
}

TEST_CASE("float32 exp, sigmoid and tanh: every instruction set's version, AVX2 and AVX-512 bit for bit", "[core]") {
  // core/simd.h runs the best version the processor has; lowering the ceiling runs the others.
  std::vector<float> xs = linspace(-87.0, 88.0, 20001);
  const std::vector<float> specials = {Lim::quiet_NaN(), Lim::infinity(), -Lim::infinity(), 0.0f, -0.0f, 1e-5f};
  xs.insert(xs.end(), specials.begin(), specials.end());
  const auto [name, f, ref] = GENERATE(table<const char*, UnaryFn, float (*)(float)>(
      {{"exp", kExp, exp_ref}, {"sigmoid", kSigmoid, sigmoid_ref}, {"tanh", kTanh, tanh_ref}}));
  CAPTURE(name);
  std::vector<std::vector<float>> by_isa;
  for (tg::simd::Isa isa : {tg::simd::Isa::Portable, tg::simd::Isa::Avx2, tg::simd::Isa::Avx512}) {
    const tg::simd::IsaLimit limit(isa);
    CAPTURE(tg::simd::isa_name(tg::simd::active_isa()));
    CHECK(max_ulps(f, ref, xs) <= 2);
    by_isa.push_back(run(f, xs));
  }
  for (std::size_t i = 0; i < xs.size(); ++i) CHECK(bits(by_isa[1][i]) == bits(by_isa[2][i]));
}
