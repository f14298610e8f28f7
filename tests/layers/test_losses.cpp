// Tests of the functional losses and the softmax family: forward and gradients against PyTorch
// 1.13 (bn_loss_refs.inc) in float32 and float64, the threaded path against composed ops, a
// float64 gradcheck table, and every bad input. Tags [layers] [gradcheck] [errors].
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "tapegrad/layers/functional.h"
#include "tapegrad.h"

#include "bn_loss_refs.inc"
#include "module_refs.inc"
#include "ref_helpers.h"

using tg::Reduction;

namespace {

using ref::Inputs;
using ref::make;
using ref::mismatch;
using ref::tolerance;

Shape loss_shape(Reduction r, std::int64_t n) { return r == Reduction::None ? Shape{n} : Shape{}; }

}  // namespace

TEST_CASE("cross_entropy matches PyTorch for mean, sum and none", "[layers]") {
  const tg::DType dtype = GENERATE(tg::kFloat32, tg::kFloat64);
  for (const bn_loss_refs::CrossEntropyRef& r : bn_loss_refs::kCrossEntropy) {
    INFO(r.name << " in " << tg::dtype_name(dtype));
    Tensor logits = make(r.logits, {r.n, r.c}, dtype, true);
    Tensor loss = tg::cross_entropy(logits, tg::tensor(r.target), r.reduction);
    CHECK(loss.grad_fn_name() == "NllLossBackward0");
    CHECK(loss.sizes() == loss_shape(r.reduction, r.n));
    CHECK(mismatch(loss, r.loss, tolerance(dtype)) == "");
    loss.backward(make(r.w, loss.sizes(), dtype));
    CHECK(mismatch(logits.grad(), r.dlogits, tolerance(dtype)) == "");
  }
}

TEST_CASE("cross_entropy is stable for huge logits and exact for a hand-checked row", "[layers]") {
  // log(e^0 + e^0) = log 2 for any shift of both logits, even where exp overflows.
  for (float shift : {0.0f, 1e4f, -1e4f}) {
    Tensor logits = tg::tensor(std::vector<float>{shift, shift}, {1, 2}).requires_grad_();
    Tensor loss = tg::cross_entropy(logits, tg::tensor(std::vector<std::int64_t>{1}));
    CHECK(loss.item<double>() == Approx(std::log(2.0)));
    loss.backward();
    CHECK(logits.grad().to_vector<double>() == std::vector<double>{0.5, -0.5});
  }
}

TEST_CASE("log_softmax and softmax match PyTorch along any dim", "[layers]") {
  const tg::DType dtype = GENERATE(tg::kFloat32, tg::kFloat64);
  for (const bn_loss_refs::SoftmaxRef& r : bn_loss_refs::kSoftmax) {
    INFO(r.name << " in " << tg::dtype_name(dtype));
    Tensor x = make(r.x, r.shape, dtype, true);
    Tensor y = r.log ? tg::log_softmax(x, r.dim) : tg::softmax(x, r.dim);
    CHECK(y.grad_fn_name() == (r.log ? "LogSoftmaxBackward0" : "SoftmaxBackward0"));
    CHECK(mismatch(y, r.y, tolerance(dtype)) == "");
    y.backward(make(r.w, r.shape, dtype));
    CHECK(mismatch(x.grad(), r.dx, tolerance(dtype)) == "");
  }
  Tensor s = tg::softmax(tg::tensor(std::vector<double>{1000, 1000, 1000, 1000}, {2, 2}), 0);
  CHECK(s.to_vector<double>() == std::vector<double>{0.5, 0.5, 0.5, 0.5});
  CHECK(tg::log_softmax(tg::scalar_tensor(3.0), 0).item<double>() == 0.0);
}

TEST_CASE("mse_loss matches PyTorch, with gradients to input and target", "[layers]") {
  const tg::DType dtype = GENERATE(tg::kFloat32, tg::kFloat64);
  for (const bn_loss_refs::MseRef& r : bn_loss_refs::kMse) {
    INFO(r.name << " in " << tg::dtype_name(dtype));
    Tensor input = make(r.input, r.shape, dtype, true), target = make(r.target, r.shape, dtype, true);
    Tensor loss = tg::mse_loss(input, target, r.reduction);
    CHECK(loss.grad_fn_name() == "MseLossBackward0");
    CHECK(loss.sizes() == (r.reduction == Reduction::None ? r.shape : Shape{}));
    CHECK(mismatch(loss, r.loss, tolerance(dtype)) == "");
    loss.backward(make(r.w, loss.sizes(), dtype));
    CHECK(mismatch(input.grad(), r.dinput, tolerance(dtype)) == "");
    CHECK(mismatch(target.grad(), r.dtarget, tolerance(dtype)) == "");
  }
  Tensor a = tg::tensor(std::vector<double>{1, 2}).requires_grad_(), b = tg::tensor(std::vector<double>{0, 4});
  tg::mse_loss(a, b).backward();  // ((1)² + (−2)²) / 2
  CHECK(a.grad().to_vector<double>() == std::vector<double>{1.0, -2.0});
  CHECK_FALSE(b.grad().defined());
}

TEST_CASE("large losses and softmax take the threaded path and agree with composed ops", "[layers]") {
  tg::manual_seed(9);
  auto close = [](const Tensor& a, const Tensor& b) { return mismatch(a, b.to_vector<double>(), 1e-12); };
  Tensor w = tg::randn({4000, 10}, tg::kFloat64);
  Tensor x1 = (tg::randn({4000, 10}, tg::kFloat64) * 3.0).requires_grad_();
  Tensor x2 = x1.detach().clone().requires_grad_();
  Tensor sm = tg::softmax(x1, 1);
  Tensor e = (x2 - x2.max({1}, true)).exp();
  Tensor sm_ref = e / e.sum({1}, true);
  CHECK(close(sm, sm_ref) == "");
  (sm * w).sum().backward();
  (sm_ref * w).sum().backward();
  CHECK(close(x1.grad(), x2.grad()) == "");

  x1.set_grad({});
  x2.set_grad({});
  Tensor target = tg::randint(10, {4000});
  Tensor onehot = tg::arange(10).eq(target.unsqueeze(1)).to(tg::kFloat64);
  Tensor ce = tg::cross_entropy(x1, target, Reduction::None);
  Tensor ce_ref = -(tg::log_softmax(x2, 1) * onehot).sum({1});
  CHECK(close(ce, ce_ref) == "");
  (ce * w.select(1, 0)).sum().backward();
  (ce_ref * w.select(1, 0)).sum().backward();
  CHECK(close(x1.grad(), x2.grad()) == "");

  Tensor a1 = tg::randn({200, 200}, tg::kFloat64).requires_grad_(), b1 = tg::randn({200, 200}, tg::kFloat64);
  Tensor a2 = a1.detach().clone().requires_grad_();
  Tensor mse = tg::mse_loss(a1, b1);
  Tensor mse_ref = (a2 - b1).pow(2).mean();
  CHECK(mse.item<double>() == Approx(mse_ref.item<double>()).epsilon(1e-12));
  mse.backward();
  mse_ref.backward();
  CHECK(close(a1.grad(), a2.grad()) == "");
}

TEST_CASE("losses and softmax gradcheck in float64", "[layers][gradcheck]") {
  const Tensor target = tg::tensor(std::vector<std::int64_t>{2, 0, 4, 4, 1});
  ref::check_gradcheck_rows({
      {"cross_entropy mean", [&](const Inputs& in) { return tg::cross_entropy(in[0], target); }, {{5, 5}},
       "NllLossBackward0"},
      {"cross_entropy sum", [&](const Inputs& in) { return tg::cross_entropy(in[0], target, Reduction::Sum); },
       {{5, 5}}, "NllLossBackward0"},
      {"cross_entropy none", [&](const Inputs& in) { return tg::cross_entropy(in[0], target, Reduction::None); },
       {{5, 5}}, "NllLossBackward0"},
      {"log_softmax dim 1", [](const Inputs& in) { return tg::log_softmax(in[0], 1); }, {{3, 4, 2}},
       "LogSoftmaxBackward0"},
      {"log_softmax dim 0", [](const Inputs& in) { return tg::log_softmax(in[0], 0); }, {{3, 4}},
       "LogSoftmaxBackward0"},
      {"softmax dim -1", [](const Inputs& in) { return tg::softmax(in[0], -1); }, {{3, 4}}, "SoftmaxBackward0"},
      {"softmax dim 1", [](const Inputs& in) { return tg::softmax(in[0], 1); }, {{2, 3, 4}}, "SoftmaxBackward0"},
      {"mse_loss mean", [](const Inputs& in) { return tg::mse_loss(in[0], in[1]); }, {{3, 4}, {3, 4}},
       "MseLossBackward0"},
      {"mse_loss sum", [](const Inputs& in) { return tg::mse_loss(in[0], in[1], Reduction::Sum); }, {{3, 4}, {3, 4}},
       "MseLossBackward0"},
      {"mse_loss none", [](const Inputs& in) { return tg::mse_loss(in[0], in[1], Reduction::None); },
       {{2, 3}, {2, 3}}, "MseLossBackward0"},
  });
}

TEST_CASE("losses and softmax reject bad input with the op's name", "[layers][errors]") {
  Tensor logits = tg::randn({2, 3});
  auto idx = [](std::vector<std::int64_t> v) { return tg::tensor(v); };
  CHECK_THROWS_WITH(tg::cross_entropy(logits, idx({7, 0})), "[cross_entropy] target 7 is out of bounds for 3 classes");
  CHECK_THROWS_WITH(tg::cross_entropy(logits, idx({0, -1})), Contains("[cross_entropy] target -1 is out of bounds"));
  CHECK_THROWS_WITH(tg::cross_entropy(logits, tg::zeros({2})),
                    Contains("[cross_entropy]") && Contains("int64") && Contains("float32"));
  CHECK_THROWS_WITH(tg::cross_entropy(logits, idx({0, 1, 2})),
                    Contains("[cross_entropy] expected target of shape [2] for logits [2, 3], got [3]"));
  CHECK_THROWS_WITH(tg::cross_entropy(tg::randn({2, 3, 4}), idx({0, 1})),
                    "[cross_entropy] expected target of shape [2, 4] for logits [2, 3, 4], got [2]");
  CHECK_THROWS_WITH(tg::cross_entropy(tg::scalar_tensor(1.0), tg::scalar_tensor(0, tg::kInt64)),
                    "[cross_entropy] expected logits of shape [C], [N, C] or [N, C, d1, ...], got []");
  CHECK_THROWS_WITH(tg::cross_entropy(tg::ones({2, 3}, tg::kInt64), idx({0, 1})),
                    Contains("[cross_entropy]") && Contains("int64"));

  CHECK_THROWS_WITH(tg::log_softmax(logits, 2), Contains("[log_softmax]") && Contains("out of range"));
  CHECK_THROWS_WITH(tg::softmax(logits, -3), Contains("[softmax]") && Contains("out of range"));
  CHECK_THROWS_WITH(tg::softmax(tg::ones({2}, tg::kInt64), 0), Contains("[softmax]") && Contains("int64"));

  CHECK_THROWS_WITH(tg::mse_loss(tg::randn({3, 2}), tg::randn({2, 3})),
                    Contains("[mse_loss]") && Contains("[3, 2]") && Contains("[2, 3]"));
  CHECK_THROWS_WITH(tg::mse_loss(tg::randn({3}), tg::randn({1})), Contains("[mse_loss]") && Contains("[1]"));
  CHECK_THROWS_WITH(tg::mse_loss(tg::randn({3}), tg::randn({3}, tg::kFloat64)),
                    Contains("[mse_loss]") && Contains("float32") && Contains("float64"));
}

TEST_CASE("the loss modules name themselves in errors", "[layers][errors]") {
  CHECK_THROWS_WITH(nn::CrossEntropyLoss().forward(tg::ones({2})), Contains("[CrossEntropyLoss]"));
}

// --- class weights, ignore_index, label smoothing, nll_loss, l1, smooth_l1, bce_with_logits -------

TEST_CASE("cross_entropy and nll_loss match PyTorch with weights, ignore_index, label smoothing and any layout",
          "[layers]") {
  const tg::DType dtype = GENERATE(tg::kFloat32, tg::kFloat64);
  for (const module_refs::ClassLossRef& r : module_refs::kClassLoss) {
    INFO(r.name << " in " << tg::dtype_name(dtype));
    Tensor input = make(r.input, r.shape, dtype, true);
    Shape target_shape = r.shape;
    target_shape.erase(target_shape.begin() + (r.shape.size() == 1 ? 0 : 1));
    Tensor target = tg::native::reshape(tg::tensor(r.target), target_shape);
    Tensor weight = make(r.weight, {static_cast<std::int64_t>(r.weight.size())}, dtype);
    Tensor loss;
    if (std::string(r.op) == "cross_entropy") {
      nn::CrossEntropyLoss module({.weight = weight, .ignore_index = r.ignore_index, .reduction = r.reduction,
                                   .label_smoothing = r.label_smoothing});
      loss = module(input, target);
    } else {
      loss = nn::NLLLoss({.weight = weight, .ignore_index = r.ignore_index, .reduction = r.reduction})(input, target);
    }
    CHECK(loss.grad_fn_name() == r.grad_fn);
    ref::check_ref(loss, r.reduction == Reduction::None ? target_shape : Shape{}, r.loss, dtype);
    loss.backward(make(r.w, loss.sizes(), dtype));
    ref::check_ref(input.grad(), r.shape, r.dinput, dtype);
  }
}

TEST_CASE("l1_loss, smooth_l1_loss and binary_cross_entropy_with_logits match PyTorch", "[layers]") {
  const tg::DType dtype = GENERATE(tg::kFloat32, tg::kFloat64);
  for (const module_refs::PointwiseLossRef& r : module_refs::kPointwiseLoss) {
    INFO(r.name << " in " << tg::dtype_name(dtype));
    Tensor input = make(r.input, r.shape, dtype, true), target = make(r.target, r.shape, dtype, true);
    const std::string op = r.op;
    Tensor loss;
    if (op == "l1") {
      loss = nn::L1Loss(r.reduction)(input, target);
    } else if (op == "smooth_l1") {
      loss = nn::SmoothL1Loss(r.reduction, r.beta)(input, target);
    } else {
      nn::BCEWithLogitsLoss module({.weight = make(r.weight, r.weight_shape, dtype),
                                    .reduction = r.reduction,
                                    .pos_weight = make(r.pos_weight, r.pos_weight_shape, dtype)});
      loss = module(input, target);
    }
    CHECK(loss.grad_fn_name() == r.grad_fn);
    ref::check_ref(loss, r.reduction == Reduction::None ? r.shape : Shape{}, r.loss, dtype);
    loss.backward(make(r.w, loss.sizes(), dtype));
    ref::check_ref(input.grad(), r.shape, r.dinput, dtype);
    ref::check_ref(target.grad(), r.shape, r.dtarget, dtype);
  }
}

TEST_CASE("class losses at hand-checked points: all targets ignored, uniform logits, label smoothing", "[layers]") {
  auto idx = [](std::vector<std::int64_t> v) { return tg::tensor(v); };
  Tensor x = tg::randn({3, 4}, tg::kFloat64).requires_grad_();
  // every target ignored: mean is 0/0 (nan, as PyTorch), sum is 0, and no gradient flows
  Tensor all_ignored = idx({-100, -100, -100});
  CHECK(std::isnan(tg::cross_entropy(x, all_ignored).item<double>()));
  CHECK(std::isnan(tg::cross_entropy(x, all_ignored, {.label_smoothing = 0.2}).item<double>()));
  Tensor s = tg::cross_entropy(x, all_ignored, Reduction::Sum);
  CHECK(s.item<double>() == 0.0);
  s.backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>(12, 0.0));
  // uniform logits: every log-probability is −log C, smoothed or not, weighted or not
  Tensor u = tg::zeros({2, 4}, tg::kFloat64);
  Tensor w = tg::tensor(std::vector<double>{1, 2, 3, 4});
  CHECK(tg::cross_entropy(u, idx({1, 3})).item<double>() == Approx(std::log(4.0)));
  CHECK(tg::cross_entropy(u, idx({1, 3}), {.weight = w, .label_smoothing = 0.5}).item<double>() ==
        Approx(std::log(4.0) * (0.5 * 6 + 0.5 / 4 * 10 * 2) / 6));
  // label smoothing ε: the target distribution (1 − ε)·one_hot + ε/C, so the gradient is p − that
  Tensor logits = tg::tensor(std::vector<double>{0, 0}, {1, 2}).requires_grad_();
  tg::cross_entropy(logits, idx({0}), {.label_smoothing = 0.2}).backward();
  CHECK(logits.grad().to_vector<double>()[0] == Approx(0.5 - 0.9));
  CHECK(logits.grad().to_vector<double>()[1] == Approx(0.5 - 0.1));
  // nll_loss picks −input[target]
  CHECK(tg::nll_loss(tg::tensor(std::vector<double>{-1, -2, -3, -4}, {2, 2}), idx({1, 0}), Reduction::None)
            .to_vector<double>() == std::vector<double>{2, 3});
}

TEST_CASE("loss modules keep class weights as buffers and print like PyTorch", "[layers]") {
  Tensor w = tg::tensor(std::vector<float>{1, 2, 3});
  nn::CrossEntropyLoss ce({.weight = w, .label_smoothing = 0.1});
  REQUIRE(ce.state_dict().size() == 1);
  CHECK(ce.state_dict()[0].first == "weight");
  CHECK(ce.state_dict()[0].second.is_same(w));
  CHECK(nn::CrossEntropyLoss().state_dict().empty());
  nn::BCEWithLogitsLoss bce({.weight = w, .pos_weight = w * 2.0f});
  REQUIRE(bce.named_buffers().size() == 2);
  CHECK(bce.named_buffers()[1].first == "pos_weight");
  CHECK(nn::NLLLoss({.weight = w}).named_buffers()[0].first == "weight");
  const std::map<std::string, std::function<std::string()>> printed = {
      {"nn.L1Loss()", [] { return nn::L1Loss().to_string(); }},
      {"nn.SmoothL1Loss(beta=0.5)", [] { return nn::SmoothL1Loss(Reduction::Mean, 0.5).to_string(); }},
      {"nn.BCEWithLogitsLoss()", [] { return nn::BCEWithLogitsLoss().to_string(); }},
      {"nn.NLLLoss()", [] { return nn::NLLLoss().to_string(); }},
      {"nn.CrossEntropyLoss(label_smoothing=0.1)",
       [] { return nn::CrossEntropyLoss({.label_smoothing = 0.1}).to_string(); }},
  };
  std::size_t seen = 0;
  for (const module_refs::ReprRef& r : module_refs::kRepr) {
    auto it = printed.find(r.expr);
    if (it == printed.end()) continue;
    INFO(r.expr);
    CHECK(it->second() == r.text);
    ++seen;
  }
  CHECK(seen == printed.size());
}

TEST_CASE("the new losses gradcheck in float64", "[layers][gradcheck]") {
  const Tensor target = tg::tensor(std::vector<std::int64_t>{2, 0, -100, 4, 1});
  const Tensor target_3d = tg::native::reshape(tg::tensor(std::vector<std::int64_t>{2, 0, 1, 1, 0, 2}), {2, 3});
  const Tensor class_weight = tg::tensor(std::vector<double>{0.5, 1, 2, 1.5, 0.25});
  const Tensor weight_34 = tg::rand({3, 4}, tg::kFloat64) + 0.5, pos_weight = tg::rand({4}, tg::kFloat64) + 0.5;
  auto probabilities = [](const Tensor& t) { return t.sigmoid(); };  // targets in (0, 1)
  ref::check_gradcheck_rows({
      {"cross_entropy weight, ignore, smoothing mean",
       [&](const Inputs& in) {
         return tg::cross_entropy(in[0], target, {.weight = class_weight, .label_smoothing = 0.15});
       },
       {{5, 5}}, "AddBackward0"},
      {"cross_entropy weight none",
       [&](const Inputs& in) {
         return tg::cross_entropy(in[0], target, {.weight = class_weight, .reduction = Reduction::None});
       },
       {{5, 5}}, "NllLossBackward0"},
      {"cross_entropy [N, C, L] sum smoothing",
       [&](const Inputs& in) {
         return tg::cross_entropy(in[0], target_3d, {.reduction = Reduction::Sum, .label_smoothing = 0.3});
       },
       {{2, 3, 3}}, "AddBackward0"},
      {"cross_entropy [C]", [](const Inputs& in) { return tg::cross_entropy(in[0], tg::scalar_tensor(1, tg::kInt64)); },
       {{4}}, "NllLossBackward0"},
      {"nll_loss weight mean", [&](const Inputs& in) { return tg::nll_loss(in[0], target, {.weight = class_weight}); },
       {{5, 5}}, "NllLossBackward0"},
      {"nll_loss [N, C, L] none",
       [&](const Inputs& in) { return tg::nll_loss(in[0], target_3d, Reduction::None); }, {{2, 3, 3}},
       "ViewBackward0"},
      {"l1_loss mean", [](const Inputs& in) { return tg::l1_loss(in[0], in[1]); }, {{3, 4}, {3, 4}}, "MeanBackward0"},
      {"l1_loss none", [](const Inputs& in) { return tg::l1_loss(in[0], in[1], Reduction::None); }, {{3, 4}, {3, 4}},
       "AbsBackward0"},
      {"smooth_l1_loss sum beta 0.8",
       [](const Inputs& in) { return tg::smooth_l1_loss(in[0], in[1], Reduction::Sum, 0.8); }, {{3, 4}, {3, 4}},
       "SmoothL1LossBackward0"},
      {"smooth_l1_loss none beta 1",
       [](const Inputs& in) { return tg::smooth_l1_loss(in[0], in[1], Reduction::None); }, {{3, 4}, {3, 4}},
       "SmoothL1LossBackward0"},
      {"bce_with_logits mean",
       [&](const Inputs& in) { return tg::binary_cross_entropy_with_logits(in[0], probabilities(in[1])); },
       {{3, 4}, {3, 4}}, "BinaryCrossEntropyWithLogitsBackward0"},
      {"bce_with_logits weight, pos_weight none",
       [&](const Inputs& in) {
         return tg::binary_cross_entropy_with_logits(
             in[0], probabilities(in[1]),
             {.weight = weight_34, .reduction = Reduction::None, .pos_weight = pos_weight});
       },
       {{3, 4}, {3, 4}}, "BinaryCrossEntropyWithLogitsBackward0"},
  });
}

TEST_CASE("the new losses reject bad input with the op's name", "[layers][errors]") {
  auto idx = [](std::vector<std::int64_t> v) { return tg::tensor(v); };
  Tensor x = tg::randn({2, 3});
  CHECK_THROWS_WITH(tg::cross_entropy(x, idx({0, 1}), {.weight = tg::ones({4})}),
                    "[cross_entropy] expected weight of shape [3] (one per class), got [4]");
  CHECK_THROWS_WITH(tg::cross_entropy(x, idx({0, 1}), {.weight = tg::ones({3}, tg::kFloat64)}),
                    Contains("[cross_entropy] expected weight of dtype float32") && Contains("float64"));
  CHECK_THROWS_WITH(tg::cross_entropy(x, idx({0, 1}), {.label_smoothing = 1.5}),
                    "[cross_entropy] expected label_smoothing in [0, 1], got 1.5");
  CHECK_THROWS_WITH(nn::CrossEntropyLoss({.label_smoothing = -0.1}), Contains("[CrossEntropyLoss]"));
  CHECK_THROWS_WITH(tg::cross_entropy(x, idx({0, 5}), {.ignore_index = 4}),
                    "[cross_entropy] target 5 is out of bounds for 3 classes");
  CHECK_THROWS_WITH(tg::nll_loss(x, idx({0, 3})), "[nll_loss] target 3 is out of bounds for 3 classes");
  CHECK_THROWS_WITH(tg::nll_loss(x, idx({0})), "[nll_loss] expected target of shape [2] for input [2, 3], got [1]");
  CHECK_THROWS_WITH(tg::nll_loss(x, tg::zeros({2})), Contains("[nll_loss]") && Contains("int64"));

  CHECK_THROWS_WITH(tg::l1_loss(tg::randn({3}), tg::randn({4})),
                    "[l1_loss] expected input and target of one shape, got [3] and [4]");
  CHECK_THROWS_WITH(tg::smooth_l1_loss(tg::randn({3}), tg::randn({3}), Reduction::Mean, -1.0),
                    "[smooth_l1_loss] expected beta >= 0, got -1");
  CHECK_THROWS_WITH(nn::SmoothL1Loss(Reduction::Mean, -0.5), Contains("[SmoothL1Loss]") && Contains("-0.5"));
  CHECK_THROWS_WITH(tg::smooth_l1_loss(tg::ones({3}, tg::kInt64), tg::ones({3}, tg::kInt64)),
                    Contains("[smooth_l1_loss]") && Contains("int64"));
  Tensor logits = tg::randn({3, 4}), probs = tg::rand({3, 4});
  CHECK_THROWS_WITH(tg::binary_cross_entropy_with_logits(logits, tg::rand({4, 3})),
                    Contains("[binary_cross_entropy_with_logits]") && Contains("[4, 3]"));
  CHECK_THROWS_WITH(tg::binary_cross_entropy_with_logits(logits, probs, {.weight = tg::ones({3})}),
                    "[binary_cross_entropy_with_logits] expected weight broadcastable to the input's shape [3, 4], "
                    "got [3]");
  CHECK_THROWS_WITH(tg::binary_cross_entropy_with_logits(logits, probs, {.pos_weight = tg::ones({2, 3, 4})}),
                    Contains("pos_weight broadcastable") && Contains("[2, 3, 4]"));
  CHECK_THROWS_WITH(tg::binary_cross_entropy_with_logits(logits, probs, {.pos_weight = tg::ones({4}, tg::kFloat64)}),
                    Contains("[binary_cross_entropy_with_logits] expected pos_weight of dtype float32"));
  CHECK_THROWS_WITH(nn::L1Loss().forward(tg::ones({2})), Contains("[L1Loss]"));
}
