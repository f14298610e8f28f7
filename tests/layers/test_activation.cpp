// Tests of the activation family (leaky_relu, gelu exact and tanh, silu, Softmax, LogSoftmax,
// Identity) and of channel-wise dropout (dropout1d, dropout2d): forward and gradients against
// PyTorch 1.13 (module_refs.inc) in float32 and float64, printing, one float64 gradcheck table,
// and every bad input. Tags [layers] [gradcheck] [errors].
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tapegrad.h"

#include "module_refs.inc"
#include "ref_helpers.h"

namespace {

using ref::make;
using ref::mismatch;
using ref::tolerance;

Tensor apply_activation(const module_refs::ActivationRef& r, const Tensor& x) {
  const std::string op = r.op;
  if (op == "leaky_relu") return nn::LeakyReLU(r.param)(x);
  if (op == "gelu") return nn::GELU()(x);
  if (op == "gelu_tanh") return nn::GELU("tanh")(x);
  if (op == "silu") return nn::SiLU()(x);
  if (op == "softmax") return nn::Softmax(static_cast<std::int64_t>(r.param))(x);
  if (op == "log_softmax") return nn::LogSoftmax(static_cast<std::int64_t>(r.param))(x);
  FAIL("unknown op " << op);
  return {};
}

const std::map<std::string, std::string>& grad_fn_of() {
  static const std::map<std::string, std::string> names = {
      {"leaky_relu", "LeakyReluBackward0"}, {"gelu", "GeluBackward0"},       {"gelu_tanh", "GeluBackward0"},
      {"silu", "SiluBackward0"},            {"softmax", "SoftmaxBackward0"}, {"log_softmax", "LogSoftmaxBackward0"}};
  return names;
}

}  // namespace

TEST_CASE("activations match PyTorch, with their gradients", "[layers]") {
  const tg::DType dtype = GENERATE(tg::kFloat32, tg::kFloat64);
  for (const module_refs::ActivationRef& r : module_refs::kActivation) {
    INFO(r.name << " in " << tg::dtype_name(dtype));
    Tensor x = make(r.x, r.shape, dtype, true);
    Tensor y = apply_activation(r, x);
    CHECK(y.grad_fn_name() == grad_fn_of().at(r.op));
    CHECK(y.sizes() == r.shape);
    CHECK(y.dtype() == dtype);
    CHECK(mismatch(y, r.y, tolerance(dtype)) == "");
    y.backward(make(r.w, r.shape, dtype));
    CHECK(mismatch(x.grad(), r.dx, tolerance(dtype)) == "");
  }
}

TEST_CASE("activations are exact at hand-checked points and work on strided input", "[layers]") {
  Tensor x = tg::tensor(std::vector<double>{-2, 0, 3});
  CHECK(tg::leaky_relu(x, 0.5).to_vector<double>() == std::vector<double>{-1, 0, 3});
  CHECK(tg::leaky_relu(x).to_vector<double>() == std::vector<double>{-0.02, 0, 3});
  CHECK(tg::gelu(x).to_vector<double>()[1] == 0.0);
  CHECK(tg::gelu(tg::scalar_tensor(1.0, tg::kFloat64)).item<double>() == Approx(0.8413447460685429));  // Φ(1)
  CHECK(tg::silu(tg::scalar_tensor(0.0, tg::kFloat64)).item<double>() == 0.0);
  CHECK(tg::silu(tg::scalar_tensor(1.0, tg::kFloat64)).item<double>() == Approx(1.0 / (1.0 + std::exp(-1.0))));
  // a transposed (non-contiguous) input gives the contiguous input's values, in its own shape
  Tensor m = tg::randn({3, 4}, tg::kFloat64);
  CHECK(tg::silu(m.t()).to_vector<double>() == tg::silu(m.t().contiguous()).to_vector<double>());
  CHECK(tg::gelu(m.t(), "tanh").sizes() == Shape{4, 3});
  // huge inputs do not overflow
  Tensor big = tg::tensor(std::vector<float>{-1000, 1000});
  CHECK(tg::silu(big).to_vector<double>() == std::vector<double>{-0.0, 1000});
  CHECK(tg::gelu(big, "tanh").to_vector<double>() == std::vector<double>{-0.0, 1000});
  CHECK(tg::gelu(big).to_vector<double>() == std::vector<double>{-0.0, 1000});
}

TEST_CASE("Identity returns its very input; the activation modules print like PyTorch", "[layers]") {
  Tensor x = tg::randn({2, 3}).requires_grad_();
  CHECK(nn::Identity()(x).is_same(x));
  const std::map<std::string, std::function<std::shared_ptr<nn::Module>()>> build = {
      {"nn.LeakyReLU()", [] { return std::make_shared<nn::LeakyReLU>(); }},
      {"nn.LeakyReLU(0.2)", [] { return std::make_shared<nn::LeakyReLU>(0.2); }},
      {"nn.GELU()", [] { return std::make_shared<nn::GELU>(); }},
      {"nn.GELU(approximate='tanh')", [] { return std::make_shared<nn::GELU>("tanh"); }},
      {"nn.SiLU()", [] { return std::make_shared<nn::SiLU>(); }},
      {"nn.Softmax(dim=1)", [] { return std::make_shared<nn::Softmax>(1); }},
      {"nn.LogSoftmax(dim=-1)", [] { return std::make_shared<nn::LogSoftmax>(-1); }},
      {"nn.Identity()", [] { return std::make_shared<nn::Identity>(); }},
      {"nn.Dropout1d(0.2)", [] { return std::make_shared<nn::Dropout1d>(0.2); }},
      {"nn.Dropout2d()", [] { return std::make_shared<nn::Dropout2d>(); }},
  };
  for (const module_refs::ReprRef& r : module_refs::kRepr) {
    INFO(r.expr);
    auto it = build.find(r.expr);
    if (it == build.end()) continue;  // another family's module, checked by its own test
    CHECK(it->second()->to_string() == r.text);
  }
}

TEST_CASE("dropout1d and dropout2d zero whole channels and reuse the mask in backward", "[layers]") {
  tg::manual_seed(7);
  Tensor x = (tg::rand({40, 50, 3, 4}, tg::kFloat64) + 1.0).requires_grad_();
  Tensor y = tg::dropout2d(x, 0.3, true);
  CHECK(y.grad_fn_name() == "MulBackward0");
  std::vector<double> xv = x.to_vector<double>(), yv = y.to_vector<double>();
  std::size_t dropped = 0;
  bool whole = true;
  for (std::size_t row = 0; row < 2000; ++row) {
    const bool zero = yv[row * 12] == 0;
    dropped += zero;
    for (std::size_t s = 0; s < 12; ++s) {
      const std::size_t i = row * 12 + s;
      whole = whole && (zero ? yv[i] == 0 : std::fabs(yv[i] - xv[i] / 0.7) < 1e-12);
    }
  }
  CHECK(whole);
  CHECK(static_cast<double>(dropped) / 2000.0 == Approx(0.3).margin(0.045));  // 4.4 sigma
  y.backward(tg::ones_like(x));
  std::vector<double> want;
  for (double v : yv) want.push_back(v == 0 ? 0.0 : 1.0 / 0.7);
  CHECK(x.grad().to_vector<double>() == want);

  // dropout1d: [N, C, L] rows, and an unbatched [C, L] whose channels are its rows
  Tensor u = tg::ones({64, 5}).requires_grad_();
  Tensor v = tg::dropout1d(u, 0.5, true);
  CHECK(v.grad_fn_name() == "SqueezeBackward1");
  CHECK(v.sizes() == Shape{64, 5});
  for (std::int64_t c = 0; c < 64; ++c) {
    std::vector<double> row = v.select(0, c).to_vector<double>();
    CHECK((row == std::vector<double>(5, 0.0) || row == std::vector<double>(5, 2.0)));
  }
  Tensor w3 = tg::dropout1d(tg::ones({2, 3, 4}), 1.0, true);
  CHECK(w3.to_vector<double>() == std::vector<double>(24, 0.0));
  // eval and p = 0: the identity
  CHECK(tg::dropout2d(x, 0.5, false).is_same(x));
  CHECK(tg::dropout2d(x, 0.0, true).is_same(x));
  CHECK(tg::dropout1d(u, 0.5, false).to_vector<double>() == u.to_vector<double>());
  nn::Dropout2d layer(0.4);
  layer.eval();
  CHECK(layer(x).is_same(x));
  // a 3-D input to dropout2d is [N, C, L], as in PyTorch 1.13: one draw per (n, c)
  Tensor t3 = tg::dropout2d(tg::ones({30, 20, 6}), 0.5, true);
  for (std::int64_t n = 0; n < 30; ++n)
    for (std::int64_t c = 0; c < 20; ++c) {
      std::vector<double> row = t3.select(0, n).select(0, c).to_vector<double>();
      CHECK((row == std::vector<double>(6, 0.0) || row == std::vector<double>(6, 2.0)));
    }
}

TEST_CASE("activations and channel dropout gradcheck in float64", "[layers][gradcheck]") {
  using ref::Inputs;
  ref::check_gradcheck_rows({
      {"leaky_relu 0.01", [](const Inputs& in) { return tg::leaky_relu(in[0]); }, {{3, 4}}, "LeakyReluBackward0"},
      {"leaky_relu -0.3", [](const Inputs& in) { return tg::leaky_relu(in[0], -0.3); }, {{3, 4}}, "LeakyReluBackward0"},
      {"gelu", [](const Inputs& in) { return tg::gelu(in[0]); }, {{3, 4}}, "GeluBackward0"},
      {"gelu tanh", [](const Inputs& in) { return tg::gelu(in[0], "tanh"); }, {{2, 3, 2}}, "GeluBackward0"},
      {"silu", [](const Inputs& in) { return tg::silu(in[0]); }, {{5}}, "SiluBackward0"},
      {"Softmax(0)", [](const Inputs& in) { return nn::Softmax(0)(in[0]); }, {{3, 4}}, "SoftmaxBackward0"},
      {"LogSoftmax(1)", [](const Inputs& in) { return nn::LogSoftmax(1)(in[0]); }, {{2, 3, 2}}, "LogSoftmaxBackward0"},
      {"dropout1d [C, L]", [](const Inputs& in) { tg::manual_seed(3); return tg::dropout1d(in[0], 0.5, true); },
       {{6, 3}}, "SqueezeBackward1"},
      {"dropout2d", [](const Inputs& in) { tg::manual_seed(3); return tg::dropout2d(in[0], 0.5, true); },
       {{2, 3, 2, 2}}, "MulBackward0"},
  });
}

TEST_CASE("activations and channel dropout reject bad input with the op's name", "[layers][errors]") {
  Tensor ints = tg::ones({2, 3}, tg::kInt64);
  CHECK_THROWS_WITH(tg::leaky_relu(ints), "[leaky_relu] expected a floating point input, got int64");
  CHECK_THROWS_WITH(tg::gelu(ints), Contains("[gelu]") && Contains("int64"));
  CHECK_THROWS_WITH(tg::silu(ints), Contains("[silu]") && Contains("int64"));
  CHECK_THROWS_WITH(tg::silu(Tensor()), "[silu] expected a defined input");
  CHECK_THROWS_WITH(tg::gelu(tg::ones({2}), "fast"), "[gelu] expected approximate to be 'none' or 'tanh', got 'fast'");
  CHECK_THROWS_WITH(nn::GELU("erf"), Contains("[GELU]") && Contains("'erf'"));
  CHECK_THROWS_WITH(nn::Softmax(2)(tg::ones({2, 3})), Contains("[softmax]") && Contains("out of range"));
  CHECK_THROWS_WITH(nn::LogSoftmax(-3)(tg::ones({2, 3})), Contains("[log_softmax]") && Contains("out of range"));

  CHECK_THROWS_WITH(tg::dropout1d(tg::ones({2, 3, 4, 5})),
                    "[dropout1d] expected a 2-D input [C, L] or a 3-D input [N, C, L], got 4-D input of shape [2, 3, "
                    "4, 5]");
  CHECK_THROWS_WITH(tg::dropout2d(tg::ones({2, 3})), Contains("[dropout2d]") && Contains("[2, 3]"));
  CHECK_THROWS_WITH(tg::dropout2d(tg::ones({2, 3, 4, 5}), 1.5), Contains("[dropout2d]") && Contains("1.5"));
  CHECK_THROWS_WITH(tg::dropout1d(tg::ones({2, 3}, tg::kInt64)), Contains("[dropout1d]") && Contains("int64"));
  CHECK_THROWS_WITH(nn::Dropout2d(-0.5), "[Dropout2d] dropout probability has to be between 0 and 1, but got -0.5");
  CHECK_THROWS_WITH(nn::Dropout1d(2), Contains("[Dropout1d]"));
  CHECK_THROWS_WITH(nn::Dropout2d()(tg::ones({5})), Contains("[dropout2d]") && Contains("[5]"));
}
