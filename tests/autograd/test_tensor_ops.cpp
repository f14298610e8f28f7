// Tests of the indexing, sorting and normalizing tensor ops (cat, stack, where, masked_fill,
// index_select, gather, scatter_add, one_hot, topk, sort, softmax, log_softmax, logsumexp, clamp,
// norm): values, dtypes, shapes and gradients against PyTorch 1.13 (tensor_ops_refs.inc) in
// float64 and float32, grad_fn names, in-place checks on saved indices, and every bad input.
// Their float64 gradchecks are rows of test_gradcheck_ops.cpp. Tags [autograd] [errors].
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tapegrad.h"
#include "tensor_ops_refs.inc"

using Catch::Contains;
using tg::Shape;
using tg::Tensor;

namespace {

using Inputs = std::vector<Tensor>;
using Outputs = std::vector<Tensor>;
using tensor_ops_refs::OpRef;
constexpr double kInf = INFINITY;

Outputs one(const Tensor& t) { return {t}; }
Outputs both(const tg::ValuesIndices& r) { return {r.values, r.indices}; }
Tensor ints(std::vector<std::int64_t> v, Shape s) { return tg::tensor(v, s); }

// Each reference row's call, under the row's name (the script makes the same call in PyTorch).
// clang-format off
const std::map<std::string, std::function<Outputs(const Inputs&)>>& ops() {
  static const std::map<std::string, std::function<Outputs(const Inputs&)>> table = {
    {"cat dim 0",                  [](const Inputs& v) { return one(tg::cat({v[0], v[1]})); }},
    {"cat dim -1 three",           [](const Inputs& v) { return one(tg::cat({v[0], v[1], v[2]}, -1)); }},
    {"cat [2, 3, 2] dim 1",        [](const Inputs& v) { return one(tg::cat({v[0], v[1]}, 1)); }},
    {"cat skips [0]",              [](const Inputs& v) { return one(tg::cat({v[0], v[1]}, 1)); }},
    {"stack dim 0",                [](const Inputs& v) { return one(tg::stack({v[0], v[1]})); }},
    {"stack dim -1",               [](const Inputs& v) { return one(tg::stack({v[0], v[1], v[2]}, -1)); }},
    {"stack 0-dim",                [](const Inputs& v) { return one(tg::stack({v[0], v[1]})); }},
    {"where",                      [](const Inputs& v) { return one(tg::where(v[0], v[1], v[2])); }},
    {"where broadcast",            [](const Inputs& v) { return one(tg::where(v[0], v[1], v[2])); }},
    {"where scalar other",         [](const Inputs& v) { return one(v[1].where(v[0], 0.5)); }},
    {"where scalar input",         [](const Inputs& v) { return one(tg::where(v[0], -1.5, v[1])); }},
    {"masked_fill",                [](const Inputs& v) { return one(v[0].masked_fill(v[1], -2.5)); }},
    {"masked_fill mask broadcast", [](const Inputs& v) { return one(tg::masked_fill(v[0], v[1], 1.0)); }},
    {"masked_fill mask grows",     [](const Inputs& v) { return one(v[0].masked_fill(v[1], 0.0)); }},
    {"masked_fill tensor value",   [](const Inputs& v) { return one(v[0].masked_fill(v[1], v[2])); }},
    {"index_select 0",             [](const Inputs& v) { return one(v[0].index_select(0, v[1])); }},
    {"index_select 1",             [](const Inputs& v) { return one(tg::index_select(v[0], 1, v[1])); }},
    {"index_select 0-dim index",   [](const Inputs& v) { return one(v[0].index_select(1, v[1])); }},
    {"gather 1",                   [](const Inputs& v) { return one(v[0].gather(1, v[1])); }},
    {"gather 0 longer index",      [](const Inputs& v) { return one(tg::gather(v[0], 0, v[1])); }},
    {"gather [2, 3, 4] dim 2",     [](const Inputs& v) { return one(v[0].gather(2, v[1])); }},
    {"scatter_add 0",              [](const Inputs& v) { return one(v[0].scatter_add(0, v[1], v[2])); }},
    {"scatter_add [2, 3, 4] dim -1", [](const Inputs& v) { return one(tg::scatter_add(v[0], -1, v[1], v[2])); }},
    {"scatter_add src larger",     [](const Inputs& v) { return one(v[0].scatter_add(1, v[1], v[2])); }},
    {"one_hot",                    [](const Inputs& v) { return one(tg::one_hot(v[0])); }},
    {"one_hot [2, 3] 5 classes",   [](const Inputs& v) { return one(tg::one_hot(v[0], 5)); }},
    {"topk 2",                     [](const Inputs& v) { return both(v[0].topk(2)); }},
    {"topk 3 smallest dim 0",      [](const Inputs& v) { return both(v[0].topk(3, 0, false)); }},
    {"topk [2, 4, 3] dim 1",       [](const Inputs& v) { return both(tg::topk(v[0], 2, 1)); }},
    {"topk nan is largest",        [](const Inputs& v) { return both(v[0].topk(2)); }},
    {"sort",                       [](const Inputs& v) { return both(v[0].sort()); }},
    {"sort descending dim 0",      [](const Inputs& v) { return both(tg::sort(v[0], 0, true)); }},
    {"sort ties are stable",       [](const Inputs& v) { return both(v[0].sort()); }},
    {"sort descending ties are stable", [](const Inputs& v) { return both(v[0].sort(-1, true)); }},
    {"sort nan last",              [](const Inputs& v) { return both(v[0].sort()); }},
    {"softmax dim 1",              [](const Inputs& v) { return one(tg::softmax(v[0], 1)); }},
    {"softmax [2, 3, 4] dim 0",    [](const Inputs& v) { return one(v[0].softmax(0)); }},
    {"softmax large logits",       [](const Inputs& v) { return one(v[0].softmax(-1)); }},
    {"log_softmax dim -1",         [](const Inputs& v) { return one(tg::log_softmax(v[0], -1)); }},
    {"log_softmax [2, 3, 4] dim 1", [](const Inputs& v) { return one(v[0].log_softmax(1)); }},
    {"log_softmax large logits",   [](const Inputs& v) { return one(v[0].log_softmax(1)); }},
    {"logsumexp dim 1",            [](const Inputs& v) { return one(tg::logsumexp(v[0], {1})); }},
    {"logsumexp dims 0, 2 keepdim", [](const Inputs& v) { return one(v[0].logsumexp({0, 2}, true)); }},
    {"logsumexp all dims",         [](const Inputs& v) { return one(v[0].logsumexp({})); }},
    {"logsumexp large",            [](const Inputs& v) { return one(v[0].logsumexp({-1})); }},
    {"logsumexp infinities",       [](const Inputs& v) { return one(v[0].logsumexp({1})); }},
    {"clamp scalars",              [](const Inputs& v) { return one(v[0].clamp(-0.5, 0.7)); }},
    {"clamp min only",             [](const Inputs& v) { return one(v[0].clamp(0.25, std::nullopt)); }},
    {"clamp max only",             [](const Inputs& v) { return one(tg::clamp(v[0], std::nullopt, -0.1)); }},
    {"clamp min > max",            [](const Inputs& v) { return one(v[0].clamp(0.5, -0.5)); }},
    {"clamp tensor bounds",        [](const Inputs& v) { return one(tg::clamp(v[0], v[1], v[2])); }},
    {"clamp tensor min",           [](const Inputs& v) { return one(v[0].clamp(v[1], std::nullopt)); }},
    {"clamp tensor max",           [](const Inputs& v) { return one(v[0].clamp(std::nullopt, v[1])); }},
    {"norm",                       [](const Inputs& v) { return one(v[0].norm()); }},
    {"norm 1 dim 1",               [](const Inputs& v) { return one(v[0].norm(1, {1})); }},
    {"norm inf dim 0",             [](const Inputs& v) { return one(v[0].norm(kInf, {0})); }},
    {"norm -inf dim 1",            [](const Inputs& v) { return one(v[0].norm(-kInf, {1})); }},
    {"norm 0 dim 1",               [](const Inputs& v) { return one(v[0].norm(0, {1})); }},
    {"norm 3.5 dims 0, 2 keepdim", [](const Inputs& v) { return one(v[0].norm(3.5, {0, 2}, true)); }},
    {"norm 1.5 dim -1",            [](const Inputs& v) { return one(tg::norm(v[0], 1.5, {-1})); }},
    {"norm 0.5 dim 1",             [](const Inputs& v) { return one(v[0].norm(0.5, {1})); }},
    {"norm -1 dim 1",              [](const Inputs& v) { return one(v[0].norm(-1, {1})); }},
    {"norm 2 of zeros",            [](const Inputs& v) { return one(v[0].norm(2, {1})); }},
  };
  return table;
}
// clang-format on

// A reference tensor in `dtype` for floats (exact: the values are float32), int64 as given.
Tensor make(const tensor_ops_refs::TensorRef& r, tg::DType float_dtype) {
  if (r.dtype == tg::kInt64) {
    std::vector<std::int64_t> v(r.values.begin(), r.values.end());
    return tg::tensor(v, r.shape);
  }
  Tensor t = tg::tensor(r.values, r.shape).to(float_dtype);
  return t.requires_grad_();
}

// "" when every value is within tol·(1 + |want|) (NaN matching NaN, infinities equal), else the
// first mismatch.
std::string mismatch(const Tensor& got_t, const std::vector<double>& want, double tol) {
  std::vector<double> got = got_t.to_vector<double>();
  if (got.size() != want.size()) return fmt::format("{} values, expected {}", got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    bool same = (std::isnan(got[i]) && std::isnan(want[i])) || got[i] == want[i] ||
                std::fabs(got[i] - want[i]) <= tol * (1 + std::fabs(want[i]));
    if (!same) return fmt::format("element {}: {} vs PyTorch's {}", i, got[i], want[i]);
  }
  return "";
}

}  // namespace

TEST_CASE("tensor ops match PyTorch: values, dtypes, shapes and gradients", "[autograd]") {
  const tg::DType dtype = GENERATE(tg::kFloat64, tg::kFloat32);
  const double tol = dtype == tg::kFloat64 ? 1e-12 : 2e-5;
  for (const OpRef& r : tensor_ops_refs::kOps) {
    INFO(r.name << " in " << tg::dtype_name(dtype));
    auto op = ops().find(r.name);
    REQUIRE(op != ops().end());
    Inputs inputs;
    for (const auto& in : r.inputs) inputs.push_back(make(in, dtype));
    Outputs outputs = op->second(inputs);
    REQUIRE(outputs.size() == r.outputs.size());
    for (std::size_t k = 0; k < outputs.size(); ++k) {
      INFO("output " << k);
      CHECK(outputs[k].sizes() == r.outputs[k].shape);
      CHECK(outputs[k].dtype() == (r.outputs[k].dtype == tg::kInt64 ? tg::kInt64 : dtype));
      CHECK(outputs[k].is_contiguous());
      CHECK(mismatch(outputs[k], r.outputs[k].values, tol) == "");
    }
    CHECK(outputs[0].requires_grad() == !r.w.empty());
    if (r.w.empty()) continue;
    outputs[0].backward(tg::tensor(r.w, outputs[0].sizes()).to(dtype));
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      INFO("gradient of input " << i);
      if (inputs[i].dtype() == tg::kInt64) continue;
      REQUIRE(inputs[i].grad().defined());
      CHECK(inputs[i].grad().dtype() == dtype);
      CHECK(mismatch(inputs[i].grad(), r.grads[i], dtype == tg::kFloat64 ? 1e-12 : 1e-4) == "");
    }
  }
  CHECK(ops().size() == tensor_ops_refs::kOps.size());  // every call has its reference row
}

TEST_CASE("tensor ops take PyTorch's dtypes and grad_fn names", "[autograd]") {
  Tensor x = tg::tensor({{1.5, -2.0}, {0.5, 3.0}}, tg::kFloat64).requires_grad_();
  Tensor mask = x.gt(0.0);
  CHECK(tg::cat({x, x}, 1).grad_fn_name() == "CatBackward0");
  CHECK(tg::stack({x, x}).grad_fn_name() == "StackBackward0");
  CHECK(tg::where(mask, x, 0.0).grad_fn_name() == "WhereBackward0");
  CHECK(x.masked_fill(mask, 1.0).grad_fn_name() == "MaskedFillBackward0");
  CHECK(x.masked_fill(mask, tg::scalar_tensor(2.0, tg::kFloat64)).grad_fn_name() == "MaskedFillBackward1");
  CHECK(x.gather(1, ints({0, 0}, {2, 1})).grad_fn_name() == "GatherBackward0");
  CHECK(x.scatter_add(1, ints({0, 0}, {2, 1}), x).grad_fn_name() == "ScatterAddBackward0");
  CHECK(x.topk(1).values.grad_fn_name() == "TopkBackward0");
  CHECK(x.sort().values.grad_fn_name() == "SortBackward0");
  CHECK(x.softmax(0).grad_fn_name() == "SoftmaxBackward0");
  CHECK(x.log_softmax(0).grad_fn_name() == "LogSoftmaxBackward0");
  CHECK(x.logsumexp({0}).grad_fn_name() == "LogsumexpBackward0");
  CHECK(x.clamp(x, x).grad_fn_name() == "ClampBackward0");
  CHECK(x.clamp(0.0, std::nullopt).grad_fn_name() == "ClampBackward1");
  CHECK(x.norm().grad_fn_name() == "NormBackward1");

  // Promotion, as PyTorch: cat and stack of float32 and int64 give float32; where of int64 and
  // 2.5 gives float32; masked_fill keeps the tensor's dtype (2.5 into int64 is 2).
  Tensor i = ints({1, 2, 3, 4}, {2, 2});
  CHECK(tg::cat({tg::ones({2, 2}), i}).dtype() == tg::kFloat32);
  CHECK(tg::stack({i, x}).dtype() == tg::kFloat64);
  CHECK(tg::where(mask, i, 2.5).to_vector<double>() == std::vector<double>{1, 2.5, 3, 4});
  CHECK(tg::where(mask, i, 2).dtype() == tg::kInt64);
  CHECK(i.masked_fill(mask, 2.5).to_vector<std::int64_t>() == std::vector<std::int64_t>{2, 2, 2, 2});
  CHECK(i.clamp(2, 3).to_vector<std::int64_t>() == std::vector<std::int64_t>{2, 2, 3, 3});
  CHECK(i.clamp(2.5, std::nullopt).to_vector<double>() == std::vector<double>{2.5, 2.5, 3, 4});
  CHECK(i.logsumexp({0}).dtype() == tg::kFloat32);
  CHECK(i.softmax(1, tg::kFloat64).dtype() == tg::kFloat64);
  CHECK(i.sort(-1, true).values.to_vector<std::int64_t>() == std::vector<std::int64_t>{2, 1, 4, 3});
  auto [values, indices] = i.topk(1, 0);
  CHECK(values.to_vector<std::int64_t>() == std::vector<std::int64_t>{3, 4});
  CHECK(indices.to_vector<std::int64_t>() == std::vector<std::int64_t>{1, 1});
  // softmax with a dtype converts first; the gradient returns in the input's dtype.
  Tensor f = tg::tensor({0.5f, 1.5f}).requires_grad_();
  Tensor s = f.softmax(0, tg::kFloat64);
  CHECK(s.dtype() == tg::kFloat64);
  (s * tg::tensor({1.0, 0.0}, tg::kFloat64)).sum().backward();
  CHECK(f.grad().dtype() == tg::kFloat32);
}

TEST_CASE("tensor ops on 0-dim and empty tensors follow PyTorch", "[autograd]") {
  Tensor s = tg::scalar_tensor(3.0);
  CHECK(s.topk(1).values.sizes() == Shape{});
  CHECK(s.topk(0).values.item<float>() == 3.0f);  // PyTorch returns the element for k = 0 too
  CHECK(s.sort().indices.item<std::int64_t>() == 0);
  CHECK(s.gather(0, ints({0}, {1})).sizes() == Shape{1});
  CHECK(s.index_select(0, ints({0, 0}, {2})).sizes() == Shape{});
  CHECK(s.softmax(0).item<float>() == 1.0f);
  CHECK(s.logsumexp({}).item<float>() == 3.0f);
  CHECK(tg::ones({2, 3}).topk(0).values.sizes() == Shape{2, 0});
  CHECK(tg::cat({tg::zeros({0}), tg::zeros({0})}).sizes() == Shape{0});
  CHECK(tg::one_hot(ints({}, {0}), 3).sizes() == Shape{0, 3});
  CHECK(tg::one_hot(tg::tensor(std::vector<std::int64_t>{2}, {}), 4).to_vector<std::int64_t>() ==
        std::vector<std::int64_t>{0, 0, 1, 0});
  Tensor lse = tg::zeros({0, 3}).logsumexp({0});  // Σ of nothing: log 0
  CHECK(lse.to_vector<float>() == std::vector<float>(3, -INFINITY));
  CHECK(tg::zeros({0, 3}).norm(kInf, {0}).to_vector<float>() == std::vector<float>(3, 0.0f));
}

TEST_CASE("ops that save an index see it changed in place", "[autograd]") {
  Tensor x = tg::tensor({1.0, 2.0, 3.0}, tg::kFloat64).requires_grad_();
  Tensor index = ints({2, 0}, {2});
  Tensor y = x.gather(0, index).sum();
  index.fill_(1);
  CHECK_THROWS_WITH(y.backward(), Contains("GatherBackward0") && Contains("in-place"));
  auto [values, indices] = x.topk(2);
  indices.fill_(0);
  CHECK_THROWS_WITH(values.sum().backward(), Contains("TopkBackward0") && Contains("in-place"));
}

TEST_CASE("tensor ops reject bad input naming the op and the shapes", "[autograd][errors]") {
  Tensor x = tg::ones({3, 4});
  Tensor idx = ints({0, 1}, {1, 2});
  SECTION("cat and stack") {
    CHECK_THROWS_WITH(tg::cat({}), Contains("[cat]") && Contains("non-empty"));
    CHECK_THROWS_WITH(tg::cat({x, tg::ones({2, 2})}),
                      Contains("[cat]") && Contains("dimension 0") && Contains("[3, 4]") && Contains("[2, 2]"));
    CHECK_THROWS_WITH(tg::cat({x, tg::ones({3, 4, 1})}, 1), Contains("[cat]") && Contains("same number of dimensions"));
    CHECK_THROWS_WITH(tg::cat({tg::scalar_tensor(1.0)}), Contains("[cat] zero-dimensional"));
    CHECK_THROWS_WITH(tg::cat({x}, 2), Contains("[cat] dimension out of range"));
    CHECK_THROWS_WITH(tg::stack({}), Contains("[stack]") && Contains("non-empty"));
    CHECK_THROWS_WITH(tg::stack({x, x.t()}), Contains("[stack]") && Contains("[3, 4] at entry 0 and [4, 3] at entry 1"));
    CHECK_THROWS_WITH(tg::stack({x}, 3), Contains("[stack] dimension out of range"));
  }
  SECTION("where and masked_fill") {
    CHECK_THROWS_WITH(tg::where(x, x, x), Contains("[where]") && Contains("int64") && Contains("float32"));
    CHECK_THROWS_WITH(tg::where(x.gt(0.0), x, tg::ones({2})),
                      Contains("[where]") && Contains("[3, 4]") && Contains("[2]"));
    CHECK_THROWS_WITH(x.masked_fill(x, 1.0), Contains("[masked_fill]") && Contains("int64"));
    CHECK_THROWS_WITH(x.masked_fill(ints({1, 0}, {2}), 1.0), Contains("[masked_fill]") && Contains("[3, 4]"));
    CHECK_THROWS_WITH(x.masked_fill(x.gt(0.0), tg::ones({1})), Contains("[masked_fill]") && Contains("0-dimensional"));
  }
  SECTION("index_select, gather, scatter_add") {
    CHECK_THROWS_WITH(x.index_select(0, idx), Contains("[index_select]") && Contains("[1, 2]"));
    CHECK_THROWS_WITH(x.index_select(0, tg::ones({2})), Contains("[index_select]") && Contains("int64"));
    CHECK_THROWS_WITH(x.index_select(1, ints({4}, {1})), Contains("[index_select] index 4 is out of bounds"));
    CHECK_THROWS_WITH(x.gather(1, ints({0, 1}, {2})), Contains("[gather]") && Contains("[2]") && Contains("[3, 4]"));
    CHECK_THROWS_WITH(x.gather(0, ints({0, 0, 0, 0, 0}, {1, 5})),
                      Contains("[gather]") && Contains("[1, 5]") && Contains("[3, 4]"));
    CHECK_THROWS_WITH(x.gather(1, ints({0, -1}, {1, 2})), Contains("[gather] index -1 is out of bounds for dimension 1"));
    CHECK_THROWS_WITH(x.gather(1, tg::zeros({1, 2})), Contains("[gather]") && Contains("int64"));
    CHECK_THROWS_WITH(x.scatter_add(1, idx, tg::ones({1, 2}, tg::kFloat64)),
                      Contains("[scatter_add]") && Contains("float32") && Contains("float64"));
    CHECK_THROWS_WITH(x.scatter_add(1, idx, tg::ones({1, 1})),
                      Contains("[scatter_add]") && Contains("[1, 2]") && Contains("[1, 1]"));
    CHECK_THROWS_WITH(x.scatter_add(0, ints({3, 0}, {1, 2}), tg::ones({1, 2})),
                      Contains("[scatter_add] index 3 is out of bounds for dimension 0 with size 3"));
  }
  SECTION("one_hot") {
    CHECK_THROWS_WITH(tg::one_hot(tg::ones({2})), Contains("[one_hot]") && Contains("int64"));
    CHECK_THROWS_WITH(tg::one_hot(ints({0, -1}, {2})), Contains("[one_hot] class values must be non-negative"));
    CHECK_THROWS_WITH(tg::one_hot(ints({0, 3}, {2}), 3), Contains("[one_hot]") && Contains("smaller than num_classes"));
    CHECK_THROWS_WITH(tg::one_hot(ints({}, {0})), Contains("[one_hot]") && Contains("empty"));
  }
  SECTION("topk and sort") {
    CHECK_THROWS_WITH(x.topk(5), Contains("[topk] selected index k out of range") && Contains("[3, 4]"));
    CHECK_THROWS_WITH(x.topk(-1), Contains("[topk]"));
    CHECK_THROWS_WITH(x.topk(1, 2), Contains("[topk] dimension out of range"));
    CHECK_THROWS_WITH(x.sort(-3), Contains("[sort] dimension out of range"));
  }
  SECTION("softmax, logsumexp, clamp, norm") {
    CHECK_THROWS_WITH(ints({1, 2}, {2}).softmax(0), Contains("[softmax]") && Contains("int64"));
    CHECK_THROWS_WITH(x.log_softmax(0, tg::kInt64), Contains("[log_softmax]") && Contains("int64"));
    CHECK_THROWS_WITH(x.softmax(2), Contains("[softmax] dimension out of range"));
    CHECK_THROWS_WITH(x.logsumexp({1, -1}), Contains("[logsumexp]") && Contains("multiple times"));
    CHECK_THROWS_WITH(x.clamp(std::optional<tg::Scalar>(), std::optional<tg::Scalar>()),
                      Contains("[clamp] at least one of min and max"));
    CHECK_THROWS_WITH(x.clamp(std::optional<Tensor>(), std::optional<Tensor>()),
                      Contains("[clamp] at least one of min and max"));
    CHECK_THROWS_WITH(x.clamp(tg::ones({2}), std::nullopt), Contains("[clamp]") && Contains("[3, 4]") && Contains("[2]"));
    CHECK_THROWS_WITH(ints({1, 2}, {2}).norm(), Contains("[norm]") && Contains("int64"));
  }
  CHECK(x.to_vector<float>() == std::vector<float>(12, 1.0f));  // no failed op touched its input
}
