// Element types of a tensor, PyTorch's promotion rule, and dispatch from a runtime dtype to a
// compile-time element type. Layer: core. Knows nothing of the tape.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>
#include <type_traits>

namespace tg {

enum class DType : std::uint8_t { Float32, Float64, Int64, UInt8 };
inline constexpr DType kFloat32 = DType::Float32;
inline constexpr DType kFloat64 = DType::Float64;
inline constexpr DType kInt64 = DType::Int64;
inline constexpr DType kUInt8 = DType::UInt8;  // torch.uint8: arithmetic wraps around modulo 256

constexpr std::size_t itemsize(DType d) { return d == kUInt8 ? 1 : d == kFloat32 ? 4 : 8; }
constexpr bool is_floating(DType d) { return d == kFloat32 || d == kFloat64; }
constexpr bool is_integral(DType d) { return d == kInt64 || d == kUInt8; }
constexpr std::string_view dtype_name(DType d) {
  return d == kFloat32 ? "float32" : d == kFloat64 ? "float64" : d == kInt64 ? "int64" : "uint8";
}

template <class T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>) return kFloat32;
  else if constexpr (std::is_same_v<T, double>) return kFloat64;
  else if constexpr (std::is_same_v<T, std::uint8_t>) return kUInt8;
  else {
    static_assert(std::is_same_v<T, std::int64_t>, "tapegrad tensors hold float, double, int64_t or uint8_t");
    return kInt64;
  }
}

// PyTorch's rule for two tensor operands: float64 > float32 > int64 > uint8.
constexpr DType promote(DType a, DType b) {
  if (a == kFloat64 || b == kFloat64) return kFloat64;
  if (a == kFloat32 || b == kFloat32) return kFloat32;
  if (a == kInt64 || b == kInt64) return kInt64;
  return kUInt8;
}

// One element converted from S to D: static_cast, except that a floating value goes to an integer
// type through int64 as x86's conversion instruction and so PyTorch on x86 do: a value outside
// int64's range (NaN and ±inf included) is INT64_MIN, where a plain cast is undefined behaviour,
// and a narrower type keeps the low bits (300.0 -> 44 and -1.0 -> 255 in uint8).
template <class D, class S>
constexpr D convert_element(S v) {
  if constexpr (std::is_integral_v<D> && std::is_floating_point_v<S>) {
    constexpr std::int64_t kOutOfRange = std::numeric_limits<std::int64_t>::min();
    return static_cast<D>(v >= S(-0x1p63) && v < S(0x1p63) ? static_cast<std::int64_t>(v) : kOutOfRange);
  }
  return static_cast<D>(v);
}

// Calls f.template operator()<T>() with T the element type of d.
template <class F>
decltype(auto) dispatch(DType d, F&& f) {
  switch (d) {
    case kFloat32: return f.template operator()<float>();
    case kFloat64: return f.template operator()<double>();
    case kUInt8: return f.template operator()<std::uint8_t>();
    default: return f.template operator()<std::int64_t>();
  }
}

// The same, for the floating types only (the caller has checked d).
template <class F>
decltype(auto) dispatch_floating(DType d, F&& f) {
  if (d == kFloat64) return f.template operator()<double>();
  return f.template operator()<float>();
}

}  // namespace tg
