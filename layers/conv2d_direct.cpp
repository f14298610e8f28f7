// The stride-1 float32 convolution kernels of layers/conv2d_direct.h: register tiles of eight-lane
// vectors along the output width, no im2col columns. Layer: layers; must not depend on modules.
#include "layers/conv2d_direct.h"

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "core/parallel.h"

// Why direct (measured at LeNet's shapes, batch 256, one thread): im2col + OpenBLAS ran conv1 at 29
// and conv2 at 40 GFLOP/s, a third of what a core can do, because the columns are 25-150 times the
// input and OpenBLAS is slow at such skinny products. Here every product is an FMA into a register
// that stays there for the whole reduction, and x, dy and the weights are read from L1.
//
// The clones: x86-64-v3 (AVX2 + FMA) holds a tile in 16 ymm registers; the default (SSE2) clone
// computes the same sums with each vector split in two. Every helper below is always inlined into
// the cloned functions, so it is compiled for each clone's target.
#if defined(__GNUC__) && defined(__x86_64__) && defined(__ELF__) && !defined(__AVX2__)
#define TG_CONV_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define TG_CONV_CLONES
#endif
#define TG_INLINE [[gnu::always_inline]] inline
#define TG_UNROLL _Pragma("GCC unroll 16")
#define TG_LAMBDA_INLINE __attribute__((always_inline))

// The vector helpers pass eight-float vectors by value; they are always inlined, so no call
// between functions compiled for different targets ever passes one (what -Wpsabi warns about).
#pragma GCC diagnostic ignored "-Wpsabi"

namespace tg::detail {

namespace {

using V8 = float __attribute__((vector_size(32)));
constexpr std::int64_t kLanes = 8;

TG_INLINE V8 load(const float* p) {
  V8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
TG_INLINE void store(float* p, V8 v) { std::memcpy(p, &v, sizeof v); }
TG_INLINE float lane_sum(V8 v) {
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

Layout layout_of(const DirectConvShape& s) {
  Layout L{};
  L.DW = (s.OW + kLanes - 1) / kLanes * kLanes;
  L.V = L.DW / kLanes;
  L.XH = s.H + 2 * s.PH;
  L.XW = L.DW + s.KW - 1;
  L.copy = !(s.PH == 0 && s.PW == 0 && s.OW % kLanes == 0);
  return L;
}

TG_INLINE void pad_input(float* xp, const float* x, const DirectConvShape& s, const Layout& L) {
  std::memset(xp, 0, sizeof(float) * static_cast<std::size_t>(s.C * L.XH * L.XW));
  for (std::int64_t c = 0; c < s.C; ++c)
    for (std::int64_t h = 0; h < s.H; ++h)
      std::memcpy(xp + (c * L.XH + h + s.PH) * L.XW + s.PW, x + (c * s.H + h) * s.W,
                  sizeof(float) * static_cast<std::size_t>(s.W));
}

TG_INLINE void pad_grad(float* dyp, const float* dy, const DirectConvShape& s, const Layout& L) {
  for (std::int64_t r = 0; r < s.F * s.OH; ++r) {
    std::memcpy(dyp + r * L.DW, dy + r * s.OW, sizeof(float) * static_cast<std::size_t>(s.OW));
    std::memset(dyp + r * L.DW + s.OW, 0, sizeof(float) * static_cast<std::size_t>(L.DW - s.OW));
  }
}

// Calls fn.template operator()<A, B>() for runtime a in [1, MaxA] and b in [1, MaxB]: one tile
// shape per remainder, each with its accumulators in registers.
template <int A, int... Bs, class Fn>
TG_INLINE void pick_b(int b, Fn& fn, std::integer_sequence<int, Bs...>) {
  (void)((b == Bs + 1 ? (fn.template operator()<A, Bs + 1>(), true) : false) || ...);
}
template <int MaxB, int... As, class Fn>
TG_INLINE void pick(int a, int b, Fn& fn, std::integer_sequence<int, As...>) {
  (void)((a == As + 1 ? (pick_b<As + 1>(b, fn, std::make_integer_sequence<int, MaxB>{}), true) : false) || ...);
}
template <int MaxA, int MaxB, class Fn>
TG_INLINE void dispatch_tile(std::int64_t a, std::int64_t b, Fn&& fn) {
  pick<MaxB>(static_cast<int>(a), static_cast<int>(b), fn, std::make_integer_sequence<int, MaxA>{});
}

// --- forward ------------------------------------------------------------------------------------

// y[f, oh, ow] = bias[f] + Σ_{c, kh, kw} w[f, c, kh, kw] · x[c, oh + kh, ow + kw] (per group).
// One tile: FB filters × RB output rows × one vector of 8 columns, FB·RB accumulators; each tap
// (c, kh, kw) loads RB vectors of x and broadcasts FB weights. x points at (channel 0, row oh,
// column ow) of the group's input, w at (filter 0, channel 0) of the tile's filters, y at
// (filter 0, row oh, column ow); the last `width` < 8 columns of a row are stored partially.
constexpr int kForwardFilters = 4, kForwardRows = 3;

template <int FB, int RB>
TG_INLINE void forward_tile(float* y, std::int64_t width, const float* x, const float* w, const float* bias,
                            const DirectConvShape& s, const Layout& L) {
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
        TG_UNROLL for (int r = 0; r < RB; ++r) xv[r] = load(xr + r * L.XW + kw);
        TG_UNROLL for (int f = 0; f < FB; ++f) {
          const float wf = wr[f * taps + kw];
          TG_UNROLL for (int r = 0; r < RB; ++r) acc[f][r] += xv[r] * wf;
        }
      }
    }
  TG_UNROLL for (int f = 0; f < FB; ++f)
    TG_UNROLL for (int r = 0; r < RB; ++r) {
      float* dst = y + (f * s.OH + r) * s.OW;
      if (width >= kLanes) {
        store(dst, acc[f][r]);
      } else {
        float part[kLanes];
        store(part, acc[f][r]);
        std::memcpy(dst, part, sizeof(float) * static_cast<std::size_t>(width));
      }
    }
}

// Samples [n0, n1): y [N, F, OH, OW] from x, through a padded copy in xp [C, XH, XW] when L.copy.
TG_CONV_CLONES
void forward_samples(float* y, const float* x, const float* w, const float* bias, float* xp, std::int64_t n0,
                     std::int64_t n1, const DirectConvShape& s, const Layout& L) {
  const std::int64_t Cg = s.C / s.G, Fg = s.F / s.G, taps = Cg * s.KH * s.KW;
  for (std::int64_t n = n0; n < n1; ++n) {
    const float* xn = x + n * s.C * s.H * s.W;
    if (L.copy) {
      pad_input(xp, xn, s, L);
      xn = xp;
    }
    float* yn = y + n * s.F * s.OH * s.OW;
    for (std::int64_t g = 0; g < s.G; ++g)
      for (std::int64_t f0 = 0; f0 < Fg; f0 += kForwardFilters) {
        const std::int64_t f = g * Fg + f0, fb = std::min<std::int64_t>(kForwardFilters, Fg - f0);
        for (std::int64_t oh = 0; oh < s.OH; oh += kForwardRows) {
          const std::int64_t rb = std::min<std::int64_t>(kForwardRows, s.OH - oh);
          for (std::int64_t ow = 0; ow < s.OW; ow += kLanes) {
            dispatch_tile<kForwardFilters, kForwardRows>(fb, rb, [&]<int FB, int RB>() TG_LAMBDA_INLINE {
              forward_tile<FB, RB>(yn + (f * s.OH + oh) * s.OW + ow, s.OW - ow,
                                   xn + (g * Cg * L.XH + oh) * L.XW + ow, w + f * taps, bias ? bias + f : nullptr, s,
                                   L);
            });
          }
        }
      }
  }
}

// --- backward -----------------------------------------------------------------------------------

// y[f, oh, ow] = Σ_{c, kh, kw} w[f, c, kh, kw] · x[c, oh + kh, ow + kw] + bias[f], so
//   dbias[f]           = Σ_{n, oh, ow} dy[f, oh, ow]
//   dw[f, c, kh, kw]   = Σ_{n, oh, ow} dy[f, oh, ow] · x[c, oh + kh, ow + kw]
//   dx[c, ih, iw]      = Σ_{f, kh, kw} w[f, c, kh, kw] · dy[f, ih − kh, iw − kw]   (0 <= ih − kh < OH)
// (per sample n and group; x, dx in padded coordinates). Tiles of kw offsets: KB of them (all KW
// when KW <= 6), times FB filters (dw) or CB channels (dx), about 10-12 accumulators.
constexpr int kMaxKw = 6, kMaxRows = 4;

std::int64_t kw_block(std::int64_t KW) { return KW <= kMaxKw ? KW : 4; }
std::int64_t row_block(std::int64_t kb) { return std::clamp<std::int64_t>(12 / kb, 1, kMaxRows); }

// dw[f, c, kh, kw0 + k] += Σ over nb samples, OH rows and V vectors of dy[f] · x[c] shifted by
// (kh, kw0 + k), for FB filters and KB offsets. dy points at (sample 0, filter 0) of the tile, x at
// (sample 0, channel c, row kh, column kw0); dw (double) at (filter 0, c, kh, kw0).
template <int FB, int KB>
TG_INLINE void dweight_tile(double* dw, const float* dy, const float* x, std::int64_t nb, const DirectConvShape& s,
                            const Layout& L) {
  const std::int64_t dy_sample = s.F * s.OH * L.DW, x_sample = s.C * L.XH * L.XW, dy_plane = s.OH * L.DW;
  V8 acc[FB][KB] = {};
  for (std::int64_t n = 0; n < nb; ++n)
    for (std::int64_t oh = 0; oh < s.OH; ++oh) {
      const float* dyr = dy + n * dy_sample + oh * L.DW;
      const float* xr = x + n * x_sample + oh * L.XW;
      for (std::int64_t v = 0; v < L.V; ++v) {
        V8 g[FB];
        TG_UNROLL for (int f = 0; f < FB; ++f) g[f] = load(dyr + f * dy_plane + v * kLanes);
        TG_UNROLL for (int k = 0; k < KB; ++k) {
          const V8 xv = load(xr + v * kLanes + k);
          TG_UNROLL for (int f = 0; f < FB; ++f) acc[f][k] += g[f] * xv;
        }
      }
    }
  const std::int64_t taps = s.C / s.G * s.KH * s.KW;
  TG_UNROLL for (int f = 0; f < FB; ++f)
    TG_UNROLL for (int k = 0; k < KB; ++k) dw[f * taps + k] += lane_sum(acc[f][k]);
}

// dx[c, ih, ow + kw0 + k ...] += Σ_{f, kh} w[f, c, kh, kw0 + k] · dy[f, ih − kh, ow ...] for CB channels
// and KB offsets, over the group's Fg filters and kh in [kh0, kh1). dx points at (channel 0, row ih,
// column ow + kw0), dy at (filter 0, row 0, column ow), w at (filter 0, channel 0, kh 0, kw0).
template <int CB, int KB>
TG_INLINE void dinput_tile(float* dx, const float* dy, const float* w, std::int64_t ih, std::int64_t kh0,
                           std::int64_t kh1, const DirectConvShape& s, const Layout& L) {
  const std::int64_t Fg = s.F / s.G, taps = s.C / s.G * s.KH * s.KW, kk = s.KH * s.KW;
  V8 acc[CB][KB] = {};
  for (std::int64_t f = 0; f < Fg; ++f)
    for (std::int64_t kh = kh0; kh < kh1; ++kh) {
      const V8 g = load(dy + (f * s.OH + ih - kh) * L.DW);
      const float* wr = w + f * taps + kh * s.KW;
      TG_UNROLL for (int c = 0; c < CB; ++c)
        TG_UNROLL for (int k = 0; k < KB; ++k) acc[c][k] += g * wr[c * kk + k];
    }
  TG_UNROLL for (int c = 0; c < CB; ++c)
    TG_UNROLL for (int k = 0; k < KB; ++k) {
      float* d = dx + c * L.XH * L.XW + k;
      store(d, load(d) + acc[c][k]);
    }
}

// dw (double, [F, C/G, KH, KW]) += the nb samples' part, from padded-layout dy and x.
TG_CONV_CLONES
void dweight_block(double* dw, const float* dy, const float* x, std::int64_t nb, const DirectConvShape& s,
                   const Layout& L) {
  const std::int64_t Cg = s.C / s.G, Fg = s.F / s.G, taps = Cg * s.KH * s.KW, KB = kw_block(s.KW),
                     FB = row_block(KB);
  for (std::int64_t g = 0; g < s.G; ++g)
    for (std::int64_t c = 0; c < Cg; ++c)
      for (std::int64_t kh = 0; kh < s.KH; ++kh)
        for (std::int64_t kw = 0; kw < s.KW; kw += KB)
          for (std::int64_t f0 = 0; f0 < Fg; f0 += FB) {
            const std::int64_t f = g * Fg + f0;
            dispatch_tile<kMaxRows, kMaxKw>(std::min(FB, Fg - f0), std::min(KB, s.KW - kw), [&]<int TF, int TK>() TG_LAMBDA_INLINE {
              dweight_tile<TF, TK>(dw + f * taps + (c * s.KH + kh) * s.KW + kw, dy + f * s.OH * L.DW,
                                   x + ((g * Cg + c) * L.XH + kh) * L.XW + kw, nb, s, L);
            });
          }
}

// One sample's dx, accumulated into dxp ([C, XH, XW], zeroed here) from padded-layout dy.
TG_CONV_CLONES
void dinput_sample(float* dxp, const float* dy, const float* w, const DirectConvShape& s, const Layout& L) {
  const std::int64_t Cg = s.C / s.G, Fg = s.F / s.G, KB = kw_block(s.KW),
                     CB = row_block(KB);
  std::memset(dxp, 0, sizeof(float) * static_cast<std::size_t>(s.C * L.XH * L.XW));
  for (std::int64_t g = 0; g < s.G; ++g)
    for (std::int64_t c0 = 0; c0 < Cg; c0 += CB)
      for (std::int64_t kw = 0; kw < s.KW; kw += KB)
        for (std::int64_t ih = 0; ih < L.XH; ++ih) {
          const std::int64_t kh0 = std::max<std::int64_t>(0, ih - s.OH + 1), kh1 = std::min(s.KH, ih + 1);
          for (std::int64_t ow = 0; ow < L.DW; ow += kLanes)
            dispatch_tile<kMaxRows, kMaxKw>(std::min(CB, Cg - c0), std::min(KB, s.KW - kw), [&]<int TC, int TK>() TG_LAMBDA_INLINE {
              dinput_tile<TC, TK>(dxp + ((g * Cg + c0) * L.XH + ih) * L.XW + ow + kw, dy + g * Fg * s.OH * L.DW + ow,
                                  w + (g * Fg * Cg + c0) * s.KH * s.KW + kw, ih, kh0, kh1, s, L);
            });
        }
}

// Σ v[0, n) with eight independent partial sums.
double sum_of(const float* v, std::int64_t n) {
  float part[8] = {};
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) part[j] += v[i + j];
  double sum = 0;
  for (; i < n; ++i) sum += v[i];
  for (float p : part) sum += p;
  return sum;
}

// Samples per block of the weight gradient: its x and dy (padded) fill about 256 KB, in L2 while
// every tile sweeps over them.
std::int64_t samples_per_block(const DirectConvShape& s, const Layout& L) {
  const std::int64_t sample_bytes = 4 * (s.C * L.XH * L.XW + s.F * s.OH * L.DW);
  return std::clamp<std::int64_t>((std::int64_t{1} << 18) / sample_bytes, 1, 64);
}

}  // namespace

void direct_conv2d_forward(float* y, const float* x, const float* weight, const float* bias,
                           const DirectConvShape& s) {
  const Layout L = layout_of(s);
  const std::int64_t macs = s.N * s.F * s.OH * s.OW * (s.C / s.G) * s.KH * s.KW;
  parallel_for(0, s.N, macs, [&](std::int64_t n0, std::int64_t n1) {
    std::vector<float> xp(L.copy ? static_cast<std::size_t>(s.C * L.XH * L.XW) : 0);
    forward_samples(y, x, weight, bias, xp.data(), n0, n1, s, L);
  });
}

// Slot t of `slots` takes samples [N·t/slots, N·(t+1)/slots) in blocks, with its own double partial
// sums of dweight and dbias, added in slot order at the end: the same numbers for the same thread
// count, run to run.
void direct_conv2d_backward(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                            const float* weight, const DirectConvShape& s) {
  const Layout L = layout_of(s);
  const std::int64_t taps = s.C / s.G * s.KH * s.KW, wnum = s.F * taps, NB = samples_per_block(s, L);
  const std::int64_t macs = s.N * s.F * s.OH * s.OW * taps;
  const int slots = in_parallel_region() || macs < kParallelGrain
                        ? 1
                        : static_cast<int>(std::min<std::int64_t>(get_num_threads(), s.N));
  std::vector<double> dw_part(dweight ? static_cast<std::size_t>(slots * wnum) : 0);
  std::vector<double> db_part(dbias ? static_cast<std::size_t>(slots * s.F) : 0);
  auto run_slot = [&](std::int64_t t) {
    const std::int64_t n_lo = s.N * t / slots, n_hi = s.N * (t + 1) / slots;
    const bool dx_in_place = !L.copy;
    std::vector<float> xp(dweight && L.copy ? static_cast<std::size_t>(NB * s.C * L.XH * L.XW) : 0);
    std::vector<float> dyp(L.copy ? static_cast<std::size_t>(NB * s.F * s.OH * L.DW) : 0);
    std::vector<float> dxp(dx && !dx_in_place ? static_cast<std::size_t>(s.C * L.XH * L.XW) : 0);
    for (std::int64_t n0 = n_lo; n0 < n_hi; n0 += NB) {
      const std::int64_t nb = std::min(NB, n_hi - n0);
      const float* dyb = dy + n0 * s.F * s.OH * s.OW;
      if (dbias)
        for (std::int64_t n = 0; n < nb; ++n)
          for (std::int64_t f = 0; f < s.F; ++f)
            db_part[static_cast<std::size_t>(t * s.F + f)] += sum_of(dyb + (n * s.F + f) * s.OH * s.OW, s.OH * s.OW);
      if (!dweight && !dx) continue;
      if (L.copy) {
        for (std::int64_t n = 0; n < nb; ++n) pad_grad(dyp.data() + n * s.F * s.OH * L.DW, dyb + n * s.F * s.OH * s.OW, s, L);
        dyb = dyp.data();
      }
      if (dweight) {
        const float* xb = x + n0 * s.C * s.H * s.W;
        if (L.copy) {
          for (std::int64_t n = 0; n < nb; ++n)
            pad_input(xp.data() + n * s.C * L.XH * L.XW, xb + n * s.C * s.H * s.W, s, L);
          xb = xp.data();
        }
        dweight_block(dw_part.data() + t * wnum, dyb, xb, nb, s, L);
      }
      if (dx)
        for (std::int64_t n = 0; n < nb; ++n) {
          float* dxn = dx + (n0 + n) * s.C * s.H * s.W;
          dinput_sample(dx_in_place ? dxn : dxp.data(), dyb + n * s.F * s.OH * L.DW, weight, s, L);
          if (dx_in_place) continue;
          for (std::int64_t c = 0; c < s.C; ++c)
            for (std::int64_t h = 0; h < s.H; ++h)
              std::memcpy(dxn + (c * s.H + h) * s.W, dxp.data() + (c * L.XH + h + s.PH) * L.XW + s.PW,
                          sizeof(float) * static_cast<std::size_t>(s.W));
        }
    }
  };
  if (slots == 1)
    run_slot(0);
  else
    parallel_for(0, slots, macs, [&](std::int64_t t0, std::int64_t t1) {
      for (std::int64_t t = t0; t < t1; ++t) run_slot(t);
    });
  if (dweight)
    for (std::int64_t i = 0; i < wnum; ++i) {
      double sum = 0;
      for (int t = 0; t < slots; ++t) sum += dw_part[static_cast<std::size_t>(t * wnum + i)];
      dweight[i] = static_cast<float>(sum);
    }
  if (dbias)
    for (std::int64_t f = 0; f < s.F; ++f) {
      double sum = 0;
      for (int t = 0; t < slots; ++t) sum += db_part[static_cast<std::size_t>(t * s.F + f)];
      dbias[f] = static_cast<float>(sum);
    }
}

}  // namespace tg::detail
