// PyTorch 1.13's uint8 results and refusals (uint8_refs.inc, from scripts/gen_uint8_refs.py), for
// tests/core/test_uint8.cpp (tg::native) and tests/autograd/test_uint8_ops.cpp (Tensor methods).
// Layer: tests.
#pragma once

#include <limits>
#include <utility>
#include <vector>

#include "tapegrad/core/tensor.h"

namespace uint8_refs {

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
inline constexpr double kInf = std::numeric_limits<double>::infinity();

struct TensorRef {
  tg::DType dtype;
  tg::Shape shape;
  std::vector<double> values;
};
struct ResultRef {
  const char* name;
  std::vector<TensorRef> outputs;
};

}  // namespace uint8_refs

#include "uint8_refs.inc"
