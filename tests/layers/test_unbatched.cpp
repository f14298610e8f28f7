// Unbatched inputs as PyTorch 1.13 takes them: [C, H, W] into conv2d, avg_pool2d, max_pool2d
// and their modules, and [C, L] into the 1d layers (Dropout1d takes it unbatched, BatchNorm1d reads
// it as a batch [N, C]), against PyTorch's values, gradients and grad_fn names (module_refs.inc),
// equal to the batch of one; gradcheck rows; what is still refused. Tags [layers] [gradcheck]
// [errors].
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "tapegrad.h"

#include "module_refs.inc"
#include "ref_helpers.h"

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

// Of tapegrad's 1d layers, PyTorch 1.13 takes [C, L] unbatched in Dropout1d only; BatchNorm1d
// has no unbatched form (a 2-D input is [N, C]).
TEST_CASE("a [C, L] input into the 1d layers follows PyTorch 1.13", "[layers]") {
  const tg::DType dtype = GENERATE(tg::kFloat32, tg::kFloat64);
  for (const module_refs::Channel1dRef& r : module_refs::kChannel1d) {
    INFO(r.name << " in " << tg::dtype_name(dtype));
    const std::string op = r.op;
    for (const bool as_module : {false, true}) {
      INFO((as_module ? "module" : "function"));
      tg::manual_seed(11);
      Tensor x = ref::make(r.x, r.shape, dtype, true);
      Tensor y;
      if (op == "dropout1d") {
        nn::Dropout1d layer(r.p);
        layer.train(r.training);
        y = as_module ? layer(x) : tg::dropout1d(x, r.p, r.training);
      } else {
        nn::BatchNorm1d bn(r.shape.back());
        bn.to(dtype);
        bn.train(r.training);
        y = bn(x);
      }
      CHECK(y.grad_fn_name() == r.grad_fn);
      y.backward(ref::make(r.w, r.shape, dtype));
      if (!r.y.empty()) {
        ref::check_ref(y, r.shape, r.y, dtype);
        ref::check_ref(x.grad(), r.shape, r.dx, dtype);
        continue;
      }
      // a random mask: each channel row of x is dropped whole or scaled by 1 / (1 - p), and its
      // gradient is w's row through the same mask
      const std::int64_t L = r.shape.back(), rows = x.numel() / L;
      const std::vector<double> yv = y.to_vector<double>(), dx = x.grad().to_vector<double>();
      const double scale = 1.0 / (1.0 - r.p), tol = ref::tolerance(dtype);
      for (std::int64_t row = 0; row < rows; ++row) {
        const bool kept = yv[row * L] != 0.0;
        for (std::int64_t l = 0; l < L; ++l) {
          const std::size_t i = static_cast<std::size_t>(row * L + l);
          CHECK(yv[i] == Approx(kept ? r.x[i] * scale : 0.0).margin(tol));
          CHECK(dx[i] == Approx(kept ? r.w[i] * scale : 0.0).margin(tol));
        }
      }
    }
  }
}

TEST_CASE("a [C, L] input into BatchNorm1d(C) is a batch of C rows of L features, refused", "[layers][errors]") {
  // PyTorch 1.13: "running_mean should contain 5 elements not 3"
  CHECK_THROWS_WITH(nn::BatchNorm1d(3)(tg::ones({3, 5})),
                    "[BatchNorm1d] expected 3 channels (dim 1), got input of shape [3, 5]");
  CHECK_THROWS_WITH(nn::BatchNorm1d(3)(tg::ones({3})), "[BatchNorm1d] expected 2D or 3D input (got 1D input of shape [3])");
  CHECK_THROWS_WITH(tg::dropout1d(tg::ones({5})),
                    "[dropout1d] expected a 2-D input [C, L] or a 3-D input [N, C, L], got 1-D input of shape [5]");
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
