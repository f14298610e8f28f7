// Unbatched inputs as PyTorch 1.13 takes them: [C, H, W] into conv2d, avg_pool2d, max_pool2d
// and their modules, against PyTorch's values, gradients and grad_fn names (module_refs.inc),
// equal to the batch of one; gradcheck rows; what is still refused. Tags [layers] [gradcheck]
// [errors].
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "tapegrad.h"

#include "module_refs.inc"
#include "ref_helpers.h"

using Catch::Contains;
using tg::Shape;
using tg::Tensor;
namespace nn = tg::nn;

TEST_CASE("conv2d and the poolings take an unbatched [C, H, W] as PyTorch 1.13 does", "[layers]") {
  const tg::DType dtype = GENERATE(tg::kFloat32, tg::kFloat64);
  for (const module_refs::UnbatchedRef& r : module_refs::kUnbatched) {
    INFO(r.name << " in " << tg::dtype_name(dtype));
    const std::string op = r.op;
    Tensor x = ref::make(r.x, r.shape, dtype, true);
    Tensor weight = ref::make(r.weight, r.weight_shape, dtype, true);
    Tensor bias = weight.defined() ? ref::make(r.bias, {r.weight_shape[0]}, dtype, true) : Tensor();
    auto run = [&](const Tensor& in) {
      if (op == "conv2d") return tg::conv2d(in, weight, bias, r.stride, r.padding);
      if (op == "avg_pool2d") return tg::avg_pool2d(in, r.kernel, r.stride, r.padding);
      return tg::max_pool2d(in, r.kernel, r.stride, r.padding);
    };
    Tensor y = run(x);
    CHECK(y.grad_fn_name() == r.grad_fn);
    ref::check_ref(y, r.y_shape, r.y, dtype);
    CHECK(y.to_vector<double>() == run(x.unsqueeze(0)).select(0, 0).to_vector<double>());  // the batch of one
    y.backward(ref::make(r.w, r.y_shape, dtype));
    ref::check_ref(x.grad(), r.shape, r.dx, dtype);
    if (weight.defined()) {
      ref::check_ref(weight.grad(), r.weight_shape, r.dweight, dtype);
      ref::check_ref(bias.grad(), {r.weight_shape[0]}, r.dbias, dtype);
    }
  }
}

TEST_CASE("the Conv2d and pooling modules take an unbatched input too", "[layers]") {
  tg::manual_seed(4);
  nn::Sequential net{nn::Conv2d(2, 4, 3, 1, 1), nn::ReLU(), nn::MaxPool2d(2), nn::AvgPool2d(2)};
  Tensor x = tg::randn({2, 8, 8});
  Tensor y = net(x);
  CHECK(y.sizes() == Shape{4, 2, 2});
  CHECK(y.to_vector<double>() == net(x.unsqueeze(0)).to_vector<double>());
  CHECK_THROWS_WITH(nn::Conv2d(3, 4, 3)(tg::ones({2, 8, 8})),
                    "[Conv2d] expected input of shape [N, 3, H, W] or [3, H, W], got [2, 8, 8]");
}

TEST_CASE("unbatched conv2d and pooling gradcheck in float64", "[layers][gradcheck]") {
  using ref::Inputs;
  ref::check_gradcheck_rows({
      {"conv2d [C, H, W]", [](const Inputs& in) { return tg::conv2d(in[0], in[1], in[2], 1, 1); },
       {{2, 4, 4}, {3, 2, 3, 3}, {3}}, "SqueezeBackward1"},
      {"avg_pool2d [C, H, W]", [](const Inputs& in) { return tg::avg_pool2d(in[0], 2, 1, 1); }, {{2, 4, 4}},
       "AvgPool2DBackward0"},
      {"max_pool2d [C, H, W]", [](const Inputs& in) { return tg::max_pool2d(in[0], 2); }, {{2, 4, 4}},
       "MaxPool2DWithIndicesBackward0"},
  });
}

TEST_CASE("inputs of other ranks are still refused", "[layers][errors]") {
  CHECK_THROWS_WITH(tg::conv2d(tg::ones({5, 5}), tg::ones({1, 1, 3, 3})),
                    "[conv2d] expected input of shape [N, C, H, W] or [C, H, W], got [5, 5]");
  CHECK_THROWS_WITH(tg::max_pool2d(tg::ones({1, 1, 1, 4, 4}), 2),
                    Contains("[max_pool2d]") && Contains("[1, 1, 1, 4, 4]"));
  CHECK_THROWS_WITH(tg::avg_pool2d(tg::ones({0, 4, 4}), 2), Contains("[avg_pool2d] expected non-empty channel"));
  // a channel mismatch names the batch of one it became
  CHECK_THROWS_WITH(tg::conv2d(tg::ones({2, 5, 5}), tg::ones({1, 3, 3, 3})),
                    Contains("[conv2d]") && Contains("[1, 2, 5, 5]"));
}
