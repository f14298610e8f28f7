// A number given where a tensor could stand (`t * 2.0`, `fill_(1)`). It remembers whether it was
// written as an integer, so that `int64 tensor * 2` stays int64 and `* 2.0` gives float32, as in
// PyTorch. Layer: core.
#pragma once

#include <cstdint>
#include <type_traits>

namespace tg {

class Scalar {
 public:
  template <class T>
    requires(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>)
  Scalar(T v)  // NOLINT: implicit on purpose
      : d_(static_cast<double>(v)), i_(static_cast<std::int64_t>(v)), integral_(std::is_integral_v<T>) {}

  bool is_integral() const { return integral_; }
  double to_double() const { return d_; }
  std::int64_t to_int() const { return integral_ ? i_ : static_cast<std::int64_t>(d_); }
  template <class T>
  T to() const {
    if constexpr (std::is_integral_v<T>) return static_cast<T>(to_int());
    else return static_cast<T>(d_);
  }

 private:
  double d_;
  std::int64_t i_;
  bool integral_;
};

}  // namespace tg
