// The stride-1 float32 convolution kernels of layers/conv2d_direct.h: register tiles of vectors
// along the output width (eight lanes; sixteen over flattened positions with AVX-512) or, with
// AVX-512 and groups of 16 filters, over filters; no im2col columns. Layer: layers; must not depend
// on modules.
#include "tapegrad/layers/conv2d_direct.h"

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "tapegrad/core/parallel.h"
#include "tapegrad/core/simd.h"
#include "tapegrad/core/simd_math.h"
#include "tapegrad/core/tensor.h"
#include "tapegrad/layers/avg_pool_2x2.h"

// Why direct (measured at LeNet's shapes, batch 256, one thread): im2col + OpenBLAS ran conv1 at 29
// and conv2 at 40 GFLOP/s, a third of what a core can do, because the columns are 25-150 times the
// input and OpenBLAS is slow at such skinny products. Here every product is an FMA into a register
// that stays there for the whole reduction, and x, dy and the weights are read from L1.
//
// One version of each kernel per instruction set of core/simd.h (tests run them all). The AVX2 one
// fills the 16 ymm registers with a tile's accumulators; the portable one computes the same sums
// with each vector split in two SSE registers; the AVX-512 forward, the backward for groups of 16
// filters, and the weight gradient for most other shapes have tiles of their own (the sections marked
// AVX-512), whose 18-25 accumulators use the 32 zmm registers. Everything below a kernel's entry is
// always inlined into it, so that it is compiled for the entry's target.
#define TG_UNROLL _Pragma("GCC unroll 16")

namespace tg::detail {

namespace {

using simd::Isa;
using simd::load_f32x8;
using simd::store_f32x8;
using V8 = simd::F32x8;
constexpr std::int64_t kLanes = simd::kF32x8Lanes;

// The accumulators one tile keeps in vector registers: 12 of the 16 ymm registers, the other 4 for
// the x or dy vectors and the broadcast weights that each step of the reduction loads.
constexpr std::int64_t kTileAccumulators = 12;

TG_SIMD_INLINE float lane_sum(const V8& v) {
  return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

// Where the kernels read x and dy and accumulate dx. x and dx: planes of XH rows of XW floats, the
// image at (PH, PW); dy: planes of OH rows of DW = OW rounded up to whole vectors. Row lanes past OW
// read x columns that exist (XW = DW + KW − 1) and dy zeros, so no tile needs a bounds test. With no
// padding and OW a multiple of 8 that is the tensors' own layout, used in place (LeNet's case);
// otherwise each sample is copied into padded scratch first.
struct Layout {
  std::int64_t XH, XW, DW, V;  // V = DW / 8 vectors per output row
  bool copy;
};

Layout layout_of(const ConvShape& s) {
  Layout L{};
  L.DW = (s.OW + kLanes - 1) / kLanes * kLanes;
  L.V = L.DW / kLanes;
  L.XH = s.H + 2 * s.PH;
  L.XW = L.DW + s.KW - 1;
  L.copy = !(s.PH == 0 && s.PW == 0 && s.OW % kLanes == 0);
  return L;
}

TG_SIMD_INLINE void pad_input(float* xp, const float* x, const ConvShape& s, const Layout& L) {
  std::memset(xp, 0, sizeof(float) * static_cast<std::size_t>(s.C * L.XH * L.XW));
  for (std::int64_t c = 0; c < s.C; ++c)
    for (std::int64_t h = 0; h < s.H; ++h)
      std::memcpy(xp + (c * L.XH + h + s.PH) * L.XW + s.PW, x + (c * s.H + h) * s.W,
                  sizeof(float) * static_cast<std::size_t>(s.W));
}

TG_SIMD_INLINE void pad_grad(float* dyp, const float* dy, const ConvShape& s, const Layout& L) {
  for (std::int64_t r = 0; r < s.F * s.OH; ++r) {
    std::memcpy(dyp + r * L.DW, dy + r * s.OW, sizeof(float) * static_cast<std::size_t>(s.OW));
    std::memset(dyp + r * L.DW + s.OW, 0, sizeof(float) * static_cast<std::size_t>(L.DW - s.OW));
  }
}

// The nb samples of x from sample n0 as a pass of the weight gradient reads them: x itself, or, when
// copy (L.copy unless told otherwise), copied into xp ([nb, C, XH, XW]) with L's padding.
TG_SIMD_INLINE const float* pass_input(float* xp, const float* x, std::int64_t n0, std::int64_t nb,
                                       const ConvShape& s, const Layout& L, bool copy) {
  const std::int64_t x_numel = s.C * s.H * s.W;
  if (!copy) return x + n0 * x_numel;
  for (std::int64_t n = 0; n < nb; ++n) pad_input(xp + n * s.C * L.XH * L.XW, x + (n0 + n) * x_numel, s, L);
  return xp;
}

// Calls fn.template operator()<A, B>() for runtime a in [1, MaxA] and b in [1, MaxB]: one tile
// shape per remainder, each with its accumulators in registers.
template <int A, int... Bs, class Fn>
TG_SIMD_INLINE void pick_b(int b, Fn& fn, std::integer_sequence<int, Bs...>) {
  (void)((b == Bs + 1 ? (fn.template operator()<A, Bs + 1>(), true) : false) || ...);
}
template <int MaxB, int... As, class Fn>
TG_SIMD_INLINE void pick(int a, int b, Fn& fn, std::integer_sequence<int, As...>) {
  (void)((a == As + 1 ? (pick_b<As + 1>(b, fn, std::make_integer_sequence<int, MaxB>{}), true) : false) || ...);
}
template <int MaxA, int MaxB, class Fn>
TG_SIMD_INLINE void dispatch_tile(std::int64_t a, std::int64_t b, Fn&& fn) {
  pick<MaxB>(static_cast<int>(a), static_cast<int>(b), fn, std::make_integer_sequence<int, MaxA>{});
}

// --- forward ------------------------------------------------------------------------------------

// y[f, oh, ow] = bias[f] + Σ_{c, kh, kw} w[f, c, kh, kw] · x[c, oh + kh, ow + kw] (per group).
// One tile: FB filters × RB output rows × one vector of 8 columns, FB·RB accumulators; each tap
// (c, kh, kw) loads RB vectors of x and broadcasts FB weights. x points at (channel 0, row oh,
// column ow) of the group's input, w at (filter 0, channel 0) of the tile's filters.
// 4 filters × 3 rows, or 3 × 4 when the filters come in threes (LeNet's conv1 has 6: two full tiles
// instead of a 4 and a 2, whose 6 accumulators cannot cover the FMA latency).
constexpr int kMaxTile = 4;
std::int64_t forward_filters(std::int64_t Fg) { return Fg % 4 != 0 && Fg % 3 == 0 ? 3 : 4; }

// The epilogue (ConvEpilogue) runs on the accumulators before they are stored. Pooling tiles are
// 2 rows high (one row of 2×2 windows; an odd last row is dropped, as AvgPool2d drops it) and up to
// 6 filters wide, again 12 accumulators.
constexpr int kMaxPooledFilters = 6;
std::int64_t pooled_filters(std::int64_t Fg) { return std::min<std::int64_t>(Fg, kMaxPooledFilters); }

using V4 = simd::F32x4;

// v where v > 0 or NaN, else 0 (Tensor::relu), lane by lane: the same expression on whole vectors,
// a compare mask and a bit select, gave wrong values in clang 14's AVX2 build (make asan).
TG_SIMD_INLINE V8 relu8(const V8& v) {
  V8 r;
  TG_UNROLL for (int i = 0; i < kLanes; ++i) r[i] = v[i] > 0.0f || v[i] != v[i] ? v[i] : 0.0f;
  return r;
}

// Sigmoid is Tensor::sigmoid's own vector code (core/simd_math.h), so fused values are its values.
template <ConvActivation A, Isa I>
TG_SIMD_INLINE V8 activate(const V8& v) {
  if constexpr (A == ConvActivation::Sigmoid) return simd::sigmoid<I>(v);
  else if constexpr (A == ConvActivation::ReLU) return relu8(v);
  else return v;
}

// One tile's outputs: y points at (filter 0, row, column) of the tile in planes of YH rows of YW floats
// (without pooling, row oh and column ow; with it, oh / 2 and ow / 2); `width` columns of the row
// (pooled columns when pooling) remain from there, of which a tile stores at most 8 (4).
template <int FB, int RB, ConvActivation A, bool Pool, Isa I>
TG_SIMD_INLINE void forward_tile(float* y, std::int64_t width, const float* x, const float* w, const float* bias,
                                 std::int64_t YH, std::int64_t YW, const ConvShape& s, const Layout& L) {
  const std::int64_t Cg = s.C / s.G, taps = Cg * s.KH * s.KW;
  V8 acc[FB][RB];
  TG_UNROLL for (int f = 0; f < FB; ++f)
    TG_UNROLL for (int r = 0; r < RB; ++r) acc[f][r] = V8{} + (bias ? bias[f] : 0.0f);
  for (std::int64_t c = 0; c < Cg; ++c)
    for (std::int64_t kh = 0; kh < s.KH; ++kh) {
      const float* xr = x + (c * L.XH + kh) * L.XW;
      const float* wr = w + (c * s.KH + kh) * s.KW;
      for (std::int64_t kw = 0; kw < s.KW; ++kw) {
        V8 xv[RB];
        TG_UNROLL for (int r = 0; r < RB; ++r) xv[r] = load_f32x8(xr + r * L.XW + kw);
        TG_UNROLL for (int f = 0; f < FB; ++f) {
          const float wf = wr[f * taps + kw];
          TG_UNROLL for (int r = 0; r < RB; ++r) acc[f][r] += xv[r] * wf;
        }
      }
    }
  if constexpr (!Pool) {
    TG_UNROLL for (int f = 0; f < FB; ++f)
      TG_UNROLL for (int r = 0; r < RB; ++r) {
        // Activated in place and stored from acc itself: when the tile's values passed through a
        // copy (a local, or activate's return value even for None), GCC 12 kept all the
        // accumulators in memory through the tap loop, a load and a store around every FMA of the
        // plain forward (2.4-2.8x slower).
        if constexpr (A != ConvActivation::None) acc[f][r] = activate<A, I>(acc[f][r]);
        float* dst = y + (f * YH + r) * YW;
        if (width >= kLanes) store_f32x8(dst, acc[f][r]);
        else simd::store_first_lanes(dst, acc[f][r], width);
      }
  } else {
    // avg_pool2d's sum order: (x[2i, 2j] + x[2i, 2j + 1]) + x[2i + 1, 2j] + x[2i + 1, 2j + 1], then · 1/4.
    static_assert(RB % 2 == 0, "pooling tiles hold whole 2x2 windows");
    TG_UNROLL for (int f = 0; f < FB; ++f)
      TG_UNROLL for (int r = 0; r < RB / 2; ++r) {
        const V8 top = activate<A, I>(acc[f][2 * r]), bottom = activate<A, I>(acc[f][2 * r + 1]);
        // In-lane shuffles (one lane-crossing one at the end instead of four): even and odd columns
        // of both rows, then the bottom's moved under the top's; windows j in lanes 0, 1, 4, 5.
        const V8 even = __builtin_shufflevector(top, bottom, 0, 2, 8, 10, 4, 6, 12, 14);
        const V8 odd = __builtin_shufflevector(top, bottom, 1, 3, 9, 11, 5, 7, 13, 15);
        const V8 sum8 = ((even + odd) + __builtin_shufflevector(even, even, 2, 3, 0, 1, 6, 7, 4, 5)) +
                        __builtin_shufflevector(odd, odd, 2, 3, 0, 1, 6, 7, 4, 5);
        const V4 mean = __builtin_shufflevector(sum8, sum8, 0, 1, 4, 5) * 0.25f;
        float* dst = y + (f * YH + r) * YW;
        if (width >= kLanes / 2) simd::store_f32x4(dst, mean);
        else simd::store_first_lanes(dst, mean, width);
      }
  }
}

// Samples [n0, n1): y [N, F, YH, YW] (the convolution's output, or pooled) from x, through a padded
// copy in xp [C, XH, XW] when L.copy.
template <ConvActivation A, bool Pool, Isa I>
TG_SIMD_INLINE void forward_samples(float* y, const float* x, const float* w, const float* bias, float* xp,
                                    std::int64_t n0, std::int64_t n1, const ConvShape& s, const Layout& L) {
  const std::int64_t Cg = s.C / s.G, Fg = s.F / s.G, taps = Cg * s.KH * s.KW;
  const std::int64_t FB = Pool ? pooled_filters(Fg) : forward_filters(Fg), RB = Pool ? 2 : kTileAccumulators / FB;
  const std::int64_t YH = Pool ? s.OH / 2 : s.OH, YW = Pool ? s.OW / 2 : s.OW;
  const std::int64_t rows = Pool ? 2 * YH : s.OH, cols = Pool ? 2 * YW : s.OW;  // of the convolution's output
  for (std::int64_t n = n0; n < n1; ++n) {
    const float* xn = x + n * s.C * s.H * s.W;
    if (L.copy) {
      pad_input(xp, xn, s, L);
      xn = xp;
    }
    float* yn = y + n * s.F * YH * YW;
    for (std::int64_t g = 0; g < s.G; ++g)
      for (std::int64_t f0 = 0; f0 < Fg; f0 += FB) {
        const std::int64_t f = g * Fg + f0, fb = std::min(FB, Fg - f0);
        for (std::int64_t oh = 0; oh < rows; oh += RB) {
          const std::int64_t rb = std::min(RB, rows - oh);
          for (std::int64_t ow = 0; ow < cols; ow += kLanes) {
            const std::int64_t yh = Pool ? oh / 2 : oh, yw = Pool ? ow / 2 : ow;
            float* yt = yn + (f * YH + yh) * YW + yw;
            const float* xt = xn + (g * Cg * L.XH + oh) * L.XW + ow;
            const float* bt = bias ? bias + f : nullptr;
            if constexpr (Pool)
              dispatch_tile<kMaxPooledFilters, 1>(fb, 1, [&]<int TF, int>() TG_SIMD_LAMBDA {
                forward_tile<TF, 2, A, true, I>(yt, YW - yw, xt, w + f * taps, bt, YH, YW, s, L);
              });
            else
              dispatch_tile<kMaxTile, kMaxTile>(fb, rb, [&]<int TF, int TR>() TG_SIMD_LAMBDA {
                forward_tile<TF, TR, A, false, I>(yt, YW - yw, xt, w + f * taps, bt, YH, YW, s, L);
              });
          }
        }
      }
  }
}

// --- forward, AVX-512 ---------------------------------------------------------------------------

// With AVX-512 the forward runs on 16-lane vectors over flattened positions q = oh·XW + ow of a
// plane XW wide: x at tap (c, kh, kw) for 16 consecutive q is one contiguous load at
// q + (c·XH + kh)·XW + kw, so any output width fills whole zmm registers. XW is the padded input's
// own width (flat_layout_of): no row needs rounding up to whole vectors, and an unpadded input is
// read in place. Lanes at ow >= OW compute values nobody reads: KW − 1 of every XW (14% for LeNet-BN's
// conv1; 29% for the 10-wide conv2 of d2l's LeNet, against 50% with rows rounded up to whole
// eight-float vectors as the eight-lane tiles' layout has them). The last vector
// of a plane reads up to kFlatLanes − 1 floats past the group's last plane: inside the batch but for
// its last sample, which is read from a copy with room after it. Tiles of FB filters × RB vectors
// keep up to kTileAccumulators512 of the 32 zmm registers. (Outputs 8 or 24 wide in an even number
// of rows take the row-span tiles below instead: no padding lanes, no copy.)
using V16 = simd::F32x16;
using simd::load_f32x16;
constexpr std::int64_t kFlatLanes = simd::kF32x16Lanes;
constexpr std::int64_t kTileAccumulators512 = 24;
constexpr int kMaxFlatFilters = 6, kMaxFlatVectors = 6;
// A flat tile's registers: FB·RB accumulators, RB x vectors and a broadcast weight. At 31 of the 32
// (4 filters × 6 vectors) GCC 12 kept an accumulator on the stack; 28 leaves it room.
constexpr std::int64_t kFlatTileRegisters = 28;
std::int64_t flat_vectors(std::int64_t FB) {
  return std::min({std::int64_t{kMaxFlatVectors}, kTileAccumulators512 / FB, kFlatTileRegisters / (FB + 1)});
}

Layout flat_layout_of(const ConvShape& s) {
  Layout L{};
  L.XH = s.H + 2 * s.PH;
  L.XW = s.W + 2 * s.PW;
  L.copy = s.PH != 0 || s.PW != 0;
  return L;  // DW and V are the eight-lane tiles' and stay 0
}

std::int64_t flat_filters(std::int64_t Fg) { return Fg % 6 == 0 ? 6 : std::min<std::int64_t>(Fg, 4); }
// yq's row stride: positions [0, (OH − 1)·XW + OW) in whole vectors.
std::int64_t flat_stride(const ConvShape& s, const Layout& L) {
  return ((s.OH - 1) * L.XW + s.OW + kFlatLanes - 1) / kFlatLanes * kFlatLanes;
}

// The first float of each of R rows, `stride` floats apart, each hidden from the optimizer in a
// register of its own, for tiles whose FMAs take one broadcast memory operand per row and column:
// row[r][j] is then (base + 4j), where r·stride would make an indexed address (base + index), which
// Intel cores most likely do not keep micro-fused with a three-operand FMA: on the Xeon of
// docs/BENCHMARKS.md a 2×8 tile ran at 2.5 FMAs/ns with one row indexed and 3.5 without (peak
// 4.3). Hiding them also keeps GCC from carrying the x values that the next tap shares (column
// j + 1 is this tap's column j) in registers, rotating and spilling them around the FMAs, instead
// of one FMA with a broadcast memory operand each. RowPointers<1> is one such pointer. With Pinned
// false (a stride known at compile time) the rows stay constant offsets from `first`.
template <int R, bool Pinned = true>
struct RowPointers {
  const float* row[R];
  TG_SIMD_INLINE RowPointers(const float* first, std::int64_t stride) {
    TG_UNROLL for (int r = 0; r < R; ++r) {
      row[r] = first + r * stride;
      if constexpr (Pinned) asm("" : "+r"(row[r]));
    }
  }
};

// yq[f, q] for FB filters and RB vectors from position q0: x points at the group's channel 0 plane,
// w at (filter 0, channel 0) of the tile's filters, yq at (filter 0, position 0); rows QS apart.
template <int FB, int RB>
TG_SIMD_INLINE void flat_forward_tile(float* yq, std::int64_t QS, const float* x, const float* w, const float* bias,
                                      std::int64_t q0, const ConvShape& s, const Layout& L) {
  const std::int64_t Cg = s.C / s.G, taps = Cg * s.KH * s.KW;
  V16 acc[FB][RB];
  TG_UNROLL for (int f = 0; f < FB; ++f)
    TG_UNROLL for (int r = 0; r < RB; ++r) acc[f][r] = V16{} + (bias ? bias[f] : 0.0f);
  for (std::int64_t c = 0; c < Cg; ++c)
    for (std::int64_t kh = 0; kh < s.KH; ++kh) {
      const float* xr = x + (c * L.XH + kh) * L.XW + q0;
      const float* wr = w + (c * s.KH + kh) * s.KW;
      for (std::int64_t kw = 0; kw < s.KW; ++kw) {
        const RowPointers<1> xk(xr + kw, 0);
        V16 xv[RB];
        TG_UNROLL for (int r = 0; r < RB; ++r) xv[r] = load_f32x16(xk.row[0] + r * kFlatLanes);
        const RowPointers<FB> wf(wr + kw, taps);
        TG_UNROLL for (int f = 0; f < FB; ++f) {
          const float w_f = *wf.row[f];
          TG_UNROLL for (int r = 0; r < RB; ++r) acc[f][r] += xv[r] * w_f;
        }
      }
    }
  TG_UNROLL for (int f = 0; f < FB; ++f)
    TG_UNROLL for (int r = 0; r < RB; ++r) std::memcpy(yq + f * QS + q0 + r * kFlatLanes, &acc[f][r], sizeof(V16));
}

// v where v > 0 or NaN, else 0, lane by lane as relu8.
TG_SIMD_INLINE V16 relu16(const V16& v) {
  V16 r;
  TG_UNROLL for (int i = 0; i < kFlatLanes; ++i) r[i] = v[i] > 0.0f || v[i] != v[i] ? v[i] : 0.0f;
  return r;
}

template <ConvActivation A>
TG_SIMD_INLINE V16 activate16(const V16& v) {
  if constexpr (A == ConvActivation::Sigmoid) return simd::sigmoid<Isa::Avx512>(v);
  else if constexpr (A == ConvActivation::ReLU) return relu16(v);
  else return v;
}

// Sample yn (the convolution's output [F, OH, OW], or pooled [F, OH/2, OW/2]) from its flat rows in yq,
// where row oh of filter f starts at f·QS + oh·XW. The activation runs here, in place over each plane
// of yq in L1, and not on the tile's accumulators, whose sigmoid temporaries would compete with the 24
// accumulators; whole planes rather than rows, since a plane's lanes past OW are KW − 1 of every XW
// (a 24 × 24 output from 5 × 5 taps: 14%) while rows rounded up to whole vectors waste more (24-wide
// rows: 25%). (LeNet-BN's conv1 takes the row-span tiles instead, whose 18 accumulators leave its
// sigmoid room in registers.)
// A row's last vector reads up to kFlatLanes − 1 floats past the row: the next row, or the kFlatLanes
// floats after yq's last plane.
template <ConvActivation A, bool Pool>
TG_SIMD_INLINE void flat_epilogue(float* yn, float* yq, std::int64_t QS, const ConvShape& s, const Layout& L) {
  if constexpr (A != ConvActivation::None)
    for (std::int64_t q = 0; q < s.F * QS; q += kFlatLanes) {
      const V16 v = activate16<A>(load_f32x16(yq + q));
      std::memcpy(yq + q, &v, sizeof v);
    }
  if constexpr (!Pool) {
    // Rows of a few dozen floats: vector moves, not a call into libc's memcpy for each (a fifth of
    // LeNet-BN's conv1 forward went to those calls).
    for (std::int64_t f = 0; f < s.F; ++f)
      for (std::int64_t oh = 0; oh < s.OH; ++oh) {
        const float* src = yq + f * QS + oh * L.XW;
        float* dst = yn + (f * s.OH + oh) * s.OW;
        std::int64_t ow = 0;
        for (; ow + kFlatLanes <= s.OW; ow += kFlatLanes) std::memcpy(dst + ow, src + ow, sizeof(V16));
        if (ow + kLanes <= s.OW) {
          store_f32x8(dst + ow, load_f32x8(src + ow));
          ow += kLanes;
        }
        if (ow < s.OW) simd::store_first_lanes(dst + ow, load_f32x8(src + ow), s.OW - ow);
      }
  } else {
    // avg_pool2d's sum order, as forward_tile's: (x[2i, 2j] + x[2i, 2j + 1]) + x[2i + 1, 2j] +
    // x[2i + 1, 2j + 1], then · 1/4; 8 pooled columns from each 16 of a row pair.
    const std::int64_t YH = s.OH / 2, YW = s.OW / 2;
    for (std::int64_t f = 0; f < s.F; ++f)
      for (std::int64_t i = 0; i < YH; ++i) {
        const float* top = yq + f * QS + 2 * i * L.XW;
        float* dst = yn + (f * YH + i) * YW;
        for (std::int64_t j = 0; j < YW; j += kLanes) {
          const V16 t = load_f32x16(top + 2 * j), b = load_f32x16(top + L.XW + 2 * j);
          const V8 t_even = __builtin_shufflevector(t, t, 0, 2, 4, 6, 8, 10, 12, 14);
          const V8 t_odd = __builtin_shufflevector(t, t, 1, 3, 5, 7, 9, 11, 13, 15);
          const V8 b_even = __builtin_shufflevector(b, b, 0, 2, 4, 6, 8, 10, 12, 14);
          const V8 b_odd = __builtin_shufflevector(b, b, 1, 3, 5, 7, 9, 11, 13, 15);
          const V8 mean = (((t_even + t_odd) + b_even) + b_odd) * 0.25f;
          if (YW - j >= kLanes) store_f32x8(dst + j, mean);
          else simd::store_first_lanes(dst + j, mean, YW - j);
        }
      }
  }
}

// Samples [n0, n1) as forward_samples does, through yq ([F, flat_stride] scratch and kFlatLanes
// floats) for the flat rows; xp has room for one padded sample and kFlatLanes floats after it.
template <ConvActivation A, bool Pool>
TG_SIMD_INLINE void flat_forward_samples(float* y, const float* x, const float* w, const float* bias, float* xp,
                                         float* yq, std::int64_t n0, std::int64_t n1, const ConvShape& s,
                                         const Layout& L) {
  const std::int64_t Cg = s.C / s.G, Fg = s.F / s.G, taps = Cg * s.KH * s.KW, FB = flat_filters(Fg),
                     RB = flat_vectors(FB);
  const std::int64_t QS = flat_stride(s, L), vectors = QS / kFlatLanes;
  const std::int64_t y_sample = Pool ? s.F * (s.OH / 2) * (s.OW / 2) : s.F * s.OH * s.OW;
  std::memset(xp + s.C * L.XH * L.XW, 0, sizeof(float) * kFlatLanes);  // what the last vectors read past a copy
  std::memset(yq + s.F * QS, 0, sizeof(float) * kFlatLanes);           // what the epilogue reads past the last row
  for (std::int64_t n = n0; n < n1; ++n) {
    const float* xn = x + n * s.C * s.H * s.W;
    if (L.copy || n == s.N - 1) {
      pad_input(xp, xn, s, L);
      xn = xp;
    }
    for (std::int64_t g = 0; g < s.G; ++g)
      for (std::int64_t f0 = 0; f0 < Fg; f0 += FB) {
        const std::int64_t f = g * Fg + f0;
        for (std::int64_t v = 0; v < vectors; v += RB)
          dispatch_tile<kMaxFlatFilters, kMaxFlatVectors>(
              std::min(FB, Fg - f0), std::min(RB, vectors - v), [&]<int TF, int TR>() TG_SIMD_LAMBDA {
                // Only the shapes flat_vectors allows (no partial tile exceeds its block): the others
                // would be compiled for nothing, and with accumulators on the stack.
                if constexpr ((TF + 1) * TR <= kFlatTileRegisters && TF * TR <= kTileAccumulators512)
                  flat_forward_tile<TF, TR>(yq + f * QS, QS, xn + g * Cg * L.XH * L.XW, w + f * taps,
                                            bias ? bias + f : nullptr, v * kFlatLanes, s, L);
              });
      }
    flat_epilogue<A, Pool>(y + n * y_sample, yq, QS, s, L);
  }
}

// --- forward, AVX-512, vectors over the output's own rows ------------------------------------------

// When OW is 8 or 24 and OH even (LeNet-BN's conv1: 24 × 24), the forward's vectors can run over y's
// own layout instead of the flat rows: a pair of output rows is 2·OW = 16·VP floats, VP = OW/8
// vectors, of which one spans the two rows (the last 8 columns of the first and the first 8 of the
// second: two loads of x and one permute, vshuff32x4, for its x at each tap) and the others lie in
// one row (one load each). No lane is padding (the flat rows' KW − 1 of every XW: 14% for conv1), and
// the accumulators go into y itself, activated and pooled in registers (a row pair is a row of 2×2
// windows): no flat rows and no pass over a copy of them (LeNet-BN's conv1 with its sigmoid and
// pool: 2.8 → 2.0 µs a sample). The same products added in the same order: the same bits. A tile is
// FB filters × RP row pairs, at most kSpanAccumulators vectors (with the RP·VP x vectors, the
// permute's two loads and a broadcast weight, GCC keeps them all in registers); x's reads stay inside
// each sample's planes.
constexpr int kMaxSpanFilters = 6, kMaxSpanPairs = 3, kSpanAccumulators = 18;
bool row_span_forward(const ConvShape& s) { return (s.OW == 8 || s.OW == 24) && s.OH % 2 == 0; }
std::int64_t span_pairs(std::int64_t OW) { return OW == 8 ? kMaxSpanPairs : 1; }
// fn.template operator()<VP>() with VP = OW/8, the vectors a row pair holds (row_span_forward(s)).
template <class Fn>
TG_SIMD_INLINE void with_span_vectors(std::int64_t OW, Fn&& fn) {
  if (OW == 8) fn.template operator()<1>();
  else fn.template operator()<3>();
}
// The x that vector J of a row pair meets at one tap, `top` and `bottom` the pair's two rows at that
// tap: vectors before VP/2 lie in the first row (one load), vector VP/2 spans the two (its first row's
// last 8 columns and its second row's first 8: two loads and a permute), the rest lie in the second.
template <int VP, int J>
TG_SIMD_INLINE V16 span_input(const float* top, const float* bottom) {
  constexpr int whole = VP / 2, OW = VP * 8;
  if constexpr (J < whole) {
    return load_f32x16(top + 16 * J);
  } else if constexpr (J == whole) {
    const V16 a = load_f32x16(top + OW - 8), b = load_f32x16(bottom - 8);
    return __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 24, 25, 26, 27, 28, 29, 30, 31);
  } else {
    return load_f32x16(bottom + 8 + 16 * (J - whole - 1));
  }
}

// LeNet-BN's two convolutions, the shapes whose tiles have versions with the shape known at compile
// time (the Fixed*Shape parameters below). Stride 1: x's planes are XH = OH + K − 1 by XW = OW + K − 1.
struct LeNetConv1 {  // 1 channel, 5 × 5 taps, 24 × 24 outputs
  static constexpr int K = 5, OH = 24, OW = 24, XW = OW + K - 1;
  static bool matches(const ConvShape& s) {
    return s.C / s.G == 1 && s.KH == K && s.KW == K && s.OH == OH && s.OW == OW;
  }
};
struct LeNetConv2 {  // 5 × 5 taps, 8 × 8 outputs
  static constexpr int K = 5, OH = 8, OW = 8, XH = OH + K - 1, XW = OW + K - 1;
  static bool matches(const ConvShape& s) { return s.KH == K && s.KW == K && s.OH == OH && s.OW == OW; }
};

// A row-span shape known at compile time, for the tiles' fixed-shape versions: x's rows of XW floats,
// OH output rows, KW taps a kernel row (and as many rows), the tile's first tap T0 (one input channel;
// 0 where unused).
template <int XW_, int OH_, int KW_, int T0_>
struct FixedSpanShape {
  static constexpr std::int64_t XW = XW_, OH = OH_, KW = KW_, T0 = T0_;
};

// y[f, r0 + ...] for FB filters and RP row pairs from (even) row r0; VP = OW/8 vectors a pair; then
// the activation, and with Pool each pair's row of windows. x at the group's channel 0 plane (padded
// planes XH × XW), wt at the tile's block in taps_major_weights' layout (FB filters a tap), y at
// (filter 0, row 0) of the sample's planes: OH × OW, or OH/2 × OW/2 with Pool.
// Fixed, when not void, is a shape of one input channel known at compile time (FixedSpanShape's XW
// and KW, with KH = KW): the taps unrolled, each one's x and weights at constant offsets from one
// pointer each. The same products in the same order: the same bits.
template <ConvActivation A, bool Pool, int FB, int RP, int VP, class Fixed = void>
TG_SIMD_INLINE void row_span_forward_tile(float* y, const float* x, const float* wt, const float* bias, std::int64_t r0,
                                          const ConvShape& s, const Layout& L) {
  constexpr std::int64_t OW = VP * 8;
  const std::int64_t Cg = s.C / s.G, XW = L.XW;
  V16 acc[FB][RP * VP];
  TG_UNROLL for (int f = 0; f < FB; ++f)
    TG_UNROLL for (int v = 0; v < RP * VP; ++v) acc[f][v] = V16{} + (bias ? bias[f] : 0.0f);
  // The products of one tap: x at the tile's rows r0, r0 + 1, ... at the tap's channel, row and
  // column, the tile's FB weights side by side at wk.
  const auto tap = [&](const float* const (&rows)[2 * RP], const float* wk) TG_SIMD_LAMBDA {
    V16 xv[RP * VP];
    TG_UNROLL for (int p = 0; p < RP; ++p)
      [&]<int... J>(std::integer_sequence<int, J...>) TG_SIMD_LAMBDA {
        ((xv[p * VP + J] = span_input<VP, J>(rows[2 * p], rows[2 * p + 1])), ...);
      }(std::make_integer_sequence<int, VP>{});
    TG_UNROLL for (int f = 0; f < FB; ++f) {
      const float w_f = wk[f];
      TG_UNROLL for (int v = 0; v < RP * VP; ++v) acc[f][v] += xv[v] * w_f;
    }
  };
  if constexpr (!std::is_void_v<Fixed>) {
    constexpr std::int64_t FXW = Fixed::XW, FK = Fixed::KW;
    const float* xr = x + r0 * FXW;
    TG_UNROLL for (int kh = 0; kh < FK; ++kh)
      TG_UNROLL for (int kw = 0; kw < FK; ++kw) {
        const RowPointers<2 * RP, false> xk(xr + kh * FXW + kw, FXW);
        tap(xk.row, wt + (kh * FK + kw) * FB);
      }
  } else {
    for (std::int64_t c = 0; c < Cg; ++c)
      for (std::int64_t kh = 0; kh < s.KH; ++kh) {
        const float* xr = x + (c * L.XH + kh + r0) * XW;
        const float* wr = wt + (c * s.KH + kh) * s.KW * FB;
        for (std::int64_t kw = 0; kw < s.KW; ++kw) {
          const RowPointers<2 * RP> xk(xr + kw, XW);  // rows r0, r0 + 1, ... at this tap
          const RowPointers<1> wk(wr + kw * FB, 0);   // the tile's FB weights at this tap, side by side
          tap(xk.row, wk.row[0]);
        }
      }
  }
  // Filter by filter, so that the sigmoid's temporaries take the registers of the filters stored.
  constexpr std::int64_t YW = Pool ? OW / 2 : OW;  // y's row; a pair of x rows is one pooled row
  const std::int64_t plane = (Pool ? s.OH / 2 : s.OH) * YW;
  float* const y_pair = y + (Pool ? r0 / 2 : r0) * YW;
  TG_UNROLL for (int f = 0; f < FB; ++f) {
    TG_UNROLL for (int v = 0; v < RP * VP; ++v) acc[f][v] = activate16<A>(acc[f][v]);
    if constexpr (Pool) {
      TG_UNROLL for (int p = 0; p < RP; ++p) avg_pool_2x2_row_pair<VP>(y_pair + f * plane + p * YW, &acc[f][p * VP]);
    } else {
      TG_UNROLL for (int v = 0; v < RP * VP; ++v)
        std::memcpy(y_pair + f * plane + v * kFlatLanes, &acc[f][v], sizeof(V16));
    }
  }
}

// Samples [n0, n1) of y (row_span_forward(s)), through a padded copy of each sample in xp when
// L.copy; the tiles write y ([N, F, OH, OW], or pooled) themselves. wt is the weight in
// taps_major_weights' layout.
template <ConvActivation A, bool Pool>
TG_SIMD_INLINE void row_span_forward_samples(float* y, const float* x, const float* wt, const float* bias, float* xp,
                                             std::int64_t n0, std::int64_t n1, const ConvShape& s, const Layout& L) {
  const std::int64_t Cg = s.C / s.G, Fg = s.F / s.G, taps = Cg * s.KH * s.KW, FB = flat_filters(Fg),
                     RP = span_pairs(s.OW), pairs = s.OH / 2;
  const std::int64_t y_plane = Pool ? (s.OH / 2) * (s.OW / 2) : s.OH * s.OW;
  const bool lenet_conv1 = LeNetConv1::matches(s);
  for (std::int64_t n = n0; n < n1; ++n) {
    const float* xn = x + n * s.C * s.H * s.W;
    if (L.copy) {
      pad_input(xp, xn, s, L);
      xn = xp;
    }
    for (std::int64_t g = 0; g < s.G; ++g)
      for (std::int64_t f0 = 0; f0 < Fg; f0 += FB) {
        const std::int64_t f = g * Fg + f0;
        for (std::int64_t p = 0; p < pairs; p += RP)
          dispatch_tile<kMaxSpanFilters, kMaxSpanPairs>(
              std::min(FB, Fg - f0), std::min(RP, pairs - p), [&]<int TF, int TP>() TG_SIMD_LAMBDA {
                with_span_vectors(s.OW, [&]<int VP>() TG_SIMD_LAMBDA {
                  if constexpr (TF * TP * VP <= kSpanAccumulators) {
                    float* const yt = y + (n * s.F + f) * y_plane;
                    const float* const xt = xn + g * Cg * L.XH * L.XW;
                    const float* const bt = bias ? bias + f : nullptr;
                    // LeNet-BN's conv1 in its one tile shape, plain (training) or pooled (inference):
                    // with an unpooled sigmoid after the unrolled taps GCC put 9 FMAs' operands on the
                    // stack (register_tiles).
                    if constexpr (TF == 6 && TP == 1 && VP == 3 && (Pool || A == ConvActivation::None)) {
                      if (lenet_conv1)
                        return row_span_forward_tile<A, Pool, TF, TP, VP,
                                                     FixedSpanShape<LeNetConv1::XW, 0, LeNetConv1::K, 0>>(
                            yt, xt, wt + f * taps, bt, 2 * p, s, L);
                    }
                    row_span_forward_tile<A, Pool, TF, TP, VP>(yt, xt, wt + f * taps, bt, 2 * p, s, L);
                  }
                });
              });
      }
  }
}

// --- forward, AVX-512, sixteen filters to a vector --------------------------------------------

// When a group's filters come in sixteens (LeNet's conv2 has 16), the lanes run over filters instead:
//   acc[oh, ow][16 filters] += wt[c, kh, kw][16 filters] · x[c, oh + kh, ow + kw],
// one weight vector per tap and each x broadcast (filter_lane_tile: once for all the taps of a
// row that reach it). Every lane is a product the
// output needs whatever OW is (the flat tiles leave a third of LeNet-BN's conv2 lanes unread), and
// the epilogue runs on whole vectors of outputs: its sigmoid on OH·OW vectors (LeNet-BN's conv2: 64,
// against 96 over the flat planes), its 2×2 pool three vector adds. The outputs come position-major, [OH·OW][16] per
// block of filters, and are transposed into y's [F, OH, OW] as they are stored. Tiles: RB output
// rows × CB columns, up to kTileAccumulators512 accumulators.
constexpr int kMaxLaneRows = 2, kMaxLaneColumns = 12;

bool filter_lanes(const ConvShape& s) { return (s.F / s.G) % kFlatLanes == 0; }

// Lanes of a two-vector permute picked by compile-time rules, written with __builtin_shufflevector
// (GCC and clang both take it; GCC's __builtin_shuffle is GCC's alone).
// shift_up<K>(v): lane l takes lane l − K of v, or a zero below K.
template <int K, int... L>
TG_SIMD_INLINE V16 shift_up(const V16& v, std::integer_sequence<int, L...>) {
  return __builtin_shufflevector(v, V16{}, (L < K ? kFlatLanes + L : L - K)...);
}
template <int K>
TG_SIMD_INLINE V16 shift_up(const V16& v) {
  return shift_up<K>(v, std::make_integer_sequence<int, kFlatLanes>{});
}
// The new pair of rows (r, r | Bit) of a transpose round: the lanes of a with bit Bit clear and of b
// with it set (low), or the others (high). Lane c of a pair: a's c or, from 16 on, b's c − 16.
template <int Bit, int... L>
TG_SIMD_INLINE void exchange_lanes(V16& a, V16& b, std::integer_sequence<int, L...>) {
  const V16 low = __builtin_shufflevector(a, b, ((L & Bit) ? kFlatLanes + L - Bit : L)...);
  const V16 high = __builtin_shufflevector(a, b, ((L & Bit) ? kFlatLanes + L : L + Bit)...);
  a = low, b = high;
}

// rows[i][j] = the old rows[j][i]. Four rounds, each exchanging one bit of the row index with the same
// bit of the lane index: 64 two-vector permutes for 256 floats, where moving them one at a time takes
// 256 loads and 256 stores that no two of which share an address, 1.5% of LeNet-BN's step.
template <int Bit>
TG_SIMD_INLINE void transpose_round(V16 (&rows)[16]) {
  TG_UNROLL for (int r = 0; r < 16; ++r)
    if (!(r & Bit)) exchange_lanes<Bit>(rows[r], rows[r | Bit], std::make_integer_sequence<int, kFlatLanes>{});
}
TG_SIMD_INLINE void transpose_16x16(V16 (&rows)[16]) {
  transpose_round<1>(rows);
  transpose_round<2>(rows);
  transpose_round<4>(rows);
  transpose_round<8>(rows);
}

// The row-span forward's weights: in each group, its blocks of flat_filters(Fg) filters (the last
// maybe fewer, fb), each block's [C/G·KH·KW, fb] at w's offset of its first filter, so that a tile's
// broadcasts at a tap are one pointer and constant offsets, and the next tap's fb floats on. With
// w's own layout a tile of FB filters needs FB pointers a tap, which GCC spilled and reloaded around
// the row-span forward's FMAs (LeNet-BN's conv1: a third of its time).
void taps_major_weights(float* wt, const float* w, const ConvShape& s) {
  const std::int64_t taps = s.C / s.G * s.KH * s.KW, Fg = s.F / s.G, FB = flat_filters(Fg);
  for (std::int64_t g = 0; g < s.G; ++g)
    for (std::int64_t f0 = 0; f0 < Fg; f0 += FB) {
      const std::int64_t first = g * Fg + f0, fb = std::min(FB, Fg - f0);
      for (std::int64_t t = 0; t < taps; ++t)
        for (std::int64_t j = 0; j < fb; ++j) wt[first * taps + t * fb + j] = w[(first + j) * taps + t];
    }
}

// wt [F/16, C/G·KH·KW, 16]: block b's weights for tap t, filter 16·b + l, at (b·taps + t)·16 + l.
void transpose_weights(float* wt, const float* w, const ConvShape& s) {
  const std::int64_t taps = s.C / s.G * s.KH * s.KW;
  for (std::int64_t b = 0; b < s.F / kFlatLanes; ++b)
    for (std::int64_t t = 0; t < taps; ++t)
      for (std::int64_t l = 0; l < kFlatLanes; ++l) wt[(b * taps + t) * kFlatLanes + l] = w[(b * kFlatLanes + l) * taps + t];
}

// Kernel widths whose taps are known at compile time in filter_lane_tile: the common odd ones.
// A tile shares its broadcasts (KW > 0) when its accumulators, the KW weight vectors and a broadcast
// leave GCC room among the 32 registers (at 28 it spilled), and when each weight vector serves
// several columns: a narrow tile's once-used weights became FMA memory operands with an index
// register (scripts/check-register-tiles).
constexpr bool reuse_fits(int RB, int CB, int KW) { return RB * CB + KW + 1 <= 24 && CB + KW - 1 <= 16 && CB >= 4; }
template <class Fn>
TG_SIMD_INLINE bool with_reuse_width(std::int64_t KW, Fn&& fn) {
  switch (KW) {
    case 3: return fn.template operator()<3>();
    case 5: return fn.template operator()<5>();
    case 7: return fn.template operator()<7>();
    default: return false;
  }
}

// acc[r][j] += v[m − j] · x(r, m) over m in [0, J + P − 1) with 0 <= m − j < P: a row of J outputs takes
// P vectors along a row of J + P − 1 inputs (kernel taps in the forward, output positions in the weight
// gradient), and each input x(r, m) is broadcast once, one vbroadcastss, for every product that takes
// it. Each accumulator takes its products in m order. With BarrierEach, no load moves across a
// broadcast's products: scheduled ahead, the broadcasts took accumulators' registers.
template <int R, int J, int P, bool BarrierEach = false, class InputAt>
TG_SIMD_INLINE void broadcast_once_fmas(V16 (&acc)[R][J], const V16 (&v)[P], InputAt x) {
  TG_UNROLL for (int m = 0; m < J + P - 1; ++m)
    TG_UNROLL for (int r = 0; r < R; ++r) {
      // The broadcast spelled out lane by lane, here: `V16{} + xv` is an add (0 + −0 is +0) as well,
      // and a helper function returning the broadcast vector became masked broadcasts under GCC 12,
      // 7 times slower.
      const float xv = x(r, m);
      const V16 xb = V16{xv, xv, xv, xv, xv, xv, xv, xv, xv, xv, xv, xv, xv, xv, xv, xv};
      TG_UNROLL for (int p = 0; p < P; ++p)
        if (m - p >= 0 && m - p < J) acc[r][m - p] += v[p] * xb;
      if constexpr (BarrierEach) asm volatile("" ::: "memory");
    }
}

// yt[(oh + r)·OW + ow + j] for r < RB, j < CB, sixteen filters: x points at (channel 0, row oh,
// column ow) of the group's padded planes, wt at the block's first tap, bias at its first filter.
// KW = 0: the kernel's width from s, each product's x a broadcast memory operand (one load an FMA).
// KW > 0 (s.KW, known at compile time): each x of a tile row is broadcast into a register once and
// used for every tap that reaches it, up to KW FMAs: for one (c, kh), KW weight vectors and
// RB·(CB + KW − 1) broadcasts for RB·CB·KW FMAs (LeNet-BN's conv2, 2 × 8 × 5: 29 loads for 80 FMAs,
// against 85). acc[r][j] takes its taps in (c, kh, kw) order either way: the same sums, the same bits.
//
// Fixed, when not void, is the input's plane known at compile time (FixedLaneShape: XH × XW, KH kernel
// rows; KW > 0): the kernel rows unrolled, each one's x rows at constant offsets from one pointer
// (LeNet-BN's conv2).
template <int XH_, int XW_, int KH_>
struct FixedLaneShape {
  static constexpr std::int64_t XH = XH_, XW = XW_, KH = KH_;
};
template <int RB, int CB, int KW = 0, class Fixed = void>
TG_SIMD_INLINE void filter_lane_tile(float* yt, const float* x, const float* wt, const float* bias, const ConvShape& s,
                                     const Layout& L) {
  const std::int64_t Cg = s.C / s.G;
  V16 acc[RB][CB];
  const V16 b0 = bias ? load_f32x16(bias) : V16{};
  TG_UNROLL for (int r = 0; r < RB; ++r)
    TG_UNROLL for (int j = 0; j < CB; ++j) acc[r][j] = b0;
  if constexpr (!std::is_void_v<Fixed>) {
    static_assert(KW > 0, "a fixed plane reuses each broadcast");
    constexpr std::int64_t XH = Fixed::XH, XW = Fixed::XW, KH = Fixed::KH;
    for (std::int64_t c = 0; c < Cg; ++c) {
      const float* xc = x + c * XH * XW;
      const float* wc = wt + c * KH * KW * kFlatLanes;
      TG_UNROLL for (int kh = 0; kh < KH; ++kh) {
        V16 wv[KW];
        TG_UNROLL for (int kw = 0; kw < KW; ++kw) wv[kw] = load_f32x16(wc + (kh * KW + kw) * kFlatLanes);
        broadcast_once_fmas(acc, wv, [&](int r, int m) TG_SIMD_LAMBDA { return xc[(kh + r) * XW + m]; });
        // No load moves across kernel rows: GCC, scheduling the next row's broadcasts early, put 6 of
        // the accumulators' FMAs' operands on the stack (register_tiles).
        asm volatile("" ::: "memory");
      }
    }
  } else
  for (std::int64_t c = 0; c < Cg; ++c)
    for (std::int64_t kh = 0; kh < s.KH; ++kh) {
      const float* xr = x + (c * L.XH + kh) * L.XW;
      const float* wr = wt + (c * s.KH + kh) * s.KW * kFlatLanes;
      if constexpr (KW == 0) {
        for (std::int64_t kw = 0; kw < s.KW; ++kw) {
          const V16 wv = load_f32x16(wr + kw * kFlatLanes);
          const RowPointers<RB> xk(xr + kw, L.XW);
          TG_UNROLL for (int r = 0; r < RB; ++r)
            TG_UNROLL for (int j = 0; j < CB; ++j) acc[r][j] += wv * xk.row[r][j];
        }
      } else {
        V16 wv[KW];
        TG_UNROLL for (int kw = 0; kw < KW; ++kw) wv[kw] = load_f32x16(wr + kw * kFlatLanes);
        const RowPointers<RB> xk(xr, L.XW);
        broadcast_once_fmas(acc, wv, [&](int r, int m) TG_SIMD_LAMBDA { return xk.row[r][m]; });
      }
    }
  TG_UNROLL for (int r = 0; r < RB; ++r)
    TG_UNROLL for (int j = 0; j < CB; ++j) std::memcpy(yt + (r * s.OW + j) * kFlatLanes, &acc[r][j], sizeof(V16));
}

// One block of sixteen filters of sample yn from yt ([OH·OW][16]): activated, pooled when Pool, and
// transposed into planes [16, YH, YW] at yn, 16 positions at a time in registers (transpose_16x16; GCC
// made the float-by-float loop 15 permutes a vector, a sixth of LeNet-BN's conv2 forward).
template <ConvActivation A, bool Pool>
TG_SIMD_INLINE void filter_lane_epilogue(float* yn, float* yt, const ConvShape& s) {
  const std::int64_t YH = Pool ? s.OH / 2 : s.OH, YW = Pool ? s.OW / 2 : s.OW, plane = YH * YW;
  float* out = yt;  // [YH·YW][16]: pooled in place over yt's first YH·YW vectors (position i·YW + j is
                    // written after positions up to 2i·OW + 2j, the last it reads, have been read)
  for (std::int64_t i = 0; i < YH; ++i)
    for (std::int64_t j = 0; j < YW; ++j) {
      V16 v;
      if constexpr (Pool) {
        // avg_pool2d's sum order: (x[2i, 2j] + x[2i, 2j + 1]) + x[2i + 1, 2j] + x[2i + 1, 2j + 1], then · 1/4.
        const float* top = yt + (2 * i * s.OW + 2 * j) * kFlatLanes;
        const float* bottom = top + s.OW * kFlatLanes;
        v = (((activate16<A>(load_f32x16(top)) + activate16<A>(load_f32x16(top + kFlatLanes))) + activate16<A>(load_f32x16(bottom))) +
             activate16<A>(load_f32x16(bottom + kFlatLanes))) *
            0.25f;
      } else {
        v = activate16<A>(load_f32x16(yt + (i * YW + j) * kFlatLanes));
      }
      std::memcpy(out + (i * YW + j) * kFlatLanes, &v, sizeof v);
    }
  std::int64_t q0 = 0;
  for (; q0 + kFlatLanes <= plane; q0 += kFlatLanes) {
    V16 rows[16];
    TG_UNROLL for (int k = 0; k < 16; ++k) rows[k] = load_f32x16(out + (q0 + k) * kFlatLanes);
    transpose_16x16(rows);
    TG_UNROLL for (int l = 0; l < 16; ++l) std::memcpy(yn + l * plane + q0, &rows[l], sizeof(V16));
  }
  for (std::int64_t l = 0; l < kFlatLanes; ++l)
    for (std::int64_t q = q0; q < plane; ++q) yn[l * plane + q] = out[q * kFlatLanes + l];
}

// Samples [n0, n1) as forward_samples does, with wt from transpose_weights; xp holds a padded
// sample (when L.copy), yt [OH·OW][16].
template <ConvActivation A, bool Pool>
TG_SIMD_INLINE void filter_lane_samples(float* y, const float* x, const float* wt, const float* bias, float* xp,
                                        float* yt, std::int64_t n0, std::int64_t n1, const ConvShape& s,
                                        const Layout& L) {
  const std::int64_t Cg = s.C / s.G, taps = Cg * s.KH * s.KW, blocks_per_group = s.F / s.G / kFlatLanes;
  const std::int64_t YH = Pool ? s.OH / 2 : s.OH, YW = Pool ? s.OW / 2 : s.OW;
  // Pooling reads whole windows only: an odd last row or column is never computed.
  const std::int64_t rows = Pool ? 2 * YH : s.OH, cols = Pool ? 2 * YW : s.OW;
  const std::int64_t CB = std::min<std::int64_t>(kMaxLaneColumns, cols);
  const bool lenet_conv2 = LeNetConv2::matches(s);
  for (std::int64_t n = n0; n < n1; ++n) {
    const float* xn = x + n * s.C * s.H * s.W;
    if (L.copy) {
      pad_input(xp, xn, s, L);
      xn = xp;
    }
    for (std::int64_t g = 0; g < s.G; ++g)
      for (std::int64_t b = 0; b < blocks_per_group; ++b) {
        const std::int64_t block = g * blocks_per_group + b, f = block * kFlatLanes;
        for (std::int64_t oh = 0; oh < rows; oh += kMaxLaneRows)
          for (std::int64_t ow = 0; ow < cols; ow += CB)
            dispatch_tile<kMaxLaneRows, kMaxLaneColumns>(
                std::min<std::int64_t>(kMaxLaneRows, rows - oh), std::min(CB, cols - ow),
                [&]<int TR, int TC>() TG_SIMD_LAMBDA {
                  float* yt_tile = yt + (oh * s.OW + ow) * kFlatLanes;
                  const float* x_tile = xn + (g * Cg * L.XH + oh) * L.XW + ow;
                  const float* w_block = wt + block * taps * kFlatLanes;
                  const float* b_block = bias ? bias + f : nullptr;
                  if (!with_reuse_width(s.KW, [&]<int KW>() TG_SIMD_LAMBDA {
                        if constexpr (TR == 2 && TC == 8 && KW == 5) {
                          if (lenet_conv2) {
                            using Fixed = FixedLaneShape<LeNetConv2::XH, LeNetConv2::XW, LeNetConv2::K>;
                            filter_lane_tile<TR, TC, KW, Fixed>(yt_tile, x_tile, w_block, b_block, s, L);
                            return true;
                          }
                        }
                        if constexpr (reuse_fits(TR, TC, KW))
                          filter_lane_tile<TR, TC, KW>(yt_tile, x_tile, w_block, b_block, s, L);
                        return reuse_fits(TR, TC, KW);
                      }))
                    filter_lane_tile<TR, TC>(yt_tile, x_tile, w_block, b_block, s, L);
                });
        filter_lane_epilogue<A, Pool>(y + (n * s.F + f) * YH * YW, yt, s);
      }
  }
}

// --- backward -----------------------------------------------------------------------------------

// y[f, oh, ow] = Σ_{c, kh, kw} w[f, c, kh, kw] · x[c, oh + kh, ow + kw] + bias[f], so
//   dbias[f]           = Σ_{n, oh, ow} dy[f, oh, ow]
//   dw[f, c, kh, kw]   = Σ_{n, oh, ow} dy[f, oh, ow] · x[c, oh + kh, ow + kw]
//   dx[c, ih, iw]      = Σ_{f, kh, kw} w[f, c, kh, kw] · dy[f, ih − kh, iw − kw]   (0 <= ih − kh < OH)
// (per sample n and group; x, dx in padded coordinates). Tiles of kw offsets: KB of them (all KW
// when KW <= 6), times FB filters (dw) or RB rows (dx), at most kTileAccumulators (10-12).
constexpr int kMaxKw = 6, kMaxRows = 4;

std::int64_t kw_block(std::int64_t KW) { return KW <= kMaxKw ? KW : 4; }
std::int64_t row_block(std::int64_t kb) { return std::clamp<std::int64_t>(kTileAccumulators / kb, 1, kMaxRows); }

// dw[f, c, kh, kw0 + k] += Σ over nb samples' OH rows and V vectors of dy[f] · x[c] shifted by
// (kh, kw0 + k), for FB filters and KB offsets, into the lanes of vector accumulators kept across
// samples (vacc [F, C/G·KH·KW] vectors, at (filter 0, c, kh, kw0)); dy points at sample 0's filter 0
// of the tile, x at sample 0's (channel c, row kh, column kw0), in samples of dy_sample and x_sample
// floats. The nb samples are few enough that their x and dy stay in L1 while all tiles read them:
// tiles over blocks of dozens of samples streamed them from L2, which held conv1's weight gradient
// to half the FMA rate (54 against 86 GFLOP/s now).
template <int FB, int KB, Isa I>
TG_SIMD_INLINE void dweight_tile(V8* vacc, const float* dy, const float* x, std::int64_t nb, std::int64_t dy_sample,
                            std::int64_t x_sample, const ConvShape& s, const Layout& L) {
  const std::int64_t dy_plane = s.OH * L.DW, taps = s.C / s.G * s.KH * s.KW;
  V8 acc[FB][KB];
  TG_UNROLL for (int f = 0; f < FB; ++f)
    TG_UNROLL for (int k = 0; k < KB; ++k) acc[f][k] = vacc[f * taps + k];
  for (std::int64_t n = 0; n < nb; ++n)
    for (std::int64_t v = 0; v < L.V; ++v)
      for (std::int64_t oh = 0; oh < s.OH; ++oh) {  // the longer loop innermost: LeNet's conv2 has V = 1
        const float* dyr = dy + n * dy_sample + oh * L.DW + v * kLanes;
        const float* xr = x + n * x_sample + oh * L.XW + v * kLanes;
        V8 g[FB];
        TG_UNROLL for (int f = 0; f < FB; ++f) g[f] = load_f32x8(dyr + f * dy_plane);
        TG_UNROLL for (int k = 0; k < KB; ++k) {
          V8 xv = load_f32x8(xr + k);
          // GCC would fold this load into each of the FB FMAs that use it, FB loads instead of one
          // (LeNet's conv2 backward measured 8% slower): pin it in a register ("v": any of AVX-512's
          // 32). Clang cannot give a 256-bit vector an "x" register here, and does not need the hint.
#if !defined(__clang__)
          if constexpr (I == Isa::Avx2) asm("" : "+x"(xv));
          if constexpr (I == Isa::Avx512) asm("" : "+v"(xv));
#endif
          TG_UNROLL for (int f = 0; f < FB; ++f) acc[f][k] += g[f] * xv;
        }
      }
  TG_UNROLL for (int f = 0; f < FB; ++f)
    TG_UNROLL for (int k = 0; k < KB; ++k) vacc[f * taps + k] = acc[f][k];
}

// The input gradient in two steps. First, per channel c, padded row ih and kw, the row of products
//   part[c, ih, kw][ow] = Σ_{f, kh} w[f, c, kh, kw] · dy[f, ih − kh, ow]
// (a tile: RB rows × KB offsets, one vector of ow); then dx[c, ih, iw] = Σ_kw part[c, ih, kw][iw − kw].
// Adding each part into dx straight away would make every add reload what the one before it stored,
// at an overlapping, unaligned address: the processor cannot forward such a store and waits for it
// (those adds drew a third of the kernel's profile samples). Instead, parts are stored to scratch
// rows of DW values between Mz zeros on each side and summed once all are written: each dx vector is
// KW loads from shifted offsets, where the zeros stand for the parts' ends (12% faster, measured).
// Those loads reach KW − 1 columns left of a row's DW values and KW + 6 right of them (a vector's
// last lane is kLanes − 1 past its first): margins of KW + kLanes − 1 zeros cover both, rounded up
// to whole vectors so that every row stays aligned.
std::int64_t part_margin(std::int64_t KW) { return (KW + kLanes - 1 + kLanes - 1) / kLanes * kLanes; }
std::int64_t part_row(const ConvShape& s, const Layout& L) { return 2 * part_margin(s.KW) + L.DW; }

// part rows of one channel: RB padded rows from ih0 × KB offsets from kw0, columns [ow, ow + 8), over
// the group's Fg filters. Row ih0 + j sums the kh in [lo_j, hi_j), those with 0 <= ih0 + j − kh < OH.
// The kh all RB rows share run as whole steps, each RB loads of dy rows and KB broadcast weights for
// RB·KB products (a tile over channels instead broadcasts one weight per product, and the loads, not
// the FMAs, set its pace); the rest of each row's range runs row by row. part points at (channel c,
// row ih0, offset kw0, column Mz + ow), dy at (filter 0, row 0, column ow), w at (filter 0, channel c,
// kh 0, kw0).
template <int RB, int KB>
TG_SIMD_INLINE void dinput_tile(float* part, const float* dy, const float* w, std::int64_t ih0, const ConvShape& s,
                                const Layout& L) {
  const std::int64_t Fg = s.F / s.G, taps = s.C / s.G * s.KH * s.KW, PR = part_row(s, L), dy_plane = s.OH * L.DW;
  auto lo = [&](std::int64_t j) { return std::max<std::int64_t>(0, ih0 + j - s.OH + 1); };
  auto hi = [&](std::int64_t j) { return std::min(s.KH, ih0 + j + 1); };
  // The shared kh: [A, hi(0)) when not empty; B splits each row's own range around it.
  const std::int64_t A = lo(RB - 1), B = std::max(A, hi(0));
  V8 acc[RB][KB] = {};
  for (std::int64_t kh = A; kh < hi(0); ++kh)
    for (std::int64_t f = 0; f < Fg; ++f) {  // the longer loop innermost
      const float* dyr = dy + f * dy_plane + (ih0 - kh) * L.DW;
      const float* wr = w + f * taps + kh * s.KW;
      V8 g[RB];
      TG_UNROLL for (int j = 0; j < RB; ++j) g[j] = load_f32x8(dyr + j * L.DW);
      TG_UNROLL for (int k = 0; k < KB; ++k) {
        const float wk = wr[k];
        TG_UNROLL for (int j = 0; j < RB; ++j) acc[j][k] += g[j] * wk;
      }
    }
  TG_UNROLL for (int j = 0; j < RB; ++j) {
    auto row = [&](std::int64_t kh_begin, std::int64_t kh_end) TG_SIMD_LAMBDA {
      for (std::int64_t kh = kh_begin; kh < kh_end; ++kh)
        for (std::int64_t f = 0; f < Fg; ++f) {
          const V8 g = load_f32x8(dy + f * dy_plane + (ih0 + j - kh) * L.DW);
          const float* wr = w + f * taps + kh * s.KW;
          TG_UNROLL for (int k = 0; k < KB; ++k) acc[j][k] += g * wr[k];
        }
    };
    row(lo(j), std::min(hi(j), A));
    row(std::max(lo(j), B), hi(j));
  }
  TG_UNROLL for (int j = 0; j < RB; ++j)
    TG_UNROLL for (int k = 0; k < KB; ++k) store_f32x8(part + (j * s.KW + k) * PR, acc[j][k]);
}

// With AVX-512 the weight gradient's tiles run 16-lane vectors over pairs of output rows: lanes 0-7
// hold row oh's eight columns from v·8 and lanes 8-15 row oh + 1's, of dy and of the shifted x alike,
// so every lane is a product the sum needs (flat positions, as the forward's, would waste a third of
// them on LeNet's 8-wide conv2). An odd last row pairs with zeros. Each accumulator's two halves are
// added into the same eight lanes of vacc as the AVX2 tiles', and the flush is theirs. Up to
// kTileAccumulators512 accumulators: 4 filters × 5 offsets for a 5-wide kernel.
TG_SIMD_INLINE V16 join(const V8& lo, const V8& hi) {
  return __builtin_shufflevector(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}
TG_SIMD_INLINE V8 fold_halves(const V16& v) {
  return __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) + __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
}
std::int64_t row_block512(std::int64_t kb) {
  return std::clamp<std::int64_t>(kTileAccumulators512 / kb, 1, kMaxRows);
}

// dweight_tile's sums (same arguments) over row pairs in 16-lane vectors.
template <int FB, int KB>
TG_SIMD_INLINE void dweight_tile_pairs(V8* vacc, const float* dy, const float* x, std::int64_t nb,
                                       std::int64_t dy_sample, std::int64_t x_sample, const ConvShape& s,
                                       const Layout& L) {
  const std::int64_t dy_plane = s.OH * L.DW, taps = s.C / s.G * s.KH * s.KW;
  V16 acc[FB][KB];
  TG_UNROLL for (int f = 0; f < FB; ++f)
    TG_UNROLL for (int k = 0; k < KB; ++k) acc[f][k] = V16{};
  auto rows = [&](const float* dyr, const float* xr, bool pair) TG_SIMD_LAMBDA {
    V16 g[FB];
    TG_UNROLL for (int f = 0; f < FB; ++f)
      g[f] = join(load_f32x8(dyr + f * dy_plane), pair ? load_f32x8(dyr + f * dy_plane + L.DW) : V8{});
    TG_UNROLL for (int k = 0; k < KB; ++k) {
      V16 xv = join(load_f32x8(xr + k), pair ? load_f32x8(xr + L.XW + k) : V8{});
#if !defined(__clang__)
      asm("" : "+v"(xv));  // one register for the FB FMAs, as in dweight_tile
#endif
      TG_UNROLL for (int f = 0; f < FB; ++f) acc[f][k] += g[f] * xv;
    }
  };
  for (std::int64_t n = 0; n < nb; ++n)
    for (std::int64_t v = 0; v < L.V; ++v) {
      const float* dyn = dy + n * dy_sample + v * kLanes;
      const float* xn = x + n * x_sample + v * kLanes;
      std::int64_t oh = 0;
      for (; oh + 1 < s.OH; oh += 2) rows(dyn + oh * L.DW, xn + oh * L.XW, true);
      if (oh < s.OH) rows(dyn + oh * L.DW, xn + oh * L.XW, false);
    }
  TG_UNROLL for (int f = 0; f < FB; ++f)
    TG_UNROLL for (int k = 0; k < KB; ++k) vacc[f * taps + k] += fold_halves(acc[f][k]);
}

// vacc ([F, C/G·KH·KW] vectors, 32-byte aligned) += nb samples' weight gradient, from padded-layout
// dy and x (samples dy_sample and x_sample floats apart). Blocks of filters outermost: a block's dy
// planes stay in L1 through all its (c, kh) tiles, and x through all the blocks (samples_per_pass).
template <Isa I>
TG_SIMD_INLINE void dweight_samples(V8* vacc, const float* dy, const float* x, std::int64_t nb, std::int64_t dy_sample,
                               std::int64_t x_sample, const ConvShape& s, const Layout& L) {
  const std::int64_t Cg = s.C / s.G, Fg = s.F / s.G, taps = Cg * s.KH * s.KW, KB = kw_block(s.KW),
                     FB = I == Isa::Avx512 ? row_block512(KB) : row_block(KB);
  for (std::int64_t g = 0; g < s.G; ++g)
    for (std::int64_t f0 = 0; f0 < Fg; f0 += FB)
      for (std::int64_t c = 0; c < Cg; ++c)
        for (std::int64_t kh = 0; kh < s.KH; ++kh)
          for (std::int64_t kw = 0; kw < s.KW; kw += KB) {
            const std::int64_t f = g * Fg + f0;
            auto tile = [&]<int TF, int TK>() TG_SIMD_LAMBDA {
              V8* at = vacc + f * taps + (c * s.KH + kh) * s.KW + kw;
              const float *dyf = dy + f * s.OH * L.DW, *xc = x + ((g * Cg + c) * L.XH + kh) * L.XW + kw;
              if constexpr (I == Isa::Avx512) dweight_tile_pairs<TF, TK>(at, dyf, xc, nb, dy_sample, x_sample, s, L);
              else dweight_tile<TF, TK, I>(at, dyf, xc, nb, dy_sample, x_sample, s, L);
            };
            dispatch_tile<kMaxRows, kMaxKw>(std::min(FB, Fg - f0), std::min(KB, s.KW - kw), tile);
          }
}

// One sample's dx into dxp ([C, XH, XW], every element written) from padded-layout dy, through the
// part rows in `part` ([C, XH, KW] rows of part_row floats, whose margins are zero and stay so).
TG_SIMD_INLINE void dinput_sample(float* dxp, float* part, const float* dy, const float* w, const ConvShape& s,
                             const Layout& L) {
  const std::int64_t Cg = s.C / s.G, Fg = s.F / s.G, KB = kw_block(s.KW), RB = row_block(KB), PR = part_row(s, L),
                     Mz = part_margin(s.KW);
  for (std::int64_t g = 0; g < s.G; ++g)
    for (std::int64_t c = 0; c < Cg; ++c)
      for (std::int64_t kw = 0; kw < s.KW; kw += KB)
        for (std::int64_t ih = 0; ih < L.XH; ih += RB) {
          float* prow = part + (((g * Cg + c) * L.XH + ih) * s.KW + kw) * PR + Mz;
          for (std::int64_t ow = 0; ow < L.DW; ow += kLanes) {
            auto tile = [&]<int TR, int TK>() TG_SIMD_LAMBDA {
              dinput_tile<TR, TK>(prow + ow, dy + g * Fg * s.OH * L.DW + ow, w + (g * Fg * Cg + c) * s.KH * s.KW + kw,
                                  ih, s, L);
            };
            dispatch_tile<kMaxRows, kMaxKw>(std::min(RB, L.XH - ih), std::min(KB, s.KW - kw), tile);
          }
        }
  for (std::int64_t r = 0; r < s.C * L.XH; ++r) {  // row r = (c, ih)
    const float* prow = part + r * s.KW * PR + Mz;
    float* dst = dxp + r * L.XW;
    for (std::int64_t iw = 0; iw < L.XW; iw += kLanes) {
      V8 sum = load_f32x8(prow + iw);
      for (std::int64_t kw = 1; kw < s.KW; ++kw) sum += load_f32x8(prow + kw * PR + iw - kw);
      if (L.XW - iw >= kLanes) store_f32x8(dst + iw, sum);
      else simd::store_first_lanes(dst + iw, sum, L.XW - iw);
    }
  }
}

// db[f] += Σ dy[n, f, ...] over nb samples of dy [N, F, OH, OW], in four vectors of lanes per plane.
TG_SIMD_INLINE void bias_sums(double* db, const float* dy, std::int64_t nb, const ConvShape& s) {
  const std::int64_t P = s.OH * s.OW;
  for (std::int64_t n = 0; n < nb; ++n)
    for (std::int64_t f = 0; f < s.F; ++f) {
      const float* v = dy + (n * s.F + f) * P;
      V8 acc[4] = {};
      std::int64_t i = 0;
      for (; i + 4 * kLanes <= P; i += 4 * kLanes)
        TG_UNROLL for (int j = 0; j < 4; ++j) acc[j] += load_f32x8(v + i + j * kLanes);
      for (; i + kLanes <= P; i += kLanes) acc[0] += load_f32x8(v + i);
      double sum = lane_sum((acc[0] + acc[1]) + (acc[2] + acc[3]));
      for (; i < P; ++i) sum += v[i];
      db[f] += sum;
    }
}

// Samples whose weight gradient accumulates in the float lanes of vacc before it is added into the
// double partial sums.
constexpr std::int64_t kSamplesPerFlush = 16;

// What the x and dy of one pass of the weight gradient's tiles may take of L1d (32 KiB on Zen 4, 48 on
// Zen 5), leaving room for the accumulators and the weights.
constexpr std::int64_t kL1Budget = 24 * 1024;

// Samples per pass of the weight gradient's tiles, a divisor of kSamplesPerFlush: as many as keep
// within kL1Budget their x, which the tiles of every block of filters read again, and the dy planes of
// one block (up to kMaxRows filters), which every (c, kh) reads again (one sample of LeNet's conv1,
// four of its conv2). The more samples a pass has, the more products each tile's accumulators take
// between loading and storing them: two samples of conv2 gave a tile only 16 steps of 10 FMAs.
std::int64_t samples_per_pass(const ConvShape& s, const Layout& L) {
  const std::int64_t bytes = 4 * (s.C * L.XH * L.XW + std::min<std::int64_t>(kMaxRows, s.F) * s.OH * L.DW);
  std::int64_t nb = 1;
  while (2 * nb <= kSamplesPerFlush && 2 * nb * bytes <= kL1Budget) nb *= 2;
  return nb;
}

// One thread slot's scratch in one allocation from the tensors' caching allocator (64-byte aligned
// pieces, not zeroed unless said): in the steady state a step neither calls malloc nor faults in
// pages for it. A piece that is not needed is null.
struct SlotScratch {
  float* x_pad = nullptr;   // [NB, C, XH, XW]: padded input samples (dweight, when L.copy)
  float* dy_pad = nullptr;  // [NB, F, OH, DW]: padded gradient samples (when L.copy)
  float* dx_pad = nullptr;  // [C, XH, XW]: one sample's padded input gradient (dx, when L.copy)
  float* part = nullptr;    // [C, XH, KW] rows of part_row floats, margins zeroed (dx)
  float* vacc = nullptr;    // [F, C/G·KH·KW] vectors: dweight's lane accumulators, zeroed (dweight)
  float* y_flat = nullptr;  // [F, flat_stride]: the AVX-512 forward's flat output rows
  Tensor owner;

  SlotScratch(std::int64_t x_pad_n, std::int64_t dy_pad_n, std::int64_t dx_pad_n, std::int64_t part_n,
              std::int64_t vacc_n, std::int64_t y_flat_n = 0) {
    auto whole_lines = [](std::int64_t n) { return (n + 15) / 16 * 16; };  // 64-byte pieces
    const std::int64_t sizes[] = {x_pad_n, dy_pad_n, dx_pad_n, part_n, vacc_n, y_flat_n};
    float** pieces[] = {&x_pad, &dy_pad, &dx_pad, &part, &vacc, &y_flat};
    std::int64_t total = 0;
    for (std::int64_t n : sizes) total += whole_lines(n);
    if (total == 0) return;
    owner = Tensor::empty({total}, kFloat32);
    float* next = owner.data_ptr<float>();
    for (int i = 0; i < 6; ++i) {
      if (sizes[i] > 0) *pieces[i] = next;
      next += whole_lines(sizes[i]);
    }
    if (part) std::memset(part, 0, sizeof(float) * static_cast<std::size_t>(part_n));
    if (vacc) std::memset(vacc, 0, sizeof(float) * static_cast<std::size_t>(vacc_n));
  }
};

// Adds vacc's lanes ([wnum] vectors of `lanes` floats) into the double sums dw_sum [wnum] and zeroes
// them.
void flush_lanes(double* dw_sum, float* vacc, std::int64_t wnum, std::int64_t lanes = kLanes) {
  for (std::int64_t i = 0; i < wnum; ++i) {
    double sum = 0;
    for (std::int64_t l = 0; l < lanes; ++l) sum += vacc[i * lanes + l];
    dw_sum[i] += sum;
  }
  std::memset(vacc, 0, sizeof(float) * static_cast<std::size_t>(wnum * lanes));
}

// --- backward, AVX-512, sixteen filters to a vector ---------------------------------------------

// With AVX-512 and groups of 16 filters the weight gradient's lanes run over filters too, on dy transposed
// per sample to position-major rows, dyT [F/16, OH, DT, 16] with DT = OW + 2·(KW − 1): row oh holds
// dy[., oh, ow] at column ow + KW − 1 and zeros in the KW − 1 columns on each side. x and dx are in
// the padded input's own width (flat_layout_of).
//
// The weight gradient, per block of 16 filters:
//   dwT[c, kh, kw][16 filters] += Σ_{n, oh, ow} dyT[n, oh, ow][16 filters] · x[n, c, oh + kh, ow + kw]
// Every lane is a product the sum needs (the row-pair tiles leave none idle either, but pay a shuffle
// for each vector of x and dy they load, on a port that also runs FMAs). A tile holds up to 5×5 taps
// of one channel, 25 accumulators, and takes the positions of a row two at a time, their dyT vectors
// in registers and each x broadcast once for both.
//
// The input gradient runs on lanes over dy's positions instead, per sample, group and input channel
// c, as a product into columns and a gather from them (col2im):
//   cols[kh, kw][p] = Σ_{f in the group} w[f, c, kh, kw] · dy[f, p]      (p = oh·OW + ow)
//   dx[c, ih, iw] = Σ_{kh, kw} cols[kh, kw][(ih − kh)·OW + iw − kw]   (the terms inside dy)
// A product tile holds up to 6 taps of one kh row × up to 4 vectors of 16 positions, its reduction
// over the group's filters one dy vector load and one broadcast weight per FMA column and row, and
// stores its accumulators into cols, which stays in L1 (LeNet-BN's conv2: 6.4 KB). Then each dx
// vector of 16 columns sums the KH·KW row pieces of cols that land on it, each loaded whole and its
// lanes outside dy zeroed, and is stored once: no product on dy's margins, no lanes to sum across, and
// no read-modify-write of dx, whose stores the next loads would have had to wait for. (Lanes over
// filters would put a third of LeNet-BN's conv2 products on dy's zero margins and a sixth of the time
// into summing lanes.)
constexpr int kMaxDweightRows = 5, kMaxDweightCols = 5;
constexpr int kMaxDinputTaps = 6, kMaxDinputVectors = 4;

// The floats before and after cols that the gather's whole-vector loads may touch (and zero).
std::int64_t cols_margin(const ConvShape& s) { return (s.KW - 1 + kFlatLanes - 1) / kFlatLanes * kFlatLanes + kFlatLanes; }

std::int64_t dyt_columns(const ConvShape& s) { return s.OW + 2 * (s.KW - 1); }

// dwt (at block b's tap (c, kh0, kw0) of [taps][16]) += RB×CB taps' sums over nb samples; dyt points at
// sample 0's block b (row 0, column KW − 1: dy's (0, 0)), x at sample 0's (channel c, row kh0, column
// kw0); samples dyt_sample and x_sample floats apart.
// PB positions of a row at a time, their dyT vectors in registers: each x broadcast once serves every
// (position, tap) pair it meets, RB·(PB + CB − 1) broadcasts and PB loads for RB·CB·PB FMAs (LeNet-BN's
// conv2, 5 × 5 taps, PB = 2: 32 loads for 50 FMAs, against 52 with one broadcast FMA each; its weight
// gradient 0.60 -> 0.49 ms; PB = 4 ran no faster). acc[i][j] still takes its positions in order: the same
// bits. A one-column tile has nothing to share and takes one position at a time.
//
// Fixed, when not void, is the output and input rows known at compile time (FixedDweightShape: OH × OW
// outputs, x rows of XW, a whole kernel row of CB = KW taps): a row's positions unrolled, each x at a
// constant offset from one pointer (LeNet-BN's conv2).
template <int OH_, int OW_, int XW_>
struct FixedDweightShape {
  static constexpr std::int64_t OH = OH_, OW = OW_, XW = XW_;
};
template <int RB, int CB, int PB = (CB >= 2 ? 2 : 1), class Fixed = void>
TG_SIMD_INLINE void filter_lane_dweight_tile(float* dwt, const float* dyt, const float* x, std::int64_t nb,
                                             std::int64_t dyt_sample, std::int64_t x_sample, const ConvShape& s,
                                             const Layout& L) {
  const std::int64_t dyt_row = dyt_columns(s) * kFlatLanes;
  V16 acc[RB][CB];
  TG_UNROLL for (int i = 0; i < RB; ++i)
    TG_UNROLL for (int j = 0; j < CB; ++j) acc[i][j] = load_f32x16(dwt + (i * s.KW + j) * kFlatLanes);
  if constexpr (!std::is_void_v<Fixed>) {
    constexpr std::int64_t OH = Fixed::OH, OW = Fixed::OW, XW = Fixed::XW, DT = (OW + 2 * (CB - 1)) * kFlatLanes;
    static_assert(OW % PB == 0, "whole steps of PB positions");
    for (std::int64_t n = 0; n < nb; ++n)
      for (std::int64_t oh = 0; oh < OH; ++oh) {
        const float* g_row = dyt + n * dyt_sample + oh * DT;
        const float* x_row = x + n * x_sample + oh * XW;
        TG_UNROLL for (int ow = 0; ow < OW; ow += PB) {
          V16 g[PB];
          TG_UNROLL for (int p = 0; p < PB; ++p) g[p] = load_f32x16(g_row + (ow + p) * kFlatLanes);
          broadcast_once_fmas<RB, CB, PB, true>(acc, g,
                                                [&](int i, int m) TG_SIMD_LAMBDA { return x_row[i * XW + ow + m]; });
        }
      }
  } else
  for (std::int64_t n = 0; n < nb; ++n)
    for (std::int64_t oh = 0; oh < s.OH; ++oh) {
      std::int64_t ow = 0;
      if constexpr (PB > 1) {
        for (; ow + PB <= s.OW; ow += PB) {
          const float* g_row = dyt + n * dyt_sample + oh * dyt_row + ow * kFlatLanes;
          V16 g[PB];
          TG_UNROLL for (int p = 0; p < PB; ++p) g[p] = load_f32x16(g_row + p * kFlatLanes);
          const RowPointers<RB> xp(x + n * x_sample + oh * L.XW + ow, L.XW);
          broadcast_once_fmas(acc, g, [&](int i, int m) TG_SIMD_LAMBDA { return xp.row[i][m]; });
        }
      }
      for (; ow < s.OW; ++ow) {
        const V16 g = load_f32x16(dyt + n * dyt_sample + oh * dyt_row + ow * kFlatLanes);
        const RowPointers<RB> xp(x + n * x_sample + oh * L.XW + ow, L.XW);  // one broadcast FMA each
        TG_UNROLL for (int i = 0; i < RB; ++i)
          TG_UNROLL for (int j = 0; j < CB; ++j) acc[i][j] += g * xp.row[i][j];
      }
    }
  TG_UNROLL for (int i = 0; i < RB; ++i)
    TG_UNROLL for (int j = 0; j < CB; ++j) std::memcpy(dwt + (i * s.KW + j) * kFlatLanes, &acc[i][j], sizeof(V16));
}

// cols[t][p0 + ...] = the TT taps (kh, kw0 + t) × VB vectors of positions from p0, over the Fg filters
// of one group: cols at tap (kh, kw0), rows PV floats apart; w at the group's first filter's tap
// (c, kh, kw0) (filters taps floats apart); dyp at its first filter's position p0 (filters dy_stride
// floats apart, readable up to a whole vector past P).
template <int TT, int VB>
TG_SIMD_INLINE void dinput_cols_tile(float* cols, const float* dyp, const float* w, std::int64_t Fg,
                                     std::int64_t dy_stride, std::int64_t PV, std::int64_t taps) {
  V16 acc[TT][VB];
  TG_UNROLL for (int t = 0; t < TT; ++t)
    TG_UNROLL for (int v = 0; v < VB; ++v) acc[t][v] = V16{};
  for (std::int64_t f = 0; f < Fg; ++f) {
    V16 g[VB];
    TG_UNROLL for (int v = 0; v < VB; ++v) g[v] = load_f32x16(dyp + f * dy_stride + v * kFlatLanes);
    const float* wf = w + f * taps;
    asm("" : "+r"(wf));  // one broadcast FMA each, as in filter_lane_tile
    TG_UNROLL for (int t = 0; t < TT; ++t)
      TG_UNROLL for (int v = 0; v < VB; ++v) acc[t][v] += g[v] * wf[t];
  }
  TG_UNROLL for (int t = 0; t < TT; ++t)
    TG_UNROLL for (int v = 0; v < VB; ++v) std::memcpy(cols + t * PV + v * kFlatLanes, &acc[t][v], sizeof(V16));
}

// Which lanes of dx's vector of columns [j0, j0 + 16) the gather takes from tap column kw: lane l
// reads dy column j0 + l − kw, inside dy for l in [kw − j0, OW + kw − j0). One all-ones-or-zero int per
// lane, [XW/16 vectors (rounded up)][KW][16], made once per call: lane-by-lane compares in the gather
// are what GCC would make of them.
std::vector<std::int32_t> gather_masks(const ConvShape& s, const Layout& L) {
  const std::int64_t chunks = (L.XW + kFlatLanes - 1) / kFlatLanes;
  std::vector<std::int32_t> masks(static_cast<std::size_t>(chunks * s.KW * kFlatLanes));
  for (std::int64_t j = 0; j < chunks; ++j)
    for (std::int64_t kw = 0; kw < s.KW; ++kw)
      for (std::int64_t l = 0; l < kFlatLanes; ++l) {
        const std::int64_t column = j * kFlatLanes + l - kw;
        masks[static_cast<std::size_t>((j * s.KW + kw) * kFlatLanes + l)] = column >= 0 && column < s.OW ? -1 : 0;
      }
  return masks;
}

// simd::store_first_lanes in pieces of 8, 4, 2 and 1 lanes by the bits of width (< 16): its
// lane-by-lane loop becomes a call to libc's memcpy, 8% of LeNet-BN's conv2 backward here. (The AVX2
// forward tiles keep that loop: with the pieces GCC moved one of their epilogue's values to the
// stack, which register_tiles counts.)
TG_SIMD_INLINE void store_first_lanes_in_pieces(float* p, const V16& v, std::int64_t width) {
  float lanes[kFlatLanes];
  std::memcpy(lanes, &v, sizeof v);
  std::int64_t done = 0;
  if (width & 8) std::memcpy(p, lanes, 8 * sizeof(float)), done = 8;
  if (width & 4) std::memcpy(p + done, lanes + done, 4 * sizeof(float)), done += 4;
  if (width & 2) std::memcpy(p + done, lanes + done, 2 * sizeof(float)), done += 2;
  if (width & 1) p[done] = lanes[done];
}

constexpr int kMaxNarrowGatherTaps = 7;

// dinput_gather for dx rows no wider than a vector (LeNet-BN's conv2: 12 columns from rows of 8), KW
// taps a row known at compile time. Each row piece of cols is loaded on its own, its OW lanes only:
// with OW = 8 every load is 32-byte aligned, where the general gather's whole vectors at
// (ih − kh)·OW − kw split across cache lines. For each dx row the pieces of one kw are summed over kh
// into `column[kw]` (eight lanes when OW <= 8: one add with its load), kh outermost, so that the only
// branch whose outcome changes from row to row is that loop's (1 to KH rows); then each column is
// moved up kw lanes of a zero vector (shift_up, one permute) and added in. The same terms added in the same
// order as the general gather's: the same bits.
template <int KW, class Row>
TG_SIMD_INLINE void dinput_gather_narrow(float* dx, const float* cols, std::int64_t PV, const ConvShape& s,
                                         const Layout& L) {
  using IRow = typename simd::IntLanes<Row>::type;
  constexpr int kRowLanes = sizeof(Row) / sizeof(float);
  IRow in_row;  // lanes below OW
  for (int l = 0; l < kRowLanes; ++l) in_row[l] = l < s.OW ? -1 : 0;
  const bool whole_rows = s.OW == kRowLanes;
  for (std::int64_t ih = 0; ih < L.XH; ++ih) {
    const std::int64_t kh_lo = std::max<std::int64_t>(0, ih - s.OH + 1), kh_hi = std::min(s.KH - 1, ih);
    Row column[KW] = {};
    for (std::int64_t kh = kh_lo; kh <= kh_hi; ++kh) {
      const float* row = cols + kh * KW * PV + (ih - kh) * s.OW;
      if (whole_rows)
        TG_UNROLL for (int kw = 0; kw < KW; ++kw) column[kw] += simd::load_lanes<Row>(row + kw * PV);
      else
        TG_UNROLL for (int kw = 0; kw < KW; ++kw)
          column[kw] += reinterpret_cast<Row>(reinterpret_cast<IRow>(simd::load_lanes<Row>(row + kw * PV)) & in_row);
    }
    V16 sum{};
    [&]<int... K>(std::integer_sequence<int, K...>) TG_SIMD_LAMBDA {
      const auto add_column = [&]<int kw>() TG_SIMD_LAMBDA {
        V16 wide;
        if constexpr (kRowLanes == 8)
          wide = __builtin_shufflevector(column[kw], Row{}, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        else
          wide = column[kw];
        sum += shift_up<kw>(wide);
      };
      (add_column.template operator()<K>(), ...);  // in kw order, as the general gather adds them
    }(std::make_integer_sequence<int, KW>{});
    float* out = dx + ih * L.XW;
    if (L.XW == kFlatLanes) std::memcpy(out, &sum, sizeof sum);
    else store_first_lanes_in_pieces(out, sum, L.XW);
  }
}

// dinput_gather_narrow for one shape known at compile time, KH × KW taps over OH × 8 outputs (LeNet-BN's
// conv2: 5 × 5 over 8 × 8, dx rows of 12), every loop unrolled: each row's kh range and every row
// piece's offset in cols are constants from one pointer. The runtime loops kept the offsets in
// registers GCC ran short of (spilled, and moved through vector registers); the gather was a quarter
// of conv2's input gradient, which unrolled runs 10% faster. The same terms in the same order: the
// same bits.
template <int KH, int KW, int OH, int OW>
TG_SIMD_INLINE void dinput_gather_unrolled(float* dx, const float* cols) {
  static_assert(OW == 8 && OW + KW - 1 <= kFlatLanes, "rows of 8 outputs, dx rows of at most 16");
  constexpr int XH = OH + KH - 1, XW = OW + KW - 1, PV = (OH * OW + kFlatLanes - 1) / kFlatLanes * kFlatLanes;
  const auto row = [&]<int ih>() TG_SIMD_LAMBDA {
    constexpr int kh_lo = ih - OH + 1 > 0 ? ih - OH + 1 : 0, kh_hi = ih < KH - 1 ? ih : KH - 1;
    V8 column[KW] = {};
    TG_UNROLL for (int kh = kh_lo; kh <= kh_hi; ++kh)
      TG_UNROLL for (int kw = 0; kw < KW; ++kw) column[kw] += load_f32x8(cols + (kh * KW + kw) * PV + (ih - kh) * OW);
    V16 sum{};
    [&]<int... K>(std::integer_sequence<int, K...>) TG_SIMD_LAMBDA {
      ((sum += shift_up<K>(__builtin_shufflevector(column[K], V8{}, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
                                                   14, 15))),
       ...);  // in kw order, as dinput_gather_narrow adds them
    }(std::make_integer_sequence<int, KW>{});
    float* out = dx + ih * XW;
    if constexpr (XW == kFlatLanes) {
      std::memcpy(out, &sum, sizeof sum);
    } else {
      store_f32x8(out, __builtin_shufflevector(sum, sum, 0, 1, 2, 3, 4, 5, 6, 7));
      float rest[kFlatLanes];
      std::memcpy(rest, &sum, sizeof sum);
      std::memcpy(out + 8, rest + 8, sizeof(float) * (XW - 8));
    }
  };
  [&]<int... IH>(std::integer_sequence<int, IH...>) TG_SIMD_LAMBDA {
    (row.template operator()<IH>(), ...);
  }(std::make_integer_sequence<int, XH>{});
}

// dx's plane c (padded, [XH, XW]) from its cols ([KH·KW][PV], cols_margin(s) readable floats on
// each side): vectors of 16 columns, each the sum of the cols row pieces that land on it, loaded
// whole: for each kw the KH pieces (one chain of adds a kw, independent of the others'), masked once
// (gather_masks) and added in. Rows of at most 16 columns, from kernels up to kMaxNarrowGatherTaps
// wide, take dinput_gather_narrow.
TG_SIMD_INLINE void dinput_gather(float* dx, const float* cols, const std::int32_t* masks, std::int64_t PV,
                                  const ConvShape& s, const Layout& L) {
  using I16 = simd::I32x16;
  using Net = LeNetConv2;
  if (Net::matches(s)) return dinput_gather_unrolled<Net::K, Net::K, Net::OH, Net::OW>(dx, cols);
  if (L.XW <= kFlatLanes && s.KW <= kMaxNarrowGatherTaps)
    return dispatch_tile<kMaxNarrowGatherTaps, 1>(s.KW, 1, [&]<int KW, int>() TG_SIMD_LAMBDA {
      if (s.OW <= 8) dinput_gather_narrow<KW, V8>(dx, cols, PV, s, L);
      else dinput_gather_narrow<KW, V16>(dx, cols, PV, s, L);
    });
  for (std::int64_t ih = 0; ih < L.XH; ++ih) {
    const std::int64_t kh_lo = std::max<std::int64_t>(0, ih - s.OH + 1), kh_hi = std::min(s.KH - 1, ih);
    for (std::int64_t j0 = 0; j0 < L.XW; j0 += kFlatLanes) {
      const std::int32_t* chunk_masks = masks + j0 * s.KW;
      V16 sum{};
      for (std::int64_t kw = 0; kw < s.KW; ++kw) {
        I16 inside;
        std::memcpy(&inside, chunk_masks + kw * kFlatLanes, sizeof inside);
        V16 column{};
        for (std::int64_t kh = kh_lo; kh <= kh_hi; ++kh)
          column += load_f32x16(cols + (kh * s.KW + kw) * PV + (ih - kh) * s.OW + j0 - kw);
        sum += reinterpret_cast<V16>(reinterpret_cast<I16>(column) & inside);
      }
      float* out = dx + ih * L.XW + j0;
      if (j0 + kFlatLanes <= L.XW) std::memcpy(out, &sum, sizeof sum);
      else store_first_lanes_in_pieces(out, sum, L.XW - j0);
    }
  }
}

// One sample's dy [F, OH, OW] into dyT [F/16, OH, DT, 16] (its side columns left as they are): each
// block of 16 filters × 16 positions transposed in registers, the positions past the last whole
// vector moved one float at a time. Positions are walked as (oh, ow), not divided out of p.
TG_SIMD_INLINE void transpose_dy(float* dyt, const float* dy, const ConvShape& s) {
  const std::int64_t P = s.P(), DT = dyt_columns(s), block = s.OH * DT * kFlatLanes, whole = P / kFlatLanes * kFlatLanes;
  for (std::int64_t b = 0; b < s.F / kFlatLanes; ++b) {
    const float* src = dy + b * kFlatLanes * P;
    float* row = dyt + b * block + (s.KW - 1) * kFlatLanes;  // dy's (0, 0) in block b
    std::int64_t ow = 0;
    const auto next = [&] {  // the position after the one `row + ow · 16` holds
      if (++ow == s.OW) ow = 0, row += DT * kFlatLanes;
    };
    for (std::int64_t p0 = 0; p0 < whole; p0 += kFlatLanes) {
      V16 rows[16];
      TG_UNROLL for (int f = 0; f < 16; ++f) rows[f] = load_f32x16(src + f * P + p0);
      transpose_16x16(rows);
      TG_UNROLL for (int k = 0; k < 16; ++k) std::memcpy(row + ow * kFlatLanes, &rows[k], sizeof(V16)), next();
    }
    for (std::int64_t p = whole; p < P; ++p, next())
      for (std::int64_t f = 0; f < kFlatLanes; ++f) row[ow * kFlatLanes + f] = src[f * P + p];
  }
}

// The backward of samples [n_lo, n_hi) with filter lanes (filter_lanes(s), AVX-512): their dx when dx
// is not null, and their weight gradient added into the double sums dw_sum [F·C/G·KH·KW] when that is
// not null, in passes of samples whose x and dyT stay in L1 (as samples_per_pass), the weight
// gradient's float lanes flushed into dw_sum every kSamplesPerFlush samples.
void filter_lane_backward(float* dx, double* dw_sum, const float* dy, const float* x, const float* weight,
                          std::int64_t n_lo, std::int64_t n_hi, const ConvShape& s) {
  const Layout L = flat_layout_of(s);
  const std::int64_t Cg = s.C / s.G, Fg = s.F / s.G, taps = s.R(), P = s.P(), blocks = s.F / kFlatLanes,
                     blocks_per_group = blocks / s.G;
  const std::int64_t x_sample = s.C * L.XH * L.XW, dyt_block = s.OH * dyt_columns(s) * kFlatLanes,
                     dyt_sample = blocks * dyt_block;
  const std::int64_t x_numel = s.C * s.H * s.W, dy_numel = s.F * P;
  std::int64_t NB = 1;
  while (2 * NB <= kSamplesPerFlush && 2 * NB * 4 * (x_sample + dyt_sample) <= kL1Budget) NB *= 2;
  // The input gradient's tiles read whole vectors of dy's planes: in place when P is a multiple of 16,
  // else from a copy of the sample's planes rounded up to whole vectors (dy_pad).
  const std::int64_t PV = (P + kFlatLanes - 1) / kFlatLanes * kFlatLanes;
  const bool dy_copy = PV > P;
  const std::int64_t cols_n = s.KH * s.KW * PV + 2 * cols_margin(s);
  // Pieces: x_pad for x (weight gradient, padded input), dy_pad for one sample's dy planes (input
  // gradient), dx_pad (input gradient, padded input), part for the input gradient's cols, vacc for
  // dwT, y_flat for dyT.
  SlotScratch sc(dw_sum && L.copy ? NB * x_sample : 0, dx && dy_copy ? s.F * PV : 0, dx && L.copy ? x_sample : 0,
                 dx ? cols_n : 0, dw_sum ? s.F * taps : 0, dw_sum ? NB * dyt_sample : 0);
  float* cols = dx ? sc.part + cols_margin(s) : nullptr;  // part comes zeroed: the margins stay 0
  const std::vector<std::int32_t> masks = dx ? gather_masks(s, L) : std::vector<std::int32_t>();
  const bool lenet_conv2 = LeNetConv2::matches(s);
  float* dyt = sc.y_flat;
  if (dw_sum) std::memset(dyt, 0, sizeof(float) * static_cast<std::size_t>(NB * dyt_sample));  // side columns stay 0
  if (dx && dy_copy)  // the lanes past P read zeros
    for (std::int64_t f = 0; f < s.F; ++f) std::memset(sc.dy_pad + f * PV + P, 0, sizeof(float) * (PV - P));
  for (std::int64_t n0 = n_lo; n0 < n_hi; n0 += NB) {
    const std::int64_t nb = std::min(NB, n_hi - n0);
    if (dw_sum) {
      simd::with_isa([&]<Isa I>() TG_SIMD_LAMBDA {  // dyT, which only the weight gradient reads
        if constexpr (I == Isa::Avx512)
          for (std::int64_t n = 0; n < nb; ++n) transpose_dy(dyt + n * dyt_sample, dy + (n0 + n) * dy_numel, s);
      });
      const float* xb = pass_input(sc.x_pad, x, n0, nb, s, L, L.copy);
      simd::with_isa([&]<Isa I>() TG_SIMD_LAMBDA {
        if constexpr (I == Isa::Avx512)
          for (std::int64_t b = 0; b < blocks; ++b)
            for (std::int64_t c = 0; c < Cg; ++c)
              for (std::int64_t kh = 0; kh < s.KH; kh += kMaxDweightRows)
                for (std::int64_t kw = 0; kw < s.KW; kw += kMaxDweightCols) {
                  const std::int64_t channel = b / blocks_per_group * Cg + c;
                  dispatch_tile<kMaxDweightRows, kMaxDweightCols>(
                      std::min<std::int64_t>(kMaxDweightRows, s.KH - kh),
                      std::min<std::int64_t>(kMaxDweightCols, s.KW - kw), [&]<int TR, int TC>() TG_SIMD_LAMBDA {
                        if constexpr (TR == 5 && TC == 5) {
                          if (lenet_conv2)
                            return filter_lane_dweight_tile<
                                TR, TC, 2, FixedDweightShape<LeNetConv2::OH, LeNetConv2::OW, LeNetConv2::XW>>(
                                sc.vacc + (b * taps + (c * s.KH + kh) * s.KW + kw) * kFlatLanes,
                                dyt + b * dyt_block + (s.KW - 1) * kFlatLanes,
                                xb + (channel * L.XH + kh) * L.XW + kw, nb, dyt_sample, x_sample, s, L);
                        }
                        filter_lane_dweight_tile<TR, TC>(
                            sc.vacc + (b * taps + (c * s.KH + kh) * s.KW + kw) * kFlatLanes,
                            dyt + b * dyt_block + (s.KW - 1) * kFlatLanes, xb + (channel * L.XH + kh) * L.XW + kw, nb,
                            dyt_sample, x_sample, s, L);
                      });
                }
      });
      if ((n0 + nb - n_lo) % kSamplesPerFlush == 0 || n0 + nb == n_hi) {
        for (std::int64_t f = 0; f < s.F; ++f)
          for (std::int64_t t = 0; t < taps; ++t)
            dw_sum[f * taps + t] += sc.vacc[(f / kFlatLanes * taps + t) * kFlatLanes + f % kFlatLanes];
        std::memset(sc.vacc, 0, sizeof(float) * static_cast<std::size_t>(s.F * taps));
      }
    }
    if (dx)
      for (std::int64_t n = 0; n < nb; ++n) {
        float* dxn = dx + (n0 + n) * x_numel;
        float* dxp = L.copy ? sc.dx_pad : dxn;
        const float* dyn = dy + (n0 + n) * dy_numel;
        if (dy_copy)
          for (std::int64_t f = 0; f < s.F; ++f)
            std::memcpy(sc.dy_pad + f * PV, dyn + f * P, sizeof(float) * static_cast<std::size_t>(P));
        const float* dy_planes = dy_copy ? sc.dy_pad : dyn;
        const std::int64_t dy_stride = dy_copy ? PV : P;
        simd::with_isa([&]<Isa I>() TG_SIMD_LAMBDA {
          if constexpr (I == Isa::Avx512)
            for (std::int64_t g = 0; g < s.G; ++g)
              for (std::int64_t c = 0; c < Cg; ++c) {
                for (std::int64_t kh = 0; kh < s.KH; ++kh)
                  for (std::int64_t kw = 0; kw < s.KW; kw += kMaxDinputTaps)
                    for (std::int64_t p0 = 0; p0 < PV; p0 += kMaxDinputVectors * kFlatLanes)
                      dispatch_tile<kMaxDinputTaps, kMaxDinputVectors>(
                          std::min<std::int64_t>(kMaxDinputTaps, s.KW - kw),
                          std::min<std::int64_t>(kMaxDinputVectors, (PV - p0) / kFlatLanes),
                          [&]<int TT, int VB>() TG_SIMD_LAMBDA {
                            dinput_cols_tile<TT, VB>(cols + (kh * s.KW + kw) * PV + p0,
                                                     dy_planes + g * Fg * dy_stride + p0,
                                                     weight + g * Fg * taps + (c * s.KH + kh) * s.KW + kw, Fg,
                                                     dy_stride, PV, taps);
                          });
                dinput_gather(dxp + (g * Cg + c) * L.XH * L.XW, cols, masks.data(), PV, s, L);
              }
        });
        if (!L.copy) continue;
        for (std::int64_t c = 0; c < s.C; ++c)
          for (std::int64_t h = 0; h < s.H; ++h)
            std::memcpy(dxn + (c * s.H + h) * s.W, sc.dx_pad + (c * L.XH + h + s.PH) * L.XW + s.PW,
                        sizeof(float) * static_cast<std::size_t>(s.W));
      }
  }
}

// --- backward, AVX-512, flat positions ----------------------------------------------------------

// For groups whose filters do not come in sixteens and outputs not 8 or 24 wide (those take the
// row-span tiles below), the weight gradient's lanes run over flat positions q = oh·XW + ow, as the
// flat forward's do:
//   dwq[f, t][16] += Σ_{n, q} dyq[n, f, q] · x[n, q + off(t)],   off(t) = (c·XH + kh)·XW + kw
// for each tap t = (c, kh, kw) of the group (x and XW, XH of flat_layout_of), where dyq is dy in flat
// rows [F, QS] (QS = flat_stride) with zeros at ow >= OW and past the last row, so those lanes add
// nothing; dw[f, t] is the sum of dwq[f, t]'s lanes, taken when they are flushed into the double sums.
// KW − 1 of every XW lanes are wasted (conv1: 14%), but no vector needs a shuffle to be built, as the
// row-pair tiles' do for each one they load (9 shuffles to 20 FMAs, on a port that also runs FMAs): x
// is an unaligned load, dy an aligned one. The last vector reads up to kFlatLanes − 1 floats of x past
// the group's last plane, as the flat forward's does: inside the batch but for its last sample, which
// is read from a copy with zeros after it.
//
// A tile holds FB filters × KB consecutive taps: FB·KB accumulators, FB dy vectors, and one x vector
// at a time, loaded once for FB FMAs. The bias gradient Σ dy[f] is summed from the vectors that
// flatten dy into dyq (replacing bias_sums' own pass over dy): dy is read from memory once, for both
// gradients. Filters come in blocks of up to 6 (Fg = 8 as 4 + 4), taps in tiles as even as fit.
constexpr int kMaxFlatDweightFilters = 6, kMaxFlatDweightTaps = 8;
// FB·KB + FB + 1 registers: 6 × 4 takes 31 of the 32 and none spilled (scripts/check-register-tiles).
constexpr std::int64_t kFlatDweightRegisters = 31;
constexpr std::int64_t flat_dweight_taps(std::int64_t FB) {
  return std::min({std::int64_t{kMaxFlatDweightTaps}, kTileAccumulators512 / FB, (kFlatDweightRegisters - 1) / FB - 1});
}

// Whether the weight gradient of s runs flat_dweight_backward rather than the row-pair tiles: when the
// share of lanes its tiles use, OH·OW of QS, is at least 4/5 of theirs, OH·OW of 2⌈OH/2⌉ rows of DW
// (the row pairs pay a shuffle per vector that the flat tiles do not). Measured on one thread, batch
// 256, weight and bias gradients, best of 300: LeNet-BN's conv1 (6 filters 5×5 on 28×28, shares 86%
// and 100%) took 0.64 ms flat against 0.78, and 12 filters 6×5×5 on 12×12 (67% and 100%) 1.4 against 1.0.
bool flat_dweight(const ConvShape& s) {
  const std::int64_t pair_positions = (s.OH + 1) / 2 * 2 * layout_of(s).DW;
  return 5 * pair_positions >= 4 * flat_stride(s, flat_layout_of(s));
}

// What the flat and the row-span weight gradients share. Filters in blocks of up to 6 (Fg = 8 as
// 4 + 4), as even as fit.
std::int64_t dweight_filter_block(std::int64_t Fg) {
  const std::int64_t blocks = (Fg + kMaxFlatDweightFilters - 1) / kMaxFlatDweightFilters;
  return (Fg + blocks - 1) / blocks;
}
// off(t) = (c·XH + kh)·XW + kw for each tap t = (c, kh, kw) of a group, in x's planes of layout L.
std::vector<std::int64_t> tap_offsets(const ConvShape& s, const Layout& L) {
  std::vector<std::int64_t> offsets(static_cast<std::size_t>(s.R()));
  for (std::int64_t c = 0; c < s.C / s.G; ++c)
    for (std::int64_t kh = 0; kh < s.KH; ++kh)
      for (std::int64_t kw = 0; kw < s.KW; ++kw) offsets[(c * s.KH + kh) * s.KW + kw] = (c * L.XH + kh) * L.XW + kw;
  return offsets;
}
// tile(g, f, fb, t0, kb) for each group g, block of fb filters from filter f (blocks of FB) and tile of
// kb taps from tap t0, at most taps_for(fb) of them, split evenly (conv1's 25 in tiles of 3 and 4
// rather than six 4s and a 1).
template <class TapsFor, class Tile>
TG_SIMD_INLINE void for_each_dweight_tile(const ConvShape& s, std::int64_t FB, TapsFor taps_for, Tile&& tile) {
  const std::int64_t Fg = s.F / s.G, taps = s.R();
  for (std::int64_t g = 0; g < s.G; ++g)
    for (std::int64_t f0 = 0; f0 < Fg; f0 += FB) {
      const std::int64_t fb = std::min(FB, Fg - f0), KB = taps_for(fb), tiles = (taps + KB - 1) / KB;
      for (std::int64_t i = 0; i < tiles; ++i) {
        const std::int64_t t0 = taps * i / tiles;
        tile(g, g * Fg + f0, fb, t0, taps * (i + 1) / tiles - t0);
      }
    }
}

// dwq (at filter 0, tap t0 of [F, taps, 16]) += FB filters × KB taps' sums over nb samples' `vectors`
// flat vectors: dyq points at sample 0's filter 0 plane (planes QS floats apart), x at sample 0's
// channel 0 plane of the group, offsets at off(t0); samples dyq_sample and x_sample floats apart.
// Each step also fetches one cache line of the ahead_n floats at `ahead` (see flat_dweight_backward).
template <int FB, int KB>
TG_SIMD_INLINE void flat_dweight_tile(float* dwq, const float* dyq, const float* x, const std::int64_t* offsets,
                                      std::int64_t nb, std::int64_t vectors, std::int64_t QS, std::int64_t dyq_sample,
                                      std::int64_t x_sample, std::int64_t taps, const float* ahead,
                                      std::int64_t ahead_n) {
  V16 acc[FB][KB];
  TG_UNROLL for (int f = 0; f < FB; ++f)
    TG_UNROLL for (int k = 0; k < KB; ++k) acc[f][k] = load_f32x16(dwq + (f * taps + k) * kFlatLanes);
  for (std::int64_t n = 0; n < nb; ++n) {
    const float* dn = dyq + n * dyq_sample;
    const float* xk[KB];
    TG_UNROLL for (int k = 0; k < KB; ++k) xk[k] = x + n * x_sample + offsets[k];
    for (std::int64_t q = 0; q < vectors * kFlatLanes; q += kFlatLanes) {
      if (n * vectors * kFlatLanes + q < ahead_n) __builtin_prefetch(ahead + n * vectors * kFlatLanes + q, 0, 2);
      V16 g[FB];
      TG_UNROLL for (int f = 0; f < FB; ++f) {
        V16 gf = load_f32x16(dn + f * QS + q);
#if !defined(__clang__)
        // One load for the KB FMAs: with 3 taps GCC folded it into each FMA instead. Pinned in a local:
        // pinned in g itself, g went to the stack, six stores a step.
        asm("" : "+v"(gf));
#endif
        g[f] = gf;
      }
      TG_UNROLL for (int k = 0; k < KB; ++k) {
        V16 xv = load_f32x16(xk[k] + q);
#if !defined(__clang__)
        asm("" : "+v"(xv));  // one load for the FB FMAs, as in dweight_tile
#endif
        TG_UNROLL for (int f = 0; f < FB; ++f) acc[f][k] += g[f] * xv;
      }
    }
  }
  TG_UNROLL for (int f = 0; f < FB; ++f)
    TG_UNROLL for (int k = 0; k < KB; ++k) std::memcpy(dwq + (f * taps + k) * kFlatLanes, &acc[f][k], sizeof(V16));
}

// dy's rows of OW floats [OH, OW] at src to flat rows XW apart at dst, by vector moves, and their sum
// (the bias gradient's share), taken from the vectors moved; the columns from OW are left as they are
// (zero).
TG_SIMD_INLINE double flatten_rows(float* dst, const float* src, const ConvShape& s, const Layout& L) {
  V16 sum16{};
  V8 sum8{};
  float rest = 0;
  for (std::int64_t oh = 0; oh < s.OH; ++oh) {
    const float* from = src + oh * s.OW;
    float* to = dst + oh * L.XW;
    std::int64_t ow = 0;
    for (; ow + kFlatLanes <= s.OW; ow += kFlatLanes) {
      const V16 v = load_f32x16(from + ow);
      std::memcpy(to + ow, &v, sizeof v);
      sum16 += v;
    }
    for (; ow + kLanes <= s.OW; ow += kLanes) {
      const V8 v = load_f32x8(from + ow);
      store_f32x8(to + ow, v);
      sum8 += v;
    }
    for (; ow < s.OW; ++ow) rest += to[ow] = from[ow];
  }
  double sum = rest;
  for (int l = 0; l < kFlatLanes; ++l) sum += sum16[l];
  for (int l = 0; l < kLanes; ++l) sum += sum8[l];
  return sum;
}

// The weight and bias gradients of samples [n_lo, n_hi) (AVX-512, flat_dweight(s)) added into the double
// sums dw_sum [F·C/G·KH·KW] and db_sum [F] (when not null): in passes of samples whose x and dyq stay
// in L1 (as samples_per_pass), the float lanes flushed into dw_sum every kSamplesPerFlush samples, and
// each sample's bias sums added into db_sum.
void flat_dweight_backward(double* dw_sum, double* db_sum, const float* dy, const float* x, std::int64_t n_lo,
                           std::int64_t n_hi, const ConvShape& s) {
  const Layout L = flat_layout_of(s);
  const std::int64_t Cg = s.C / s.G, Fg = s.F / s.G, taps = s.R(), P = s.P(), QS = flat_stride(s, L),
                     vectors = QS / kFlatLanes;
  const std::int64_t x_sample = s.C * L.XH * L.XW, dyq_sample = s.F * QS, x_numel = s.C * s.H * s.W,
                     dy_numel = s.F * P;
  const std::int64_t FB = dweight_filter_block(Fg);
  std::int64_t NB = 1;
  while (2 * NB <= kSamplesPerFlush && 2 * NB * 4 * (x_sample + dyq_sample) <= kL1Budget) NB *= 2;
  // The batch's last sample is read from a copy (x_pad, with kFlatLanes zeros after the pass), as are
  // all when the input is padded; dyq's zeros, written once, stay where no dy is copied.
  const bool last = n_hi == s.N;
  SlotScratch sc(L.copy || last ? NB * x_sample + kFlatLanes : 0, 0, 0, 0, s.F * taps * kFlatLanes,
                 NB * dyq_sample);
  float* dyq = sc.y_flat;
  std::memset(dyq, 0, sizeof(float) * static_cast<std::size_t>(NB * dyq_sample));
  if (sc.x_pad) std::memset(sc.x_pad, 0, sizeof(float) * static_cast<std::size_t>(NB * x_sample + kFlatLanes));
  const std::vector<std::int64_t> offsets = tap_offsets(s, L);
  for (std::int64_t n0 = n_lo; n0 < n_hi; n0 += NB) {
    const std::int64_t nb = std::min(NB, n_hi - n0);
    const float* xb = pass_input(sc.x_pad, x, n0, nb, s, L, L.copy || n0 + nb == s.N);
    simd::with_isa([&]<Isa I>() TG_SIMD_LAMBDA {
      if constexpr (I == Isa::Avx512) {
        // The next pass's dy is fetched while this one's tiles run, one line in each step of each tile,
        // and its x before them: without, flattening dy waited for memory for a quarter of the time of
        // conv1's weight gradient, and fetching it all at once stalled on the line fill buffers.
        const std::int64_t next = std::min(NB, n_hi - n0 - nb), ahead_step = nb * vectors * kFlatLanes;
        const float* dy_next = dy + (n0 + nb) * dy_numel;
        std::int64_t ahead = 0;
        for (std::int64_t i = 0; i < next * x_numel; i += kFlatLanes)
          __builtin_prefetch(x + (n0 + nb) * x_numel + i, 0, 2);
        for (std::int64_t n = 0; n < nb; ++n)
          for (std::int64_t f = 0; f < s.F; ++f) {
            const double sum = flatten_rows(dyq + n * dyq_sample + f * QS, dy + (n0 + n) * dy_numel + f * P, s, L);
            if (db_sum) db_sum[f] += sum;
          }
        for_each_dweight_tile(s, FB, flat_dweight_taps, [&](std::int64_t g, std::int64_t f, std::int64_t fb,
                                                             std::int64_t t0, std::int64_t kb) TG_SIMD_LAMBDA {
          dispatch_tile<kMaxFlatDweightFilters, kMaxFlatDweightTaps>(fb, kb, [&]<int TF, int TK>() TG_SIMD_LAMBDA {
            if constexpr (TK <= flat_dweight_taps(TF))
              flat_dweight_tile<TF, TK>(sc.vacc + (f * taps + t0) * kFlatLanes, dyq + f * QS, xb + g * Cg * L.XH * L.XW,
                                        offsets.data() + t0, nb, vectors, QS, dyq_sample, x_sample, taps,
                                        dy_next + ahead, std::max<std::int64_t>(0, next * dy_numel - ahead));
          });
          ahead += ahead_step;
        });
      }
    });
    if ((n0 + nb - n_lo) % kSamplesPerFlush == 0 || n0 + nb == n_hi)
      flush_lanes(dw_sum, sc.vacc, s.F * taps, kFlatLanes);
  }
}

// --- backward, AVX-512, vectors over the output's own rows -----------------------------------------

// The weight gradient on the forward's row-span vectors (row_span_forward(s)), for groups whose filters
// do not come in sixteens:
//   dwv[f, t][16] += Σ_{n, v} dy[n, f, 16v ...] · x_v(n, t),
// where dy is read in its own layout (vector v is floats 16v to 16v + 15 of the plane) and x_v(n, t)
// is the x that those 16 outputs meet at tap t, built as the forward builds it (one load, or two
// and a permute for the vector that spans a row pair). Against flat_dweight_backward: no copy of dy
// into flat rows (a quarter of LeNet-BN's conv1 weight gradient) and no padding lanes. The lanes hold
// other partial sums than the flat rows' did, so the float sums round differently (within the
// tests' tolerance of the float64 result). A tile is FB filters × KB taps, its FB dy vectors loaded
// once for its KB taps.
// Taps a tile: FB·KB accumulators, FB dy vectors and three for x (the permute's two loads and its
// result) within the flat tiles' budget of registers.
constexpr std::int64_t span_dweight_taps(std::int64_t FB) {
  return std::min({std::int64_t{kMaxFlatDweightTaps}, kTileAccumulators512 / FB, (kFlatTileRegisters - FB - 3) / FB});
}

// dwv (at filter 0, tap t0 of [F, taps, 16]) += FB filters × KB taps over nb samples: dy at sample 0's
// filter 0 plane (planes OH·OW floats apart, samples dy_sample apart), x at sample 0's channel 0
// plane of the group (samples x_sample apart), offsets at off(t0) (flat_dweight_backward's).
// Each vector step also fetches one cache line of the ahead_n floats at `ahead` (the next pass's dy,
// as in flat_dweight_backward).
// Fixed, when not void, is a shape known at compile time (FixedSpanShape: one input channel, the
// tile's first tap T0): then dy's planes and every tap's x are constant offsets from one pointer
// each, where the runtime shape needs a pointer a filter and a tap, and GCC spilled the loop's
// counters around the FMAs. The same offsets: the same bits.
template <int FB, int KB, int VP, class Fixed = void>
TG_SIMD_INLINE void row_span_dweight_tile(float* dwv, const float* dy, const float* x, const std::int64_t* offsets,
                                          std::int64_t nb, std::int64_t dy_sample, std::int64_t x_sample,
                                          std::int64_t taps, const ConvShape& s, const Layout& L, const float* ahead,
                                          std::int64_t ahead_n) {
  constexpr bool fixed = !std::is_void_v<Fixed>;
  const std::int64_t OH = [&] {
    if constexpr (fixed) return Fixed::OH;
    else return s.OH;
  }();
  const std::int64_t XW = [&] {
    if constexpr (fixed) return Fixed::XW;
    else return L.XW;
  }();
  const std::int64_t plane = OH * VP * 8, pairs = OH / 2;
  V16 acc[FB][KB];
  TG_UNROLL for (int f = 0; f < FB; ++f)
    TG_UNROLL for (int k = 0; k < KB; ++k) acc[f][k] = load_f32x16(dwv + (f * taps + k) * kFlatLanes);
  for (std::int64_t n = 0; n < nb; ++n) {
    const RowPointers<FB, !fixed> dn(dy + n * dy_sample, plane);
    const float* xk[KB];
    TG_UNROLL for (int k = 0; k < KB; ++k) {
      if constexpr (fixed) {
        xk[k] = x + n * x_sample + (Fixed::T0 + k) / Fixed::KW * XW + (Fixed::T0 + k) % Fixed::KW;
      } else {
        xk[k] = x + n * x_sample + offsets[k];
        asm("" : "+r"(xk[k]));
      }
    }
    // Vector J of row pair p: its FB dy vectors, then each tap's x and FB FMAs.
    const auto vector_step = [&]<int J>(std::int64_t p) TG_SIMD_LAMBDA {
      const std::int64_t step = ((n * pairs + p) * VP + J) * kFlatLanes;
      if (step < ahead_n) __builtin_prefetch(ahead + step, 0, 2);
      V16 g[FB];
      TG_UNROLL for (int f = 0; f < FB; ++f) {
        V16 gf = load_f32x16(dn.row[f] + (p * VP + J) * kFlatLanes);
#if !defined(__clang__)
        asm("" : "+v"(gf));  // one load for the KB FMAs, as in flat_dweight_tile
#endif
        g[f] = gf;
      }
      TG_UNROLL for (int k = 0; k < KB; ++k) {
        const float* top = xk[k] + 2 * p * XW;
        V16 xv = span_input<VP, J>(top, top + XW);
#if !defined(__clang__)
        asm("" : "+v"(xv));
#endif
        TG_UNROLL for (int f = 0; f < FB; ++f) acc[f][k] += g[f] * xv;
      }
    };
    for (std::int64_t p = 0; p < pairs; ++p)
      [&]<int... J>(std::integer_sequence<int, J...>) TG_SIMD_LAMBDA {
        (vector_step.template operator()<J>(p), ...);
      }(std::make_integer_sequence<int, VP>{});
  }
  TG_UNROLL for (int f = 0; f < FB; ++f)
    TG_UNROLL for (int k = 0; k < KB; ++k) std::memcpy(dwv + (f * taps + k) * kFlatLanes, &acc[f][k], sizeof(V16));
}

// The weight and bias gradients of samples [n_lo, n_hi) (AVX-512, row_span_forward(s), filters not in
// sixteens) added into dw_sum and db_sum (when not null), in passes of samples whose x stays in L1,
// the float lanes flushed every kSamplesPerFlush samples as flat_dweight_backward's are.
void row_span_dweight_backward(double* dw_sum, double* db_sum, const float* dy, const float* x, std::int64_t n_lo,
                               std::int64_t n_hi, const ConvShape& s) {
  const Layout L = flat_layout_of(s);
  const std::int64_t Cg = s.C / s.G, Fg = s.F / s.G, taps = s.R(), P = s.P();
  const std::int64_t x_sample = s.C * L.XH * L.XW, dy_numel = s.F * P;
  const std::int64_t FB = dweight_filter_block(Fg);
  std::int64_t NB = 1;
  while (2 * NB <= kSamplesPerFlush && 2 * NB * 4 * (x_sample + dy_numel) <= kL1Budget) NB *= 2;
  SlotScratch sc(L.copy ? NB * x_sample : 0, 0, 0, 0, s.F * taps * kFlatLanes, 0);
  const std::vector<std::int64_t> offsets = tap_offsets(s, L);
  for (std::int64_t n0 = n_lo; n0 < n_hi; n0 += NB) {
    const std::int64_t nb = std::min(NB, n_hi - n0);
    const float* dyb = dy + n0 * dy_numel;
    const float* xb = pass_input(sc.x_pad, x, n0, nb, s, L, L.copy);
    simd::with_isa([&]<Isa I>() TG_SIMD_LAMBDA {
      if constexpr (I == Isa::Avx512) {
        if (db_sum) bias_sums(db_sum, dyb, nb, s);
        const std::int64_t next = std::min(NB, n_hi - n0 - nb), ahead_step = nb * P;
        const float* dy_next = dy + (n0 + nb) * dy_numel;
        std::int64_t ahead = 0;
        using Net = LeNetConv1;
        if (Net::matches(s) && s.G == 1 && s.F == 6 && FB == 6) {
          // Its tiles of taps at compile time, cut as for_each_dweight_tile cuts them.
          constexpr int kTaps = Net::K * Net::K, kMaxTaps = span_dweight_taps(6);
          constexpr int kTiles = (kTaps + kMaxTaps - 1) / kMaxTaps;
          [&]<int... T>(std::integer_sequence<int, T...>) TG_SIMD_LAMBDA {
            const auto tile = [&]<int i>() TG_SIMD_LAMBDA {
              constexpr int t0 = kTaps * i / kTiles, kb = kTaps * (i + 1) / kTiles - t0;
              row_span_dweight_tile<6, kb, Net::OW / 8, FixedSpanShape<Net::XW, Net::OH, Net::K, t0>>(
                  sc.vacc + t0 * kFlatLanes, dyb, xb, nullptr, nb, dy_numel, x_sample, taps, s, L, dy_next + ahead,
                  std::max<std::int64_t>(0, next * dy_numel - ahead));
              ahead += ahead_step;
            };
            (tile.template operator()<T>(), ...);
          }(std::make_integer_sequence<int, kTiles>{});
          return;
        }
        for_each_dweight_tile(s, FB, span_dweight_taps, [&](std::int64_t g, std::int64_t f, std::int64_t fb,
                                                             std::int64_t t0, std::int64_t kb) TG_SIMD_LAMBDA {
          dispatch_tile<kMaxFlatDweightFilters, kMaxFlatDweightTaps>(fb, kb, [&]<int TF, int TK>() TG_SIMD_LAMBDA {
            if constexpr (TK <= span_dweight_taps(TF)) {
              with_span_vectors(s.OW, [&]<int VP>() TG_SIMD_LAMBDA {
                row_span_dweight_tile<TF, TK, VP>(sc.vacc + (f * taps + t0) * kFlatLanes, dyb + f * P,
                                                  xb + g * Cg * L.XH * L.XW, offsets.data() + t0, nb, dy_numel,
                                                  x_sample, taps, s, L, dy_next + ahead,
                                                  std::max<std::int64_t>(0, next * dy_numel - ahead));
              });
            }
          });
          ahead += ahead_step;
        });
      }
    });
    if ((n0 + nb - n_lo) % kSamplesPerFlush == 0 || n0 + nb == n_hi)
      flush_lanes(dw_sum, sc.vacc, s.F * taps, kFlatLanes);
  }
}

// The backward of samples [n_lo, n_hi): their dx (when dx is not null), and their weight and bias
// gradients added into the double sums dw_sum [F·C/G·KH·KW] and db_sum [F] (when not null), in
// passes of samples_per_pass samples.
void backward_samples(float* dx, double* dw_sum, double* db_sum, const float* dy, const float* x,
                      const float* weight, std::int64_t n_lo, std::int64_t n_hi, const ConvShape& s,
                      const Layout& L) {
  if ((dw_sum || dx) && simd::active_isa() == Isa::Avx512 && filter_lanes(s)) {
    filter_lane_backward(dx, dw_sum, dy, x, weight, n_lo, n_hi, s);
    dx = nullptr;  // done; the passes below compute dbias
    dw_sum = nullptr;
  }
  if (dw_sum && simd::active_isa() == Isa::Avx512 && row_span_forward(s)) {
    row_span_dweight_backward(dw_sum, db_sum, dy, x, n_lo, n_hi, s);
    if (!dx) return;
    dw_sum = nullptr;  // done; the passes below compute dx
    db_sum = nullptr;
  }
  if (dw_sum && simd::active_isa() == Isa::Avx512 && flat_dweight(s)) {
    flat_dweight_backward(dw_sum, db_sum, dy, x, n_lo, n_hi, s);
    if (!dx) return;
    dw_sum = nullptr;  // done; the passes below compute dx
    db_sum = nullptr;
  }
  const std::int64_t wnum = s.F * s.R(), NB = samples_per_pass(s, L);
  const std::int64_t x_sample = s.C * L.XH * L.XW, dy_sample = s.F * s.OH * L.DW;  // padded layouts
  const std::int64_t x_numel = s.C * s.H * s.W, dy_numel = s.F * s.OH * s.OW;      // the tensors'
  SlotScratch sc(dw_sum && L.copy ? NB * x_sample : 0, (dw_sum || dx) && L.copy ? NB * dy_sample : 0,
                 dx && L.copy ? x_sample : 0, dx ? s.C * L.XH * s.KW * part_row(s, L) : 0,
                 dw_sum ? wnum * kLanes : 0);
  for (std::int64_t n0 = n_lo; n0 < n_hi; n0 += NB) {
    const std::int64_t nb = std::min(NB, n_hi - n0);
    const float* dyb = dy + n0 * dy_numel;
    if (db_sum) simd::with_isa([&]<Isa>() TG_SIMD_LAMBDA { bias_sums(db_sum, dyb, nb, s); });
    if (!dw_sum && !dx) continue;
    if (L.copy) {
      for (std::int64_t n = 0; n < nb; ++n) pad_grad(sc.dy_pad + n * dy_sample, dyb + n * dy_numel, s, L);
      dyb = sc.dy_pad;
    }
    if (dw_sum) {
      const float* xb = pass_input(sc.x_pad, x, n0, nb, s, L, L.copy);
      simd::with_isa([&]<Isa I>() TG_SIMD_LAMBDA {
        dweight_samples<I>(reinterpret_cast<V8*>(sc.vacc), dyb, xb, nb, dy_sample, x_sample, s, L);
      });
      if ((n0 + nb - n_lo) % kSamplesPerFlush == 0 || n0 + nb == n_hi) flush_lanes(dw_sum, sc.vacc, wnum);
    }
    if (dx)
      for (std::int64_t n = 0; n < nb; ++n) {
        float* dxn = dx + (n0 + n) * x_numel;
        simd::with_isa([&]<Isa>() TG_SIMD_LAMBDA {
          dinput_sample(L.copy ? sc.dx_pad : dxn, sc.part, dyb + n * dy_sample, weight, s, L);
        });
        if (!L.copy) continue;
        for (std::int64_t c = 0; c < s.C; ++c)
          for (std::int64_t h = 0; h < s.H; ++h)
            std::memcpy(dxn + (c * s.H + h) * s.W, sc.dx_pad + (c * L.XH + h + s.PH) * L.XW + s.PW,
                        sizeof(float) * static_cast<std::size_t>(s.W));
      }
  }
}

}  // namespace

namespace {

template <ConvActivation A, bool Pool>
void forward_with(float* y, const float* x, const float* weight, const float* bias, const ConvShape& s) {
  const std::int64_t macs = s.N * s.F * s.P() * s.R();
  const bool avx512 = simd::active_isa() == Isa::Avx512, lanes = avx512 && filter_lanes(s),
             row_span = avx512 && !lanes && row_span_forward(s);
  Tensor wt_owner;
  if (lanes || row_span) {
    wt_owner = Tensor::empty({s.F * s.R()}, kFloat32);
    if (lanes) transpose_weights(wt_owner.data_ptr<float>(), weight, s);
    else taps_major_weights(wt_owner.data_ptr<float>(), weight, s);
  }
  parallel_for(0, s.N, macs, [&](std::int64_t n0, std::int64_t n1) {
    const Layout L = avx512 ? flat_layout_of(s) : layout_of(s);
    const std::int64_t sample = s.C * L.XH * L.XW;
    if (lanes) {
      SlotScratch sc(L.copy ? sample : 0, 0, 0, 0, 0, s.P() * kFlatLanes);
      simd::with_isa([&]<Isa I>() TG_SIMD_LAMBDA {
        if constexpr (I == Isa::Avx512)
          filter_lane_samples<A, Pool>(y, x, wt_owner.data_ptr<float>(), bias, sc.x_pad, sc.y_flat, n0, n1, s, L);
      });
      return;
    }
    if (row_span) {  // L is flat_layout_of(s)
      SlotScratch sc(L.copy ? sample : 0, 0, 0, 0, 0, 0);
      simd::with_isa([&]<Isa I>() TG_SIMD_LAMBDA {
        if constexpr (I == Isa::Avx512)
          row_span_forward_samples<A, Pool>(y, x, wt_owner.data_ptr<float>(), bias, sc.x_pad, n0, n1, s, L);
      });
      return;
    }
    SlotScratch sc(avx512 ? sample + kFlatLanes : L.copy ? sample : 0, 0, 0, 0, 0,
                   avx512 ? s.F * flat_stride(s, L) + kFlatLanes : 0);
    simd::with_isa([&]<Isa I>() TG_SIMD_LAMBDA {
      if constexpr (I == Isa::Avx512) flat_forward_samples<A, Pool>(y, x, weight, bias, sc.x_pad, sc.y_flat, n0, n1, s, L);
      else forward_samples<A, Pool, I>(y, x, weight, bias, sc.x_pad, n0, n1, s, L);
    });
  });
}

template <ConvActivation A>
void forward_with(float* y, const float* x, const float* weight, const float* bias, const ConvShape& s, bool pool) {
  if (pool) forward_with<A, true>(y, x, weight, bias, s);
  else forward_with<A, false>(y, x, weight, bias, s);
}

}  // namespace

void direct_conv2d_forward(float* y, const float* x, const float* weight, const float* bias, const ConvShape& s,
                           ConvEpilogue epilogue) {
  TG_ASSERT(!epilogue.avg_pool_2x2 || (s.OH >= 2 && s.OW >= 2), "pooling a {}x{} convolution output", s.OH, s.OW);
  switch (epilogue.activation) {
    case ConvActivation::None: return forward_with<ConvActivation::None>(y, x, weight, bias, s, epilogue.avg_pool_2x2);
    case ConvActivation::Sigmoid:
      return forward_with<ConvActivation::Sigmoid>(y, x, weight, bias, s, epilogue.avg_pool_2x2);
    case ConvActivation::ReLU: return forward_with<ConvActivation::ReLU>(y, x, weight, bias, s, epilogue.avg_pool_2x2);
  }
}

namespace {

// run_slot(t, slots, dw_sum, db_sum) for each thread slot t of `slots`, in parallel. Slot t takes
// samples [N·t/slots, N·(t+1)/slots), with its own double partial sums of dweight and dbias, added in
// slot order at the end (sum_slots): the same numbers for the same thread count, run to run.
template <class RunSlot>
void backward_in_slots(float* dweight, float* dbias, const ConvShape& s, RunSlot run_slot) {
  const std::int64_t wnum = s.F * s.R(), macs = s.N * s.F * s.P() * s.R();
  const int slots = in_parallel_region() || macs < kParallelGrain
                        ? 1
                        : static_cast<int>(std::min<std::int64_t>(get_num_threads(), s.N));
  std::vector<double> dw_sums(dweight ? static_cast<std::size_t>(slots * wnum) : 0);
  std::vector<double> db_sums(dbias ? static_cast<std::size_t>(slots * s.F) : 0);
  auto run = [&](std::int64_t t) {
    run_slot(t, slots, dweight ? dw_sums.data() + t * wnum : nullptr, dbias ? db_sums.data() + t * s.F : nullptr);
  };
  if (slots == 1)
    run(0);
  else
    parallel_for(0, slots, macs, [&](std::int64_t t0, std::int64_t t1) {
      for (std::int64_t t = t0; t < t1; ++t) run(t);
    });
  if (dweight) sum_slots(dweight, dw_sums.data(), slots, wnum);
  if (dbias) sum_slots(dbias, db_sums.data(), slots, s.F);
}

}  // namespace

void direct_conv2d_backward(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                            const float* weight, const ConvShape& s) {
  const Layout L = layout_of(s);
  backward_in_slots(dweight, dbias, s, [&](std::int64_t t, int slots, double* dw_sum, double* db_sum) {
    backward_samples(dx, dw_sum, db_sum, dy, x, weight, s.N * t / slots, s.N * (t + 1) / slots, s, L);
  });
}

// Each chunk runs as a batch of its own (ConvShape N = the chunk's samples, x and dx from its first
// sample), through the same backward_samples: a chunk that starts a whole number of flushes into its
// slot flushes the weight gradient's float lanes where the whole slot would, and its samples'
// products are the same, so the sums are too.
void direct_conv2d_backward_chunked(float* dx, float* dweight, float* dbias, const float* x, const float* weight,
                                    const ConvShape& s, const DyChunks& make_dy) {
  static_assert(kConvDyChunk % kSamplesPerFlush == 0, "chunks must end where the whole batch's lanes flush");
  const std::int64_t x_numel = s.C * s.H * s.W, dy_numel = s.F * s.P();
  backward_in_slots(dweight, dbias, s, [&](std::int64_t t, int slots, double* dw_sum, double* db_sum) {
    const std::int64_t lo = s.N * t / slots, hi = s.N * (t + 1) / slots;
    Tensor chunk = Tensor::empty({std::min(kConvDyChunk, hi - lo) * dy_numel}, kFloat32);
    for (std::int64_t n0 = lo; n0 < hi; n0 += kConvDyChunk) {
      ConvShape cs = s;
      cs.N = std::min(kConvDyChunk, hi - n0);
      make_dy(chunk.data_ptr<float>(), n0, n0 + cs.N);
      backward_samples(dx ? dx + n0 * x_numel : nullptr, dw_sum, db_sum, chunk.data_ptr<float>(),
                       x ? x + n0 * x_numel : nullptr, weight, 0, cs.N, cs, layout_of(cs));
    }
  });
}

}  // namespace tg::detail
