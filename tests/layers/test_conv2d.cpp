// conv2d and the Conv2d module: outputs and gradients against PyTorch 1.13's numbers
// (conv_pool_refs.inc, from scripts/gen_layer_refs_conv_pool.py), float64 gradchecks, many-block
// batches, threads, the direct float32 kernels, non-contiguous input, every bad input.
// Tags [layers] [gradcheck] [errors]. Layer: tests/layers; must not depend on optimizers.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "tapegrad/core/native.h"
#include "tapegrad/core/simd.h"
#include "tapegrad/layers/functional.h"
#include "ref_helpers.h"
#include "tapegrad.h"

using tg::Size2;

namespace {

struct ConvCase {
  const char* name;
  tg::DType dtype;
  Shape x_shape, w_shape;
  bool bias;
  Size2 stride, padding;
  std::int64_t groups;
  Shape y_shape;
  std::vector<double> x, w, b, gy, y, dx, dw, db;
};

const std::vector<ConvCase> kConvCases = {
#define TG_CONV_REFS_ROWS
#include "conv_pool_refs.inc"
#undef TG_CONV_REFS_ROWS
};

tg::autograd::GradcheckResult check_conv(Shape xs, Shape ws, bool bias, Size2 stride, Size2 padding,
                                         std::int64_t groups) {
  tg::manual_seed(7);
  std::vector<Tensor> in{tg::randn(xs, tg::kFloat64).requires_grad_(), tg::randn(ws, tg::kFloat64).requires_grad_()};
  if (bias) in.push_back(tg::randn({ws[0]}, tg::kFloat64).requires_grad_());
  return tg::autograd::gradcheck(
      [=](const std::vector<Tensor>& v) {
        return tg::conv2d(v[0], v[1], v.size() > 2 ? v[2] : Tensor(), stride, padding, groups);
      },
      in);
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  REQUIRE(x.size() == y.size());
  double worst = 0;
  for (std::size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::fabs(x[i] - y[i]));
  return worst;
}

}  // namespace

TEST_CASE("conv2d matches PyTorch: outputs and gradients", "[layers]") {
  for (const ConvCase& c : kConvCases) {
    SECTION(c.name) {
      Tensor x = ref::make(c.x, c.x_shape, c.dtype, true);
      Tensor w = ref::make(c.w, c.w_shape, c.dtype, true);
      Tensor b = ref::make(c.b, {c.w_shape[0]}, c.dtype, true);  // undefined without bias
      Tensor y = tg::conv2d(x, w, b, c.stride, c.padding, c.groups);
      CHECK(y.grad_fn_name() == "ConvolutionBackward0");
      ref::check_ref(y, c.y_shape, c.y, c.dtype);
      y.backward(ref::make(c.gy, c.y_shape, c.dtype));
      ref::check_ref(x.grad(), c.x_shape, c.dx, c.dtype);
      ref::check_ref(w.grad(), c.w_shape, c.dw, c.dtype);
      if (c.bias) ref::check_ref(b.grad(), {c.w_shape[0]}, c.db, c.dtype);
    }
  }
}

TEST_CASE("conv2d by hand", "[layers]") {
  // 3x3 input 1..9, 2x2 kernel of ones: each output sums a 2x2 block.
  Tensor x = tg::arange(1, 10, 1, tg::kFloat64).reshape({1, 1, 3, 3});
  Tensor y = tg::conv2d(x, tg::ones({1, 1, 2, 2}, tg::kFloat64), tg::full({1}, 0.5, tg::kFloat64));
  CHECK(y.to_vector<double>() == std::vector<double>{12.5, 16.5, 24.5, 28.5});
}

TEST_CASE("conv2d over many blocks of samples equals conv2d sample by sample", "[layers]") {
  // Large enough batches are processed in several blocks, the last one partial.
  struct Config {
    Shape xs, ws;
    Size2 stride, padding;
    std::int64_t groups;
  };
  const std::vector<Config> configs = {{{37, 1, 28, 28}, {3, 1, 5, 5}, 1, 0, 1},
                                       {{23, 4, 10, 10}, {6, 2, 3, 3}, 2, 1, 2}};
  for (const Config& c : configs) {
    tg::manual_seed(9);
    Tensor x = tg::randn(c.xs, tg::kFloat64).requires_grad_();
    Tensor w = tg::randn(c.ws, tg::kFloat64).requires_grad_();
    Tensor b = tg::randn({c.ws[0]}, tg::kFloat64).requires_grad_();
    Tensor y = tg::conv2d(x, w, b, c.stride, c.padding, c.groups);
    Tensor gy = tg::randn(y.sizes(), tg::kFloat64);
    y.backward(gy);
    Tensor dw_sum = tg::zeros(c.ws, tg::kFloat64), db_sum = tg::zeros({c.ws[0]}, tg::kFloat64);
    for (std::int64_t n = 0; n < c.xs[0]; ++n) {
      Tensor xn = x.detach().slice(0, n, n + 1).requires_grad_();
      Tensor wn = w.detach().requires_grad_(), bn = b.detach().requires_grad_();
      Tensor yn = tg::conv2d(xn, wn, bn, c.stride, c.padding, c.groups);
      yn.backward(gy.slice(0, n, n + 1));
      std::vector<double> want = yn.to_vector<double>(), got = y.detach().slice(0, n, n + 1).to_vector<double>();
      REQUIRE(got.size() == want.size());
      for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want[i]).margin(1e-12));
      std::vector<double> dxn = xn.grad().to_vector<double>(), dx = x.grad().slice(0, n, n + 1).to_vector<double>();
      for (std::size_t i = 0; i < dx.size(); ++i) CHECK(dx[i] == Approx(dxn[i]).margin(1e-12));
      dw_sum.add_(wn.grad());
      db_sum.add_(bn.grad());
    }
    std::vector<double> dw = w.grad().to_vector<double>(), dw_want = dw_sum.to_vector<double>();
    for (std::size_t i = 0; i < dw.size(); ++i) CHECK(dw[i] == Approx(dw_want[i]).margin(1e-9));
    std::vector<double> db = b.grad().to_vector<double>(), db_want = db_sum.to_vector<double>();
    for (std::size_t i = 0; i < db.size(); ++i) CHECK(db[i] == Approx(db_want[i]).margin(1e-9));
  }
}

TEST_CASE("conv2d gradients match central differences", "[layers][gradcheck]") {
  CHECK(check_conv({2, 3, 6, 5}, {4, 3, 3, 3}, true, 1, 0, 1));
  CHECK(check_conv({2, 3, 6, 5}, {4, 3, 3, 3}, true, 2, 1, 1));
  CHECK(check_conv({1, 2, 5, 5}, {2, 2, 3, 3}, true, 1, 2, 1));
  CHECK(check_conv({2, 2, 7, 6}, {3, 2, 2, 3}, true, {2, 1}, {1, 2}, 1));
  CHECK(check_conv({2, 4, 5, 5}, {6, 2, 3, 3}, true, 1, 1, 2));
  CHECK(check_conv({1, 4, 6, 6}, {4, 1, 3, 3}, false, 2, 1, 4));
  CHECK(check_conv({1, 2, 8, 8}, {2, 2, 2, 2}, false, 3, 0, 1));
  CHECK(check_conv({2, 1, 8, 8}, {3, 1, 5, 5}, true, 1, 0, 1));
}

TEST_CASE("conv2d computes only the gradients that are needed", "[layers][gradcheck]") {
  tg::manual_seed(3);
  Tensor x = tg::randn({2, 2, 5, 5}, tg::kFloat64);
  Tensor w = tg::randn({3, 2, 3, 3}, tg::kFloat64).requires_grad_();
  Tensor b = tg::randn({3}, tg::kFloat64);
  Tensor y = tg::conv2d(x, w, b, 1, 1);
  y.sum().backward();
  CHECK_FALSE(x.grad().defined());
  CHECK_FALSE(b.grad().defined());
  CHECK(w.grad().sizes() == Shape({3, 2, 3, 3}));
  // d(sum y)/dw[f, c, kh, kw] is the sum of the input window (kh, kw) sees: check one entry.
  Tensor xp = tg::native::slice(tg::native::slice(x, 2, 0, 4, 1), 3, 0, 4, 1);  // kh = kw = 0 with padding 1
  CHECK(w.grad().to_vector<double>()[0] == Approx(xp.select(1, 0).sum().item<double>()).epsilon(1e-12));
  // Only the input requires grad.
  Tensor x2 = tg::randn({1, 2, 5, 5}, tg::kFloat64).requires_grad_();
  CHECK(tg::autograd::gradcheck([&](const std::vector<Tensor>& v) { return tg::conv2d(v[0], w.detach(), b, 2, 1); },
                                {x2}));
  {
    tg::NoGradGuard no_grad;
    CHECK_FALSE(tg::conv2d(x2, w, b).requires_grad());
  }
}

TEST_CASE("conv2d of a non-contiguous input equals that of its contiguous copy", "[layers]") {
  Tensor x = ref::permuted_nchw_input();
  Tensor xc = x.contiguous();
  Tensor w = tg::randn({4, 3, 3, 3}).transpose(2, 3);  // non-contiguous weight too
  Tensor b = tg::randn({4});
  std::vector<double> a = tg::conv2d(x, w, b, 2, 1).to_vector<double>();
  std::vector<double> c = tg::conv2d(xc, w.contiguous(), b, 2, 1).to_vector<double>();
  CHECK(a == c);

  // The gradient reaches the non-contiguous leaf in its shape.
  Tensor leaf = tg::randn({2, 6, 7, 3}).requires_grad_();
  Tensor y = tg::conv2d(leaf.permute({0, 3, 1, 2}), w, b);
  y.sum().backward();
  CHECK(leaf.grad().sizes() == Shape({2, 6, 7, 3}));
}

TEST_CASE("conv2d of an empty batch", "[layers]") {
  Tensor w = tg::ones({4, 3, 3, 3}).requires_grad_();
  Tensor y = tg::conv2d(tg::ones({0, 3, 5, 5}), w, tg::ones({4}));
  CHECK(y.sizes() == Shape({0, 4, 3, 3}));
  y.sum().backward();
  CHECK(w.grad().to_vector<double>() == std::vector<double>(108, 0.0));
}

TEST_CASE("conv2d gives the same numbers on one thread as on several", "[layers]") {
  tg::manual_seed(13);
  Tensor x = tg::randn({64, 6, 12, 12}).requires_grad_();
  Tensor w = tg::randn({16, 6, 5, 5}).requires_grad_();
  Tensor b = tg::randn({16}).requires_grad_();
  auto run = [&](int threads) {
    const int before = tg::get_num_threads();
    tg::set_num_threads(threads);
    x.set_grad({});
    w.set_grad({});
    b.set_grad({});
    Tensor y = tg::conv2d(x, w, b, 1, 1);
    y.backward(tg::ones_like(y));
    tg::set_num_threads(before);
    std::vector<std::vector<double>> out{y.to_vector<double>(), x.grad().to_vector<double>(),
                                         w.grad().to_vector<double>(), b.grad().to_vector<double>()};
    return out;
  };
  std::vector<std::vector<double>> one = run(1), two = run(2);
  for (std::size_t k = 0; k < one.size(); ++k) {
    REQUIRE(one[k].size() == two[k].size());
    for (std::size_t i = 0; i < one[k].size(); ++i) {
      INFO("result " << k << ", element " << i);
      CHECK(one[k][i] == Approx(two[k][i]).epsilon(1e-4).margin(1e-3));
    }
  }
}

TEST_CASE("float32 stride-1 conv2d (direct kernels) agrees with float64 conv2d (im2col)", "[layers]") {
  // float32 stride-1 convolutions run layers/conv2d_direct.cpp; float64 ones im2col + GEMM. The
  // shapes cover both of LeNet's convolutions in place (OW a multiple of 8, several blocks of samples),
  // padded copies (padding, OW not a multiple of 8, one output column), groups, a 1x1 kernel, a
  // kernel wider than one tile (KW 7), filter and row counts that leave partial tiles, no bias, an
  // input that needs no gradient, and groups of 16 filters (AVX-512's filter-lane tiles: with groups
  // and padding, rows wider than one tile, a kernel larger than one weight-gradient tile or input-gradient
  // tile, planes of whole vectors read in place and others copied, dx rows narrower and wider than a
// vector), filter counts 1, 3, 4, 6, 7, 8, 9
  // and 12 a group for the flat-position weight gradient, on one
  // thread and on two, with each instruction set's kernels (core/simd.h; those the processor lacks
  // run as the best it has).
  struct Config {
    Shape xs, ws;
    Size2 padding;
    std::int64_t groups;
    bool bias, input_grad;
  };
  const std::vector<Config> configs = {
      {{37, 1, 28, 28}, {6, 1, 5, 5}, 0, 1, true, false}, {{40, 6, 12, 12}, {16, 6, 5, 5}, 0, 1, true, true},
      {{3, 3, 9, 11}, {5, 3, 3, 3}, 1, 1, true, true},    {{4, 4, 10, 13}, {6, 2, 3, 5}, {1, 2}, 2, true, true},
      {{2, 2, 12, 20}, {3, 2, 2, 7}, {0, 3}, 1, false, true}, {{3, 5, 6, 6}, {7, 5, 1, 1}, 0, 1, true, true},
      {{2, 2, 5, 5}, {2, 2, 5, 5}, 0, 1, true, true},     {{2, 1, 3, 9}, {4, 1, 5, 3}, {2, 0}, 1, true, true},
      {{2, 3, 4, 10}, {9, 3, 2, 3}, 0, 1, false, true},   {{5, 6, 7, 7}, {6, 1, 3, 3}, 1, 6, true, true},
      {{3, 4, 9, 11}, {32, 2, 3, 3}, 1, 2, true, true},   {{2, 3, 10, 30}, {16, 3, 3, 5}, {1, 2}, 1, false, true},
      {{2, 2, 9, 12}, {16, 2, 6, 7}, {1, 3}, 1, true, true},  {{3, 4, 8, 8}, {32, 2, 3, 3}, 1, 2, true, true},
      // The input gradient's gather for rows of at most 16 columns: rows of dy narrower than 8 (6), and
      // a kernel wider than it handles (KW 9), which takes the general one.
      {{2, 3, 6, 6}, {16, 3, 3, 3}, 1, 1, true, true},    {{2, 2, 5, 12}, {16, 2, 2, 9}, 0, 1, false, true},
      // AVX-512's flat-position weight gradient (conv2d_direct.cpp's flat_dweight): 4 filters a group,
      // odd widths and 14 output columns; 12 a group (two blocks of 6) over 17 samples (more than one
      // flush, the batch's last sample in a pass of several); 8 filters of a 7×7 kernel (49 taps, 9
      // tiles of two blocks of 4); and 12 filters on 8 output columns (the row-span tiles).
      {{5, 2, 13, 19}, {8, 1, 4, 6}, {1, 0}, 2, true, true}, {{17, 2, 11, 11}, {24, 1, 3, 3}, 1, 2, true, false},
      {{3, 1, 21, 21}, {8, 1, 7, 7}, 0, 1, true, true},      {{3, 6, 12, 12}, {12, 6, 5, 5}, 0, 1, true, true},
      // AVX-512's row-span forward (outputs 8 or 24 wide, an even number of rows): padding and groups
      // with 8 columns, and 7 filters (tiles of 4 and 3) on 24.
      {{3, 4, 8, 6}, {8, 2, 3, 3}, {1, 2}, 2, true, true},   {{2, 3, 10, 26}, {7, 3, 3, 3}, 0, 1, false, true}};
  const int threads = GENERATE(1, 2);
  const tg::simd::Isa isa = GENERATE(tg::simd::Isa::Avx512, tg::simd::Isa::Avx2, tg::simd::Isa::Portable);
  const int before = tg::get_num_threads();
  tg::set_num_threads(threads);
  const tg::simd::IsaLimit limit(isa);
  for (const Config& c : configs) {
    INFO(fmt::format("x {} w {} padding [{}, {}] groups {}, {} thread(s){}", c.xs, c.ws, c.padding.h, c.padding.w,
                     c.groups, threads, tg::simd::isa_name(tg::simd::active_isa())));
    tg::manual_seed(17);
    Tensor x64 = tg::randn(c.xs, tg::kFloat64), w64 = tg::randn(c.ws, tg::kFloat64);
    Tensor b64 = c.bias ? tg::randn({c.ws[0]}, tg::kFloat64) : Tensor();
    Tensor gy64;
    std::vector<std::vector<double>> want, got;
    for (tg::DType dt : {tg::kFloat64, tg::kFloat32}) {
      Tensor x = tg::native::to(x64, dt).requires_grad_(c.input_grad), w = tg::native::to(w64, dt).requires_grad_();
      Tensor b = c.bias ? tg::native::to(b64, dt).requires_grad_() : Tensor();
      Tensor y = tg::conv2d(x, w, b, 1, c.padding, c.groups);
      if (!gy64.defined()) gy64 = tg::randn(y.sizes(), tg::kFloat64);
      y.backward(tg::native::to(gy64, dt));
      std::vector<std::vector<double>>& out = dt == tg::kFloat64 ? want : got;
      out = {y.to_vector<double>(), w.grad().to_vector<double>()};
      if (c.input_grad) out.push_back(x.grad().to_vector<double>());
      else CHECK_FALSE(x.grad().defined());
      if (c.bias) out.push_back(b.grad().to_vector<double>());
    }
    REQUIRE(got.size() == want.size());
    for (std::size_t k = 0; k < want.size(); ++k) {
      REQUIRE(got[k].size() == want[k].size());
      double scale = 0;
      for (double v : want[k]) scale = std::max(scale, std::fabs(v));
      int bad = 0;
      for (std::size_t i = 0; i < want[k].size(); ++i)
        bad += !(std::fabs(got[k][i] - want[k][i]) <= 2e-5 * (scale + std::fabs(want[k][i])));
      INFO("result " << k << " (y, dweight, dx, dbias), largest magnitude " << scale);
      CHECK(bad == 0);
    }
  }
  tg::set_num_threads(before);
}

TEST_CASE("conv2d rejects bad input", "[layers][errors]") {
  Tensor x = tg::ones({2, 3, 5, 5});
  Tensor w = tg::ones({4, 3, 3, 3});
  CHECK_THROWS_WITH(tg::conv2d(tg::ones({3, 5}), w),
                    Contains("[conv2d] expected input of shape [N, C, H, W] or [C, H, W], got [3, 5]"));
  CHECK_THROWS_WITH(tg::conv2d(x, tg::ones({4, 3, 3})), Contains("[conv2d]") && Contains("[4, 3, 3]"));
  CHECK_THROWS_WITH(tg::conv2d(tg::ones({2, 2, 5, 5}), w),
                    Contains("[conv2d]") && Contains("[2, 2, 5, 5]") && Contains("[4, 3, 3, 3]"));
  CHECK_THROWS_WITH(tg::conv2d(tg::ones({2, 3, 5, 5}), tg::ones({4, 1, 3, 3}), {}, 1, 0, 2),
                    Contains("[conv2d]") && Contains("groups=2"));
  CHECK_THROWS_WITH(tg::conv2d(tg::ones({2, 4, 5, 5}), tg::ones({3, 2, 3, 3}), {}, 1, 0, 2),
                    Contains("[conv2d]") && Contains("groups=2"));
  CHECK_THROWS_WITH(tg::conv2d(x, w, {}, 1, 0, 0), Contains("[conv2d] expected groups >= 1, got 0"));
  CHECK_THROWS_WITH(tg::conv2d(x, tg::ones({4, 3, 7, 3})),
                    Contains("[conv2d] kernel size [7, 3] is larger than the padded input size [5, 5]"));
  CHECK_NOTHROW(tg::conv2d(x, tg::ones({4, 3, 7, 3}), {}, 1, 1));
  CHECK_THROWS_WITH(tg::conv2d(x, w, {}, 0), Contains("[conv2d] expected a positive stride, got [0, 0]"));
  CHECK_THROWS_WITH(tg::conv2d(x, w, {}, {1, -1}), Contains("[conv2d] expected a positive stride, got [1, -1]"));
  CHECK_THROWS_WITH(tg::conv2d(x, w, {}, 1, -1), Contains("[conv2d] expected a non-negative padding"));
  CHECK_THROWS_WITH(tg::conv2d(x, tg::ones({4, 3, 3, 3}, tg::kFloat64)),
                    Contains("[conv2d] expected input and weight of one dtype, got float32 and float64"));
  CHECK_THROWS_WITH(tg::conv2d(tg::ones({2, 3, 5, 5}, tg::kInt64), tg::ones({4, 3, 3, 3}, tg::kInt64)),
                    Contains("[conv2d] expected a float32 or float64 input, got int64"));
  CHECK_THROWS_WITH(tg::conv2d(x, w, tg::ones({3})), Contains("[conv2d] expected bias of shape [4], got [3]"));
  CHECK_THROWS_WITH(tg::conv2d(x, w, tg::ones({4}, tg::kFloat64)),
                    Contains("[conv2d] expected bias of dtype float32, got float64"));
}

TEST_CASE("the Conv2d module names itself in shape errors", "[layers][errors]") {
  CHECK_THROWS_WITH(nn::Conv2d(3, 4, 3)(tg::ones({1, 2, 8, 8})), Contains("[Conv2d]") && Contains("[1, 2, 8, 8]"));
  CHECK_THROWS_WITH(nn::Conv2d(3, 4, 3, 1, 0, true, 2), Contains("[Conv2d]") && Contains("groups"));
}

TEST_CASE("conv2d_act equals conv2d, the activation and avg_pool2d, fused or not", "[layers]") {
  // Without a gradient a float32 stride-1 conv2d_act applies the activation and the 2x2 pool in the
  // direct kernel's registers; float64 and recording calls run the three functions. The shapes:
  // LeNet's two convolutions, padding, odd output sides (the last row and column fall outside every
  // window), groups, partial tiles, no bias, a 1x1 kernel, the smallest poolable output, groups of
  // 16 filters (AVX-512's filter-lane tiles, also with odd sides and rows wider than one tile); each
  // instruction set's kernels, one thread and two.
  struct Config {
    Shape xs, ws;
    Size2 padding;
    std::int64_t groups;
    bool bias;
  };
  const std::vector<Config> configs = {
      {{37, 1, 28, 28}, {6, 1, 5, 5}, 0, 1, true}, {{40, 6, 12, 12}, {16, 6, 5, 5}, 0, 1, true},
      {{3, 3, 9, 11}, {5, 3, 3, 3}, 1, 1, true},   {{4, 4, 10, 13}, {6, 2, 3, 5}, {1, 2}, 2, true},
      {{2, 2, 12, 20}, {3, 2, 2, 7}, {0, 3}, 1, false}, {{3, 5, 6, 6}, {7, 5, 1, 1}, 0, 1, true},
      {{2, 1, 3, 9}, {4, 1, 2, 3}, {1, 0}, 1, true}, {{2, 3, 4, 10}, {9, 3, 2, 3}, 0, 1, false},
      {{5, 6, 7, 7}, {6, 1, 3, 3}, 1, 6, true},     {{2, 2, 5, 5}, {13, 2, 4, 4}, 0, 1, true},
      {{3, 4, 9, 11}, {32, 2, 3, 3}, 1, 2, true},   {{2, 3, 10, 30}, {16, 3, 3, 5}, {1, 2}, 1, false},
      {{2, 2, 4, 4}, {16, 2, 3, 3}, 0, 1, true},
      // AVX-512's row-span forward with its epilogue: outputs 8 wide, padded and grouped, and 24 wide.
      {{3, 4, 8, 6}, {10, 2, 3, 3}, {1, 2}, 2, true}, {{2, 2, 26, 26}, {5, 2, 3, 3}, 0, 1, false}};
  const int threads = GENERATE(1, 2);
  const tg::simd::Isa isa = GENERATE(tg::simd::Isa::Avx512, tg::simd::Isa::Avx2, tg::simd::Isa::Portable);
  const int before = tg::get_num_threads();
  tg::set_num_threads(threads);
  const tg::simd::IsaLimit limit(isa);
  for (const Config& c : configs)
    for (tg::DType dt : {tg::kFloat32, tg::kFloat64})
      for (tg::ConvActivation act : {tg::ConvActivation::None, tg::ConvActivation::Sigmoid, tg::ConvActivation::ReLU})
        for (bool pool : {false, true}) {
          INFO(fmt::format("x {} w {} padding [{}, {}] groups {} {} {} pool {}, {} thread(s), {}", c.xs, c.ws,
                           c.padding.h, c.padding.w, c.groups, tg::dtype_name(dt), tg::activation_name(act), pool,
                           threads, tg::simd::isa_name(tg::simd::active_isa())));
          tg::manual_seed(19);
          const Tensor x = tg::native::to(tg::randn(c.xs), dt), w = tg::native::to(tg::randn(c.ws), dt);
          const Tensor b = c.bias ? tg::native::to(tg::randn({c.ws[0]}), dt) : Tensor();
          tg::NoGradGuard no_grad;
          Tensor want = tg::conv2d(x, w, b, 1, c.padding, c.groups);
          if (act == tg::ConvActivation::Sigmoid) want = want.sigmoid();
          if (act == tg::ConvActivation::ReLU) want = want.relu();
          if (pool) want = tg::avg_pool2d(want, 2, 2);
          const Tensor got = tg::conv2d_act(x, w, b, 1, c.padding, c.groups, act, pool);
          REQUIRE(got.sizes() == want.sizes());
          REQUIRE(got.dtype() == dt);
          const std::vector<double> g = got.to_vector<double>(), v = want.to_vector<double>();
          double worst = 0;
          for (std::size_t i = 0; i < v.size(); ++i) worst = std::max(worst, std::fabs(g[i] - v[i]) / (1 + std::fabs(v[i])));
          CHECK(worst <= (dt == tg::kFloat32 ? 1e-6 : 1e-12));
        }
  tg::set_num_threads(before);
}

TEST_CASE("conv2d_act with a gradient runs the recorded functions; ConvAct2d shares a Conv2d's tensors", "[layers]") {
  tg::manual_seed(23);
  nn::Conv2d conv(3, 4, 3, 1, 1);
  nn::ConvAct2d fused(conv, tg::ConvActivation::Sigmoid, true);
  CHECK(fused.to_string() == "ConvAct2d(3, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), activation=Sigmoid, "
                             "avg_pool2d=2)");
  CHECK(nn::ConvAct2d(conv, tg::ConvActivation::ReLU).to_string() ==
        "ConvAct2d(3, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), activation=ReLU)");
  CHECK(conv.to_string() == "Conv2d(3, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))");
  CHECK(fused.weight.is_same(conv.weight));
  CHECK(fused.bias.is_same(conv.bias));
  const nn::NamedTensors a = conv.state_dict(), b = fused.state_dict();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) CHECK((a[i].first == b[i].first && a[i].second.is_same(b[i].second)));
  auto copy = std::dynamic_pointer_cast<nn::ConvAct2d>(fused.clone());
  REQUIRE(copy != nullptr);
  CHECK_FALSE(copy->weight.is_same(fused.weight));
  CHECK(copy->to_string() == fused.to_string());

  // With grad on, the three functions are on the tape and the gradients are theirs.
  Tensor x = tg::randn({2, 3, 7, 9}).requires_grad_();
  const Tensor y = fused(x);
  CHECK(y.sizes() == Shape{2, 4, 3, 4});
  CHECK(y.grad_fn_name() == "AvgPool2DBackward0");
  const Tensor gy = tg::randn(y.sizes());
  y.backward(gy);
  const Tensor dx = x.grad(), dw = conv.weight.grad();
  x.set_grad(Tensor());
  conv.weight.set_grad(Tensor());
  conv.bias.set_grad(Tensor());
  const Tensor plain = tg::avg_pool2d(conv(x).sigmoid(), 2, 2);
  plain.backward(gy);
  CHECK(max_abs_diff(y, plain) == 0.0);
  CHECK(max_abs_diff(dx, x.grad()) == 0.0);
  CHECK(max_abs_diff(dw, conv.weight.grad()) == 0.0);

  // Unbatched input, and the fused path's values, in evaluation mode without grad.
  fused.eval();
  tg::NoGradGuard no_grad;
  const Tensor one = tg::randn({3, 7, 9});
  CHECK(max_abs_diff(fused(one), tg::avg_pool2d(conv(one).sigmoid(), 2, 2)) <= 1e-6);
  CHECK(fused(one).sizes() == Shape{4, 3, 4});
}

TEST_CASE("conv2d_act and ConvAct2d reject bad input", "[layers][errors]") {
  const Tensor w = tg::randn({2, 3, 3, 3});
  CHECK(tg::conv2d_act(tg::randn({1, 3, 4, 2}), w, {}, 1, 1, 1, tg::ConvActivation::Sigmoid, true).sizes() ==
        Shape{1, 2, 2, 1});  // a [4, 2] output pools; [1, 6] below does not
  CHECK_THROWS_WITH(tg::conv2d_act(tg::randn({1, 3, 3, 8}), w, {}, 1, 0, 1, tg::ConvActivation::ReLU, true),
                    "[conv2d_act] expected a convolution output of at least [2, 2] to pool over 2x2 windows, got "
                    "[1, 6] (input [1, 3, 3, 8], weight [2, 3, 3, 3])");
  CHECK_THROWS_WITH(tg::conv2d_act(tg::randn({1, 2, 5, 5}), w, {}, 1, 0, 1, tg::ConvActivation::ReLU),
                    Catch::StartsWith("[conv2d] expected input [1, 2, 5, 5] to have 3 channels"));
  nn::ConvAct2d fused(nn::Conv2d(3, 2, 3), tg::ConvActivation::Sigmoid, true);
  CHECK_THROWS_WITH(fused(tg::randn({1, 4, 8, 8})),
                    "[ConvAct2d] expected input of shape [N, 3, H, W] or [3, H, W], got [1, 4, 8, 8]");
  tg::NoGradGuard no_grad;
  CHECK_THROWS_WITH(fused(tg::randn({1, 3, 3, 9})), Catch::StartsWith("[conv2d_act] expected a convolution output"));
}
