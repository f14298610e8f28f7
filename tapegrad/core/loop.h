// StridedLoop: iteration over K operands that share one shape but have their own strides
// (broadcast operands have stride 0). Dimensions are coalesced first, so contiguous operands
// run as one flat inner loop; the body sees whole innermost rows (n, offsets, inner strides),
// never a per-element index vector. Internal to core's kernels. Layer: core.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "tapegrad/core/parallel.h"
#include "tapegrad/core/shape.h"

namespace tg::detail {

template <std::size_t K>
class StridedLoop {
 public:
  using Offsets = std::array<std::int64_t, K>;

  StridedLoop(const Shape& sizes, const std::array<Shape, K>& strides) {
    numel_ = numel_of(sizes);
    for (std::size_t d = sizes.size(); d-- > 0;) {  // innermost first
      if (sizes[d] == 1) continue;
      if (!sizes_.empty()) {
        bool merge = true;
        for (std::size_t k = 0; k < K; ++k)
          if (strides[k][d] != strides_[k].back() * sizes_.back()) merge = false;
        if (merge) {
          sizes_.back() *= sizes[d];
          continue;
        }
      }
      sizes_.push_back(sizes[d]);
      for (std::size_t k = 0; k < K; ++k) strides_[k].push_back(strides[k][d]);
    }
  }

  std::int64_t numel() const { return numel_; }

  // body(n, offsets, inner_strides) for each innermost row, in order.
  template <class Body>
  void run(Body&& body) const {
    if (numel_ == 0) return;
    run_range(0, outer_count(), body);
  }

  // The same, split across threads when there are at least `grain` elements; bodies must
  // write disjoint outputs.
  template <class Body>
  void run_parallel(Body&& body, std::int64_t grain = kParallelGrain) const {
    if (numel_ == 0) return;
    if (sizes_.size() == 1) {  // one flat row: split the row
      Offsets st{};
      for (std::size_t k = 0; k < K; ++k) st[k] = strides_[k][0];
      parallel_for(0, sizes_[0], numel_, [&](std::int64_t lo, std::int64_t hi) {
        Offsets off{};
        for (std::size_t k = 0; k < K; ++k) off[k] = lo * st[k];
        body(hi - lo, off, st);
      }, grain);
      return;
    }
    parallel_for(0, outer_count(), numel_, [&](std::int64_t lo, std::int64_t hi) { run_range(lo, hi, body); }, grain);
  }

 private:
  std::int64_t outer_count() const {
    std::int64_t n = 1;
    for (std::size_t d = 1; d < sizes_.size(); ++d) n *= sizes_[d];
    return n;
  }

  // Rows [lo, hi) of the outer iteration space.
  template <class Body>
  void run_range(std::int64_t lo, std::int64_t hi, Body& body) const {
    Offsets st{}, off{};
    if (sizes_.empty()) {  // a single element
      if (lo < hi) body(std::int64_t{1}, off, st);
      return;
    }
    std::int64_t n = sizes_[0];
    for (std::size_t k = 0; k < K; ++k) st[k] = strides_[k][0];
    std::size_t nd = sizes_.size();
    // resize, not counter(nd, 0): GCC 12, inlining this into gather, warns of a memset overflow
    // on a path where nd would be 0, which the sizes_.empty() return above rules out.
    std::vector<std::int64_t> counter;
    counter.resize(nd);
    std::int64_t rest = lo;
    for (std::size_t d = 1; d < nd; ++d) {
      counter[d] = rest % sizes_[d];
      rest /= sizes_[d];
      for (std::size_t k = 0; k < K; ++k) off[k] += counter[d] * strides_[k][d];
    }
    for (std::int64_t row = lo; row < hi; ++row) {
      body(n, off, st);
      for (std::size_t d = 1; d < nd; ++d) {  // odometer step
        ++counter[d];
        for (std::size_t k = 0; k < K; ++k) off[k] += strides_[k][d];
        if (counter[d] < sizes_[d]) break;
        for (std::size_t k = 0; k < K; ++k) off[k] -= counter[d] * strides_[k][d];
        counter[d] = 0;
      }
    }
  }

  std::int64_t numel_ = 0;
  Shape sizes_;
  std::array<Shape, K> strides_;
};

}  // namespace tg::detail
