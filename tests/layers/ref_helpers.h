// Helpers shared by the layer tests that compare against PyTorch's reference values
// (bn_loss_refs.inc): exact tensors from value lists, and a described mismatch. Tests only.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "tapegrad/core/native.h"
#include "tapegrad.h"

namespace ref {

// A tensor of `dtype` holding `values` exactly (float32-representable); undefined for an empty list.
inline tg::Tensor make(const std::vector<double>& values, const tg::Shape& shape, tg::DType dtype,
                       bool requires_grad = false) {
  if (values.empty()) return {};
  tg::Tensor t = tg::native::to(tg::tensor(values, shape), dtype);
  if (requires_grad) t.requires_grad_();
  return t;
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

}  // namespace ref
