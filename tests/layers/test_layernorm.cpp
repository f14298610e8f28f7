// Tests of layer normalization: layer_norm and nn::LayerNorm against PyTorch 1.13
// (module_refs.inc) in float32 and float64 with every gradient, printing, statistics of each
// sample alone in training and evaluation alike, a float64 gradcheck table, and every bad input.
// Tags [layers] [gradcheck] [errors].
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "tapegrad.h"

#include "module_refs.inc"
#include "ref_helpers.h"

TEST_CASE("layer_norm matches PyTorch, with the gradients of input, weight and bias", "[layers]") {
  const tg::DType dtype = GENERATE(tg::kFloat32, tg::kFloat64);
  for (const module_refs::LayerNormRef& r : module_refs::kLayerNorm) {
    INFO(r.name << " in " << tg::dtype_name(dtype));
    Tensor x = ref::make(r.x, r.shape, dtype, true);
    Tensor weight = ref::make(r.weight, r.normalized_shape, dtype, true);
    Tensor bias = ref::make(r.bias, r.normalized_shape, dtype, true);
    Tensor y = tg::layer_norm(x, r.normalized_shape, weight, bias, r.eps);
    CHECK(y.grad_fn_name() == "NativeLayerNormBackward0");
    ref::check_ref(y, r.shape, r.y, dtype);
    y.backward(ref::make(r.w, r.shape, dtype));
    ref::check_ref(x.grad(), r.shape, r.dx, dtype);
    if (weight.defined()) ref::check_ref(weight.grad(), r.normalized_shape, r.dweight, dtype);
    if (bias.defined()) ref::check_ref(bias.grad(), r.normalized_shape, r.dbias, dtype);
  }
}

TEST_CASE("nn::LayerNorm normalizes each sample alone, in training and evaluation alike", "[layers]") {
  nn::LayerNorm ln({2, 3});
  REQUIRE(ln.named_parameters().size() == 2);
  CHECK(ln.weight.to_vector<double>() == std::vector<double>(6, 1.0));
  CHECK(ln.bias.to_vector<double>() == std::vector<double>(6, 0.0));
  CHECK(ln.named_buffers().empty());
  Tensor x = tg::tensor(std::vector<double>{1, 2, 3, 4, 5, 6, -1, -1, -1, -1, -1, 5}, {2, 2, 3});
  Tensor y = tg::layer_norm(x, {2, 3});
  // sample 0: mean 3.5, var 35/12; sample 1: mean 0, var 5
  CHECK(y.to_vector<double>()[0] == Approx(-2.5 / std::sqrt(35.0 / 12 + 1e-5)));
  CHECK(y.to_vector<double>()[11] == Approx(5 / std::sqrt(5 + 1e-5)));
  Tensor in = tg::randn({4, 2, 3});
  Tensor train_out = ln(in);
  ln.eval();
  CHECK(ln(in).to_vector<double>() == train_out.to_vector<double>());
  CHECK(ln(in.select(0, 1)).to_vector<double>() == train_out.select(0, 1).to_vector<double>());  // unbatched
  CHECK(nn::LayerNorm(4, {.elementwise_affine = false}).parameters().empty());
  CHECK(nn::LayerNorm(4).to_string() == "LayerNorm((4,), eps=1e-05, elementwise_affine=True)");
  for (const module_refs::ReprRef& r : module_refs::kRepr)
    if (std::string(r.expr) == "nn.LayerNorm([3, 4], eps=1e-3, elementwise_affine=False)")
      CHECK(nn::LayerNorm({3, 4}, {.eps = 1e-3, .elementwise_affine = false}).to_string() == r.text);
}

TEST_CASE("layer_norm gradchecks in float64", "[layers][gradcheck]") {
  using ref::Inputs;
  ref::check_gradcheck_rows({
      {"[4, 5] affine", [](const Inputs& in) { return tg::layer_norm(in[0], {5}, in[1], in[2]); }, {{4, 5}, {5}, {5}},
       "NativeLayerNormBackward0"},
      {"[2, 3, 4] over [3, 4]", [](const Inputs& in) { return tg::layer_norm(in[0], {3, 4}, in[1], in[2], 1e-3); },
       {{2, 3, 4}, {3, 4}, {3, 4}}, "NativeLayerNormBackward0"},
      {"[3, 4] no affine", [](const Inputs& in) { return tg::layer_norm(in[0], {4}); }, {{3, 4}},
       "NativeLayerNormBackward0"},
      {"[6] bias only", [](const Inputs& in) { return tg::layer_norm(in[0], {6}, {}, in[1]); }, {{6}, {6}},
       "NativeLayerNormBackward0"},
  });
}

TEST_CASE("layer_norm rejects bad input with the op's name", "[layers][errors]") {
  Tensor x = tg::randn({2, 3});
  CHECK_THROWS_WITH(tg::layer_norm(x, {4}),
                    "[layer_norm] expected input of shape [*, 4] (normalized_shape [4]), got [2, 3]");
  CHECK_THROWS_WITH(tg::layer_norm(x, {2, 3, 1}), Contains("[layer_norm]") && Contains("[2, 3, 1]"));
  CHECK_THROWS_WITH(tg::layer_norm(x, {3}, tg::ones({4})),
                    "[layer_norm] expected weight of shape [3] (normalized_shape), got [4]");
  CHECK_THROWS_WITH(tg::layer_norm(x, {3}, {}, tg::ones({3}, tg::kFloat64)),
                    Contains("[layer_norm] expected bias of dtype float32") && Contains("float64"));
  CHECK_THROWS_WITH(tg::layer_norm(tg::ones({2, 3}, tg::kInt64), {3}), Contains("[layer_norm]") && Contains("int64"));
  CHECK_THROWS_WITH(tg::layer_norm(x, {}), "[layer_norm] expected a non-empty normalized_shape, got []");
  CHECK_THROWS_WITH(nn::LayerNorm(Shape{}), Contains("[LayerNorm]"));
  CHECK_THROWS_WITH(nn::LayerNorm(5)(x), Contains("[layer_norm]") && Contains("[*, 5]"));
}
