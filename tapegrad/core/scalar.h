// A number given where a tensor could stand (`t * 2.0`, `fill_(1)`). It remembers whether it was
// written as an integer, so that `int64 tensor * 2` stays int64 and `* 2.0` gives float32, as in
// PyTorch. A floating value becomes an integer only when asked, and only when it fits: NaN, ±inf
// and |x| >= 2^63 throw instead of converting (undefined behaviour in C++), and a uint8 takes
// only what PyTorch's fill_ takes. Layer: core.
#pragma once

#include <cstdint>
#include <string_view>
#include <type_traits>

#include "tapegrad/core/error.h"

namespace tg {

class Scalar {
 public:
  template <class T>
    requires(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>)
  Scalar(T v)  // NOLINT: implicit on purpose
      : d_(static_cast<double>(v)), integral_(std::is_integral_v<T>) {
    if constexpr (std::is_integral_v<T>) i_ = static_cast<std::int64_t>(v);
  }

  bool is_integral() const { return integral_; }
  double to_double() const { return d_; }
  // The value as an int64 (a floating one truncated toward zero); throws naming `op` when a
  // floating value is NaN, infinite or outside int64's range, as PyTorch's checked conversion.
  std::int64_t to_int(std::string_view op = "Scalar") const {
    if (integral_) return i_;
    TG_CHECK(d_ >= -0x1p63 && d_ < 0x1p63, "[{}] value {} cannot be converted to type int64 without overflow", op,
             d_);
    return static_cast<std::int64_t>(d_);
  }
  // The value as a T, checked as PyTorch's fill and full check it (c10's overflows<T>). For
  // uint8: an integer in [-255, 255] (a negative one wraps around: -1 is 255) or a floating value
  // in [0, 255] (truncated); anything else throws naming `op`.
  template <class T>
  T to(std::string_view op = "Scalar") const {
    if constexpr (std::is_same_v<T, std::uint8_t>) {
      TG_CHECK(integral_ ? i_ >= -255 && i_ <= 255 : d_ >= 0 && d_ <= 255,
               "[{}] value {} cannot be converted to type uint8 without overflow", op,
               integral_ ? fmt::format("{}", i_) : fmt::format("{}", d_));
      return static_cast<T>(integral_ ? i_ : static_cast<std::int64_t>(d_));
    } else if constexpr (std::is_integral_v<T>) {
      return static_cast<T>(to_int(op));
    } else {
      return static_cast<T>(d_);
    }
  }

 private:
  double d_;
  std::int64_t i_ = 0;
  bool integral_;
};

}  // namespace tg
