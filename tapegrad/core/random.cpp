// The global random generator and the samplers behind rand, randn, randint, randperm, uniform_
// and normal_. Layer: core; knows nothing of the tape. Every stream reproduces PyTorch 1.13's CPU
// generator bit for bit (as built for AVX2 processors): the same Mersenne Twister, the same bits
// per sample, the same Box-Muller variants, and the same fused multiply-adds.
#include "tapegrad/core/random.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <limits>
#include <mutex>
#include <numbers>
#include <numeric>
#include <optional>
#include <string_view>
#include <type_traits>
#include <vector>

#include "tapegrad/core/native.h"
#include "tapegrad/core/simd.h"

// std::fma is one instruction on processors with FMA and a libm call elsewhere: the hot loops run
// through core/simd.h's dispatch, whose AVX versions have FMA. Every version gives the same,
// correctly rounded, results.

namespace tg {
namespace {

constexpr std::uint64_t kDefaultSeed = 67280421310721ULL;  // c10::default_rng_seed_val
constexpr int kStateWords = 624;
constexpr int kShift = 397;

// MT19937 with PyTorch's bookkeeping: `left` counts down to the next regeneration and starts at 1,
// so the first draw regenerates the freshly seeded table; `next` indexes the table. Only the low
// 32 bits of the seed reach the table; `seed` keeps all 64 for initial_seed().
struct Mt19937 {
  std::uint64_t seed = kDefaultSeed;
  std::int32_t left = 1;
  std::uint32_t next = 0;
  std::array<std::uint32_t, kStateWords> table{};

  void reseed(std::uint64_t s) {
    seed = s;
    table[0] = static_cast<std::uint32_t>(s);
    for (int j = 1; j < kStateWords; ++j) {
      const std::uint32_t prev = table[j - 1];
      table[j] = 1812433253U * (prev ^ (prev >> 30)) + static_cast<std::uint32_t>(j);
    }
    left = 1;
    next = 0;
  }

  std::uint32_t next32() {
    if (--left == 0) regenerate();
    std::uint32_t y = table[next++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680U;
    y ^= (y << 15) & 0xefc60000U;
    y ^= y >> 18;
    return y;
  }

  // PyTorch's random64: the first 32-bit draw is the high half.
  std::uint64_t next64() {
    const std::uint64_t hi = next32();
    const std::uint64_t lo = next32();
    return (hi << 32) | lo;
  }

  void regenerate() {
    auto twist = [](std::uint32_t u, std::uint32_t v) {
      const std::uint32_t mixed = (u & 0x80000000U) | (v & 0x7fffffffU);
      return (mixed >> 1) ^ ((v & 1U) ? 0x9908b0dfU : 0U);
    };
    int k = 0;
    for (; k < kStateWords - kShift; ++k) table[k] = table[k + kShift] ^ twist(table[k], table[k + 1]);
    for (; k < kStateWords - 1; ++k) table[k] = table[k + kShift - kStateWords] ^ twist(table[k], table[k + 1]);
    table[k] = table[kShift - 1] ^ twist(table[k], table[0]);
    left = kStateWords;
    next = 0;
  }
};

struct Generator {
  Generator() { engine.reseed(kDefaultSeed); }
  std::mutex mutex;
  Mt19937 engine;
  // The unused second value of the last scalar Box-Muller pair (PyTorch caches it the same way).
  std::optional<double> next_normal;
  // PyTorch keeps a float twin of the cache; no tapegrad sampler uses it, but the state keeps it.
  std::optional<float> next_float_normal;
};

Generator& generator() {
  static Generator g;
  return g;
}

// --- samples ----------------------------------------------------------------------------------
// Uniform on [0, 1): the low 24 bits of one draw for float, the low 53 bits of a 64-bit draw for
// double; both products are exact.
float uniform01_float(Mt19937& e) { return static_cast<float>(e.next32() & 0xffffffU) * 0x1p-24F; }
double uniform01_double(Mt19937& e) {
  return static_cast<double>(e.next64() & ((std::uint64_t{1} << 53) - 1)) * 0x1p-53;
}

template <class T>
T uniform01(Mt19937& e) {
  if constexpr (std::is_same_v<T, float>) return uniform01_float(e);
  else return uniform01_double(e);
}

// PyTorch's kernel computes x * (to - from) + from, which its AVX2 build contracts into one fma.
template <class T>
void fill_uniform(T* out, std::int64_t n, T from, T to, Mt19937& e) {
  const T width = to - from;
  simd::with_isa([&]<simd::Isa>() TG_SIMD_LAMBDA {
    for (std::int64_t i = 0; i < n; ++i) out[i] = std::fma(uniform01<T>(e), width, from);
  });
}

// One standard normal by Box-Muller over two double uniforms (PyTorch's normal_distribution<double>):
// returns r·cos θ and caches r·sin θ for the next call.
double scalar_normal(Generator& g) {
  if (g.next_normal) {
    double cached = *g.next_normal;
    g.next_normal.reset();
    return cached;
  }
  const double u1 = uniform01_double(g.engine);
  const double u2 = uniform01_double(g.engine);
  const double r = std::sqrt(-2.0 * std::log(1.0 - u2));
  const double theta = 2.0 * std::numbers::pi * u1;
  g.next_normal = r * std::sin(theta);
  return r * std::cos(theta);
}

template <class T>
void fill_normal_scalar(T* out, std::int64_t n, double mean, double std, Generator& g) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(std::fma(scalar_normal(g), std, mean));
}

// --- the float Box-Muller of PyTorch's normal_fill_AVX2 ----------------------------------------
// PyTorch evaluates log and sincos on 8 floats at a time with the Cephes polynomials of
// avx_mathfun.h, and GCC fuses their multiply-adds. These scalar versions take the same steps
// with the same roundings, so they agree to the last bit (measured over millions of samples).
[[gnu::always_inline]] inline float cephes_logf(float x) {
  constexpr float kSqrtHalf = static_cast<float>(0.707106781186547524);
  constexpr std::array<float, 9> kP = {
      static_cast<float>(7.0376836292E-2),  static_cast<float>(-1.1514610310E-1), static_cast<float>(1.1676998740E-1),
      static_cast<float>(-1.2420140846E-1), static_cast<float>(1.4249322787E-1),  static_cast<float>(-1.6668057665E-1),
      static_cast<float>(2.0000714765E-1),  static_cast<float>(-2.4999993993E-1), static_cast<float>(3.3333331174E-1)};
  constexpr float kLn2Lo = static_cast<float>(-2.12194440e-4);
  constexpr float kLn2Hi = 0.693359375F;

  // x = m · 2^k with m in [0.5, 1); fold m below √½ to 2m and k to k - 1, then log(1 + f).
  x = std::max(x, std::numeric_limits<float>::min());
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(x);
  float k = static_cast<float>(static_cast<std::int32_t>(bits >> 23) - 0x7f) + 1.0F;
  float m = std::bit_cast<float>((bits & ~0x7f800000U) | std::bit_cast<std::uint32_t>(0.5F));
  float fold = 0.0F;
  if (m < kSqrtHalf) {
    fold = m;
    k = k - 1.0F;
  }
  float f = m - 1.0F;
  f = f + fold;
  const float f2 = f * f;
  float p = kP[0];
  for (std::size_t i = 1; i < kP.size(); ++i) p = std::fma(p, f, kP[i]);
  p = p * f;
  float y = std::fma(p, f2, k * kLn2Lo);
  y = std::fma(-f2, 0.5F, y);
  return std::fma(k, kLn2Hi, f + y);
}

[[gnu::always_inline]] inline void cephes_sincosf(float x, float& sin_out, float& cos_out) {
  constexpr float kFourOverPi = static_cast<float>(1.27323954473516);
  constexpr float kDp1 = -0.78515625F;
  constexpr float kDp2 = static_cast<float>(-2.4187564849853515625e-4);
  constexpr float kDp3 = static_cast<float>(-3.77489497744594108e-8);
  constexpr float kCos0 = static_cast<float>(2.443315711809948E-005);
  constexpr float kCos1 = static_cast<float>(-1.388731625493765E-003);
  constexpr float kCos2 = static_cast<float>(4.166664568298827E-002);
  constexpr float kSin0 = static_cast<float>(-1.9515295891E-4);
  constexpr float kSin1 = static_cast<float>(8.3321608736E-3);
  constexpr float kSin2 = static_cast<float>(-1.6666654611E-1);
  constexpr std::uint32_t kSign = 0x80000000U;

  // Octant j (made even) of |x|; reduce x by j·π/4 in three pieces, then one polynomial gives
  // the sine and the other the cosine, swapped when j mod 4 == 2.
  std::uint32_t sin_sign = std::bit_cast<std::uint32_t>(x) & kSign;
  x = std::fabs(x);
  std::int32_t j = static_cast<std::int32_t>(x * kFourOverPi);
  j = (j + 1) & ~1;
  const float fj = static_cast<float>(j);
  sin_sign ^= (static_cast<std::uint32_t>(j) & 4U) << 29;
  const std::uint32_t cos_sign = (~static_cast<std::uint32_t>(j - 2) & 4U) << 29;
  const bool swap = (j & 2) != 0;
  x = std::fma(fj, kDp1, x);
  x = std::fma(fj, kDp2, x);
  x = std::fma(fj, kDp3, x);

  const float z = x * x;
  float c = std::fma(kCos0, z, kCos1);
  c = std::fma(c, z, kCos2);
  c = c * z;
  c = std::fma(c, z, -(z * 0.5F));
  c = c + 1.0F;
  float s = std::fma(kSin0, z, kSin1);
  s = std::fma(s, z, kSin2);
  s = s * z;
  s = std::fma(s, x, x);

  // The AVX code selects with masks and adds the other lane's zero, which turns -0 into +0.
  const float sin_part = swap ? c + 0.0F : 0.0F + s;
  const float cos_part = swap ? 0.0F + s : c + 0.0F;
  sin_out = std::bit_cast<float>(std::bit_cast<std::uint32_t>(sin_part) ^ sin_sign);
  cos_out = std::bit_cast<float>(std::bit_cast<std::uint32_t>(cos_part) ^ cos_sign);
}

// Box-Muller on blocks of 16 uniforms: u1 = 1 - d[j], u2 = d[j + 8] give d[j] (cos) and
// d[j + 8] (sin).
void box_muller_blocks(float* d, std::int64_t blocks, float mean, float std) {
  const float two_pi = static_cast<float>(2.0 * std::numbers::pi);
  simd::with_isa([&]<simd::Isa>() TG_SIMD_LAMBDA {
    for (std::int64_t b = 0; b < blocks; ++b, d += 16) {
      for (int j = 0; j < 8; ++j) {
        const float radius = std::sqrt(-2.0F * cephes_logf(1.0F - d[j]));
        float s = 0.0F;
        float c = 0.0F;
        cephes_sincosf(two_pi * d[j + 8], s, c);
        d[j] = std::fma(radius * c, std, mean);
        d[j + 8] = std::fma(radius * s, std, mean);
      }
    }
  });
}

void box_muller_blocks(double* d, std::int64_t blocks, double mean, double std) {
  const double two_pi = 2.0 * std::numbers::pi;
  for (std::int64_t b = 0; b < blocks; ++b, d += 16) {
    for (int j = 0; j < 8; ++j) {
      const double radius = std::sqrt(-2.0 * std::log(1.0 - d[j]));
      const double theta = two_pi * d[j + 8];
      d[j] = std::fma(radius * std::cos(theta), std, mean);
      d[j + 8] = std::fma(radius * std::sin(theta), std, mean);
    }
  }
}

// PyTorch's normal_fill, for contiguous tensors of at least 16 elements: all uniforms first,
// then Box-Muller in blocks of 16; a ragged tail redraws the last 16 and transforms them again.
template <class T>
void fill_normal_blocks(T* out, std::int64_t n, T mean, T std, Mt19937& e) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = uniform01<T>(e);
  box_muller_blocks(out, n / 16, mean, std);
  if (n % 16 != 0) {
    T* tail = out + n - 16;
    for (int i = 0; i < 16; ++i) tail[i] = uniform01<T>(e);
    box_muller_blocks(tail, 1, mean, std);
  }
}

// --- layouts ----------------------------------------------------------------------------------
void check_sizes(const Shape& sizes, std::string_view op) {
  for (std::int64_t s : sizes) TG_CHECK(s >= 0, "[{}] expected non-negative sizes, got {}", op, sizes);
}

void check_floating_dtype(DType dtype, std::string_view op) {
  TG_CHECK(is_floating(dtype), "[{}] expected a floating dtype (float32 or float64), got {}", op, dtype_name(dtype));
}

void check_fill_target(const Tensor& t, std::string_view op) {
  TG_CHECK(t.defined(), "[{}] expected a defined tensor", op);
  TG_CHECK(is_floating(t.dtype()), "[{}] expected a floating tensor (float32 or float64), got {}", op,
           dtype_name(t.dtype()));
  native::check_no_internal_overlap(t, op);
}

// A view of t with its dims sorted by decreasing stride: its row-major order is t's memory order,
// the order in which PyTorch visits the elements of a non-contiguous output.
Tensor in_memory_order(const Tensor& t) {
  Shape perm(t.sizes().size());
  std::iota(perm.begin(), perm.end(), 0);
  std::stable_sort(perm.begin(), perm.end(), [&](std::int64_t a, std::int64_t b) {
    return t.strides()[a] > t.strides()[b];
  });
  Shape sizes;
  Shape strides;
  for (std::int64_t d : perm) {
    sizes.push_back(t.sizes()[d]);
    strides.push_back(t.strides()[d]);
  }
  return Tensor::make_view(t.storage(), sizes, strides, t.storage_offset(), t.dtype());
}

// Runs fill(T* data, n) over t's elements in memory order: in place when that order is
// contiguous, else through a contiguous buffer copied back.
template <class Fill>
void fill_in_memory_order(const Tensor& t, Fill&& fill) {
  const Tensor dst = in_memory_order(t);
  dispatch_floating(t.dtype(), [&]<class T>() {
    if (dst.is_contiguous()) {
      fill(dst.data_ptr<T>(), dst.numel());
      t.storage()->bump_version();
    } else {
      Tensor buffer = Tensor::empty(dst.sizes(), dst.dtype());
      fill(buffer.data_ptr<T>(), buffer.numel());
      native::copy_(dst, buffer);
    }
  });
}

void uniform_unchecked(const Tensor& t, double from, double to, Generator& g) {
  fill_in_memory_order(t, [&]<class T>(T* data, std::int64_t n) {
    fill_uniform(data, n, static_cast<T>(from), static_cast<T>(to), g.engine);
  });
}

// PyTorch's choice: the block algorithm for contiguous tensors of 16 or more elements, scalar
// Box-Muller (with its cache) otherwise.
void normal_unchecked(const Tensor& t, double mean, double std, Generator& g) {
  const std::int64_t n = t.numel();
  if (n >= 16 && t.is_contiguous()) {
    dispatch_floating(t.dtype(), [&]<class T>() {
      fill_normal_blocks<T>(t.data_ptr<T>(), n, static_cast<T>(mean), static_cast<T>(std), g.engine);
    });
    t.storage()->bump_version();
    return;
  }
  fill_in_memory_order(t, [&]<class T>(T* data, std::int64_t count) {
    fill_normal_scalar<T>(data, count, mean, std, g);
  });
}

// --- state bytes: the layout of torch.get_rng_state() (5056 bytes, little-endian) -------------
constexpr std::size_t kStateBytes = 5056;
constexpr std::size_t kOffSeed = 0;
constexpr std::size_t kOffLeft = 8;
constexpr std::size_t kOffSeeded = 12;
constexpr std::size_t kOffNext = 16;
constexpr std::size_t kOffTable = 24;  // 624 words stored as uint64
constexpr std::size_t kOffNormalY = 5024;
constexpr std::size_t kOffNormalValid = 5040;
constexpr std::size_t kOffFloatNormal = 5048;
constexpr std::size_t kOffFloatNormalValid = 5052;

void put_le(std::string& s, std::size_t at, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) s[at + i] = static_cast<char>((value >> (8 * i)) & 0xff);
}

std::uint64_t get_le(const std::string& s, std::size_t at, int bytes) {
  std::uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value |= std::uint64_t{static_cast<unsigned char>(s[at + i])} << (8 * i);
  return value;
}

}  // namespace

// --- public API -------------------------------------------------------------------------------
void manual_seed(std::uint64_t seed) {
  Generator& g = generator();
  std::lock_guard lock(g.mutex);
  g.engine.reseed(seed);
  g.next_normal.reset();
  g.next_float_normal.reset();
}

std::uint64_t initial_seed() {
  Generator& g = generator();
  std::lock_guard lock(g.mutex);
  return g.engine.seed;
}

namespace {

// A fresh floating tensor filled by `fill(t, generator)` under the generator's lock.
template <class Fill>
Tensor random_floating(const Shape& sizes, DType dtype, const char* op, Fill fill) {
  check_sizes(sizes, op);
  check_floating_dtype(dtype, op);
  Tensor t = Tensor::empty(sizes, dtype);
  Generator& g = generator();
  std::lock_guard lock(g.mutex);
  fill(t, g);
  return t;
}

}  // namespace

Tensor rand(const Shape& sizes, DType dtype) {
  return random_floating(sizes, dtype, "rand", [](Tensor& t, Generator& g) { uniform_unchecked(t, 0.0, 1.0, g); });
}

Tensor randn(const Shape& sizes, DType dtype) {
  return random_floating(sizes, dtype, "randn", [](Tensor& t, Generator& g) { normal_unchecked(t, 0.0, 1.0, g); });
}

Tensor randint(std::int64_t low, std::int64_t high, const Shape& sizes, DType dtype) {
  TG_CHECK(low < high, "[randint] expected low < high, got low={}, high={}", low, high);
  check_sizes(sizes, "randint");
  if (is_floating(dtype)) {
    const std::int64_t exact = std::int64_t{1} << (dtype == kFloat32 ? 24 : 53);
    TG_CHECK(low >= -exact && high - 1 <= exact,
             "[randint] {} holds every integer only within [-2^{}, 2^{}], got low={}, high={}", dtype_name(dtype),
             dtype == kFloat32 ? 24 : 53, dtype == kFloat32 ? 24 : 53, low, high);
  }
  TG_CHECK(dtype != kUInt8 || (low >= 0 && high <= 256),
           "[randint] uint8 holds [0, 255]: expected 0 <= low < high <= 256, got low={}, high={}", low, high);
  Tensor t = Tensor::empty(sizes, dtype);
  const std::uint64_t range = static_cast<std::uint64_t>(high) - static_cast<std::uint64_t>(low);
  const bool wide = range >= (std::uint64_t{1} << 32);
  Generator& g = generator();
  std::lock_guard lock(g.mutex);
  dispatch(dtype, [&]<class T>() {
    T* out = t.data_ptr<T>();
    for (std::int64_t i = 0, n = t.numel(); i < n; ++i) {
      const std::uint64_t draw = wide ? g.engine.next64() : g.engine.next32();
      out[i] = static_cast<T>(static_cast<std::int64_t>(draw % range + static_cast<std::uint64_t>(low)));
    }
  });
  return t;
}

Tensor randint(std::int64_t high, const Shape& sizes, DType dtype) { return randint(0, high, sizes, dtype); }

// Fisher-Yates from the front, one 32-bit draw per swap (PyTorch 1.13's randperm_cpu).
Tensor randperm(std::int64_t n, DType dtype) {
  TG_CHECK(n >= 0, "[randperm] expected n >= 0, got {}", n);
  if (is_floating(dtype)) {
    const int digits = dtype == kFloat32 ? 24 : 53;
    TG_CHECK(n - 1 <= (std::int64_t{1} << digits), "[randperm] n={} is too large for dtype {} (at most 2^{} + 1)", n,
             dtype_name(dtype), digits);
  }
  TG_CHECK(dtype != kUInt8 || n <= 256, "[randperm] n={} is too large for dtype uint8 (at most 256)", n);
  std::vector<std::int64_t> perm(static_cast<std::size_t>(n));
  std::iota(perm.begin(), perm.end(), std::int64_t{0});
  {
    Generator& g = generator();
    std::lock_guard lock(g.mutex);
    for (std::int64_t i = 0; i + 1 < n; ++i) {
      const auto z = static_cast<std::int64_t>(g.engine.next32() % static_cast<std::uint64_t>(n - i));
      std::swap(perm[static_cast<std::size_t>(i)], perm[static_cast<std::size_t>(i + z)]);
    }
  }
  Tensor t = Tensor::empty({n}, dtype);
  dispatch(dtype, [&]<class T>() {
    T* out = t.data_ptr<T>();
    for (std::int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(perm[static_cast<std::size_t>(i)]);
  });
  return t;
}

void uniform_(const Tensor& t, double from, double to) {
  check_fill_target(t, "uniform_");
  const bool single = t.dtype() == kFloat32;
  const double lowest = single ? std::numeric_limits<float>::lowest() : std::numeric_limits<double>::lowest();
  const double max = single ? std::numeric_limits<float>::max() : std::numeric_limits<double>::max();
  TG_CHECK(from >= lowest && from <= max && to >= lowest && to <= max,
           "[uniform_] expected from and to within the finite range of {}, got from={}, to={}", dtype_name(t.dtype()),
           from, to);
  TG_CHECK(from <= to, "[uniform_] expected from <= to, got from={}, to={}", from, to);
  TG_CHECK(to - from <= max, "[uniform_] expected to - from <= {} (the largest {}), got from={}, to={}", max,
           dtype_name(t.dtype()), from, to);
  Generator& g = generator();
  std::lock_guard lock(g.mutex);
  uniform_unchecked(t, from, to, g);
}

void normal_(const Tensor& t, double mean, double std) {
  check_fill_target(t, "normal_");
  TG_CHECK(std >= 0.0, "[normal_] expected std >= 0, got std={}", std);
  Generator& g = generator();
  std::lock_guard lock(g.mutex);
  normal_unchecked(t, mean, std, g);
}

std::string get_rng_state() {
  Generator& g = generator();
  std::lock_guard lock(g.mutex);
  std::string s(kStateBytes, '\0');
  put_le(s, kOffSeed, g.engine.seed, 8);
  put_le(s, kOffLeft, static_cast<std::uint32_t>(g.engine.left), 4);
  put_le(s, kOffSeeded, 1, 4);
  put_le(s, kOffNext, g.engine.next, 8);
  for (int j = 0; j < kStateWords; ++j) put_le(s, kOffTable + 8 * static_cast<std::size_t>(j), g.engine.table[j], 8);
  if (g.next_normal) {
    put_le(s, kOffNormalY, std::bit_cast<std::uint64_t>(*g.next_normal), 8);
    put_le(s, kOffNormalValid, 1, 4);
  }
  if (g.next_float_normal) {
    put_le(s, kOffFloatNormal, std::bit_cast<std::uint32_t>(*g.next_float_normal), 4);
    put_le(s, kOffFloatNormalValid, 1, 1);
  }
  return s;
}

void set_rng_state(const std::string& state) {
  TG_CHECK(state.size() == kStateBytes,
           "[set_rng_state] expected {} bytes (as from get_rng_state or torch.get_rng_state), got {}", kStateBytes,
           state.size());
  Mt19937 engine;
  engine.seed = get_le(state, kOffSeed, 8);
  const auto left = static_cast<std::int32_t>(get_le(state, kOffLeft, 4));
  const std::uint64_t seeded = get_le(state, kOffSeeded, 4);
  const std::uint64_t next = get_le(state, kOffNext, 8);
  TG_CHECK(seeded == 1, "[set_rng_state] expected the seeded flag to be 1, got {}", seeded);
  // A fresh table has left == 1; afterwards every draw keeps left + next == 625.
  TG_CHECK(left >= 1 && left <= kStateWords && next <= kStateWords &&
               (left == 1 || static_cast<std::uint64_t>(left) + next == kStateWords + 1),
           "[set_rng_state] invalid mt19937 position: left={}, next={}", left, next);
  for (int j = 0; j < kStateWords; ++j) {
    const std::uint64_t word = get_le(state, kOffTable + 8 * static_cast<std::size_t>(j), 8);
    TG_CHECK(word <= std::numeric_limits<std::uint32_t>::max(),
             "[set_rng_state] expected 32-bit mt19937 words, word {} is {}", j, word);
    engine.table[j] = static_cast<std::uint32_t>(word);
  }
  engine.left = left;
  engine.next = static_cast<std::uint32_t>(next);
  const std::uint64_t normal_valid = get_le(state, kOffNormalValid, 4);
  const std::uint64_t float_valid = get_le(state, kOffFloatNormalValid, 1);
  TG_CHECK(normal_valid <= 1 && float_valid <= 1,
           "[set_rng_state] expected cached-normal flags of 0 or 1, got {} and {}", normal_valid, float_valid);

  Generator& g = generator();
  std::lock_guard lock(g.mutex);
  g.engine = engine;
  g.next_normal.reset();
  g.next_float_normal.reset();
  if (normal_valid == 1) g.next_normal = std::bit_cast<double>(get_le(state, kOffNormalY, 8));
  if (float_valid == 1) {
    g.next_float_normal = std::bit_cast<float>(static_cast<std::uint32_t>(get_le(state, kOffFloatNormal, 4)));
  }
}

}  // namespace tg
