// The 2×2, stride 2, unpadded average pool of one [H, W] plane and its backward: the kernels of
// avg_pool2d's common case, shared with batch_norm_act, which pools each normalized and activated
// plane while it is still in L1. Internal to layers/; call them inside simd::with_isa bodies so
// that the float rows compile for the running instruction set. Layer: layers.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "tapegrad/core/simd.h"
#include "tapegrad/core/simd_math.h"

namespace tg::detail {

// Float rows on vectors: eight (then four) outputs at a time from 16 (8) floats of each of the two
// input rows, split into even and odd columns by shuffles. The sums run in the scalar loop's order,
// x00 + x01 + x10 + x11, so every version gives the same bits.

// y[ow] = (r0[2ow] + r0[2ow + 1] + r1[2ow] + r1[2ow + 1]) · 0.25 for ow < OW.
TG_SIMD_INLINE void avg_pool_2x2_row(float* y, const float* r0, const float* r1, std::int64_t OW) {
  using simd::F32x4;
  using simd::F32x8;
  std::int64_t ow = 0;
  for (; ow + 8 <= OW; ow += 8) {
    const F32x8 a0 = simd::load_f32x8(r0 + 2 * ow), a1 = simd::load_f32x8(r0 + 2 * ow + 8);
    const F32x8 b0 = simd::load_f32x8(r1 + 2 * ow), b1 = simd::load_f32x8(r1 + 2 * ow + 8);
    const F32x8 ae = __builtin_shufflevector(a0, a1, 0, 2, 4, 6, 8, 10, 12, 14);
    const F32x8 ao = __builtin_shufflevector(a0, a1, 1, 3, 5, 7, 9, 11, 13, 15);
    const F32x8 be = __builtin_shufflevector(b0, b1, 0, 2, 4, 6, 8, 10, 12, 14);
    const F32x8 bo = __builtin_shufflevector(b0, b1, 1, 3, 5, 7, 9, 11, 13, 15);
    simd::store_f32x8(y + ow, (ae + ao + be + bo) * 0.25f);
  }
  for (; ow + 4 <= OW; ow += 4) {
    const F32x4 a0 = simd::load_f32x4(r0 + 2 * ow), a1 = simd::load_f32x4(r0 + 2 * ow + 4);
    const F32x4 b0 = simd::load_f32x4(r1 + 2 * ow), b1 = simd::load_f32x4(r1 + 2 * ow + 4);
    const F32x4 ae = __builtin_shufflevector(a0, a1, 0, 2, 4, 6), ao = __builtin_shufflevector(a0, a1, 1, 3, 5, 7);
    const F32x4 be = __builtin_shufflevector(b0, b1, 0, 2, 4, 6), bo = __builtin_shufflevector(b0, b1, 1, 3, 5, 7);
    simd::store_f32x4(y + ow, (ae + ao + be + bo) * 0.25f);
  }
  for (; ow < OW; ++ow) y[ow] = (r0[2 * ow] + r0[2 * ow + 1] + r1[2 * ow] + r1[2 * ow + 1]) * 0.25f;
}

// The pool of one row pair held in VP sixteen-float vectors (AVX-512 bodies only), rows of 8·VP
// floats (W = 8 or 24) one after the other: VP = 3 is row 0's columns 0-15, its 16-23 and row 1's 0-7,
// row 1's 8-23; VP = 1 is row 0's 8 columns and row 1's. y[ow] for ow < 4·VP, in avg_pool_2x2_row's
// sum order; each row's even and odd columns from one two-vector permute (vpermt2ps) each.
template <int VP>
TG_SIMD_INLINE void avg_pool_2x2_row_pair(float* y, const simd::F32x16* v) {
  using simd::F32x16;
  using simd::F32x4;
  static_assert(VP == 1 || VP == 3, "rows of 8 or 24 floats");
  if constexpr (VP == 3) {
    const F32x16 ae = __builtin_shufflevector(v[0], v[1], 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 0, 0, 0, 0);
    const F32x16 ao = __builtin_shufflevector(v[0], v[1], 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 0, 0, 0, 0);
    const F32x16 be = __builtin_shufflevector(v[1], v[2], 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 0, 0, 0, 0);
    const F32x16 bo = __builtin_shufflevector(v[1], v[2], 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31, 0, 0, 0, 0);
    const F32x16 mean = (ae + ao + be + bo) * 0.25f;
    simd::store_f32x8(y, __builtin_shufflevector(mean, mean, 0, 1, 2, 3, 4, 5, 6, 7));
    simd::store_f32x4(y + 8, __builtin_shufflevector(mean, mean, 8, 9, 10, 11));
  } else {
    const F32x4 ae = __builtin_shufflevector(v[0], v[0], 0, 2, 4, 6);
    const F32x4 ao = __builtin_shufflevector(v[0], v[0], 1, 3, 5, 7);
    const F32x4 be = __builtin_shufflevector(v[0], v[0], 8, 10, 12, 14);
    const F32x4 bo = __builtin_shufflevector(v[0], v[0], 9, 11, 13, 15);
    simd::store_f32x4(y, (ae + ao + be + bo) * 0.25f);
  }
}

// r0[2ow] = r0[2ow + 1] = r1[2ow] = r1[2ow + 1] = dy[ow] · 0.25 for ow < OW.
TG_SIMD_INLINE void avg_pool_2x2_backward_row(float* r0, float* r1, const float* dy, std::int64_t OW) {
  using simd::F32x4;
  using simd::F32x8;
  std::int64_t ow = 0;
  for (; ow + 8 <= OW; ow += 8) {
    const F32x8 d = simd::load_f32x8(dy + ow) * 0.25f;
    const F32x8 lo = __builtin_shufflevector(d, d, 0, 0, 1, 1, 2, 2, 3, 3);
    const F32x8 hi = __builtin_shufflevector(d, d, 4, 4, 5, 5, 6, 6, 7, 7);
    simd::store_f32x8(r0 + 2 * ow, lo);
    simd::store_f32x8(r0 + 2 * ow + 8, hi);
    simd::store_f32x8(r1 + 2 * ow, lo);
    simd::store_f32x8(r1 + 2 * ow + 8, hi);
  }
  for (; ow + 4 <= OW; ow += 4) {
    const F32x4 d = simd::load_f32x4(dy + ow) * 0.25f;
    const F32x4 lo = __builtin_shufflevector(d, d, 0, 0, 1, 1), hi = __builtin_shufflevector(d, d, 2, 2, 3, 3);
    simd::store_f32x4(r0 + 2 * ow, lo);
    simd::store_f32x4(r0 + 2 * ow + 4, hi);
    simd::store_f32x4(r1 + 2 * ow, lo);
    simd::store_f32x4(r1 + 2 * ow + 4, hi);
  }
  for (; ow < OW; ++ow) r0[2 * ow] = r0[2 * ow + 1] = r1[2 * ow] = r1[2 * ow + 1] = dy[ow] * 0.25f;
}

// y [H/2, W/2] (sides rounded down) = the mean of each 2×2 window of x [H, W]; an odd side's last
// row or column is in no window.
template <class T>
TG_SIMD_INLINE void avg_pool_2x2_plane(T* y, const T* x, std::int64_t H, std::int64_t W) {
  const std::int64_t OH = H / 2, OW = W / 2;
  for (std::int64_t oh = 0; oh < OH; ++oh) {
    const T *r0 = x + 2 * oh * W, *r1 = r0 + W;
    T* yrow = y + oh * OW;
    if constexpr (std::is_same_v<T, float>) {
      avg_pool_2x2_row(yrow, r0, r1, OW);
    } else {
      for (std::int64_t ow = 0; ow < OW; ++ow)
        yrow[ow] = (r0[2 * ow] + r0[2 * ow + 1] + r1[2 * ow] + r1[2 * ow + 1]) * T(0.25);
    }
  }
}

// Each x is in at most one window, with weight 1/4: dx [H, W] = dy [H/2, W/2] · 1/4 spread over its
// window, and 0 on an odd side's last row or column.
template <class T>
TG_SIMD_INLINE void avg_pool_2x2_backward_plane(T* dx, const T* dy, std::int64_t H, std::int64_t W) {
  const std::int64_t OH = H / 2, OW = W / 2;
  for (std::int64_t oh = 0; oh < OH; ++oh) {
    T *r0 = dx + 2 * oh * W, *r1 = r0 + W;
    const T* dyrow = dy + oh * OW;
    if constexpr (std::is_same_v<T, float>) {
      avg_pool_2x2_backward_row(r0, r1, dyrow, OW);
    } else {
      for (std::int64_t ow = 0; ow < OW; ++ow)
        r0[2 * ow] = r0[2 * ow + 1] = r1[2 * ow] = r1[2 * ow + 1] = dyrow[ow] * T(0.25);
    }
    if (W % 2) r0[W - 1] = r1[W - 1] = T(0);
  }
  if (H % 2) std::fill(dx + (H - 1) * W, dx + H * W, T(0));
}

}  // namespace tg::detail
