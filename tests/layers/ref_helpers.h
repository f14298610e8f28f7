// Helpers shared by the layer tests: exact tensors from PyTorch's reference value lists
// (bn_loss_refs.inc, conv_pool_refs.inc), a described mismatch, element-wise checks, and the
// float64 gradcheck table each family runs over its functions. Tests only.
#pragma once

#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "tapegrad/core/native.h"
#include "tapegrad.h"

// The names every layer family's test uses unqualified (a test header may say `using`).
using Catch::Contains;
using tg::Shape;
using tg::Tensor;
namespace nn = tg::nn;

namespace ref {

// A tensor of `dtype` holding `values` exactly (float32-representable); undefined for an empty list.
inline tg::Tensor make(const std::vector<double>& values, const tg::Shape& shape, tg::DType dtype,
                       bool requires_grad = false) {
  if (values.empty()) return {};
  tg::Tensor t = tg::native::to(tg::tensor(values, shape), dtype);
  if (requires_grad) t.requires_grad_();
  return t;
}

// A seeded [2, 3, 6, 7] input that is not contiguous (a permuted [2, 6, 7, 3]): kernels must read
// it through its strides, as they read its contiguous copy.
inline tg::Tensor permuted_nchw_input() {
  tg::manual_seed(5);
  tg::Tensor x = tg::randn({2, 6, 7, 3}).permute({0, 3, 1, 2});
  REQUIRE_FALSE(x.is_contiguous());
  return x;
}

// "" when every element is within tol·(1 + |want|) of want, else the first mismatch described.
inline std::string mismatch(const tg::Tensor& got_t, const std::vector<double>& want, double tol) {
  if (!got_t.defined()) return want.empty() ? "" : "undefined tensor, expected values";
  std::vector<double> got = got_t.to_vector<double>();
  if (got.size() != want.size()) return fmt::format("{} values, expected {}", got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    if (!(std::fabs(got[i] - want[i]) <= tol * (1 + std::fabs(want[i]))))
      return fmt::format("element {}: {} vs PyTorch's {}", i, got[i], want[i]);
  return "";
}

inline double tolerance(tg::DType dtype) { return dtype == tg::kFloat32 ? 2e-5 : 1e-10; }

// Shape, dtype and values (within ref::tolerance) of a result against PyTorch's.
inline void check_ref(const tg::Tensor& t, const tg::Shape& shape, const std::vector<double>& want, tg::DType dtype) {
  REQUIRE(t.defined());
  CHECK(t.sizes() == shape);
  CHECK(t.dtype() == dtype);
  CHECK(mismatch(t, want, tolerance(dtype)) == "");
}

// Every element of t within tol of want.
inline void check_close(const tg::Tensor& t, const std::vector<double>& want, double tol) {
  std::vector<double> got = t.to_vector<double>();
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want[i]).margin(tol));
}

// One row of a family's gradcheck table: a function of float64 inputs of the given shapes, and
// the grad_fn its result records.
using Inputs = std::vector<tg::Tensor>;
struct GradcheckRow {
  const char* name;
  std::function<tg::Tensor(const Inputs&)> fn;
  std::vector<tg::Shape> inputs;
  const char* grad_fn;
};

// Each row on random float64 inputs (seed 2): its grad_fn's name, then a gradcheck.
inline void check_gradcheck_rows(const std::vector<GradcheckRow>& rows) {
  for (const GradcheckRow& row : rows) {
    INFO(row.name);
    tg::manual_seed(2);
    Inputs inputs;
    for (const tg::Shape& s : row.inputs) inputs.push_back(tg::randn(s, tg::kFloat64).requires_grad_());
    CHECK(row.fn(inputs).grad_fn_name() == row.grad_fn);
    tg::autograd::GradcheckResult result = tg::autograd::gradcheck(row.fn, inputs);
    CHECK(result.message == "");
    CHECK(result.ok);
  }
}

}  // namespace ref
