// Math on eight- and sixteen-float vectors (GCC vector extensions) for the kernels under
// simd::with_isa: exp and sigmoid, shared by core/elementwise.cpp's rows and by fused kernels in
// layers/ that apply them to a vector still in registers. Every function is TG_SIMD_INLINE, so it is
// compiled for the target of the with_isa body that calls it (two SSE registers per eight-float
// vector on the portable build; sixteen-float vectors are for Isa::Avx512 bodies only, one zmm).
// Layer: core; knows nothing of tensors.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "tapegrad/core/simd.h"

// The vectors are only ever passed between always-inlined functions, never across a call between
// functions compiled for different targets (what -Wpsabi warns about, at every call site, so this
// stays off for the including file).
#pragma GCC diagnostic ignored "-Wpsabi"

namespace tg::simd {

using F32x4 = float __attribute__((vector_size(16)));  // the halves that shuffles of F32x8 produce
using F32x8 = float __attribute__((vector_size(32)));
using I32x8 = std::int32_t __attribute__((vector_size(32)));
using F32x16 = float __attribute__((vector_size(64)));
using I32x16 = std::int32_t __attribute__((vector_size(64)));
constexpr std::int64_t kF32x8Lanes = 8, kF32x16Lanes = 16;

// A vector V of floats from p and back, unaligned.
template <class V>
TG_SIMD_INLINE V load_lanes(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class V>
TG_SIMD_INLINE void store_lanes(float* p, const V& v) {
  std::memcpy(p, &v, sizeof v);
}
TG_SIMD_INLINE F32x4 load_f32x4(const float* p) { return load_lanes<F32x4>(p); }
TG_SIMD_INLINE void store_f32x4(float* p, const F32x4& v) { store_lanes(p, v); }
TG_SIMD_INLINE F32x8 load_f32x8(const float* p) { return load_lanes<F32x8>(p); }
TG_SIMD_INLINE void store_f32x8(float* p, const F32x8& v) { store_lanes(p, v); }
TG_SIMD_INLINE F32x8 broadcast_f32x8(float v) { return F32x8{} + v; }
TG_SIMD_INLINE F32x16 load_f32x16(const float* p) { return load_lanes<F32x16>(p); }

// The integer vector of a float vector's width, for its bits.
template <class V>
struct IntLanes;
template <>
struct IntLanes<F32x8> {
  using type = I32x8;
};
template <>
struct IntLanes<F32x16> {
  using type = I32x16;
};

// The first `width` lanes of v (fewer than it has) to p, through a copy on the stack: a
// variable-length memcpy would be a call into libc.
template <class Vec>
TG_SIMD_INLINE void store_first_lanes(float* p, const Vec& v, std::int64_t width) {
  float lanes[sizeof(Vec) / sizeof(float)];
  std::memcpy(lanes, &v, sizeof v);
  for (std::int64_t i = 0; i < width; ++i) p[i] = lanes[i];
}

// mask ? a : b in each lane, for a mask of all ones or all zeros.
TG_SIMD_INLINE F32x8 select_f32x8(const I32x8& mask, const F32x8& a, const F32x8& b) {
  return reinterpret_cast<F32x8>((reinterpret_cast<I32x8>(a) & mask) | (reinterpret_cast<I32x8>(b) & ~mask));
}

// exp(−|x|) (0 below −104, NaN kept), to about an ulp, subnormal results included.
// −|x| = k·ln2 + r, |r| <= ln2/2 (ln2 in two parts so that k·ln2hi is exact); exp(r) as
// 1 + r + r²·q(r), q of degree 4 fitted for the least relative error on that interval (3e-9).
// k + 151 lands in the low mantissa bits of −|x|·log2e + 1.5·2^23 + 151, and those bits shifted up
// 23 are 2^(k+24), a normal power of two for k >= −150; p·2^(k+24) is exact, and the last ·2^-24
// rounds a subnormal result once.
// The AVX2 version clamps and selects with a compare and a blend; GCC 12 lowers a `?:` of eight lanes
// one lane at a time on SSE2, so the portable one does it on the bits with masks made by shifts. The
// AVX-512 one (GCC builds) clamps with vmaxps (GCC made the `?:` a compare, a copy and a masked OR)
// and scales with vscalefps, which GCC reaches only through intrinsics that cannot be inlined into
// these functions (they carry no target of their own): four operations of about twenty fewer,
// sigmoid 12% faster, the same bits (bench/sigmoid_all_floats: every float against the AVX2 version).
// Sixteen-float vectors only with Isa::Avx512; one algorithm for both widths, the same bits per lane.
// GCC places an `asm` with vector operands where the helper is inlined (an AVX-512 body); clang
// allocates its registers in the helper itself, which has no AVX-512, and fails. The clang builds
// (the sanitizers and the fuzzers) take the AVX2 expressions on sixteen lanes: the same bits.
#if defined(__clang__)
inline constexpr bool kAsmAvx512 = false;
#else
inline constexpr bool kAsmAvx512 = true;
#endif

template <Isa I, class V>
TG_SIMD_INLINE V exp_neg_abs(const V& v) {
  using IV = typename IntLanes<V>::type;
  static_assert(I == Isa::Avx512 || sizeof(V) == sizeof(F32x8), "sixteen-float vectors need AVX-512");
  constexpr float kLog2e = 1.44269504088896341f, kShift = 0x1.8p23f + 151.0f;
  constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
  constexpr std::int32_t kSign = std::int32_t(0x80000000u), kMax = 0x42d00000, kInf = 0x7f800000;  // 104.0f, inf
  V x;
  const V lo = V{} - 104.0f;
  if constexpr (I == Isa::Portable) {
    const IV a = reinterpret_cast<IV>(v) & ~kSign;
    const IV clamp = ((kMax - a) >> 31) & ~((kInf - a) >> 31);  // a > 104 and not NaN
    x = reinterpret_cast<V>((a & ~clamp) | (kMax & clamp) | kSign);
  } else if constexpr (kAsmAvx512 && I == Isa::Avx512) {
    x = reinterpret_cast<V>(reinterpret_cast<IV>(v) | kSign);
    asm("vmaxps %1, %2, %0" : "=v"(x) : "v"(x), "v"(lo));  // lo > x ? lo : x, so NaN stays
  } else {
    x = reinterpret_cast<V>(reinterpret_cast<IV>(v) | kSign);
    x = x < lo ? lo : x;  // NaN compares false and stays
  }
  const V shifted = x * kLog2e + kShift;  // k + 151 in its low mantissa bits
  const V kf = shifted - kShift;
  const V r = (x - kf * kLn2Hi) - kf * kLn2Lo;
  V p = V{} + 0x1.6a2434p-10f;
  p = p * r + 0x1.1239e2p-7f;
  p = p * r + 0x1.5558f2p-5f;
  p = p * r + 0x1.555492p-3f;
  p = p * r + 0x1.fffffcp-2f;
  p = p * (r * r) + r + 1.0f;
  if constexpr (kAsmAvx512 && I == Isa::Avx512) {
    // p·2^k in one instruction, rounded once: the bits of the two products below.
    V e;
    asm("vscalefps %2, %1, %0" : "=v"(e) : "v"(p), "v"(kf));
    return e;
  } else {
    return p * reinterpret_cast<V>(reinterpret_cast<IV>(shifted) << 23) * 0x1p-24f;
  }
}

// sigmoid(x) = 1/(1 + e^-x), computed as (x < 0 ? e : 1)/(1 + e) with e = exp(−|x|) <= 1: nothing
// overflows, so x below −88 gives its subnormal value rather than 0; ±inf give 1 and 0, NaN stays
// NaN. At most 2 ulps from the float64 value, rounded, over all 2^32 floats (tests/core/
// test_exp_simd.cpp). One IEEE division, no approximate reciprocal: the versions differ only where
// FMA contraction rounds differently.
template <Isa I, class V>
TG_SIMD_INLINE V sigmoid(const V& x) {
  using IV = typename IntLanes<V>::type;
  const V e = exp_neg_abs<I>(x);
  const V one = V{} + 1.0f;
  const IV bits = reinterpret_cast<IV>(x);
  V numerator;  // on the sign bit: −0 gives e = 1, so 1/2 either way
  if constexpr (I == Isa::Portable) numerator = select_f32x8(bits >> 31, e, one);
  else numerator = bits < 0 ? e : one;
  return numerator / (one + e);
}

// o[i] = sigmoid(x[i]) for n floats (o may be x), in vectors of 16 floats with AVX-512 and 8
// otherwise: two vectors at a time (their independent chains of FMAs overlap), then one, then the
// tail through a padded vector.
template <Isa I>
TG_SIMD_INLINE void sigmoid_f32(float* o, const float* x, std::int64_t n) {
  using V = std::conditional_t<I == Isa::Avx512, F32x16, F32x8>;
  constexpr std::int64_t lanes = sizeof(V) / sizeof(float);
  std::int64_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    const V a = sigmoid<I>(load_lanes<V>(x + i)), b = sigmoid<I>(load_lanes<V>(x + i + lanes));
    store_lanes(o + i, a);
    store_lanes(o + i + lanes, b);
  }
  for (; i + lanes <= n; i += lanes) store_lanes(o + i, sigmoid<I>(load_lanes<V>(x + i)));
  if (i < n) {
    float tail[lanes] = {};
    const std::size_t bytes = sizeof(float) * static_cast<std::size_t>(n - i);
    std::memcpy(tail, x + i, bytes);
    store_lanes(tail, sigmoid<I>(load_lanes<V>(tail)));
    std::memcpy(o + i, tail, bytes);
  }
}

}  // namespace tg::simd
