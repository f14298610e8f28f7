// batch_norm: PyTorch's functional batch normalization over dim 1 of [N, C, *] inputs, with the
// hand-derived backward recorded as one tape entry (NativeBatchNormBackward0), and the
// BatchNorm1d / BatchNorm2d modules.
// Layer: layers; must not know optimizers.
#include "tapegrad/layers/batchnorm.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tapegrad/autograd/tape.h"
#include "tapegrad/core/native.h"
#include "tapegrad/core/parallel.h"
#include "tapegrad/core/simd.h"
#include "tapegrad/core/simd_math.h"
#include "tapegrad/core/storage.h"
#include "tapegrad/layers/avg_pool_2x2.h"
#include "tapegrad/layers/conv2d.h"
#include "tapegrad/layers/conv2d_direct.h"
#include "tapegrad/layers/conv2d_shape.h"
#include "tapegrad/layers/init.h"

namespace tg {

namespace {

// --- kernels: N batch, C channels, S = L or H·W spatial (1 for [N, C]), M = N·S per channel ---
// Channel c of sample n is the contiguous run x[(n·C + c)·S, + S). Every pass walks the runs in
// address order (n outer, c inner), which streams from memory much faster than finishing one
// channel at a time, and threads split the samples. The per-channel sums are formed over
// kBlocks fixed blocks of samples and added in block order, so results do not depend on the
// thread count. For [N, C] (S = 1) the runs are single values: the passes walk whole rows,
// vectorized over the channels, with one accumulator per channel, on one thread.

// A run's sums go into kLanes lanes (element i into lane i mod kLanes; the last S mod kLanes
// elements into a tail sum), in T; the lanes then fold to four, added into the channel's four
// running sums in double, added pairwise once per channel. The lanes vectorize as independent
// accumulators: 64 floats are four AVX-512 vectors (eight AVX2 ones), enough chains that a sweep
// over a run in L1 waits on neither the add latency nor, mostly, anything but its loads (with one
// vector, the moments ran at a third of the rate memory delivers). The result does not depend on
// the vector width.
constexpr std::int64_t kLanes = 64;
using Lanes = std::array<double, 4>;

// The lanes fold as four-wide vectors, quads q_k = lanes [4k, 4k + 4): halves added pairwise,
// q_k + q_{k + h} for h = 8, 4, 2, 1, then converted to double. Lane moves one by one cost more
// than the sweep itself on runs of a few vectors (an 8×8 plane is one).
using FloatQuad = float __attribute__((vector_size(16)));
using DoubleQuad = double __attribute__((vector_size(32)));

TG_SIMD_INLINE void add_quad(const DoubleQuad& q, double tail, Lanes& acc) {
  DoubleQuad sum;
  std::memcpy(&sum, acc.data(), sizeof sum);
  sum += q;
  std::memcpy(acc.data(), &sum, sizeof sum);
  acc[0] += tail;
}

// float64 runs sweep through an array of lanes, which GCC vectorizes.
TG_SIMD_INLINE void flush(const double (&a)[kLanes], double tail, Lanes& acc) {
  constexpr int kQuads = kLanes / 4;
  DoubleQuad q[kQuads];
  std::memcpy(q, a, sizeof q);
  for (int h = kQuads / 2; h >= 1; h /= 2)
    for (int k = 0; k < h; ++k) q[k] += q[k + h];
  add_quad(q[0], tail, acc);
}

// float32 runs sweep on the running instruction set's own vectors, kept in registers: a[k] holds
// lanes [k·width, (k + 1)·width). The same tree, on whole vectors while there are two or more, then
// on halves of one: the bits do not depend on the width.
template <simd::Isa I>
using FloatVec = std::conditional_t<I == simd::Isa::Avx512, simd::F32x16, simd::F32x8>;
template <simd::Isa I>
constexpr int kFloatWidth = sizeof(FloatVec<I>) / sizeof(float);
template <simd::Isa I>
constexpr int kFloatVectors = kLanes / kFloatWidth<I>;

template <simd::Isa I>
TG_SIMD_INLINE void flush(FloatVec<I> (&a)[kFloatVectors<I>], float tail, Lanes& acc) {
  for (int h = kFloatVectors<I> / 2; h >= 1; h /= 2)
    for (int k = 0; k < h; ++k) a[k] += a[k + h];
  simd::F32x8 v8;
  if constexpr (kFloatWidth<I> == 16)
    v8 = __builtin_shufflevector(a[0], a[0], 0, 1, 2, 3, 4, 5, 6, 7) +
         __builtin_shufflevector(a[0], a[0], 8, 9, 10, 11, 12, 13, 14, 15);
  else
    v8 = a[0];
  const FloatQuad q = __builtin_shufflevector(v8, v8, 0, 1, 2, 3) + __builtin_shufflevector(v8, v8, 4, 5, 6, 7);
  add_quad(__builtin_convertvector(q, DoubleQuad), static_cast<double>(tail), acc);
}

// A run's last S mod kLanes elements go into one scalar sum, in order. Left alone, GCC vectorized
// that loop, differently for AVX-512 and for AVX2, and the two versions' sums differed in the last
// bit (tested: "batch norm's kernels give AVX2's bits on AVX-512 ..."). Hiding the sum in a register
// at every step keeps the loop scalar on every target.
template <class T>
TG_SIMD_INLINE void keep_scalar(T& sum) {
#if defined(__x86_64__)
  asm("" : "+x"(sum));
#endif
}

TG_SIMD_INLINE double fold(const Lanes& acc) { return (acc[0] + acc[2]) + (acc[1] + acc[3]); }

// What the sweeps read: f(i) is element i of a run, and for float32 f.load<V>(i) the vector of
// elements [i, i + width).
template <class T>
struct RunValues {  // x
  const T* x;
  TG_SIMD_INLINE T operator()(std::int64_t i) const { return x[i]; }
  template <class V>
  TG_SIMD_INLINE V load(std::int64_t i) const { return simd::load_lanes<V>(x + i); }
};

// acc += Σ f(i) over the run i in [0, S).
template <simd::Isa I, class T, class F>
TG_SIMD_INLINE void add_run(std::int64_t S, F f, Lanes& acc) {
  const std::int64_t whole = S / kLanes * kLanes;  // the lanes take [0, whole), the tail sum the rest
  T tail = 0;
  for (std::int64_t i = whole; i < S; ++i) tail += f(i), keep_scalar(tail);
  if constexpr (std::is_same_v<T, float>) {
    using V = FloatVec<I>;
    V a[kFloatVectors<I>] = {};
    for (std::int64_t i = 0; i < whole; i += kLanes)
      for (int k = 0; k < kFloatVectors<I>; ++k) a[k] += f.template load<V>(i + k * kFloatWidth<I>);
    flush<I>(a, tail, acc);
  } else {
    T a[kLanes] = {};
    for (std::int64_t i = 0; i < whole; i += kLanes)
#pragma omp simd
      for (std::int64_t j = 0; j < kLanes; ++j) a[j] += f(i + j);
    flush(a, tail, acc);
  }
}

// Where the backward kernels read the gradient with respect to batch norm's output: dy itself, or,
// in batch_norm_act, dy = ds · act'(·) formed on the fly from the activation's output gradient ds and
// its saved output s (the same expressions as native::activation_backward). g(i) and g.load<V>(i) as
// above; g.shifted(k) starts k elements on.
template <class T>
struct PlainGrad {
  const T* dy;
  TG_SIMD_INLINE T operator()(std::int64_t i) const { return dy[i]; }
  template <class V>
  TG_SIMD_INLINE V load(std::int64_t i) const { return simd::load_lanes<V>(dy + i); }
  TG_SIMD_INLINE PlainGrad shifted(std::int64_t k) const { return {dy + k}; }
};
// ActGrad::of(ds, s) is dy from the activation's output gradient and output, for a value or a vector.
template <class T>
struct SigmoidGrad {  // s = sigmoid(y): dy = ds·s·(1 − s)
  const T *ds, *s;
  template <class V>
  TG_SIMD_INLINE static V of(const V& dsv, const V& sv) { return dsv * sv * (1.0f - sv); }
  TG_SIMD_INLINE static T of(T dsv, T sv) { return dsv * sv * (T(1) - sv); }
  TG_SIMD_INLINE T operator()(std::int64_t i) const { return of(ds[i], s[i]); }
  template <class V>
  TG_SIMD_INLINE V load(std::int64_t i) const { return of(simd::load_lanes<V>(ds + i), simd::load_lanes<V>(s + i)); }
  TG_SIMD_INLINE SigmoidGrad shifted(std::int64_t k) const { return {ds + k, s + k}; }
};
template <class T>
struct ReluGrad {  // s = relu(y): dy = ds where s > 0
  const T *ds, *s;
  template <class V>
  TG_SIMD_INLINE static V of(const V& dsv, const V& sv) {  // on the bits: a ?: of vectors goes lane by lane on SSE2
    using IV = typename simd::IntLanes<V>::type;
    return reinterpret_cast<V>(reinterpret_cast<IV>(dsv) & (sv > 0.0f));
  }
  TG_SIMD_INLINE static T of(T dsv, T sv) { return sv > T(0) ? dsv : T(0); }
  TG_SIMD_INLINE T operator()(std::int64_t i) const { return of(ds[i], s[i]); }
  template <class V>
  TG_SIMD_INLINE V load(std::int64_t i) const { return of(simd::load_lanes<V>(ds + i), simd::load_lanes<V>(s + i)); }
  TG_SIMD_INLINE ReluGrad shifted(std::int64_t k) const { return {ds + k, s + k}; }
};

// The pool's output gradient plane of the run that starts at element k of the [N, C, H, W] tensors.
template <class T>
TG_SIMD_INLINE const T* pooled_plane(const T* dp, std::int64_t k, std::int64_t H, std::int64_t W) {
  return dp + k / (H * W) * (H / 2) * (W / 2);
}

// With a 2×2 average pool after the activation, ds is the pool's output gradient dp [N, C, H/2, W/2]
// spread over the windows (avg_pool_2x2_backward_plane). shifted(k), k the start of a run, forms that
// run's ds in a buffer of the calling thread's, which stays in L1, and returns ActGrad's run over
// it: no ds tensor is written and read back. A run's functor is used up before the thread asks for
// the next one. The buffer is initial-exec TLS: from a shared library the default model calls
// __tls_get_addr on every run, a few percent of the passes on 8×8 planes.
template <template <class> class ActGrad, class T>
struct PooledGrad {
  const T *dp, *s;
  std::int64_t H, W;
  TG_SIMD_INLINE ActGrad<T> shifted(std::int64_t k) const {
    [[gnu::tls_model("initial-exec")]] thread_local std::vector<T> ds;
    const std::int64_t S = H * W;
    if (static_cast<std::int64_t>(ds.size()) < S) ds.resize(static_cast<std::size_t>(S));
    detail::avg_pool_2x2_backward_plane(ds.data(), pooled_plane(dp, k, H, W), H, W);
    return {ds.data(), s + k};
  }
};

// The same ds without the buffer, for float planes of even height whose width is a multiple of 8:
// each eight values of a run then lie in one row and take four of dp's values, each twice, so a
// vector of ds forms in registers from one (eight lanes) or two (sixteen) four-float loads and a
// permute. Spreading dp into the buffer, in stores of four and eight floats that the sweeps then
// read back sixteen at a time, took a quarter of both backward passes in a LeNet-BN step. `groups`
// holds where each group of eight values starts in its run's dp plane, the same for every run:
// groups[j] = (row / 2)·W/2 + col / 2 for the group at row·W + col = 8j.
template <template <class> class ActGrad>
struct PooledRowsGrad {
  const float *dp, *s;
  std::int64_t H, W;
  const std::int32_t* groups;

  struct Run {
    const float *dp, *s;
    const std::int32_t* groups;
    TG_SIMD_INLINE float operator()(std::int64_t i) const {
      return ActGrad<float>::of(dp[groups[i / 8] + i % 8 / 2] * 0.25f, s[i]);
    }
    template <class V>
    TG_SIMD_INLINE V load(std::int64_t i) const {
      // Each shuffle's output as wide as its inputs: GCC builds a wider one through the stack.
      const simd::F32x4 a = simd::load_f32x4(dp + groups[i / 8]);
      V ds;
      if constexpr (sizeof(V) == sizeof(simd::F32x16)) {
        const simd::F32x4 b = simd::load_f32x4(dp + groups[i / 8 + 1]);
        const simd::F32x8 ab = __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7);
        ds = __builtin_shufflevector(ab, ab, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7) * 0.25f;
      } else {
        const simd::F32x8 aa = __builtin_shufflevector(a, a, 0, 1, 2, 3, 4, 5, 6, 7);
        ds = __builtin_shufflevector(aa, aa, 0, 0, 1, 1, 2, 2, 3, 3) * 0.25f;
      }
      return ActGrad<float>::of(ds, simd::load_lanes<V>(s + i));
    }
  };
  TG_SIMD_INLINE Run shifted(std::int64_t k) const { return {pooled_plane(dp, k, H, W), s + k, groups}; }
};

// Whether [H, W] planes take PooledRowsGrad, and its table of group starts for them.
bool pooled_rows_fit(std::int64_t H, std::int64_t W) { return H % 2 == 0 && W % 8 == 0; }
std::vector<std::int32_t> pooled_group_starts(std::int64_t H, std::int64_t W) {
  std::vector<std::int32_t> starts(static_cast<std::size_t>(H * W / 8));
  for (std::int64_t j = 0; j < H * W / 8; ++j)
    starts[static_cast<std::size_t>(j)] = static_cast<std::int32_t>(8 * j / W / 2 * (W / 2) + 8 * j % W / 2);
  return starts;
}

template <class G>
constexpr bool is_pooled = false;
template <template <class> class ActGrad, class T>
constexpr bool is_pooled<PooledGrad<ActGrad, T>> = true;
template <template <class> class ActGrad>
constexpr bool is_pooled<PooledRowsGrad<ActGrad>> = true;

// g for the tensors from element k on (k the start of a run): the gradient of the samples from there.
template <class G>
G from_element(const G& g, std::int64_t k) {
  if constexpr (is_pooled<G>) {
    G from = g;
    from.dp = pooled_plane(g.dp, k, g.H, g.W);
    from.s += k;
    return from;
  } else {
    return g.shifted(k);
  }
}

// fn(g) with the functor that forms batch norm's output gradient from d, the gradient of what the op
// returns: d itself, or with an activation (and pool) from d and the activation's output s.
template <class T, class Fn>
void with_output_grad(std::optional<BatchNormActivation> act, bool pool, const T* d, const T* s, std::int64_t H,
                      std::int64_t W, Fn&& fn) {
  const bool sigmoid = act == BatchNormActivation::Sigmoid;
  if constexpr (std::is_same_v<T, float>) {
    if (act && pool && pooled_rows_fit(H, W)) {
      const std::vector<std::int32_t> groups = pooled_group_starts(H, W);
      if (sigmoid) fn(PooledRowsGrad<SigmoidGrad>{d, s, H, W, groups.data()});
      else fn(PooledRowsGrad<ReluGrad>{d, s, H, W, groups.data()});
      return;
    }
  }
  if (!act) fn(PlainGrad<T>{d});
  else if (pool && sigmoid) fn(PooledGrad<SigmoidGrad, T>{d, s, H, W});
  else if (pool) fn(PooledGrad<ReluGrad, T>{d, s, H, W});
  else if (sigmoid) fn(SigmoidGrad<T>{d, s});
  else fn(ReluGrad<T>{d, s});
}

// sum_dy += Σ dy and sum_dy_xmu += Σ dy·(x − mu) over a run (dy = g(i)), in one sweep.
template <simd::Isa I, class T, class G>
TG_SIMD_INLINE void add_run_dy(G g, const T* x, T mu, std::int64_t S, Lanes& sum_dy, Lanes& sum_dy_xmu) {
  const std::int64_t whole = S / kLanes * kLanes;  // as in add_run
  T tail_a = 0, tail_b = 0;
  for (std::int64_t i = whole; i < S; ++i) {
    const T dy = g(i);
    tail_a += dy;
    tail_b += dy * (x[i] - mu);
    keep_scalar(tail_a), keep_scalar(tail_b);
  }
  if constexpr (std::is_same_v<T, float>) {
    using V = FloatVec<I>;
    constexpr int W = kFloatWidth<I>;
    V a[kFloatVectors<I>] = {}, b[kFloatVectors<I>] = {};
    for (std::int64_t i = 0; i < whole; i += kLanes)
      for (int k = 0; k < kFloatVectors<I>; ++k) {
        const V dy = g.template load<V>(i + k * W);
        a[k] += dy;
        b[k] += dy * (simd::load_lanes<V>(x + i + k * W) - mu);
      }
    flush<I>(a, tail_a, sum_dy);
    flush<I>(b, tail_b, sum_dy_xmu);
  } else {
    T a[kLanes] = {}, b[kLanes] = {};
    for (std::int64_t i = 0; i < whole; i += kLanes)
#pragma omp simd
      for (std::int64_t j = 0; j < kLanes; ++j) {
        const T dy = g(i + j);
        a[j] += dy;
        b[j] += dy * (x[i + j] - mu);
      }
    flush(a, tail_a, sum_dy);
    flush(b, tail_b, sum_dy_xmu);
  }
}

// Two per-channel sums over all runs: add(n, c, sums) adds run (n, c) into sums[0] and sums[1], a
// block of samples at a time. Each thread takes its blocks last to first, so that its first samples
// are the ones still in cache when the backward's second pass starts on them (batch norm's input
// gradient, from sample 0 of each thread's share: 10% faster at LeNet-BN's conv1 in a training step);
// the blocks' sums are added in block order whatever the order they ran in, so the bits stay.
constexpr std::int64_t kBlocks = 8;
using Sums = std::array<Lanes, 2>;

// Each channel's sums over the B blocks' (part[b·C + c]), added in block order.
std::vector<Sums> sum_blocks(const std::vector<Sums>& part, std::int64_t B, std::int64_t C) {
  std::vector<Sums> total(static_cast<std::size_t>(C), Sums{});
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t c = 0; c < C; ++c)
      for (std::size_t k = 0; k < 2; ++k)
        for (std::size_t j = 0; j < 4; ++j) total[c][k][j] += part[static_cast<std::size_t>(b * C + c)][k][j];
  return total;
}

template <class Add>
std::vector<Sums> channel_sums(std::int64_t N, std::int64_t C, std::int64_t work, Add add) {
  const std::int64_t B = std::min(N, kBlocks);
  std::vector<Sums> part(static_cast<std::size_t>(B * C), Sums{});
  parallel_for(0, B, work, [&](std::int64_t lo, std::int64_t hi) {
    simd::with_isa([&]<simd::Isa I>() TG_SIMD_LAMBDA {
      for (std::int64_t b = hi - 1; b >= lo; --b)
        for (std::int64_t n = b * N / B; n < (b + 1) * N / B; ++n)
          for (std::int64_t c = 0; c < C; ++c) add.template operator()<I>(n, c, part[static_cast<std::size_t>(b * C + c)]);
    });
  });
  return sum_blocks(part, B, C);
}

// What batch_norm_act applies to the normalized output: act(y, n) to a run in place (float64), and
// act.vec<I>(v) to a float32 vector still in registers, with the same bits as sigmoid_contiguous
// and Tensor::relu. act.slope(s), for a value or a vector, is the derivative act'(y) from the
// output s = act(y): ActGrad::of(1, s), the same bits.
struct NoActivation {
  template <class T>
  TG_SIMD_INLINE void operator()(T*, std::int64_t) const {}
  template <simd::Isa I, class V>
  TG_SIMD_INLINE V vec(const V& v) const { return v; }
  template <class V>
  TG_SIMD_INLINE V slope(const V&) const { return V{} + 1; }
};
struct SigmoidActivation {
  template <class T>
  void operator()(T* y, std::int64_t n) const { native::sigmoid_contiguous(y, y, n); }
  template <simd::Isa I, class V>
  TG_SIMD_INLINE V vec(const V& v) const { return simd::sigmoid<I>(v); }
  template <class V>
  TG_SIMD_INLINE V slope(const V& s) const { return s * (1 - s); }
};
struct ReluActivation {  // NaN stays NaN, as Tensor::relu
  template <class T>
  TG_SIMD_INLINE void operator()(T* y, std::int64_t n) const {
    for (std::int64_t i = 0; i < n; ++i) y[i] = y[i] > T(0) ? y[i] : (y[i] != y[i] ? y[i] : T(0));
  }
  template <simd::Isa I, class V>
  TG_SIMD_INLINE V vec(const V& v) const {
    using IV = typename simd::IntLanes<V>::type;
    return reinterpret_cast<V>(reinterpret_cast<IV>(v) & ((v > 0.0f) | (v != v)));
  }
  template <class V>
  TG_SIMD_INLINE V slope(const V& s) const {
    if constexpr (std::is_floating_point_v<V>) {
      return s > 0 ? V(1) : V(0);
    } else {  // on the bits, as ReluGrad
      using IV = typename simd::IntLanes<V>::type;
      return reinterpret_cast<V>(reinterpret_cast<IV>(V{} + 1) & (s > 0));
    }
  }
};

// Where batch_norm_act with a 2×2 average pool writes the pool of each activated [H, W] plane:
// p [N, C, H/2, W/2]. A null p: no pool.
//
// With a backward to come, the forward also writes each window w's sums of act'(y) and of
// act'(y)·(x − mean), the window slopes, [N, C, H/2, W/2] each (null: not wanted). The pool's output
// gradient dp spreads as ds = dp_w/4 over the window, and dy = ds·act'(y), so backward pass 1's sums
//   Σ dy = ¼ Σ_w dp_w · Σ_w act'(y),   Σ dy·(x − mean) = ¼ Σ_w dp_w · Σ_w act'(y)·(x − mean)
// read dp and the two slopes, three quarter-size tensors, instead of x, s and dp. The forward has x and
// s in registers when it pools; pass 1 read 2.25 planes of memory a value, now 0.75. A window adds
// its columns first, (r0[2w] + r1[2w]) + (r0[2w + 1] + r1[2w + 1]): from registers, rows add as
// whole vectors, and one permute then serves both slopes.
template <class T>
struct PoolInto {
  T* p = nullptr;
  std::int64_t H = 0, W = 0;
  T* slope = nullptr;      // window sums of act'(y)
  T* slope_xmu = nullptr;  // window sums of act'(y)·(x − mean); null exactly when slope is
};

// y [H/2, W/2] = each 2×2 window's sum of x [H, W], in PoolInto's order.
template <class T>
TG_SIMD_INLINE void window_sums_plane(T* y, const T* x, std::int64_t H, std::int64_t W) {
  for (std::int64_t oh = 0; oh < H / 2; ++oh) {
    const T *r0 = x + 2 * oh * W, *r1 = r0 + W;
    T* row = y + oh * (W / 2);
#pragma omp simd
    for (std::int64_t ow = 0; ow < W / 2; ++ow)
      row[ow] = (r0[2 * ow] + r1[2 * ow]) + (r0[2 * ow + 1] + r1[2 * ow + 1]);
  }
}

// GCC contracts a product and an add that follows it into one FMA (C++'s default -ffp-contract=fast),
// in registers but not through memory: the window slopes' products go through memory on the other
// paths, so here they are rounded first, hidden in a register (GCC only: clang contracts only
// within an expression, and fails on this asm outside an AVX-512 function).
TG_SIMD_INLINE void keep_rounded(simd::F32x16& v) {
  if constexpr (simd::kAsmAvx512) asm("" : "+v"(v));
}

// The window slopes of one row pair from registers (AVX-512 bodies only), t = act'(y) and
// u = t·(x − mean) laid out as avg_pool_2x2_row_pair's v, into slope and slope_xmu at ow < 4·VP.
template <int VP>
TG_SIMD_INLINE void window_slopes_row_pair(float* slope, float* slope_xmu, const simd::F32x16* t,
                                           const simd::F32x16* u) {
  using simd::F32x16;
  using simd::F32x8;
  if constexpr (VP == 3) {
    // Columns 0-15 of the two rows, and columns 16-23 of t and of u side by side.
    const F32x16 t_cols = t[0] + __builtin_shufflevector(t[1], t[2], 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
                                                         20, 21, 22, 23);
    const F32x16 u_cols = u[0] + __builtin_shufflevector(u[1], u[2], 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
                                                         20, 21, 22, 23);
    const F32x16 last_cols =
        __builtin_shufflevector(t[1], u[1], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
        __builtin_shufflevector(t[2], u[2], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    const F32x16 first = __builtin_shufflevector(t_cols, u_cols, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                                 28, 30) +
                         __builtin_shufflevector(t_cols, u_cols, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27,
                                                 29, 31);
    const F32x8 last = __builtin_shufflevector(last_cols, last_cols, 0, 2, 4, 6, 8, 10, 12, 14) +
                       __builtin_shufflevector(last_cols, last_cols, 1, 3, 5, 7, 9, 11, 13, 15);
    simd::store_f32x8(slope, __builtin_shufflevector(first, first, 0, 1, 2, 3, 4, 5, 6, 7));
    simd::store_f32x4(slope + 8, __builtin_shufflevector(last, last, 0, 1, 2, 3));
    simd::store_f32x8(slope_xmu, __builtin_shufflevector(first, first, 8, 9, 10, 11, 12, 13, 14, 15));
    simd::store_f32x4(slope_xmu + 8, __builtin_shufflevector(last, last, 4, 5, 6, 7));
  } else {
    const F32x16 cols = __builtin_shufflevector(t[0], u[0], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
                        __builtin_shufflevector(t[0], u[0], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30,
                                                31);
    const F32x8 sums = __builtin_shufflevector(cols, cols, 0, 2, 4, 6, 8, 10, 12, 14) +
                       __builtin_shufflevector(cols, cols, 1, 3, 5, 7, 9, 11, 13, 15);
    simd::store_f32x4(slope, __builtin_shufflevector(sums, sums, 0, 1, 2, 3));
    simd::store_f32x4(slope_xmu, __builtin_shufflevector(sums, sums, 4, 5, 6, 7));
  }
}

// Whether normalize_rows pools float planes from registers, a row pair at a time (AVX-512): planes
// 8 or 24 wide (LeNet-BN's conv2 and conv1; a row pair is then one or three vectors) in an even
// number of rows.
template <class T>
bool pools_row_pairs(const PoolInto<T>& pool) {
  return std::is_same_v<T, float> && pool.p && (pool.W == 8 || pool.W == 24) && pool.H % 2 == 0;
}

// y = act(x·sc + sh) over one plane of S floats, rows of 8·VP, a row pair (VP vectors) at a time, and
// its pool p from those vectors; with kSlopes, the window slopes of the run that starts at run_at
// too, pooled the same way.
template <simd::Isa I, int VP, bool kSlopes, class Act>
TG_SIMD_INLINE void normalize_row_pairs(float* y, const float* x, const PoolInto<float>& pool, std::int64_t run_at,
                                        std::int64_t S, float sc, float sh, float mu, Act act) {
  constexpr std::int64_t pair = 16 * VP;  // floats in two rows
  for (std::int64_t i = 0; i < S / pair; ++i) {
    simd::F32x16 xv[VP], v[VP];
    _Pragma("GCC unroll 4") for (int j = 0; j < VP; ++j) {
      xv[j] = simd::load_lanes<simd::F32x16>(x + i * pair + 16 * j);
      v[j] = act.template vec<I>(xv[j] * sc + sh);
      simd::store_lanes(y + i * pair + 16 * j, v[j]);
    }
    const std::int64_t at = run_at + i * 4 * VP;
    detail::avg_pool_2x2_row_pair<VP>(pool.p + at, v);
    if constexpr (kSlopes) {
      simd::F32x16 slope[VP], slope_xmu[VP];
      _Pragma("GCC unroll 4") for (int j = 0; j < VP; ++j) {
        slope[j] = act.slope(v[j]);
        slope_xmu[j] = slope[j] * (xv[j] - mu);
        keep_rounded(slope[j]), keep_rounded(slope_xmu[j]);
      }
      window_slopes_row_pair<VP>(pool.slope + at, pool.slope_xmu + at, slope, slope_xmu);
    }
  }
}

// The window slopes (PoolInto) of one [H, W] run from its input x and output s, through a buffer of
// the calling thread's (initial-exec, as PooledGrad's), pooled in the same order as from registers.
template <class T, class Act>
TG_SIMD_INLINE void pool_run_slopes(const PoolInto<T>& pool, std::int64_t run_at, const T* x, const T* s, T mu, Act act) {
  [[gnu::tls_model("initial-exec")]] thread_local std::vector<T> buffer;
  const std::int64_t S = pool.H * pool.W;
  if (static_cast<std::int64_t>(buffer.size()) < 2 * S) buffer.resize(static_cast<std::size_t>(2 * S));
  T *slope = buffer.data(), *slope_xmu = slope + S;
#pragma omp simd
  for (std::int64_t i = 0; i < S; ++i) {
    slope[i] = act.slope(s[i]);
    slope_xmu[i] = slope[i] * (x[i] - mu);
  }
  window_sums_plane(pool.slope + run_at, slope, pool.H, pool.W);
  window_sums_plane(pool.slope_xmu + run_at, slope_xmu, pool.H, pool.W);
}

// y = act(x·scale[c] + shift[c]) over the runs of samples [lo, hi), and each run's pool while it is
// in L1. float32 runs are activated in registers, two vectors at a time (their chains overlap), the
// tail through a padded vector; where pools_row_pairs, a row pair's vectors at a time, pooled in
// registers rather than read back (a LeNet-BN training step 2% faster). Storing y past the caches
// (vmovntps) made the step slower: the backward finds it in L3. Not inlined: inside the forward's
// parallel lambda GCC made this loop a fifth slower.
template <class T, class Act>
[[gnu::noinline]] void normalize_rows(T* y, const T* x, const T* scale, const T* shift, const T* mean, std::int64_t lo,
                                      std::int64_t hi, std::int64_t C, std::int64_t S, Act act, PoolInto<T> pool) {
  const bool row_pairs = pools_row_pairs(pool);
  const std::int64_t pooled_run = (pool.H / 2) * (pool.W / 2);
  simd::with_isa([&]<simd::Isa I>() TG_SIMD_LAMBDA {
    for (std::int64_t n = lo; n < hi; ++n)
      for (std::int64_t c = 0; c < C; ++c) {
        const T* xr = x + (n * C + c) * S;
        T* yr = y + (n * C + c) * S;
        const T sc = scale[c], sh = shift[c];
        if constexpr (std::is_same_v<T, float> && I == simd::Isa::Avx512) {
          if (row_pairs) {
            const std::int64_t at = (n * C + c) * pooled_run;
            if (pool.W == 8 && pool.slope) normalize_row_pairs<I, 1, true>(yr, xr, pool, at, S, sc, sh, mean[c], act);
            else if (pool.W == 8) normalize_row_pairs<I, 1, false>(yr, xr, pool, at, S, sc, sh, mean[c], act);
            else if (pool.slope) normalize_row_pairs<I, 3, true>(yr, xr, pool, at, S, sc, sh, mean[c], act);
            else normalize_row_pairs<I, 3, false>(yr, xr, pool, at, S, sc, sh, mean[c], act);
            continue;
          }
        }
        if constexpr (std::is_same_v<T, float>) {
          using V = FloatVec<I>;
          constexpr std::int64_t W = kFloatWidth<I>;
          auto normalized = [&](const V& v) TG_SIMD_LAMBDA { return act.template vec<I>(v * sc + sh); };
          std::int64_t i = 0;
          for (; i + 2 * W <= S; i += 2 * W) {
            const V a = normalized(simd::load_lanes<V>(xr + i)), b = normalized(simd::load_lanes<V>(xr + i + W));
            simd::store_lanes(yr + i, a);
            simd::store_lanes(yr + i + W, b);
          }
          for (; i + W <= S; i += W) simd::store_lanes(yr + i, normalized(simd::load_lanes<V>(xr + i)));
          if (i < S) {
            float tail[W] = {};
            std::memcpy(tail, xr + i, sizeof(float) * static_cast<std::size_t>(S - i));
            simd::store_first_lanes(yr + i, normalized(simd::load_lanes<V>(tail)), S - i);
          }
        } else {
#pragma omp simd
          for (std::int64_t i = 0; i < S; ++i) yr[i] = xr[i] * sc + sh;
          act(yr, S);
        }
        if (pool.p) detail::avg_pool_2x2_plane(pool.p + (n * C + c) * pooled_run, yr, pool.H, pool.W);
        if (pool.slope) pool_run_slopes(pool, (n * C + c) * pooled_run, xr, yr, mean[c], act);
      }
  });
}

// The moments go by chunks of kMomentsChunk samples: the fused convolution takes each chunk's moments
// while it has just written the chunk (conv2d_batch_norm_act). Within a chunk every value of a
// sample's channels has a float lane, and the same value of each of the chunk's samples is added
// into it in order (sweep_lanes), with the same bits at every vector width. Each channel's S lanes
// then fold through add_run. Per chunk and channel:
//   sum = Σ x, and m' = sum / count rounded to T;
//   m2 = Σ (x − m')² − d²/count with d = Σ (x − m'), the exact correction for m' not being the mean.
// The second sweep re-reads the chunk from L2. Taken run by run instead (sample n's channel c), each
// run's lanes had to fold and a division had to come between its two sweeps, for runs of four
// vectors at LeNet-BN's conv2: the moments took 3.5% of a training step at batch 256, now 2%. With
// the lanes in memory rather than in registers, 4.5%.
constexpr std::int64_t kMomentsChunk = 32;
std::int64_t moments_chunks(std::int64_t N) { return (N + kMomentsChunk - 1) / kMomentsChunk; }
// Channels go in groups of at most this many lanes: a chunk's slice of them (32 samples × 8192
// floats, 1 MiB) stays in L2 between the two sweeps, and the lanes' buffer stays small.
constexpr std::int64_t kMomentsLanes = 8192;

// Lane sweeps down samples n0..n1: a[j] and q[j], j < L, start at 0 and take add(n, j, a[j], q[j])
// for each sample in order. float32 lanes go kLanes at a time in registers, down the samples; the
// rest, and float64, through memory. Either way each lane adds its values in sample order, so the
// bits do not depend on the vector width.
template <class V, class T>
TG_SIMD_INLINE V lanes_at(const T* p) {
  if constexpr (std::is_same_v<V, T>) return *p;
  else return simd::load_lanes<V>(p);
}

template <simd::Isa I, class T, class Add>
TG_SIMD_INLINE void sweep_lanes(T* a, T* q, std::int64_t n0, std::int64_t n1, std::int64_t L, Add add) {
  std::int64_t j0 = 0;
  if constexpr (std::is_same_v<T, float>) {
    using V = FloatVec<I>;
    constexpr int K = kFloatVectors<I>, W = kFloatWidth<I>;
    for (; j0 + kLanes <= L; j0 += kLanes) {
      V va[K] = {}, vq[K] = {};
      for (std::int64_t n = n0; n < n1; ++n)
        for (int k = 0; k < K; ++k) add.template operator()<V>(n, j0 + k * W, va[k], vq[k]);
      for (int k = 0; k < K; ++k) simd::store_lanes(a + j0 + k * W, va[k]), simd::store_lanes(q + j0 + k * W, vq[k]);
    }
  }
  std::fill(a + j0, a + L, T(0));
  std::fill(q + j0, q + L, T(0));
  for (std::int64_t n = n0; n < n1; ++n)
#pragma omp simd
    for (std::int64_t j = j0; j < L; ++j) add.template operator()<T>(n, j, a[j], q[j]);
}

// What the moments' sweeps add: x itself; x − m' and its square (m' per lane).
template <class T>
struct AddValues {
  const T* x;
  std::int64_t stride;
  template <class V>
  TG_SIMD_INLINE void operator()(std::int64_t n, std::int64_t j, V& a, V&) const {
    a += lanes_at<V>(x + n * stride + j);
  }
};
template <class T>
struct AddCentredSquares {
  const T *x, *m;
  std::int64_t stride;
  template <class V>
  TG_SIMD_INLINE void operator()(std::int64_t n, std::int64_t j, V& a, V& q) const {
    const V d = lanes_at<V>(x + n * stride + j) - lanes_at<V>(m + j);
    a += d;
    q += d * d;
  }
};

// sum[c] and m2[c] of channels [c0, c1) over samples [n0, n1), at most a chunk.
template <simd::Isa I, class T>
TG_SIMD_INLINE void chunk_moments(double* sum, double* m2, const T* x, std::int64_t n0, std::int64_t n1,
                                  std::int64_t c0, std::int64_t c1, std::int64_t C, std::int64_t S) {
  [[gnu::tls_model("initial-exec")]] thread_local std::vector<T> buffer;
  const std::int64_t group = std::max<std::int64_t>(1, kMomentsLanes / S);
  const std::size_t need = static_cast<std::size_t>(3 * std::min(group, c1 - c0) * S);
  if (buffer.size() < need) buffer.resize(need);
  const double count = static_cast<double>((n1 - n0) * S);
  for (std::int64_t g0 = c0; g0 < c1; g0 += group) {
    const std::int64_t g1 = std::min(c1, g0 + group), L = (g1 - g0) * S;
    T *a = buffer.data(), *q = a + L, *m = q + L;  // lanes: Σ x then Σ (x − m'); Σ (x − m')²; m' per lane
    sweep_lanes<I, T>(a, q, n0, n1, L, AddValues<T>{x + g0 * S, C * S});
    for (std::int64_t c = g0; c < g1; ++c) {
      Lanes acc{};
      add_run<I, T>(S, RunValues<T>{a + (c - g0) * S}, acc);
      sum[c] = fold(acc);
      std::fill(m + (c - g0) * S, m + (c - g0 + 1) * S, static_cast<T>(sum[c] / count));
    }
    sweep_lanes<I, T>(a, q, n0, n1, L, AddCentredSquares<T>{x + g0 * S, m, C * S});
    for (std::int64_t c = g0; c < g1; ++c) {
      Lanes d{}, sq{};
      add_run<I, T>(S, RunValues<T>{a + (c - g0) * S}, d);
      add_run<I, T>(S, RunValues<T>{q + (c - g0) * S}, sq);
      const double dd = fold(d);
      m2[c] = fold(sq) - dd * dd / count;
    }
  }
}

// The chunk of samples [n0, n1)'s moments (chunk_moments), into chunk_sum and chunk_m2 at c;
// threads split the channels.
template <class T>
void chunk_moments(double* chunk_sum, double* chunk_m2, const T* x, std::int64_t n0, std::int64_t n1, std::int64_t C,
                   std::int64_t S) {
  parallel_for(0, C, (n1 - n0) * C * S, [&](std::int64_t c0, std::int64_t c1) {
    simd::with_isa([&]<simd::Isa I>() TG_SIMD_LAMBDA { chunk_moments<I>(chunk_sum, chunk_m2, x, n0, n1, c0, c1, C, S); });
  });
}

template <class T>
void combine_chunks(T* mean, double* sum, double* m2, const double* chunk_sum, const double* chunk_m2, std::int64_t N,
                    std::int64_t C, std::int64_t S);

// Per channel: the mean (in T, as normalization uses it) and, in double, the sum Σ x and the
// centred second moment m2 = Σ (x − mean)², never as E[x²] − E[x]². For [N, C] two passes over
// the rows; otherwise one pass: each chunk's own sum and centred moment (chunk_moments), combined
// in chunk order as Chan et al.'s parallel variance, m2 = Σ_k m2_k + Σ_k (sum_k − count_k·mean)²/count_k,
// so the result does not depend on the thread count.
template <class T>
void batch_norm_moments(T* mean, double* sum, double* m2, const T* x, std::int64_t N, std::int64_t C,
                        std::int64_t S) {
  const double M = static_cast<double>(N * S);
  if (S == 1) {  // rows of C values; each channel's sum runs down the rows, in order
    std::vector<double> acc(static_cast<std::size_t>(C), 0.0);
    double* a = acc.data();
    simd::with_isa([&]<simd::Isa>() TG_SIMD_LAMBDA {
      for (std::int64_t n = 0; n < N; ++n)  // pass 1: Σ x
        for (std::int64_t c = 0; c < C; ++c) a[c] += static_cast<double>(x[n * C + c]);
      for (std::int64_t c = 0; c < C; ++c) sum[c] = a[c], mean[c] = static_cast<T>(a[c] / M), a[c] = 0;
      for (std::int64_t n = 0; n < N; ++n)  // pass 2: Σ (x − mean)²
        for (std::int64_t c = 0; c < C; ++c) {
          const T d = x[n * C + c] - mean[c];
          a[c] += static_cast<double>(d * d);
        }
    });
    for (std::int64_t c = 0; c < C; ++c) m2[c] = acc[c];
    return;
  }
  const std::int64_t chunks = moments_chunks(N);
  std::vector<double> chunk_sum(static_cast<std::size_t>(chunks * C)), chunk_m2(static_cast<std::size_t>(chunks * C));
  for (std::int64_t k = 0; k < chunks; ++k)
    chunk_moments(chunk_sum.data() + k * C, chunk_m2.data() + k * C, x, k * kMomentsChunk,
                  std::min(N, (k + 1) * kMomentsChunk), C, S);
  combine_chunks(mean, sum, m2, chunk_sum.data(), chunk_m2.data(), N, C, S);
}

// batch_norm_moments's last step: per channel, the chunks' moments combined (Chan et al.).
template <class T>
void combine_chunks(T* mean, double* sum, double* m2, const double* chunk_sum, const double* chunk_m2, std::int64_t N,
                    std::int64_t C, std::int64_t S) {
  const double M = static_cast<double>(N * S);
  const std::int64_t chunks = moments_chunks(N);
  for (std::int64_t c = 0; c < C; ++c) {
    double total = 0;
    for (std::int64_t k = 0; k < chunks; ++k) total += chunk_sum[k * C + c];
    sum[c] = total;
    mean[c] = static_cast<T>(total / M);
    const double mu = total / M;
    double within = 0, between = 0;
    for (std::int64_t k = 0; k < chunks; ++k) {
      const double count = static_cast<double>((std::min(N, (k + 1) * kMomentsChunk) - k * kMomentsChunk) * S);
      const double d = chunk_sum[k * C + c] - count * mu;
      within += chunk_m2[k * C + c];
      between += d * d / count;
    }
    m2[c] = within + between;
  }
}

// y = act(x·scale + shift) in one pass, from the channel's mean and var:
//   scale = weight·rstd,  shift = bias − mean·scale,  rstd = 1/sqrt(var + eps).
template <class T, class Act = NoActivation>
void batch_norm_normalize(T* y, T* rstd, const T* x, const T* mean, const T* var, const T* weight, const T* bias,
                          std::int64_t N, std::int64_t C, std::int64_t S, double eps, Act act = {},
                          PoolInto<T> pool = {}) {
  std::vector<T> scale(static_cast<std::size_t>(C)), shift(static_cast<std::size_t>(C));
  for (std::int64_t c = 0; c < C; ++c) {
    rstd[c] = static_cast<T>(1.0 / std::sqrt(static_cast<double>(var[c]) + eps));
    scale[c] = (weight ? weight[c] : T(1)) * rstd[c];
    shift[c] = (bias ? bias[c] : T(0)) - mean[c] * scale[c];
  }
  if (S == 1) {
    const T *sc = scale.data(), *sh = shift.data();
    simd::with_isa([&]<simd::Isa>() TG_SIMD_LAMBDA {
      for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t c = 0; c < C; ++c) y[n * C + c] = x[n * C + c] * sc[c] + sh[c];
    });
    act(y, N * C);
    return;
  }
  parallel_for(0, N, N * C * S, [&](std::int64_t lo, std::int64_t hi) {
    normalize_rows(y, x, scale.data(), shift.data(), mean, lo, hi, C, S, act, pool);
  });
}

// Training: the batch's mean and biased var (m2 / M). Eval: mean and var come in holding the
// running statistics. Then normalize (and activate, and pool).
template <class T, class Act>
void batch_norm_forward(T* y, T* mean, T* var, T* rstd, const T* x, const T* weight, const T* bias, std::int64_t N,
                        std::int64_t C, std::int64_t S, double eps, bool training, Act act, PoolInto<T> pool) {
  if (training) {
    std::vector<double> sum(static_cast<std::size_t>(C)), m2(static_cast<std::size_t>(C));
    batch_norm_moments(mean, sum.data(), m2.data(), x, N, C, S);
    for (std::int64_t c = 0; c < C; ++c) var[c] = static_cast<T>(m2[c] / static_cast<double>(N * S));
  }
  batch_norm_normalize(y, rstd, x, mean, var, weight, bias, N, C, S, eps, act, pool);
}

// Pass 1 of the backward: per channel, in double, Σ dy and (x given) Σ dy·(x − mean), dy = g(i).
template <class T, class G>
void batch_norm_grad_sums(double* sum_dy, double* sum_dy_xmu, G g, const T* x, const T* mean, std::int64_t N,
                          std::int64_t C, std::int64_t S) {
  std::fill(sum_dy, sum_dy + C, 0.0);
  std::fill(sum_dy_xmu, sum_dy_xmu + C, 0.0);
  if (S == 1) {  // never pooled: the pool needs planes of 2×2 or more
    if constexpr (!is_pooled<G>)
      simd::with_isa([&]<simd::Isa>() TG_SIMD_LAMBDA {
        for (std::int64_t n = 0; n < N; ++n)
          if (x)
            for (std::int64_t c = 0; c < C; ++c) {
              const T dy = g(n * C + c);
              sum_dy[c] += static_cast<double>(dy);
              sum_dy_xmu[c] += static_cast<double>(dy * (x[n * C + c] - mean[c]));
            }
          else
            for (std::int64_t c = 0; c < C; ++c) sum_dy[c] += static_cast<double>(g(n * C + c));
      });
    return;
  }
  std::vector<Sums> sums = channel_sums(N, C, N * C * S, [&]<simd::Isa I>(std::int64_t n, std::int64_t c, Sums& acc) TG_SIMD_LAMBDA {
    const auto gr = g.shifted((n * C + c) * S);
    if (x) add_run_dy<I>(gr, x + (n * C + c) * S, mean[c], S, acc[0], acc[1]);
    else add_run<I, T>(S, gr, acc[0]);
  });
  for (std::int64_t c = 0; c < C; ++c) sum_dy[c] = fold(sums[c][0]), sum_dy_xmu[c] = fold(sums[c][1]);
}

// Pass 1 from the forward's window slopes (PoolInto): Σ dy = ¼ Σ_w dp_w·slope_w and Σ dy·(x − mean) =
// ¼ Σ_w dp_w·slope_xmu_w, over the N·C runs of OS = (H/2)·(W/2) windows. LeNet-BN's
// conv2 has runs of 16, a quarter of kLanes: rather than each run's own lanes, every window of a
// sample has a float lane, the same window of each of a block's samples added into it in order
// (sweep_lanes); each channel's OS lanes go to double at the block's end.
template <class T>
struct AddProducts {
  const T *dp, *slope, *slope_xmu;
  std::int64_t stride;
  template <class V>
  TG_SIMD_INLINE void operator()(std::int64_t n, std::int64_t j, V& a, V& b) const {
    const std::int64_t at = n * stride + j;
    const V d = lanes_at<V>(dp + at);
    a += d * lanes_at<V>(slope + at);
    b += d * lanes_at<V>(slope_xmu + at);
  }
};

template <class T>
void batch_norm_grad_sums_from_windows(double* sum_dy, double* sum_dy_xmu, const T* dp, const T* slope,
                                       const T* slope_xmu, std::int64_t N, std::int64_t C, std::int64_t OS) {
  const std::int64_t B = std::min(N, kBlocks), CS = C * OS;
  std::vector<Sums> part(static_cast<std::size_t>(B * C), Sums{});
  parallel_for(0, B, N * CS, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<T> lanes(static_cast<std::size_t>(2 * CS));
    T *a = lanes.data(), *b = a + CS;
    simd::with_isa([&]<simd::Isa I>() TG_SIMD_LAMBDA {
      for (std::int64_t blk = hi - 1; blk >= lo; --blk) {  // last to first, as channel_sums
        sweep_lanes<I, T>(a, b, blk * N / B, (blk + 1) * N / B, CS, AddProducts<T>{dp, slope, slope_xmu, CS});
        for (std::int64_t c = 0; c < C; ++c) {
          Sums& sums = part[static_cast<std::size_t>(blk * C + c)];
          add_run<I, T>(OS, RunValues<T>{a + c * OS}, sums[0]);
          add_run<I, T>(OS, RunValues<T>{b + c * OS}, sums[1]);
        }
      }
    });
  });
  const std::vector<Sums> sums = sum_blocks(part, B, C);
  for (std::int64_t c = 0; c < C; ++c) sum_dy[c] = fold(sums[c][0]) * 0.25, sum_dy_xmu[c] = fold(sums[c][1]) * 0.25;
}

// One run of pass 2: dx = a·dy + b·(x − mu) + k, or without x (eval) dx = a·dy, dy = g(i). float32 in
// vectors, where g may form dy from more than one load a lane (PooledRowsGrad).
template <simd::Isa I, class T, class G>
TG_SIMD_INLINE void write_run_dx(T* dx, G g, const T* x, T mu, std::int64_t S, T a, T b, T k) {
  std::int64_t i = 0;
  if constexpr (std::is_same_v<T, float>) {
    using V = FloatVec<I>;
    constexpr std::int64_t W = kFloatWidth<I>;
    if (x)
      for (; i + W <= S; i += W)
        simd::store_lanes(dx + i, a * g.template load<V>(i) + b * (simd::load_lanes<V>(x + i) - mu) + k);
    else
      for (; i + W <= S; i += W) simd::store_lanes(dx + i, a * g.template load<V>(i));
  }
  if (x) {
#pragma omp simd
    for (std::int64_t j = i; j < S; ++j) dx[j] = a * g(j) + b * (x[j] - mu) + k;
  } else {
#pragma omp simd
    for (std::int64_t j = i; j < S; ++j) dx[j] = a * g(j);
  }
}

// xhat = (x − mean) · rstd, y = weight · xhat + bias; per channel, over M values:
//   dbias = Σ dy,  dweight = Σ dy·xhat = rstd · Σ dy·(x − mean),
//   training: dx = weight·rstd/M · (M·dy − dbias − xhat·dweight)   (mean and rstd depend on x)
//   eval:     dx = weight·rstd · dy                                (they are constants)
// Pass 2 writes dx = a·dy + b·(x − mean) + k with per-channel a, b, k from the pass-1 sums, dy = g(i).
// M and the sums may span more values than these N·S (SyncBatchNorm adds other ranks' in).
template <class T, class G>
void batch_norm_grad_input(T* dx, G g, const T* x, const T* mean, const T* rstd, const T* weight,
                           const double* sum_dy, const double* sum_dy_xmu, double M, std::int64_t N, std::int64_t C,
                           std::int64_t S, bool training) {
  std::vector<T> a(static_cast<std::size_t>(C)), b(static_cast<std::size_t>(C)), k(static_cast<std::size_t>(C));
  for (std::int64_t c = 0; c < C; ++c) {
    const double r = static_cast<double>(rstd[c]), dw = sum_dy_xmu[c] * r;
    const double wr = static_cast<double>(weight ? weight[c] : T(1)) * r;
    a[c] = static_cast<T>(wr);  // dx = wr·(dy − dbias/M − (x − mean)·rstd·dweight/M)
    b[c] = training ? static_cast<T>(-wr * r * dw / M) : T(0);
    k[c] = training ? static_cast<T>(-wr * sum_dy[c] / M) : T(0);
  }
  if (S == 1) {  // never pooled, as in batch_norm_grad_sums
    if constexpr (!is_pooled<G>) {
      const T *ac = a.data(), *bc = b.data(), *kc = k.data();
      simd::with_isa([&]<simd::Isa>() TG_SIMD_LAMBDA {
        for (std::int64_t n = 0; n < N; ++n)
          if (training)
            for (std::int64_t c = 0; c < C; ++c)
              dx[n * C + c] = ac[c] * g(n * C + c) + bc[c] * (x[n * C + c] - mean[c]) + kc[c];
          else
            for (std::int64_t c = 0; c < C; ++c) dx[n * C + c] = ac[c] * g(n * C + c);
      });
    }
    return;
  }
  parallel_for(0, N, N * C * S, [&](std::int64_t lo, std::int64_t hi) {
    simd::with_isa([&]<simd::Isa I>() TG_SIMD_LAMBDA {
      for (std::int64_t n = lo; n < hi; ++n)
        for (std::int64_t c = 0; c < C; ++c) {
          const std::int64_t at = (n * C + c) * S;
          if (training) write_run_dx<I>(dx + at, g.shifted(at), x + at, mean[c], S, a[c], b[c], k[c]);
          else write_run_dx<I>(dx + at, g.shifted(at), static_cast<const T*>(nullptr), T(0), S, a[c], T(0), T(0));
        }
    });
  });
}

// dbias = Σ dy and dweight = rstd · Σ dy·(x − mean) from pass 1's sums; either may be null.
template <class T>
void batch_norm_param_grads(T* dweight, T* dbias, const double* sum_dy, const double* sum_dy_xmu, const T* rstd,
                            std::int64_t C) {
  for (std::int64_t c = 0; c < C; ++c) {
    if (dbias) dbias[c] = static_cast<T>(sum_dy[c]);
    if (dweight) dweight[c] = static_cast<T>(sum_dy_xmu[c] * static_cast<double>(rstd[c]));
  }
}

// Pass 1 from the window slopes where the forward wrote them (g pooled, slope not null), else from g
// and x.
template <class T, class G>
void batch_norm_grad_sums(double* sum_dy, double* sum_dy_xmu, G g, const T* x, const T* mean, const T* slope,
                          const T* slope_xmu, std::int64_t N, std::int64_t C, std::int64_t S) {
  if constexpr (is_pooled<G>) {
    if (slope) {
      batch_norm_grad_sums_from_windows(sum_dy, sum_dy_xmu, g.dp, slope, slope_xmu, N, C, (g.H / 2) * (g.W / 2));
      return;
    }
  }
  batch_norm_grad_sums<T>(sum_dy, sum_dy_xmu, g, x, mean, N, C, S);
}

// dx, dweight, dbias may be null (not wanted); x may be null when neither needs it, and slope
// (PoolInto's window slopes) when the forward did not write them.
template <class T, class G>
void batch_norm_backward(T* dx, T* dweight, T* dbias, G g, const T* x, const T* mean, const T* rstd,
                         const T* weight, const T* slope, const T* slope_xmu, std::int64_t N, std::int64_t C,
                         std::int64_t S, bool training) {
  std::vector<double> sum_dy(static_cast<std::size_t>(C), 0.0), sum_dy_xmu(static_cast<std::size_t>(C), 0.0);
  if (dweight || dbias || (dx && training))
    batch_norm_grad_sums<T>(sum_dy.data(), sum_dy_xmu.data(), g, x, mean, slope, slope_xmu, N, C, S);
  batch_norm_param_grads(dweight, dbias, sum_dy.data(), sum_dy_xmu.data(), rstd, C);
  if (dx)
    batch_norm_grad_input(dx, g, x, mean, rstd, weight, sum_dy.data(), sum_dy_xmu.data(),
                          static_cast<double>(N * S), N, C, S, training);
}

// --- the differentiable function ------------------------------------------------------------------

void check_batch_norm(const char* op, const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                      const Tensor& weight, const Tensor& bias, bool training) {
  TG_CHECK(x.dim() >= 2 && x.dim() <= 5,
           "[{}] expected input of shape [N, C], [N, C, L] or [N, C, H, W] (2 to 5 dims), got {}", op, x.sizes());
  TG_CHECK(is_floating(x.dtype()), "[{}] expected a floating point input, got {}", op, dtype_name(x.dtype()));
  const std::int64_t C = x.size(1);
  const std::pair<const char*, const Tensor*> params[] = {
      {"running_mean", &running_mean}, {"running_var", &running_var}, {"weight", &weight}, {"bias", &bias}};
  for (const auto& [name, t] : params) {
    if (!t->defined()) continue;
    TG_CHECK(t->sizes() == Shape{C}, "[{}] expected {} of shape [{}] (C = {} for input {}), got {}", op, name, C,
             C, x.sizes(), t->sizes());
    TG_CHECK(t->dtype() == x.dtype(), "[{}] expected {} of dtype {} (the input's), got {}", op, name,
             dtype_name(x.dtype()), dtype_name(t->dtype()));
  }
  TG_CHECK(running_mean.defined() == running_var.defined(),
           "[{}] expected running_mean and running_var both defined or both undefined, got only {}", op,
           running_mean.defined() ? "running_mean" : "running_var");
  TG_CHECK(training || running_mean.defined(),
           "[{}] expected running_mean and running_var in evaluation mode (training=false), got none", op);
  TG_CHECK(!training || x.size(0) * numel_of(Shape(x.sizes().begin() + 2, x.sizes().end())) != 1,
           "[{}] Expected more than 1 value per channel when training, got input size {}", op, x.sizes());
}

// The window slopes (PoolInto) pay where pass 1 would read x and s from beyond L2: from 1 MiB of x
// (LeNet-BN's conv1 and conv2 at batch 256, a training step 2% faster). Below, they are in L2, and
// the forward's extra work costs more than pass 1 saves: a step at batch 16 was 3% slower with them,
// at batch 64 (conv1 0.9 MB) 0.6%.
constexpr std::int64_t kWindowSlopesFromBytes = std::int64_t{1} << 20;

// The window slopes' tensors (PoolInto) of a pooled batch norm on [N, C, H, W], shaped as the pool's
// output: undefined unless a backward will read them (pooled_backward) and the input has
// kWindowSlopesFromBytes. They share one storage where that takes less memory than two: at LeNet-BN's
// conv1 each is 0.9 MB, and a block of that size is a whole 2 MiB page (peak memory at batch 256 2 MiB
// lower); at conv2, two 256 KiB blocks take less than one of 512 KiB, a huge page again.
struct WindowSlopes {
  Tensor slope, slope_xmu;
  WindowSlopes(bool pooled_backward, std::int64_t N, std::int64_t C, std::int64_t H, std::int64_t W, DType dtype) {
    const auto item = static_cast<std::int64_t>(itemsize(dtype));
    if (!pooled_backward || N * C * H * W * item < kWindowSlopesFromBytes) return;
    const Shape pooled{N, C, H / 2, W / 2};
    const auto bytes = static_cast<std::size_t>(numel_of(pooled) * item);
    if (storage_block_bytes(2 * bytes) < 2 * storage_block_bytes(bytes)) {
      Shape both_shape = pooled;
      both_shape.insert(both_shape.begin(), 2);
      const Tensor both = Tensor::empty(both_shape, dtype);
      slope = both.select(0, 0), slope_xmu = both.select(0, 1);
    } else {
      slope = Tensor::empty(pooled, dtype), slope_xmu = Tensor::empty(pooled, dtype);
    }
  }
  template <class T>
  PoolInto<T> pool_into(T* p, std::int64_t H, std::int64_t W) const {
    return {p, H, W, slope.defined() ? slope.data_ptr<T>() : nullptr,
            slope_xmu.defined() ? slope_xmu.data_ptr<T>() : nullptr};
  }
};

// fn(activation) with batch_norm_act's activation functor for act (NoActivation for none).
template <class Fn>
void with_activation(std::optional<BatchNormActivation> act, Fn&& fn) {
  if (!act) fn(NoActivation{});
  else if (*act == BatchNormActivation::Sigmoid) fn(SigmoidActivation{});
  else fn(ReluActivation{});
}

// The tape entry's name: "BatchNormSigmoidBackward0", "ConvolutionBatchNormReluAvgPoolBackward0", ...
std::string fused_backward_name(const char* first, BatchNormActivation act, bool pool) {
  return std::string(first) + (act == BatchNormActivation::Sigmoid ? "Sigmoid" : "Relu") + (pool ? "AvgPool" : "") +
         "Backward0";
}

// batch_norm, or with `act` batch_norm_act: the output is act(batch norm), activated run by run in the
// normalizing pass, and the backward reads the activation's output s instead of a batch-norm output.
// With `pool` the output is s's 2×2 average pool, and s, kept for the backward, is not returned.
Tensor batch_norm_impl(const Tensor& x, std::optional<BatchNormActivation> act, bool pool, const Tensor& running_mean,
                       const Tensor& running_var, const Tensor& weight, const Tensor& bias, bool training,
                       double momentum, double eps) {
  const char* op = act ? "batch_norm_act" : "batch_norm";
  check_batch_norm(op, x, running_mean, running_var, weight, bias, training);
  TG_CHECK(!pool || (x.dim() == 4 && x.size(2) >= 2 && x.size(3) >= 2),
           "[{}] expected input of shape [N, C, H, W] with H, W >= 2 for the 2x2 average pool, got {}", op, x.sizes());
  const DType dtype = x.dtype();
  const std::int64_t N = x.size(0), C = x.size(1), S = numel_of(Shape(x.sizes().begin() + 2, x.sizes().end()));
  const std::int64_t H = pool ? x.size(2) : 0, W = pool ? x.size(3) : 0;
  Tensor xc = native::contiguous(x);
  Tensor wc = weight.defined() ? native::contiguous(weight) : Tensor();
  Tensor bc = bias.defined() ? native::contiguous(bias) : Tensor();
  // Per-channel statistics, snapshots (eval copies the running ones: backward must not see later updates).
  Tensor mean = training ? Tensor::empty({C}, dtype) : native::clone(running_mean);
  Tensor var = training ? Tensor::empty({C}, dtype) : native::clone(running_var);
  Tensor rstd = Tensor::empty({C}, dtype);
  Tensor y = Tensor::empty(x.sizes(), dtype);
  const bool recording = autograd::needs_grad(x, weight, bias);
  Tensor pooled = pool ? Tensor::empty({N, C, H / 2, W / 2}, dtype) : Tensor();
  const WindowSlopes slopes(pool && recording, N, C, H, W, dtype);
  dispatch_floating(dtype, [&]<class T>() {
    with_activation(act, [&](auto activation) {
      batch_norm_forward<T>(y.data_ptr<T>(), mean.data_ptr<T>(), var.data_ptr<T>(), rstd.data_ptr<T>(),
                            xc.data_ptr<T>(), wc.defined() ? wc.data_ptr<T>() : nullptr,
                            bc.defined() ? bc.data_ptr<T>() : nullptr, N, C, S, eps, training, activation,
                            slopes.pool_into<T>(pool ? pooled.data_ptr<T>() : nullptr, H, W));
    });
  });
  if (training && running_mean.defined()) batch_norm_update_running_stats(running_mean, running_var, mean, var, N * S, momentum);
  if (!recording) return pool ? pooled : y;

  const bool gx = x.requires_grad(), gw = weight.defined() && weight.requires_grad();
  const bool gb = bias.defined() && bias.requires_grad();
  Tensor x_saved = gw || (gx && training) ? xc : Tensor();  // xhat is recomputed from x, mean and rstd
  Tensor s_saved = act ? native::alias(y) : Tensor();        // the activation's output, for its derivative
  const std::string name = !act ? std::string("NativeBatchNormBackward0") : fused_backward_name("BatchNorm", *act, pool);
  std::vector<Tensor> saved{x, weight};
  if (act && !pool) saved.push_back(y);  // pooled, s is no tensor of the user's
  return autograd::record(
      name, pool ? pooled : y, {x, weight, bias},
      [x_saved, s_saved, slopes, wc, mean, rstd, gx, gw, gb, training, act, pool, shape = x.sizes(), N, C, S, H,
       W](const Tensor& g) {
        Tensor dy = native::contiguous(g);
        Tensor dx = gx ? Tensor::empty(shape, dy.dtype()) : Tensor();
        Tensor dweight = gw ? Tensor::empty({C}, dy.dtype()) : Tensor();
        Tensor dbias = gb ? Tensor::empty({C}, dy.dtype()) : Tensor();
        dispatch_floating(dy.dtype(), [&]<class T>() {
          auto ptr = [](const Tensor& t) { return t.defined() ? t.data_ptr<T>() : nullptr; };
          auto backward = [&](auto grad) {
            batch_norm_backward<T>(ptr(dx), ptr(dweight), ptr(dbias), grad, ptr(x_saved), mean.data_ptr<T>(),
                                   rstd.data_ptr<T>(), ptr(wc), ptr(slopes.slope), ptr(slopes.slope_xmu), N, C, S,
                                   training);
          };
          with_output_grad<T>(act, pool, dy.data_ptr<T>(), act ? s_saved.data_ptr<T>() : nullptr, H, W, backward);
        });
        return std::vector<Tensor>{dx, dweight, dbias};
      },
      saved);
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  return batch_norm_impl(x, std::nullopt, false, running_mean, running_var, weight, bias, training, momentum, eps);
}

const char* activation_name(BatchNormActivation act) {
  return act == BatchNormActivation::Sigmoid ? "Sigmoid" : "ReLU";
}

Tensor batch_norm_act(const Tensor& x, BatchNormActivation act, const Tensor& running_mean, const Tensor& running_var,
                      const Tensor& weight, const Tensor& bias, bool training, double momentum, double eps,
                      bool avg_pool_2x2) {
  return batch_norm_impl(x, act, avg_pool_2x2, running_mean, running_var, weight, bias, training, momentum, eps);
}

// --- batch norm fused with the convolution before it ------------------------------------------------

// The convolution's output y is batch norm's input: each pass over y costs a pass over memory
// (3.5 MB for LeNet-BN's conv1 at batch 256). The forward convolves kMomentsChunk samples at a time and
// takes each chunk's moments while the convolution has just written it, and the backward forms batch
// norm's input gradient (the convolution's dy) kConvDyChunk samples at a time, straight into the weight gradient
// (direct_conv2d_backward_chunked): it is never written to memory and read back. Same kernels, same
// order of operations per value: the same bits as conv2d followed by batch_norm_act.
Tensor conv2d_batch_norm_act(const Tensor& x, const Tensor& conv_weight, const Tensor& conv_bias, Size2 stride,
                             Size2 padding, std::int64_t groups, BatchNormActivation act, const Tensor& running_mean,
                             const Tensor& running_var, const Tensor& weight, const Tensor& bias, bool training,
                             double momentum, double eps, bool avg_pool_2x2) {
  const bool fusable = x.defined() && x.dim() == 4 && x.dtype() == kFloat32 && training && stride == Size2(1);
  const detail::ConvShape s =
      fusable ? detail::conv2d_shape(x, conv_weight, conv_bias, stride, padding, groups) : detail::ConvShape{};
  if (!fusable || s.N * s.F * s.OH * s.OW == 0)
    return batch_norm_act(conv2d(x, conv_weight, conv_bias, stride, padding, groups), act, running_mean, running_var,
                          weight, bias, training, momentum, eps, avg_pool_2x2);
  const char* op = "conv2d_batch_norm_act";
  const std::int64_t N = s.N, C = s.F, S = s.OH * s.OW, H = s.OH, W = s.OW, x_numel = s.C * s.H * s.W;
  Tensor y = Tensor::empty({N, C, H, W}, kFloat32);  // the convolution's output, batch norm's input
  check_batch_norm(op, y, running_mean, running_var, weight, bias, training);
  TG_CHECK(!avg_pool_2x2 || (H >= 2 && W >= 2),
           "[{}] expected a convolution output of at least [2, 2] for the 2x2 average pool, got {}", op, y.sizes());
  Tensor xc = native::contiguous(x), cwc = native::contiguous(conv_weight);
  Tensor cbc = conv_bias.defined() ? native::contiguous(conv_bias) : Tensor();
  Tensor wc = weight.defined() ? native::contiguous(weight) : Tensor();
  Tensor bc = bias.defined() ? native::contiguous(bias) : Tensor();
  Tensor mean = Tensor::empty({C}, kFloat32), var = Tensor::empty({C}, kFloat32), rstd = Tensor::empty({C}, kFloat32);
  Tensor out = Tensor::empty({N, C, H, W}, kFloat32);  // the activation's output s
  Tensor pooled = avg_pool_2x2 ? Tensor::empty({N, C, H / 2, W / 2}, kFloat32) : Tensor();
  const WindowSlopes slopes(avg_pool_2x2 && autograd::needs_grad(x, conv_weight, conv_bias, weight, bias), N, C, H,
                            W, kFloat32);
  float* yp = y.data_ptr<float>();
  {
    const std::int64_t chunks = moments_chunks(N);
    std::vector<double> chunk_sum(static_cast<std::size_t>(chunks * C)), chunk_m2(static_cast<std::size_t>(chunks * C));
    for (std::int64_t k = 0; k < chunks; ++k) {
      const std::int64_t n0 = k * kMomentsChunk;
      detail::ConvShape chunk = s;
      chunk.N = std::min(kMomentsChunk, N - n0);
      detail::direct_conv2d_forward(yp + n0 * C * S, xc.data_ptr<float>() + n0 * x_numel, cwc.data_ptr<float>(),
                                    cbc.defined() ? cbc.data_ptr<float>() : nullptr, chunk);
      chunk_moments(chunk_sum.data() + k * C, chunk_m2.data() + k * C, static_cast<const float*>(yp), n0,
                    n0 + chunk.N, C, S);
    }
    std::vector<double> sum(static_cast<std::size_t>(C)), m2(static_cast<std::size_t>(C));
    combine_chunks(mean.data_ptr<float>(), sum.data(), m2.data(), chunk_sum.data(), chunk_m2.data(), N, C, S);
    for (std::int64_t c = 0; c < C; ++c)
      var.data_ptr<float>()[c] = static_cast<float>(m2[c] / static_cast<double>(N * S));
  }
  with_activation(act, [&](auto activation) {
    batch_norm_normalize<float>(out.data_ptr<float>(), rstd.data_ptr<float>(), yp, mean.data_ptr<float>(),
                                var.data_ptr<float>(), wc.defined() ? wc.data_ptr<float>() : nullptr,
                                bc.defined() ? bc.data_ptr<float>() : nullptr, N, C, S, eps,
                                activation, slopes.pool_into(avg_pool_2x2 ? pooled.data_ptr<float>() : nullptr, H, W));
  });
  if (running_mean.defined()) batch_norm_update_running_stats(running_mean, running_var, mean, var, N * S, momentum);

  const bool g_x = x.requires_grad(), g_cw = conv_weight.requires_grad();
  const bool g_cb = conv_bias.defined() && conv_bias.requires_grad(), g_w = weight.defined() && weight.requires_grad();
  const bool g_b = bias.defined() && bias.requires_grad();
  std::vector<Tensor> saved{weight};
  if (g_cw) saved.push_back(x);
  if (g_x) saved.push_back(conv_weight);
  if (!avg_pool_2x2) saved.push_back(out);
  // The backward keeps the activation's output as an alias: `out` itself is the result without a pool,
  // and a tape entry holding its own output is a reference cycle.
  return autograd::record(
      fused_backward_name("ConvolutionBatchNorm", act, avg_pool_2x2), avg_pool_2x2 ? pooled : out,
      {x, conv_weight, conv_bias, weight, bias},
      [s, N, C, S, y, s_saved = native::alias(out), slopes, wc, mean, rstd, act, pool = avg_pool_2x2, g_x, g_cw, g_cb,
       g_w, g_b, x_saved = g_cw ? xc : Tensor(), cw_saved = g_x ? cwc : Tensor()](const Tensor& g) {
        Tensor d = native::contiguous(g);
        auto grad_or_none = [](bool wanted, Shape shape) { return wanted ? Tensor::empty(shape, kFloat32) : Tensor(); };
        Tensor dx = grad_or_none(g_x, {N, s.C, s.H, s.W}), dcw = grad_or_none(g_cw, {s.F, s.C / s.G, s.KH, s.KW});
        Tensor dcb = grad_or_none(g_cb, {s.F}), dw = grad_or_none(g_w, {C}), db = grad_or_none(g_b, {C});
        with_output_grad<float>(act, pool, d.data_ptr<float>(), s_saved.data_ptr<float>(), s.OH, s.OW, [&](auto grad) {
          std::vector<double> sum_dy(static_cast<std::size_t>(C)), sum_dy_xmu(static_cast<std::size_t>(C));
          const float* conv_out = y.data_ptr<float>();
          auto ptr = [](const Tensor& t) { return t.defined() ? t.data_ptr<float>() : nullptr; };
          batch_norm_grad_sums<float>(sum_dy.data(), sum_dy_xmu.data(), grad, conv_out, mean.data_ptr<float>(),
                                      ptr(slopes.slope), ptr(slopes.slope_xmu), N, C, S);
          batch_norm_param_grads(ptr(dw), ptr(db), sum_dy.data(), sum_dy_xmu.data(), rstd.data_ptr<float>(), C);
          if (!g_x && !g_cw && !g_cb) return;
          detail::direct_conv2d_backward_chunked(
              ptr(dx), ptr(dcw), ptr(dcb), ptr(x_saved), ptr(cw_saved), s,
              [&](float* dy_chunk, std::int64_t n0, std::int64_t n1) {
                batch_norm_grad_input<float>(dy_chunk, from_element(grad, n0 * C * S), conv_out + n0 * C * S,
                                             mean.data_ptr<float>(), rstd.data_ptr<float>(), ptr(wc), sum_dy.data(),
                                             sum_dy_xmu.data(), static_cast<double>(N * S), n1 - n0, C, S, true);
              });
        });
        return std::vector<Tensor>{dx, dcw, dcb, dw, db};
      },
      saved);
}

// --- the pieces ------------------------------------------------------------------------------------

namespace {

// Read into plain variables, not a structured binding: clang 14 cannot capture bindings in lambdas.
struct Dims {
  std::int64_t N, C, S;
};

Dims dims_of(const Tensor& x) {
  return {x.size(0), x.size(1), numel_of(Shape(x.sizes().begin() + 2, x.sizes().end()))};
}

template <class T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

}  // namespace

BatchNormMoments batch_norm_moments(const Tensor& x) {
  const Dims dims = dims_of(x);
  const std::int64_t N = dims.N, C = dims.C, S = dims.S;
  Tensor xc = native::contiguous(x);
  BatchNormMoments out{Tensor::empty({C}, kFloat64), Tensor::empty({C}, kFloat64), N * S};
  dispatch_floating(x.dtype(), [&]<class T>() {
    std::vector<T> mean(static_cast<std::size_t>(C));
    batch_norm_moments<T>(mean.data(), out.sum.data_ptr<double>(), out.m2.data_ptr<double>(), xc.data_ptr<T>(), N, C,
                          S);
  });
  return out;
}

std::pair<Tensor, Tensor> batch_norm_normalize(const Tensor& x, const Tensor& mean, const Tensor& var,
                                               const Tensor& weight, const Tensor& bias, double eps) {
  const Dims dims = dims_of(x);
  const std::int64_t N = dims.N, C = dims.C, S = dims.S;
  Tensor xc = native::contiguous(x), meanc = native::contiguous(mean), varc = native::contiguous(var);
  Tensor wc = weight.defined() ? native::contiguous(weight) : Tensor();
  Tensor bc = bias.defined() ? native::contiguous(bias) : Tensor();
  Tensor y = Tensor::empty(x.sizes(), x.dtype()), rstd = Tensor::empty({C}, x.dtype());
  dispatch_floating(x.dtype(), [&]<class T>() {
    batch_norm_normalize<T>(y.data_ptr<T>(), rstd.data_ptr<T>(), xc.data_ptr<T>(), meanc.data_ptr<T>(),
                            varc.data_ptr<T>(), ptr_or_null<T>(wc), ptr_or_null<T>(bc), N, C, S, eps);
  });
  return {y, rstd};
}

void batch_norm_update_running_stats(const Tensor& running_mean, const Tensor& running_var, const Tensor& mean,
                                     const Tensor& var, std::int64_t count, double momentum) {
  if (count == 0) return;
  const double m = static_cast<double>(count);
  native::binary_(native::BinaryOp::Mul, running_mean, 1.0 - momentum);
  native::add_scaled_(running_mean, mean, momentum);
  native::binary_(native::BinaryOp::Mul, running_var, 1.0 - momentum);
  native::add_scaled_(running_var, var, momentum * m / (m - 1.0));  // the unbiased batch variance
}

std::pair<Tensor, Tensor> batch_norm_grad_sums(const Tensor& dy, const Tensor& x, const Tensor& mean) {
  const Dims dims = dims_of(x);
  const std::int64_t N = dims.N, C = dims.C, S = dims.S;
  Tensor dyc = native::contiguous(dy), xc = native::contiguous(x), meanc = native::contiguous(mean);
  Tensor sum_dy = Tensor::empty({C}, kFloat64), sum_dy_xmu = Tensor::empty({C}, kFloat64);
  dispatch_floating(x.dtype(), [&]<class T>() {
    batch_norm_grad_sums<T>(sum_dy.data_ptr<double>(), sum_dy_xmu.data_ptr<double>(), PlainGrad<T>{dyc.data_ptr<T>()},
                            xc.data_ptr<T>(), meanc.data_ptr<T>(), N, C, S);
  });
  return {sum_dy, sum_dy_xmu};
}

Tensor batch_norm_grad_input(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                             const Tensor& weight, const Tensor& sum_dy, const Tensor& sum_dy_xmu, std::int64_t count) {
  const Dims dims = dims_of(x);
  const std::int64_t N = dims.N, C = dims.C, S = dims.S;
  Tensor dyc = native::contiguous(dy), xc = native::contiguous(x), meanc = native::contiguous(mean);
  Tensor rstdc = native::contiguous(rstd), wc = weight.defined() ? native::contiguous(weight) : Tensor();
  Tensor sdy = native::contiguous(sum_dy), sdyx = native::contiguous(sum_dy_xmu);
  Tensor dx = Tensor::empty(x.sizes(), x.dtype());
  dispatch_floating(x.dtype(), [&]<class T>() {
    batch_norm_grad_input<T>(dx.data_ptr<T>(), PlainGrad<T>{dyc.data_ptr<T>()}, xc.data_ptr<T>(), meanc.data_ptr<T>(),
                             rstdc.data_ptr<T>(), ptr_or_null<T>(wc), sdy.data_ptr<double>(), sdyx.data_ptr<double>(),
                             static_cast<double>(count), N, C, S, true);
  });
  return dx;
}

// --- the module ---------------------------------------------------------------------------

namespace nn {

BatchNormBase::BatchNormBase(std::int64_t features, BatchNormOptions opts) : num_features(features), options(opts) {
  TG_CHECK(features > 0, "[BatchNorm] expected a positive num_features, got {}", features);
  if (options.affine) {
    weight = register_parameter("weight", empty({features}));
    bias = register_parameter("bias", empty({features}));
  }
  if (options.track_running_stats) {
    running_mean = register_buffer("running_mean", empty({features}));
    running_var = register_buffer("running_var", empty({features}));
    num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, kInt64));
  }
  reset_parameters();
}

void BatchNormBase::reset_running_stats() {
  if (!options.track_running_stats) return;
  NoGradGuard no_grad;
  native::fill_(running_mean, 0);
  native::fill_(running_var, 1);
  native::fill_(num_batches_tracked, 0);
}

void BatchNormBase::reset_parameters() {
  reset_running_stats();
  if (options.affine) {
    init::ones_(weight);
    init::zeros_(bias);
  }
}

Tensor BatchNormBase::forward(const Tensor& input) {
  check_input(input);
  TG_CHECK(input.size(1) == num_features, "[{}] expected {} channels (dim 1), got input of shape {}", name(),
           num_features, input.sizes());
  return forward_with([&](bool use_batch_stats, double momentum) { return normalize(input, use_batch_stats, momentum); });
}

Tensor BatchNormBase::forward_with(const std::function<Tensor(bool use_batch_stats, double momentum)>& normalize_fn) {
  double momentum = options.momentum.value_or(0.0);
  const bool tracking = is_training() && options.track_running_stats;
  if (tracking && !options.momentum)  // a cumulative average over the batches, this one included
    momentum = 1.0 / static_cast<double>(num_batches_tracked.item<std::int64_t>() + 1);
  // Batch statistics in training, and in evaluation too when no running statistics are kept.
  bool use_batch_stats = is_training() || !options.track_running_stats;
  Tensor out = normalize_fn(use_batch_stats, momentum);
  if (tracking) {  // counted once the call has succeeded: a refused batch changes nothing
    NoGradGuard no_grad;
    native::binary_(native::BinaryOp::Add, num_batches_tracked, 1);
  }
  return out;
}

Tensor BatchNormBase::normalize(const Tensor& input, bool use_batch_stats, double momentum) {
  return batch_norm(input, running_mean, running_var, weight, bias, use_batch_stats, momentum, options.eps);
}

std::string BatchNormBase::extra_repr() const {
  std::string m = options.momentum ? fmt::format("{}", *options.momentum) : "None";
  return fmt::format("{}, eps={}, momentum={}, affine={}, track_running_stats={}", num_features, options.eps, m,
                     options.affine ? "True" : "False",
                     options.track_running_stats ? "True" : "False");
}

BatchNorm1d::BatchNorm1d(std::int64_t features, BatchNormOptions opts) : BatchNormBase(features, opts) {}

void BatchNorm1d::check_input(const Tensor& input) const {
  TG_CHECK(input.dim() == 2 || input.dim() == 3, "[BatchNorm1d] expected 2D or 3D input (got {}D input of shape {})",
           input.dim(), input.sizes());
}

BatchNorm2d::BatchNorm2d(std::int64_t features, BatchNormOptions opts) : BatchNormBase(features, opts) {}

void BatchNorm2d::check_input(const Tensor& input) const {
  TG_CHECK(input.dim() == 4, "[BatchNorm2d] expected 4D input (got {}D input of shape {})", input.dim(),
           input.sizes());
}

ConvBatchNormAct2d::ConvBatchNormAct2d(const Conv2d& source_conv, const BatchNormAct2d& source_bn) {
  TG_CHECK(source_conv.out_channels == source_bn.num_features,
           "[ConvBatchNormAct2d] expected a batch norm of the convolution's {} channels, got {}",
           source_conv.out_channels, source_bn.num_features);
  conv = register_module("0", std::make_shared<Conv2d>(source_conv));
  bn = register_module("1", std::make_shared<BatchNormAct2d>(source_bn));
  train(source_bn.is_training());
}

Tensor ConvBatchNormAct2d::forward(const Tensor& input) {
  conv->check_input(input, "ConvBatchNormAct2d");
  // An unbatched [C, H, W] convolves to [F, OH, OW], which BatchNorm2d refuses: so does the pair.
  TG_CHECK(input.dim() == 4, "[ConvBatchNormAct2d] expected 4D input, as BatchNorm2d (got {}D input of shape {})",
           input.dim(), input.sizes());
  return bn->forward_with([&](bool use_batch_stats, double momentum) {
    return conv2d_batch_norm_act(input, conv->weight, conv->bias, conv->stride, conv->padding, conv->groups,
                                 bn->activation, bn->running_mean, bn->running_var, bn->weight, bn->bias,
                                 use_batch_stats, momentum, bn->options.eps, bn->avg_pool_2x2);
  });
}

}  // namespace nn

}  // namespace tg
