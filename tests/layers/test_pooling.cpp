// avg_pool2d and max_pool2d: outputs and gradients against PyTorch 1.13's numbers
// (conv_pool_refs.inc, from scripts/gen_layer_refs_conv_pool.py), float64 gradchecks, ties and
// NaNs, non-contiguous input, the float32 2×2 vector rows on every instruction set, every bad input.
// Tags [layers] [gradcheck] [errors].
// Layer: tests/layers; must not depend on optimizers.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "tapegrad/core/simd.h"
#include "tapegrad/layers/functional.h"
#include "ref_helpers.h"
#include "tapegrad.h"

using tg::Size2;

namespace {

struct PoolCase {
  const char* name;
  bool max;
  tg::DType dtype;
  Shape x_shape;
  Size2 kernel, stride, padding;
  Shape y_shape;
  std::vector<double> x, gy, y, dx;
};

const std::vector<PoolCase> kPoolCases = {
#define TG_POOL_REFS_ROWS
#include "conv_pool_refs.inc"
#undef TG_POOL_REFS_ROWS
};

}  // namespace

TEST_CASE("avg_pool2d and max_pool2d match PyTorch: outputs and gradients", "[layers]") {
  for (const PoolCase& c : kPoolCases) {
    SECTION(c.name) {
      Tensor x = ref::make(c.x, c.x_shape, c.dtype, true);
      Tensor y = c.max ? tg::max_pool2d(x, c.kernel, c.stride, c.padding)
                       : tg::avg_pool2d(x, c.kernel, c.stride, c.padding);
      CHECK(y.grad_fn_name() == (c.max ? "MaxPool2DWithIndicesBackward0" : "AvgPool2DBackward0"));
      ref::check_ref(y, c.y_shape, c.y, c.dtype);
      y.backward(ref::make(c.gy, c.y_shape, c.dtype));
      ref::check_ref(x.grad(), c.x_shape, c.dx, c.dtype);
    }
  }
}

TEST_CASE("pooling by hand", "[layers]") {
  // 3x3 input 1..9, 2x2 windows.
  Tensor x = tg::arange(1, 10, 1, tg::kFloat64).reshape({1, 1, 3, 3});
  CHECK(tg::max_pool2d(x, 2, 1).to_vector<double>() == std::vector<double>{5, 6, 8, 9});
  CHECK(tg::avg_pool2d(x, 2, 1).to_vector<double>() == std::vector<double>{3, 4, 6, 7});
  // Padding: avg counts the zeros, max never picks them (all inputs negative here).
  Tensor neg = -x;
  CHECK(tg::avg_pool2d(x, 2, 2, 1).to_vector<double>() == std::vector<double>{0.25, 5.0 / 4, 11.0 / 4, 28.0 / 4});
  CHECK(tg::max_pool2d(neg, 2, 2, 1).to_vector<double>() == std::vector<double>{-1, -2, -4, -5});
  // The stride defaults to the kernel.
  CHECK(tg::max_pool2d(tg::arange(0, 16, 1, tg::kFloat32).reshape({1, 1, 4, 4}), 2).to_vector<double>() ==
        std::vector<double>{5, 7, 13, 15});
}

TEST_CASE("max_pool2d breaks ties and NaNs as PyTorch does", "[layers]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto grad_of = [](const Tensor& x, Size2 kernel, std::optional<Size2> stride, Size2 padding) {
    Tensor leaf = x.detach().requires_grad_();
    tg::max_pool2d(leaf, kernel, stride, padding).sum().backward();
    return leaf.grad().to_vector<double>();
  };
  // Ties (as after a ReLU): the first maximum in row-major order takes the gradient.
  Tensor zeros = tg::zeros({1, 1, 4, 4}, tg::kFloat64);
  CHECK(grad_of(zeros, 2, std::nullopt, 0) == std::vector<double>{1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0});
  CHECK(grad_of(zeros, 3, Size2(1), 0) == std::vector<double>{1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  // A NaN propagates; of several, the last one takes the gradient (PyTorch 1.13's reference output).
  Tensor two_nans = tg::tensor(std::vector<double>{nan, 1, nan, 2}, {1, 1, 2, 2});
  CHECK(std::isnan(tg::max_pool2d(two_nans, 2).item<double>()));
  CHECK(grad_of(two_nans, 2, std::nullopt, 0) == std::vector<double>{0, 0, 1, 0});
  Tensor padded = tg::tensor(std::vector<double>{nan, 1, 0, nan, 2, 0, 0, 0, 0}, {1, 1, 3, 3});
  std::vector<double> y = tg::max_pool2d(padded, 3, Size2(1), 1).to_vector<double>();
  for (std::size_t i : {0u, 1u, 3u, 4u, 6u, 7u}) CHECK(std::isnan(y[i]));
  CHECK((y[2] == 2 && y[5] == 2 && y[8] == 2));
  CHECK(grad_of(padded, 3, Size2(1), 1) == std::vector<double>{0, 0, 0, 6, 3, 0, 0, 0, 0});
}

TEST_CASE("pooling gradients match central differences", "[layers][gradcheck]") {
  struct Config {
    Size2 kernel;
    std::optional<Size2> stride;
    Size2 padding;
  };
  const std::vector<Config> configs = {
      {2, std::nullopt, 0}, {3, Size2(2), 1}, {3, Size2(1), 0}, {{2, 3}, Size2(1, 2), {1, 1}}, {2, Size2(3), 0}};
  for (const Config& c : configs) {
    tg::manual_seed(11);
    Tensor x = tg::randn({2, 3, 7, 6}, tg::kFloat64).requires_grad_();
    CHECK(tg::autograd::gradcheck(
        [&](const std::vector<Tensor>& v) { return tg::avg_pool2d(v[0], c.kernel, c.stride, c.padding); }, {x}));
    CHECK(tg::autograd::gradcheck(
        [&](const std::vector<Tensor>& v) { return tg::max_pool2d(v[0], c.kernel, c.stride, c.padding); }, {x}));
  }
}

TEST_CASE("float32 avg_pool2d 2x2 stride 2: every instruction set's version, all row widths, exact sums", "[layers]") {
  // The vector rows (layers/pooling.cpp) take 8 and 4 outputs at a time and finish with scalars:
  // widths 2 to 35 cover each mix; odd sides leave an input row or column outside every window.
  // Sums in the scalar order, (x00 + x01 + x10 + x11) · 0.25, so the bits match exactly.
  tg::manual_seed(3);
  for (std::int64_t W : {2, 7, 8, 9, 16, 17, 23, 24, 26, 35})
    for (std::int64_t H : {2, 5, 8}) {
      CAPTURE(H, W);
      const std::int64_t OH = H / 2, OW = W / 2;
      const Tensor x = tg::randn({2, 3, H, W}), dy = tg::randn({2, 3, OH, OW});
      const std::vector<float> xv = x.to_vector<float>(), dyv = dy.to_vector<float>();
      std::vector<float> want_y, want_dx(xv.size(), 0.0f);
      for (std::int64_t p = 0; p < 6; ++p)
        for (std::int64_t oh = 0; oh < OH; ++oh)
          for (std::int64_t ow = 0; ow < OW; ++ow) {
            const auto at = [&](std::int64_t h, std::int64_t w) {
              return static_cast<std::size_t>((p * H + h) * W + w);
            };
            want_y.push_back((xv[at(2 * oh, 2 * ow)] + xv[at(2 * oh, 2 * ow + 1)] + xv[at(2 * oh + 1, 2 * ow)] +
                              xv[at(2 * oh + 1, 2 * ow + 1)]) * 0.25f);
            const float g = dyv[static_cast<std::size_t>((p * OH + oh) * OW + ow)] * 0.25f;
            for (std::int64_t i = 0; i < 2; ++i)
              for (std::int64_t j = 0; j < 2; ++j) want_dx[at(2 * oh + i, 2 * ow + j)] = g;
          }
      for (tg::simd::Isa isa : {tg::simd::Isa::Portable, tg::simd::Isa::Avx2, tg::simd::Isa::Avx512}) {
        const tg::simd::IsaLimit limit(isa);
        CAPTURE(tg::simd::isa_name(tg::simd::active_isa()));
        Tensor xl = x.detach().requires_grad_();
        Tensor y = tg::avg_pool2d(xl, 2, 2);
        CHECK(y.to_vector<float>() == want_y);
        y.backward(dy);
        CHECK(xl.grad().to_vector<float>() == want_dx);
      }
    }
}

TEST_CASE("pooling of a non-contiguous input equals that of its contiguous copy", "[layers]") {
  Tensor x = ref::permuted_nchw_input();
  Tensor xc = x.contiguous();
  CHECK(tg::max_pool2d(x, 2).to_vector<double>() == tg::max_pool2d(xc, 2).to_vector<double>());
  CHECK(tg::avg_pool2d(x, 3, 2, 1).to_vector<double>() == tg::avg_pool2d(xc, 3, 2, 1).to_vector<double>());
}

TEST_CASE("pooling rejects bad input", "[layers][errors]") {
  Tensor x = tg::ones({1, 2, 4, 4});
  for (const char* op : {"avg_pool2d", "max_pool2d"}) {
    auto pool = [op](const Tensor& t, Size2 k, std::optional<Size2> s = std::nullopt, Size2 p = 0) {
      return std::string(op) == "max_pool2d" ? tg::max_pool2d(t, k, s, p) : tg::avg_pool2d(t, k, s, p);
    };
    const std::string tag = std::string("[") + op + "]";
    CHECK_THROWS_WITH(pool(tg::ones({3, 5}), 2), Contains(tag + " expected input of shape [N, C, H, W] or [C, H, W], got [3, 5]"));
    CHECK_THROWS_WITH(pool(tg::ones({1, 1, 4, 4}, tg::kInt64), 2),
                      Contains(tag + " expected a float32 or float64 input, got int64"));
    CHECK_THROWS_WITH(pool(x, 0), Contains(tag + " expected a positive kernel size, got [0, 0]"));
    CHECK_THROWS_WITH(pool(x, 2, Size2(0)), Contains(tag + " expected a positive stride, got [0, 0]"));
    CHECK_THROWS_WITH(pool(x, 2, std::nullopt, 2),
                      Contains(tag + " expected padding between 0 and half the kernel size") &&
                          Contains("padding [2, 2] for kernel [2, 2]"));
    CHECK_THROWS_WITH(pool(x, 3, std::nullopt, -1), Contains(tag));
    CHECK_THROWS_WITH(pool(x, {5, 2}),
                      Contains(tag + " kernel size [5, 2] is larger than the padded input size [4, 4]"));
    CHECK_NOTHROW(pool(x, {5, 2}, std::nullopt, {1, 0}));
    CHECK_THROWS_WITH(pool(tg::ones({1, 1, 0, 4}), 2, std::nullopt, 1),
                      Contains(tag + " expected non-empty channel and spatial dims, got input [1, 1, 0, 4]"));
  }
}
