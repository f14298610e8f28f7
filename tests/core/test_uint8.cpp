// The uint8 dtype against PyTorch 1.13 (uint8_refs.inc, from scripts/gen_uint8_refs.py): every
// reference row is repeated here by one call of tg::native (core only, no autograd), and every
// call PyTorch refuses is refused with tapegrad's message; then the dtype's own rules (size, name,
// promotion), element access and the conversions that must not be undefined behaviour.
// Tags [core] [errors].
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tapegrad/core/native.h"
#include "tapegrad/core/random.h"
#include "tapegrad/core/tensor.h"
#include "uint8_refs.h"

using Catch::Contains;
using tg::Shape;
using tg::Tensor;
namespace native = tg::native;
using native::BinaryOp;
using native::UnaryOp;

namespace {

using uint8_refs::kInf;
using uint8_refs::kNaN;
using uint8_refs::ResultRef;
using uint8_refs::TensorRef;

// The rows that need autograd's Tensor methods: tests/autograd/test_uint8_ops.cpp repeats them.
const std::vector<std::string> kAutogradRows = {"masked_fill(u > 100, -1)", "masked_fill(u > 100, 1.5)",
                                                "masked_fill(u > 100, 300)", "requires_grad_"};

Tensor make(const TensorRef& r) {
  if (r.dtype == tg::kFloat32 || r.dtype == tg::kFloat64) return native::to(tg::tensor(r.values, r.shape), r.dtype);
  std::vector<std::int64_t> ints(r.values.begin(), r.values.end());  // exact: every input is an integer < 2^53
  return native::to(tg::tensor(ints, r.shape), r.dtype);
}

Tensor in(const std::string& name) {
  for (const auto& [key, ref] : uint8_refs::kInputs)
    if (key == name) return make(ref);
  FAIL("no input " << name);
  return {};
}

using Outputs = std::vector<Tensor>;
Outputs one(const Tensor& t) { return {t}; }
Outputs two(const tg::ValuesIndices& r) { return {r.values, r.indices}; }
Tensor bin(BinaryOp op, const Tensor& a, const Tensor& b) { return native::binary(op, a, b); }
Tensor bin(BinaryOp op, const Tensor& a, tg::Scalar b) { return native::binary(op, a, b); }
Tensor bin(BinaryOp op, tg::Scalar a, const Tensor& b) { return native::binary(op, a, b); }
Tensor u8(const Shape& sizes) { return tg::zeros(sizes, tg::kUInt8); }
// The in-place op f applied to a copy of the input `name`.
template <class F>
Tensor inplace(const std::string& name, F f) {
  Tensor t = native::clone(in(name));
  f(t);
  return t;
}
Tensor filled(tg::Scalar value) {
  return inplace("u", [&](const Tensor& t) { native::fill_(t, value); });
}
Tensor seeded(std::uint64_t seed, const std::function<Tensor()>& f) {
  tg::manual_seed(seed);
  return f();
}

// clang-format off
const std::map<std::string, std::function<Outputs()>>& calls() {
  static const std::map<std::string, std::function<Outputs()>> table = {
    {"u + 300",        [] { return one(bin(BinaryOp::Add, in("u"), 300)); }},
    {"u + -1",         [] { return one(bin(BinaryOp::Add, in("u"), -1)); }},
    {"-u",             [] { return one(native::unary(UnaryOp::Neg, in("u"))); }},
    {"u - 2",          [] { return one(bin(BinaryOp::Sub, in("u"), 2)); }},
    {"2 - u",          [] { return one(bin(BinaryOp::Sub, 2, in("u"))); }},
    {"u * 2",          [] { return one(bin(BinaryOp::Mul, in("u"), 2)); }},
    {"u * -1",         [] { return one(bin(BinaryOp::Mul, in("u"), -1)); }},
    {"u * u",          [] { return one(bin(BinaryOp::Mul, in("u"), in("u"))); }},
    {"u - v",          [] { return one(bin(BinaryOp::Sub, in("u"), in("v"))); }},
    {"u + v",          [] { return one(bin(BinaryOp::Add, in("u"), in("v"))); }},
    {"u ** 2",         [] { return one(bin(BinaryOp::Pow, in("u"), 2)); }},
    {"u ** v",         [] { return one(bin(BinaryOp::Pow, in("u"), in("v"))); }},
    {"2 ** w",         [] { return one(bin(BinaryOp::Pow, 2, in("w"))); }},
    {"maximum(u, v)",  [] { return one(bin(BinaryOp::Maximum, in("u"), in("v"))); }},
    {"minimum(u, v)",  [] { return one(bin(BinaryOp::Minimum, in("u"), in("v"))); }},
    {"u / 2",          [] { return one(bin(BinaryOp::Div, in("u"), 2)); }},
    {"u / v",          [] { return one(bin(BinaryOp::Div, in("u"), in("v"))); }},
    {"u * 1.5",        [] { return one(bin(BinaryOp::Mul, in("u"), 1.5)); }},
    {"u - 1.0",        [] { return one(bin(BinaryOp::Sub, in("u"), 1.0)); }},
    {"u ** 0.5",       [] { return one(bin(BinaryOp::Pow, in("u"), 0.5)); }},
    {"u + i",          [] { return one(bin(BinaryOp::Add, in("u"), in("i"))); }},
    {"i - u",          [] { return one(bin(BinaryOp::Sub, in("i"), in("u"))); }},
    {"u + f32",        [] { return one(bin(BinaryOp::Add, in("u"), native::to(in("i"), tg::kFloat32))); }},
    {"u * f64",        [] { return one(bin(BinaryOp::Mul, in("u"), native::to(in("i"), tg::kFloat64))); }},
    {"u == 200",       [] { return one(bin(BinaryOp::Eq, in("u"), 200)); }},
    {"u < -1",         [] { return one(bin(BinaryOp::Lt, in("u"), -1)); }},
    {"u < 300",        [] { return one(bin(BinaryOp::Lt, in("u"), 300)); }},
    {"u > 255.5",      [] { return one(bin(BinaryOp::Gt, in("u"), 255.5)); }},
    {"u >= v",         [] { return one(bin(BinaryOp::Ge, in("u"), in("v"))); }},
    {"u > i * 100",    [] { return one(bin(BinaryOp::Gt, in("u"), bin(BinaryOp::Mul, in("i"), 100))); }},
    {"u != u",         [] { return one(bin(BinaryOp::Ne, in("u"), in("u"))); }},
    {"abs(u)",         [] { return one(native::unary(UnaryOp::Abs, in("u"))); }},
    {"abs(-u)",        [] { return one(native::unary(UnaryOp::Abs, native::unary(UnaryOp::Neg, in("u")))); }},
    {"relu(u)",        [] { return one(native::unary(UnaryOp::Relu, in("u"))); }},
    {"exp(u)",         [] { return one(native::unary(UnaryOp::Exp, in("u"))); }},
    {"log(u)",         [] { return one(native::unary(UnaryOp::Log, in("u"))); }},
    {"sqrt(u)",        [] { return one(native::unary(UnaryOp::Sqrt, in("u"))); }},
    {"sigmoid(u)",     [] { return one(native::unary(UnaryOp::Sigmoid, in("u"))); }},
    {"tanh(u)",        [] { return one(native::unary(UnaryOp::Tanh, in("u"))); }},
    {"f to uint8",     [] { return one(native::to(in("f"), tg::kUInt8)); }},
    {"d to uint8",     [] { return one(native::to(in("d"), tg::kUInt8)); }},
    {"big to uint8",   [] { return one(native::to(in("big"), tg::kUInt8)); }},
    {"u to int64",     [] { return one(native::to(in("u"), tg::kInt64)); }},
    {"u to float32",   [] { return one(native::to(in("u"), tg::kFloat32)); }},
    {"u to float64",   [] { return one(native::to(in("u"), tg::kFloat64)); }},
    {"copy_ float into uint8", [] {
       Tensor t = u8({3});
       native::copy_(t, native::slice(in("f"), 0, 0, 3, 1));
       return one(t); }},
    {"copy_ uint8 into float", [] {
       Tensor t = tg::zeros({3});
       native::copy_(t, in("u"));
       return one(t); }},
    {"full -1",        [] { return one(tg::full({2}, -1, tg::kUInt8)); }},
    {"full -255",      [] { return one(tg::full({2}, -255, tg::kUInt8)); }},
    {"full 255",       [] { return one(tg::full({2}, 255, tg::kUInt8)); }},
    {"full 2.5",       [] { return one(tg::full({2}, 2.5, tg::kUInt8)); }},
    {"full 254.99",    [] { return one(tg::full({2}, 254.99, tg::kUInt8)); }},
    {"tensor([-1, 255], uint8)",  [] { return one(tg::tensor({-1, 255}, tg::kUInt8)); }},
    {"tensor([2.5, 0.5], uint8)", [] { return one(tg::tensor({2.5, 0.5}, tg::kUInt8)); }},
    {"zeros",          [] { return one(tg::zeros({2}, tg::kUInt8)); }},
    {"ones",           [] { return one(tg::ones({2}, tg::kUInt8)); }},
    {"fill_ -1",       [] { return one(filled(-1)); }},
    {"fill_ -255",     [] { return one(filled(-255)); }},
    {"fill_ 0.9",      [] { return one(filled(0.9)); }},
    {"fill_ 255.0",    [] { return one(filled(255.0)); }},
    {"arange 250, 260",    [] { return one(tg::arange(250, 260, 1, tg::kUInt8)); }},
    {"arange -3, 3",       [] { return one(tg::arange(-3, 3, 1, tg::kUInt8)); }},
    {"arange 0, 300, 100", [] { return one(tg::arange(0, 300, 100, tg::kUInt8)); }},
    {"arange 0.5, 3",      [] { return one(tg::arange(0.5, 3.0, 1, tg::kUInt8)); }},
    {"arange 1.5, 5, 1.5", [] { return one(tg::arange(1.5, 5.0, 1.5, tg::kUInt8)); }},
    {"randint 0, 256 seed 0", [] { return one(seeded(0, [] { return tg::randint(0, 256, {6}, tg::kUInt8); })); }},
    {"randint 10, 20 seed 3", [] { return one(seeded(3, [] { return tg::randint(10, 20, {5}, tg::kUInt8); })); }},
    {"randperm 256 seed 1",   [] { return one(seeded(1, [] { return tg::randperm(256, tg::kUInt8); })); }},
    {"sum(u)",             [] { return one(native::sum(in("u"), {}, false)); }},
    {"sum(m, 0)",          [] { return one(native::sum(in("m"), {0}, false)); }},
    {"sum(m, 1, keepdim)", [] { return one(native::sum(in("m"), {1}, true)); }},
    {"amax(m, 1)",         [] { return one(native::amax(in("m"), {1}, false)); }},
    {"amin(m, 0)",         [] { return one(native::amin(in("m"), {0}, false)); }},
    {"max(u)",             [] { return one(native::amax(in("u"), {}, false)); }},
    {"argmax(u)",          [] { return one(native::argmax(in("u"), std::nullopt, false)); }},
    {"argmin(m, 1)",       [] { return one(native::argmin(in("m"), 1, false)); }},
    {"sq @ sq",            [] { return one(native::matmul(in("sq"), in("sq"))); }},
    {"m @ m^T",            [] { return one(native::matmul(in("m"), native::transpose(in("m"), 0, 1))); }},
    {"sq @ v[:2]",         [] { return one(native::matmul(in("sq"), native::slice(in("v"), 0, 0, 2, 1))); }},
    {"sort(dup)",              [] { return two(native::sort(in("dup"), 0, false)); }},
    {"sort(dup, descending)",  [] { return two(native::sort(in("dup"), 0, true)); }},
    {"sort(m, 0)",             [] { return two(native::sort(in("m"), 0, false)); }},
    {"topk(dup, 2)",           [] { return two(native::topk(in("dup"), 2, 0, true)); }},
    {"topk(m, 2, dim 1, smallest)", [] { return two(native::topk(in("m"), 2, 1, false)); }},
    {"clamp(u, 2, 250)",   [] { return one(native::clamp(in("u"), 2, 250)); }},
    {"clamp(u, -1, 250)",  [] { return one(native::clamp(in("u"), -1, 250)); }},
    {"clamp(u, max=-1)",   [] { return one(native::clamp(in("u"), std::nullopt, -1)); }},
    {"clamp(u, 1.5)",      [] { return one(native::clamp(in("u"), 1.5, std::nullopt)); }},
    {"clamp(u, v, v)",     [] { return one(native::clamp(in("u"), in("v"), in("v"))); }},
    {"u += 300",  [] { return one(inplace("u", [](const Tensor& t) { native::binary_(BinaryOp::Add, t, 300); })); }},
    {"u -= 2",    [] { return one(inplace("u", [](const Tensor& t) { native::binary_(BinaryOp::Sub, t, 2); })); }},
    {"u *= -1",   [] { return one(inplace("u", [](const Tensor& t) { native::binary_(BinaryOp::Mul, t, -1); })); }},
    {"u **= 2",   [] { return one(inplace("u", [](const Tensor& t) { native::binary_(BinaryOp::Pow, t, 2); })); }},
    {"u += i * 100", [] { return one(inplace("u", [](const Tensor& t) {
       native::binary_(BinaryOp::Add, t, bin(BinaryOp::Mul, in("i"), 100)); })); }},
    {"i += u",    [] { return one(inplace("i", [](const Tensor& t) { native::binary_(BinaryOp::Add, t, in("u")); })); }},
    {"u += v, alpha 3", [] { return one(inplace("u", [](const Tensor& t) { native::add_scaled_(t, in("v"), 3); })); }},
    {"where(u > 100, u, 0)", [] {
       return one(native::where(bin(BinaryOp::Gt, in("u"), 100), in("u"), tg::scalar_tensor(0, tg::kUInt8))); }},
    {"where(u > 100, u, i)", [] { return one(native::where(bin(BinaryOp::Gt, in("u"), 100), in("u"), in("i"))); }},
    {"cat(u, v)",  [] { return one(native::cat({in("u"), in("v")}, 0)); }},
    {"cat(u, i)",  [] { return one(native::cat({in("u"), in("i")}, 0)); }},
    {"stack(u, v)", [] { return one(native::cat({native::unsqueeze(in("u"), 0), native::unsqueeze(in("v"), 0)}, 0)); }},
    {"index_select(m, 1, [2, 0])", [] { return one(native::index_select(in("m"), 1, tg::tensor({2, 0}))); }},
    {"gather(m, 1, [[2], [0]])",   [] { return one(native::gather(in("m"), 1, tg::tensor({{2}, {0}}))); }},
    {"m^T + 1",      [] { return one(bin(BinaryOp::Add, native::transpose(in("m"), 0, 1), 1)); }},
    {"m[:, 1:] * 2", [] { return one(bin(BinaryOp::Mul, native::slice(in("m"), 1, 1, 3, 1), 2)); }},
    {"m[1] - 129",   [] { return one(bin(BinaryOp::Sub, native::select(in("m"), 0, 1), 129)); }},
  };
  return table;
}

// Each refused call with the message tapegrad gives.
const std::map<std::string, std::pair<std::function<void()>, std::string>>& refusals() {
  static const std::map<std::string, std::pair<std::function<void()>, std::string>> table = {
    {"full 300",   {[] { tg::full({2}, 300, tg::kUInt8); }, "[full] value 300 cannot be converted to type uint8 without overflow"}},
    {"full -256",  {[] { tg::full({2}, -256, tg::kUInt8); }, "[full] value -256 cannot be converted to type uint8 without overflow"}},
    {"full 255.5", {[] { tg::full({2}, 255.5, tg::kUInt8); }, "[full] value 255.5 cannot be converted to type uint8 without overflow"}},
    {"full -0.5",  {[] { tg::full({2}, -0.5, tg::kUInt8); }, "[full] value -0.5 cannot be converted to type uint8 without overflow"}},
    {"full nan",   {[] { tg::full({2}, kNaN, tg::kUInt8); }, "[full] value nan cannot be converted to type uint8 without overflow"}},
    {"tensor([300], uint8)",   {[] { tg::tensor({300}, tg::kUInt8); }, "[tensor] value 300 cannot be converted to type uint8 without overflow"}},
    {"tensor([255.5], uint8)", {[] { tg::tensor({255.5}, tg::kUInt8); }, "[tensor] value 255.5 cannot be converted to type uint8 without overflow"}},
    {"fill_ 300",  {[] { filled(300); }, "[fill_] value 300 cannot be converted to type uint8 without overflow"}},
    {"fill_ 256",  {[] { filled(256); }, "[fill_] value 256 cannot be converted to type uint8 without overflow"}},
    {"fill_ -1.0", {[] { filled(-1.0); }, "[fill_] value -1 cannot be converted to type uint8 without overflow"}},
    {"fill_ 1e10", {[] { filled(1e10); }, "[fill_] value 10000000000 cannot be converted to type uint8 without overflow"}},
    {"fill_ inf",  {[] { filled(kInf); }, "[fill_] value inf cannot be converted to type uint8 without overflow"}},
    {"clamp(u, -1, 300)", {[] { native::clamp(in("u"), -1, 300); }, "[clamp] value 300 cannot be converted to type uint8 without overflow"}},
    {"clamp(u, -256)",    {[] { native::clamp(in("u"), -256, std::nullopt); }, "[clamp] value -256 cannot be converted to type uint8 without overflow"}},
    {"u ** -1",  {[] { bin(BinaryOp::Pow, in("u"), -1); }, "[pow] integers to negative integer powers are not allowed (uint8 tensor ** -1)"}},
    {"u += 1.5", {[] { native::binary_(BinaryOp::Add, in("u"), 1.5); }, "[add_] result type float32 can't be cast to the desired output type uint8"}},
    {"u /= 2",   {[] { native::binary_(BinaryOp::Div, in("u"), 2); }, "[div_] result type float32 can't be cast to the desired output type uint8"}},
    {"u /= v",   {[] { native::binary_(BinaryOp::Div, in("u"), in("v")); }, "[div_] result type float32 can't be cast to the desired output type uint8"}},
    {"u += f32", {[] { native::binary_(BinaryOp::Add, in("u"), native::to(in("i"), tg::kFloat32)); }, "[add_] result type float32 can't be cast to the desired output type uint8"}},
    {"mean(u)",    {[] { native::mean(in("u"), {}, false); }, "[mean] could not infer output dtype: input dtype must be floating point, got uint8 (use .to(kFloat32))"}},
    {"var(u)",     {[] { native::var(in("u"), {}, 1, false); }, "[var] expected a floating point tensor, got uint8"}},
    {"norm(u)",    {[] { native::norm(in("u"), 2, {}, false); }, "[norm] expected a floating point input, got uint8"}},
    {"softmax(u)", {[] { native::softmax(in("u"), 0, false); }, "[softmax] expected a floating point input, got uint8 (pass a dtype, or use .to(kFloat32))"}},
    {"u @ i",      {[] { native::matmul(in("sq"), native::slice(in("i"), 0, 0, 2, 1)); }, "[matmul] expected both operands of one dtype, got uint8 [2, 2] and int64 [2]"}},
    {"arange 0, 2.7, 0.9", {[] { tg::arange(0, 2.7, 0.9, tg::kUInt8); }, "[arange] step must be nonzero (0.9 is 0 in uint8)"}},
    {"randint 0, 257", {[] { tg::randint(0, 257, {3}, tg::kUInt8); }, "[randint] uint8 holds [0, 255]: expected 0 <= low < high <= 256, got low=0, high=257"}},
    {"randint -1, 3",  {[] { tg::randint(-1, 3, {3}, tg::kUInt8); }, "[randint] uint8 holds [0, 255]: expected 0 <= low < high <= 256, got low=-1, high=3"}},
    {"randperm 257",   {[] { tg::randperm(257, tg::kUInt8); }, "[randperm] n=257 is too large for dtype uint8 (at most 256)"}},
    {"index_select(u, 0, u8 index)", {[] { native::index_select(in("u"), 0, native::to(tg::tensor({1, 2, 0}), tg::kUInt8)); }, "[index_select] expected an index of dtype int64, got uint8"}},
  };
  return table;
}
// clang-format on

// "" when got has want's dtype, shape and values (floats within 1e-6 relative, NaN matching NaN).
std::string mismatch(const Tensor& got, const TensorRef& want) {
  if (got.dtype() != want.dtype)
    return fmt::format("dtype {}, PyTorch's {}", tg::dtype_name(got.dtype()), tg::dtype_name(want.dtype));
  if (got.sizes() != want.shape) return fmt::format("shape {}, PyTorch's {}", got.sizes(), want.shape);
  const std::vector<double> values = got.to_vector<double>();
  for (std::size_t i = 0; i < values.size(); ++i) {
    const double g = values[i], w = want.values[i];
    const bool same = g == w || (std::isnan(g) && std::isnan(w)) ||
                      (tg::is_floating(want.dtype) && std::fabs(g - w) <= 1e-6 * std::fabs(w));
    if (!same) return fmt::format("element {}: {} vs PyTorch's {}", i, g, w);
  }
  return "";
}

bool autograd_row(const std::string& name) {
  return std::find(kAutogradRows.begin(), kAutogradRows.end(), name) != kAutogradRows.end();
}

}  // namespace

TEST_CASE("uint8 tensors give PyTorch's values, dtypes and shapes", "[core]") {
  std::size_t repeated = 0;
  for (const ResultRef& r : uint8_refs::kResults) {
    INFO(r.name);
    if (autograd_row(r.name)) continue;
    auto call = calls().find(r.name);
    REQUIRE(call != calls().end());
    const Outputs outputs = call->second();
    REQUIRE(outputs.size() == r.outputs.size());
    for (std::size_t k = 0; k < outputs.size(); ++k) CHECK(mismatch(outputs[k], r.outputs[k]) == "");
    ++repeated;
  }
  CHECK(calls().size() == repeated);  // every call has its reference row
}

TEST_CASE("uint8: what PyTorch refuses is refused, naming the op", "[core][errors]") {
  std::size_t repeated = 0;
  for (const auto& [name, torch_message] : uint8_refs::kRefusals) {
    INFO(name << " (PyTorch: " << torch_message << ")");
    if (autograd_row(name)) continue;
    auto refusal = refusals().find(name);
    REQUIRE(refusal != refusals().end());
    CHECK_THROWS_WITH(refusal->second.first(), refusal->second.second);
    ++repeated;
  }
  CHECK(refusals().size() == repeated);
}

TEST_CASE("uint8's size, name, kind and promotion", "[core]") {
  CHECK(tg::itemsize(tg::kUInt8) == 1);
  CHECK(tg::dtype_name(tg::kUInt8) == "uint8");
  CHECK(tg::dtype_of<std::uint8_t>() == tg::kUInt8);
  CHECK(!tg::is_floating(tg::kUInt8));
  CHECK(!tg::is_floating(tg::kInt64));
  CHECK(tg::is_floating(tg::kFloat32));
  CHECK(tg::is_floating(tg::kFloat64));
  CHECK(tg::is_integral(tg::kUInt8));
  CHECK(tg::is_integral(tg::kInt64));
  CHECK(!tg::is_integral(tg::kFloat32));
  // float64 > float32 > int64 > uint8, as PyTorch's promote_types
  CHECK(tg::promote(tg::kUInt8, tg::kUInt8) == tg::kUInt8);
  CHECK(tg::promote(tg::kUInt8, tg::kInt64) == tg::kInt64);
  CHECK(tg::promote(tg::kInt64, tg::kUInt8) == tg::kInt64);
  CHECK(tg::promote(tg::kUInt8, tg::kFloat32) == tg::kFloat32);
  CHECK(tg::promote(tg::kFloat64, tg::kUInt8) == tg::kFloat64);
  CHECK(tg::dispatch(tg::kUInt8, []<class T>() { return sizeof(T); }) == 1);
}

TEST_CASE("uint8 tensors from and to std::vector<std::uint8_t>, item and views", "[core]") {
  const std::vector<std::uint8_t> bytes = {0, 1, 127, 128, 200, 255};
  Tensor t = tg::tensor(bytes, {2, 3});
  CHECK(t.dtype() == tg::kUInt8);
  CHECK(t.sizes() == Shape{2, 3});
  CHECK(t.to_vector<std::uint8_t>() == bytes);
  CHECK(t.to_vector<std::int64_t>() == std::vector<std::int64_t>{0, 1, 127, 128, 200, 255});
  CHECK(t.data_ptr<std::uint8_t>()[4] == 200);
  CHECK(tg::tensor(bytes).sizes() == Shape{6});
  CHECK(native::select(native::select(t, 0, 1), 0, 2).item<std::uint8_t>() == 255);
  CHECK(native::select(native::select(t, 0, 1), 0, 2).item<int>() == 255);
  CHECK(native::transpose(t, 0, 1).to_vector<std::uint8_t>() == std::vector<std::uint8_t>{0, 128, 1, 200, 127, 255});
  // a write through a view lands in the base
  native::fill_(native::select(t, 1, 0), 9);
  CHECK(t.to_vector<std::uint8_t>() == std::vector<std::uint8_t>{9, 1, 127, 9, 200, 255});
  CHECK(native::reshape(t, {3, 2}).sizes() == Shape{3, 2});
  // a uint8 tensor converts as the int64 it would be: to float and item<double> exact
  CHECK(tg::scalar_tensor(255, tg::kUInt8).item<double>() == 255.0);
  CHECK(tg::tensor({1, 2}, tg::kUInt8).to_vector<std::uint8_t>() == std::vector<std::uint8_t>{1, 2});
}

TEST_CASE("floating values convert to uint8 through int64, without undefined behaviour", "[core]") {
  // What x86's cvttss2si gives, then the low byte: out of int64's range (NaN, ±inf, 1e30) is
  // INT64_MIN, whose low byte is 0; -0.9 truncates to 0, -1.5 to -1 = 255; 2^63 - 2^10 (the
  // largest double below 2^63) keeps its low byte 0.
  const std::vector<double> values = {kNaN, -kInf, kInf, 1e30, -1e30, -0.9, -1.5, 0x1p63 - 1024, 511.99, 256.0};
  const std::vector<std::uint8_t> want = {0, 0, 0, 0, 0, 0, 255, 0, 255, 0};
  CHECK(native::to(tg::tensor(values), tg::kUInt8).to_vector<std::uint8_t>() == want);
  CHECK(native::to(native::to(tg::tensor(values), tg::kFloat32), tg::kUInt8).to_vector<std::uint8_t>() == want);
  CHECK(tg::scalar_tensor(300.0, tg::kFloat32).item<std::uint8_t>() == 44);
}
