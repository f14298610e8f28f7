// Printing a tensor as PyTorch prints it, character for character: precision 4, fixed or
// scientific chosen as PyTorch chooses, integer-valued floats as `1.`, summarization past 1000
// elements (edge items 3), 80-column line wrapping, nested brackets, and the suffixes
// `dtype=float64`, `requires_grad=True`, `grad_fn=<...>`. Layer: core.
#pragma once

#include <fmt/format.h>

#include <iosfwd>
#include <string>

#include "tapegrad/core/tensor.h"

namespace tg {

std::string to_string(const Tensor& t);
std::ostream& operator<<(std::ostream& os, const Tensor& t);

}  // namespace tg

template <>
struct fmt::formatter<tg::Tensor> : fmt::formatter<std::string> {
  template <class Context>
  auto format(const tg::Tensor& t, Context& ctx) const {
    return fmt::formatter<std::string>::format(tg::to_string(t), ctx);
  }
};
