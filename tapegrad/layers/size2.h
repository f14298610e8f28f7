// Size2: a 2-D size (kernel, stride, padding) given as one number for both dims or as {h, w},
// and how PyTorch prints one. Shared by conv2d and pooling. Layer: layers.
#pragma once

#include <cstdint>
#include <string>

#include <fmt/format.h>

namespace tg {

// A 2-D size (kernel, stride, padding): one number for both dims, or {h, w}.
struct Size2 {
  Size2(std::int64_t both) : h(both), w(both) {}  // NOLINT: implicit on purpose
  Size2(std::int64_t h_, std::int64_t w_) : h(h_), w(w_) {}
  std::int64_t h, w;
  bool operator==(const Size2&) const = default;
};

// "(h, w)", as Conv2d's repr prints every size.
inline std::string format_size2(const Size2& s) { return fmt::format("({}, {})", s.h, s.w); }
// One number when both dims agree, as the pooling modules' reprs print them.
inline std::string format_pool_size(const Size2& s) { return s.h == s.w ? fmt::format("{}", s.h) : format_size2(s); }

}  // namespace tg
