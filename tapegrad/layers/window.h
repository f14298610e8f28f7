// Sliding-window geometry shared by conv2d's im2col and the pooling kernels: for each kernel
// offset, the run of outputs whose input lands inside the (padded) plane, so the copy loops need
// no per-element bounds tests. Internal to layers/. Layer: layers.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace tg::detail {

struct Span {
  std::int64_t lo, hi;
};

// For each kernel offset k, the outputs o in [lo, hi) whose input index o·stride − pad + k falls
// inside [0, size). Computed once per call: divisions have no place in the copy loops.
inline std::vector<Span> valid_spans(std::int64_t size, std::int64_t out, std::int64_t stride, std::int64_t pad,
                                     std::int64_t kernel) {
  std::vector<Span> spans(static_cast<std::size_t>(kernel));
  for (std::int64_t k = 0; k < kernel; ++k) {
    std::int64_t first = pad - k, end = size + pad - k;
    std::int64_t hi = end <= 0 ? 0 : std::min(out, (end + stride - 1) / stride);
    std::int64_t lo = first <= 0 ? 0 : (first + stride - 1) / stride;
    spans[static_cast<std::size_t>(k)] = {std::min(lo, hi), hi};
  }
  return spans;
}

}  // namespace tg::detail
