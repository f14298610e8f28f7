// uint8 through the Tensor methods and operators (autograd's layer): the rows of
// tests/core/uint8_refs.inc that need them (masked_fill, requires_grad_), and a selection of the
// others repeated through the methods users call, against the same PyTorch 1.13 values. Nothing
// is recorded: a uint8 tensor never requires grad. Tags [autograd] [errors].
#include <catch2/catch.hpp>

#include <functional>
#include <map>
#include <string>

#include "tapegrad.h"

#include "../core/uint8_refs.h"

using tg::Tensor;

namespace {

Tensor u() { return tg::tensor(std::vector<std::uint8_t>{1, 200, 255}); }
Tensor v() { return tg::tensor(std::vector<std::uint8_t>{2, 201, 0}); }

const uint8_refs::ResultRef* row(const std::string& name) {
  for (const auto& r : uint8_refs::kResults)
    if (r.name == name) return &r;
  return nullptr;
}

// clang-format off
const std::map<std::string, std::function<std::vector<Tensor>()>>& calls() {
  static const std::map<std::string, std::function<std::vector<Tensor>()>> table = {
    {"masked_fill(u > 100, -1)",  [] { return std::vector{u().masked_fill(u().gt(100), -1)}; }},
    {"masked_fill(u > 100, 1.5)", [] { return std::vector{u().masked_fill(u().gt(100), 1.5)}; }},
    {"u + 300",     [] { return std::vector{u() + 300}; }},
    {"2 - u",       [] { return std::vector{2 - u()}; }},
    {"-u",          [] { return std::vector{-u()}; }},
    {"u * u",       [] { return std::vector{u() * u()}; }},
    {"u - v",       [] { return std::vector{u() - v()}; }},
    {"u / 2",       [] { return std::vector{u() / 2}; }},
    {"u ** 2",      [] { return std::vector{u().pow(2)}; }},
    {"u < -1",      [] { return std::vector{u().lt(-1)}; }},
    {"abs(u)",      [] { return std::vector{u().abs()}; }},
    {"exp(u)",      [] { return std::vector{u().exp()}; }},
    {"sum(u)",      [] { return std::vector{u().sum()}; }},
    {"max(u)",      [] { return std::vector{u().max()}; }},
    {"argmax(u)",   [] { return std::vector{u().argmax()}; }},
    {"u to int64",  [] { return std::vector{u().to(tg::kInt64)}; }},
    {"clamp(u, 2, 250)", [] { return std::vector{u().clamp(2, 250)}; }},
    {"u += 300",    [] { Tensor t = u().clone(); t.add_(300); return std::vector{t}; }},
    {"cat(u, v)",   [] { return std::vector{tg::cat({u(), v()})}; }},
    {"stack(u, v)", [] { return std::vector{tg::stack({u(), v()})}; }},
    {"sort(dup)",   [] {
       auto [values, indices] = tg::tensor(std::vector<std::uint8_t>{3, 200, 3, 0, 200}).sort();
       return std::vector{values, indices}; }},
  };
  return table;
}
// clang-format on

}  // namespace

TEST_CASE("uint8 through the Tensor methods gives PyTorch's values and records nothing", "[autograd]") {
  for (const auto& [name, call] : calls()) {
    INFO(name);
    REQUIRE(row(name) != nullptr);
    const uint8_refs::ResultRef& want = *row(name);
    const std::vector<Tensor> got = call();
    REQUIRE(got.size() == want.outputs.size());
    for (std::size_t k = 0; k < got.size(); ++k) {
      CHECK(got[k].dtype() == want.outputs[k].dtype);
      CHECK(got[k].sizes() == want.outputs[k].shape);
      const std::vector<double> values = got[k].to_vector<double>();
      REQUIRE(values.size() == want.outputs[k].values.size());
      for (std::size_t i = 0; i < values.size(); ++i)
        CHECK(values[i] == Approx(want.outputs[k].values[i]).epsilon(1e-6));
      CHECK(got[k].grad_fn_name().empty());
    }
  }
}

TEST_CASE("uint8 tensors cannot require grad, and masked_fill checks its value", "[autograd][errors]") {
  auto refusal = [](const std::string& name) {
    for (const auto& [key, message] : uint8_refs::kRefusals)
      if (key == name) return std::string(message);
    return std::string();
  };
  REQUIRE(refusal("requires_grad_") == "only Tensors of floating point dtype can require gradients");
  Tensor t = u();
  CHECK_THROWS_WITH(t.requires_grad_(),
                    "[requires_grad_] only tensors of floating point dtype can require gradients, got uint8");
  CHECK_FALSE(t.requires_grad());
  REQUIRE(refusal("masked_fill(u > 100, 300)") == "value cannot be converted to type uint8_t without overflow");
  CHECK_THROWS_WITH(t.masked_fill(t.gt(100), 300),
                    "[masked_fill] value 300 cannot be converted to type uint8 without overflow");
  // a float tensor's gradient does not flow into the uint8 it was converted from
  Tensor x = tg::tensor({1.5, 300.0}).requires_grad_();
  Tensor y = x.to(tg::kUInt8);
  CHECK(y.to_vector<std::uint8_t>() == std::vector<std::uint8_t>{1, 44});
  CHECK_FALSE(y.requires_grad());
}
