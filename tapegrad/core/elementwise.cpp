// Elementwise kernels over strided, broadcast operands: copies and dtype conversion, binary and
// unary math, comparisons, in-place updates. One StridedLoop drives them all; the innermost row
// has fast paths for the contiguous and scalar-broadcast cases. Layer: core.
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "tapegrad/core/loop.h"
#include "tapegrad/core/native.h"
#include "tapegrad/core/simd.h"
#include "tapegrad/core/simd_math.h"

namespace tg::native {

namespace {

using detail::StridedLoop;

template <class T>
T* ptr(const Tensor& t) {
  return static_cast<T*>(t.raw_data());
}

// dst[i] = src[i] converted, over dst's shape (src already broadcast to it).
void convert_into(const Tensor& dst, const Tensor& src_b) {
  StridedLoop<2> loop(dst.sizes(), {dst.strides(), src_b.strides()});
  dispatch(dst.dtype(), [&]<class D>() {
    dispatch(src_b.dtype(), [&]<class S>() {
      D* d = ptr<D>(dst);
      const S* s = ptr<S>(src_b);
      loop.run_parallel([&](std::int64_t n, const auto& off, const auto& st) {
        D* o = d + off[0];
        const S* a = s + off[1];
        if (st[0] == 1 && st[1] == 1) {
          if constexpr (std::is_same_v<D, S>) std::memcpy(o, a, static_cast<std::size_t>(n) * sizeof(D));
          else for (std::int64_t i = 0; i < n; ++i) o[i] = convert_element<D>(a[i]);
        } else {
          for (std::int64_t i = 0; i < n; ++i) o[i * st[0]] = convert_element<D>(a[i * st[1]]);
        }
      });
    });
  });
}

// One binary row: o[i] = f(a[i], b[i]) with fast paths for unit strides and a broadcast operand.
template <class O, class A, class F>
inline void binary_row(std::int64_t n, O* o, std::int64_t so, const A* a, std::int64_t sa, const A* b,
                       std::int64_t sb, F f) {
  if (so == 1 && sa == 1 && sb == 1) {
    for (std::int64_t i = 0; i < n; ++i) o[i] = f(a[i], b[i]);
  } else if (so == 1 && sa == 1 && sb == 0) {
    A bv = *b;
    for (std::int64_t i = 0; i < n; ++i) o[i] = f(a[i], bv);
  } else if (so == 1 && sa == 0 && sb == 1) {
    A av = *a;
    for (std::int64_t i = 0; i < n; ++i) o[i] = f(av, b[i]);
  } else {
    for (std::int64_t i = 0; i < n; ++i) o[i * so] = f(a[i * sa], b[i * sb]);
  }
}

// Integer arithmetic wraps around on overflow, as PyTorch's two's complement arithmetic does
// (int64 modulo 2^64, uint8 modulo 256), where signed overflow is undefined behaviour in C++: it
// runs on uint64 and converts back (modular).
using Wrap = std::uint64_t;
template <class T>
T wrapping_add(T x, T y) {
  if constexpr (std::is_integral_v<T>) return static_cast<T>(static_cast<Wrap>(x) + static_cast<Wrap>(y));
  else return x + y;
}
template <class T>
T wrapping_sub(T x, T y) {
  if constexpr (std::is_integral_v<T>) return static_cast<T>(static_cast<Wrap>(x) - static_cast<Wrap>(y));
  else return x - y;
}
template <class T>
T wrapping_mul(T x, T y) {
  if constexpr (std::is_integral_v<T>) return static_cast<T>(static_cast<Wrap>(x) * static_cast<Wrap>(y));
  else return x * y;
}

template <class T>
T wrapping_neg(T x) {
  if constexpr (std::is_integral_v<T>) return static_cast<T>(Wrap{0} - static_cast<Wrap>(x));
  else return -x;
}

template <class T>
T int_pow(T base, T exp) {
  if constexpr (std::is_signed_v<T>) {
    if (exp < 0) return base == 1 ? 1 : (base == -1 ? ((exp & 1) ? -1 : 1) : 0);
  }
  Wrap r = 1, b = static_cast<Wrap>(base);
  while (exp) {
    if (exp & 1) r *= b;
    b *= b;
    exp >>= 1;
  }
  return static_cast<T>(r);
}

// Floor division of int64 (the in-place int64 case); x / 0 gives 0, and INT64_MIN / -1 wraps to
// INT64_MIN instead of trapping.
template <class T>
T floor_divide(T x, T y) {
  if (y == 0) return 0;
  if constexpr (std::is_signed_v<T>) {
    if (y == -1) return wrapping_neg(x);  // before dividing: INT64_MIN / -1 traps
    T q = x / y;
    if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
    return q;
  } else {
    return static_cast<T>(x / y);
  }
}

// out[i] = f(a[i], b[i]) over out's shape, a and b (of type C) broadcast to it, out of type O.
template <class C, class O, class F>
void binary_loop(const Tensor& out, const Tensor& a, const Tensor& b, F f) {
  Shape sa = broadcast_strides(a.sizes(), a.strides(), out.sizes());
  Shape sb = broadcast_strides(b.sizes(), b.strides(), out.sizes());
  StridedLoop<3> loop(out.sizes(), {out.strides(), sa, sb});
  O* po = ptr<O>(out);
  const C* pa = ptr<C>(a);
  const C* pb = ptr<C>(b);
  loop.run_parallel([&](std::int64_t n, const auto& off, const auto& st) {
    binary_row(n, po + off[0], st[0], pa + off[1], st[1], pb + off[2], st[2], f);
  });
}

// The arithmetic ops, into an out of the compute type C. (Arithmetic and comparisons are
// instantiated apart: each only for the output type it has, which keeps this file's build time.)
template <class C>
void arithmetic_kernel(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  auto run = [&](auto f) { binary_loop<C, C>(out, a, b, f); };
  switch (op) {
    case BinaryOp::Add: run([](C x, C y) { return wrapping_add(x, y); }); break;
    case BinaryOp::Sub: run([](C x, C y) { return wrapping_sub(x, y); }); break;
    case BinaryOp::Mul: run([](C x, C y) { return wrapping_mul(x, y); }); break;
    case BinaryOp::Div:
      if constexpr (std::is_integral_v<C>) {  // floor division for the in-place int64 case
        run([](C x, C y) { return floor_divide(x, y); });
      } else {
        run([](C x, C y) { return x / y; });
      }
      break;
    case BinaryOp::Pow:
      if constexpr (std::is_integral_v<C>) run([](C x, C y) { return int_pow(x, y); });
      else run([](C x, C y) { return y == C(2) ? x * x : std::pow(x, y); });
      break;
    case BinaryOp::Maximum: run([](C x, C y) { return x != x ? x : (y != y ? y : (x > y ? x : y)); }); break;
    case BinaryOp::Minimum: run([](C x, C y) { return x != x ? x : (y != y ? y : (x < y ? x : y)); }); break;
    default: TG_ASSERT(false, "arithmetic_kernel: a comparison ({})", static_cast<int>(op));
  }
}

// The comparisons, into an int64 out of 0 and 1 (the library's stand-in for PyTorch's bool).
template <class C>
void comparison_kernel(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  using I = std::int64_t;
  auto run = [&](auto f) { binary_loop<C, I>(out, a, b, f); };
  switch (op) {
    case BinaryOp::Eq: run([](C x, C y) { return static_cast<I>(x == y); }); break;
    case BinaryOp::Ne: run([](C x, C y) { return static_cast<I>(x != y); }); break;
    case BinaryOp::Lt: run([](C x, C y) { return static_cast<I>(x < y); }); break;
    case BinaryOp::Le: run([](C x, C y) { return static_cast<I>(x <= y); }); break;
    case BinaryOp::Gt: run([](C x, C y) { return static_cast<I>(x > y); }); break;
    case BinaryOp::Ge: run([](C x, C y) { return static_cast<I>(x >= y); }); break;
    default: TG_ASSERT(false, "comparison_kernel: not a comparison ({})", static_cast<int>(op));
  }
}

bool is_comparison(BinaryOp op) { return op >= BinaryOp::Eq; }

const char* op_name(BinaryOp op) {
  static const char* names[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum",
                                "eq",  "ne",  "lt",  "le",  "gt",  "ge"};
  return names[static_cast<int>(op)];
}

DType compute_dtype(BinaryOp op, DType a, DType b) {
  DType c = promote(a, b);
  if (op == BinaryOp::Div && is_integral(c)) return kFloat32;  // true division, as PyTorch
  return c;
}

// The dtype a Python number takes next to a tensor of dtype t (PyTorch's category rule).
DType scalar_partner_dtype(DType t, Scalar s) {
  if (is_integral(t) && !s.is_integral()) return kFloat32;
  return t;
}

// A Python number as the operand of a binary op, in dtype d: PyTorch wraps it in a 0-dim int64
// or float64 tensor and casts that, so an integer wraps around into uint8 (u8 + 300 adds 44),
// where fill_ and full refuse what does not fit.
Tensor scalar_operand(Scalar s, DType d) {
  if (d == kUInt8 && s.is_integral()) return to(scalar_tensor(s, kInt64), d);
  return scalar_tensor(s, d);
}

// PyTorch refuses an integer tensor to a negative integer power (there is no integer result).
void check_integer_power(const Tensor& base, Scalar exponent, std::string_view op) {
  TG_CHECK(!is_integral(base.dtype()) || !exponent.is_integral() || exponent.to_int() >= 0,
           "[{}] integers to negative integer powers are not allowed ({} tensor ** {})", op, dtype_name(base.dtype()),
           exponent.to_int());
}

Tensor cast(const Tensor& t, DType d) { return t.dtype() == d ? t : to(t, d); }

}  // namespace

// --- copies -----------------------------------------------------------------------------------

Tensor contiguous(const Tensor& t) {
  if (t.is_contiguous()) return t;
  Tensor out = Tensor::empty(t.sizes(), t.dtype());
  convert_into(out, t);
  return out;
}

Tensor clone(const Tensor& t) {
  Tensor out = Tensor::empty(t.sizes(), t.dtype());
  convert_into(out, t);
  return out;
}

Tensor to(const Tensor& t, DType dtype) {
  if (t.dtype() == dtype) return t;
  Tensor out = Tensor::empty(t.sizes(), dtype);
  convert_into(out, t);
  return out;
}

void check_no_internal_overlap(const Tensor& t, std::string_view op) {
  for (std::int64_t d = 0; d < t.dim(); ++d)
    TG_CHECK(t.sizes()[d] <= 1 || t.strides()[d] != 0,
             "[{}] unsupported operation: more than one element of the written-to tensor refers to a single memory "
             "location (shape {}, strides {}); clone() it first",
             op, t.sizes(), t.strides());
}

void copy_(const Tensor& dst, const Tensor& src) {
  Shape out = broadcast_shapes(src.sizes(), dst.sizes(), "copy_");
  TG_CHECK(out == dst.sizes(), "[copy_] source of shape {} does not broadcast to destination of shape {}",
           src.sizes(), dst.sizes());
  check_no_internal_overlap(dst, "copy_");
  Tensor s = src;
  if (src.shares_storage(dst)) s = clone(src);  // overlapping memory: read everything first
  Tensor sb = as_strided(s, dst.sizes(), broadcast_strides(s.sizes(), s.strides(), dst.sizes()), s.storage_offset());
  convert_into(dst, sb);
  dst.storage()->bump_version();
}

void fill_(const Tensor& t, Scalar value) {
  StridedLoop<1> loop(t.sizes(), {t.strides()});
  dispatch(t.dtype(), [&]<class T>() {
    T v = value.to<T>("fill_");
    T* p = ptr<T>(t);
    loop.run_parallel([&](std::int64_t n, const auto& off, const auto& st) {
      T* o = p + off[0];
      if (st[0] == 1) std::fill(o, o + n, v);
      else for (std::int64_t i = 0; i < n; ++i) o[i * st[0]] = v;
    });
  });
  t.storage()->bump_version();
}

// --- binary -----------------------------------------------------------------------------------

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  Shape shape = broadcast_shapes(a.sizes(), b.sizes(), op_name(op));
  DType c = compute_dtype(op, a.dtype(), b.dtype());
  Tensor ac = cast(a, c), bc = cast(b, c);
  Tensor out = Tensor::empty(shape, is_comparison(op) ? kInt64 : c);
  dispatch(c, [&]<class C>() {
    if (is_comparison(op)) comparison_kernel<C>(op, out, ac, bc);
    else arithmetic_kernel<C>(op, out, ac, bc);
  });
  return out;
}

Tensor binary(BinaryOp op, const Tensor& a, Scalar b) {
  if (op == BinaryOp::Pow) check_integer_power(a, b, "pow");
  return binary(op, a, scalar_operand(b, scalar_partner_dtype(a.dtype(), b)));
}

Tensor binary(BinaryOp op, Scalar a, const Tensor& b) {
  return binary(op, scalar_operand(a, scalar_partner_dtype(b.dtype(), a)), b);
}

void binary_(BinaryOp op, const Tensor& dst, const Tensor& other) {
  std::string name = std::string(op_name(op)) + "_";
  Shape shape = broadcast_shapes(dst.sizes(), other.sizes(), name);
  TG_CHECK(shape == dst.sizes(), "[{}_] output with shape {} doesn't match the broadcast shape {} (other {})",
           op_name(op), dst.sizes(), shape, other.sizes());
  TG_CHECK(!is_comparison(op), "[{}_] comparisons are not in-place ops", op_name(op));
  check_no_internal_overlap(dst, name);
  DType c = compute_dtype(op, dst.dtype(), other.dtype());
  const bool int64_floor_division = op == BinaryOp::Div && dst.dtype() == kInt64 && other.dtype() == kInt64;
  // An integer result casts into an integer dst, as PyTorch's (u8 += int64 tensor wraps around).
  const bool integer_into_integer = is_integral(c) && is_integral(dst.dtype());
  TG_CHECK(c == dst.dtype() || int64_floor_division || integer_into_integer,
           "[{}_] result type {} can't be cast to the desired output type {}", op_name(op), dtype_name(c),
           dtype_name(dst.dtype()));
  if (c != dst.dtype() && !int64_floor_division) {  // computed in the wider type, then cast (as PyTorch)
    copy_(dst, binary(op, dst, other));
    return;
  }
  Tensor oc = cast(other, dst.dtype());
  if (oc.shares_storage(dst) && !oc.is_same(dst)) oc = clone(oc);
  dispatch(dst.dtype(), [&]<class C>() { arithmetic_kernel<C>(op, dst, dst, oc); });
  dst.storage()->bump_version();
}

void binary_(BinaryOp op, const Tensor& dst, Scalar other) {
  if (op == BinaryOp::Pow) check_integer_power(dst, other, "pow_");
  binary_(op, dst, scalar_operand(other, scalar_partner_dtype(dst.dtype(), other)));
}

Tensor add_scaled(const Tensor& a, const Tensor& b, Scalar alpha) {
  if (alpha.to_double() == 1.0) return binary(BinaryOp::Add, a, b);
  return binary(BinaryOp::Add, a, binary(BinaryOp::Mul, b, alpha));
}

void add_scaled_(const Tensor& dst, const Tensor& other, Scalar alpha) {
  if (alpha.to_double() == 1.0) return binary_(BinaryOp::Add, dst, other);
  binary_(BinaryOp::Add, dst, binary(BinaryOp::Mul, other, alpha));
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  TG_CHECK(cond.dtype() == kInt64,
           "[where] expected a condition of dtype int64 (a 0/1 mask, as comparisons give), got {}",
           dtype_name(cond.dtype()));
  Shape shape = broadcast_shapes(broadcast_shapes(cond.sizes(), a.sizes(), "where"), b.sizes(), "where");
  DType c = promote(a.dtype(), b.dtype());
  Tensor ac = cast(a, c), bc = cast(b, c), cc = cond;
  Tensor out = Tensor::empty(shape, c);
  StridedLoop<4> loop(shape, {out.strides(), broadcast_strides(cc.sizes(), cc.strides(), shape),
                              broadcast_strides(ac.sizes(), ac.strides(), shape),
                              broadcast_strides(bc.sizes(), bc.strides(), shape)});
  dispatch(c, [&]<class C>() {
    C* po = ptr<C>(out);
    const std::int64_t* pc = ptr<std::int64_t>(cc);
    const C* pa = ptr<C>(ac);
    const C* pb = ptr<C>(bc);
    loop.run_parallel([&](std::int64_t n, const auto& off, const auto& st) {
      for (std::int64_t i = 0; i < n; ++i)
        po[off[0] + i * st[0]] = pc[off[1] + i * st[1]] ? pa[off[2] + i * st[2]] : pb[off[3] + i * st[3]];
    });
  });
  return out;
}

Tensor where(const Tensor& cond, const Tensor& a, Scalar b) {
  return where(cond, a, scalar_operand(b, scalar_partner_dtype(a.dtype(), b)));
}

Tensor where(const Tensor& cond, Scalar a, const Tensor& b) {
  return where(cond, scalar_operand(a, scalar_partner_dtype(b.dtype(), a)), b);
}

// --- unary ------------------------------------------------------------------------------------

// exp, sigmoid and tanh of float32 run vectorized: libm's expf is one scalar call per element.
// Each row loop has a version per instruction set of core/simd.h. GCC contracts a·b + c into an
// FMA where the target has one, so the AVX2 and AVX-512 versions give the same bits as each other
// (exp checked over all 2^32 inputs) and the portable (SSE2) one differs from them by an ulp in
// about 1 exp of 2000 and 1 sigmoid of 4000 (as glibc's own expf does between its FMA and SSE2
// variants). No approximate instructions.
namespace {

// x clamped to [-104, 89] (exp underflows to 0 below, overflows above), NaN kept. On the bits:
// under -ftrapping-math a float compare would keep GCC from vectorizing the loop.
TG_SIMD_INLINE float clamp_exp_arg(float x) {
  constexpr std::int32_t kHi = 0x42b20000, kLo = 0x42d00000;  // 89.0f and 104.0f
  const std::int32_t u = std::bit_cast<std::int32_t>(x), a = u & 0x7fffffff;
  const std::int32_t lim = ((u >> 31) & (kLo ^ kHi)) ^ kHi;  // kLo for negative x
  std::int32_t m = a < lim ? a : lim;
  m = a > 0x7f800000 ? a : m;
  return std::bit_cast<float>((u & std::numeric_limits<std::int32_t>::min()) | m);
}

// exp(x) = 2^k · exp(r), x = k·ln2 + r, |r| <= ln2/2 (ln2 split in two so k·ln2hi is exact);
// exp(r) by its Taylor series to r^7 (truncation < 6e-9 relative), 2^k through the exponent bits
// in two factors so subnormal results come out right. Within 1 ulp of glibc's expf.
TG_SIMD_INLINE float exp_f32(float x) {
  constexpr float kLog2e = 1.44269504088896341f, kRound = 0x1.8p23f;
  constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
  x = clamp_exp_arg(x);
  float kf = x * kLog2e + kRound;  // k = round(x / ln2), in the low mantissa bits
  const std::int32_t k = std::bit_cast<std::int32_t>(kf) - std::bit_cast<std::int32_t>(kRound);
  kf -= kRound;
  const float r = (x - kf * kLn2Hi) - kf * kLn2Lo;
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r * r + r + 1.0f;
  const std::int32_t k1 = k >> 1, k2 = k - k1;  // k in [-151, 129]: each half a normal 2^k
  return p * std::bit_cast<float>((k1 + 127) << 23) * std::bit_cast<float>((k2 + 127) << 23);
}

// exp in double for tanh, whose (e − 1)/(e + 1) cancels for small x: Taylor to r^9 (< 7e-12).
TG_SIMD_INLINE double exp_f64(double x) {
  constexpr double kLog2e = 1.4426950408889634, kRound = 0x1.8p52;
  constexpr double kLn2Hi = 6.93147180369123816490e-01, kLn2Lo = 1.90821492927058770002e-10;
  double kd = x * kLog2e + kRound;
  const std::uint64_t k = std::bit_cast<std::uint64_t>(kd);
  kd -= kRound;
  const double r = (x - kd * kLn2Hi) - kd * kLn2Lo;
  double p = 1.0 / 362880;
  for (double c : {1.0 / 40320, 1.0 / 5040, 1.0 / 720, 1.0 / 120, 1.0 / 24, 1.0 / 6, 0.5, 1.0, 1.0}) p = p * r + c;
  return p * std::bit_cast<double>((k + 1023) << 52);
}

void exp_row(float* o, const float* x, std::int64_t n) {
  simd::with_isa([&]<simd::Isa>() TG_SIMD_LAMBDA {
    for (std::int64_t i = 0; i < n; ++i) o[i] = exp_f32(x[i]);
  });
}

// On explicit vectors (core/simd_math.h): (x < 0 ? e : 1)/(1 + e), e = exp(−|x|), overflows nowhere.
void sigmoid_row(float* o, const float* x, std::int64_t n) {
  simd::with_isa([&]<simd::Isa I>() TG_SIMD_LAMBDA { simd::sigmoid_f32<I>(o, x, n); });
}

// tanh|x| = (e − 1)/(e + 1), e = exp(2|x|), in double, with |x| clamped to 10 (tanh = 1 in
// float); below 2^-12 tanh x rounds to x itself, and NaN stays NaN. Masks, not branches: GCC
// would otherwise split the loop body into paths it cannot vectorize.
void tanh_row(float* o, const float* x, std::int64_t n) {
  simd::with_isa([&]<simd::Isa>() TG_SIMD_LAMBDA {
    for (std::int64_t i = 0; i < n; ++i) {
      const std::uint32_t u = std::bit_cast<std::uint32_t>(x[i]), a = u & 0x7fffffffu;
      const double ax = std::bit_cast<float>(std::min(a, 0x41200000u));
      const double e = exp_f64(2.0 * ax);
      const std::uint32_t t = std::bit_cast<std::uint32_t>(static_cast<float>((e - 1.0) / (e + 1.0)));
      const std::uint32_t keep = 0u - static_cast<std::uint32_t>((a < 0x39800000u) | (a > 0x7f800000u));
      o[i] = std::bit_cast<float>((a & keep) | (t & ~keep) | (u & 0x80000000u));
    }
  });
}

// Applies f to each element, or for float32 `row` when given: to contiguous runs directly, to
// strided ones through a small buffer, so that a tensor's layout never changes a result's bits.
template <class T, class F>
void unary_kernel(const Tensor& out, const Tensor& in, F f, void (*row)(float*, const float*, std::int64_t) = nullptr) {
  StridedLoop<2> loop(in.sizes(), {out.strides(), in.strides()});
  T* po = ptr<T>(out);
  const T* pi = ptr<T>(in);
  loop.run_parallel([&](std::int64_t n, const auto& off, const auto& st) {
    T* o = po + off[0];
    const T* x = pi + off[1];
    if constexpr (std::is_same_v<T, float>) {
      if (row && st[0] == 1 && st[1] == 1) return row(o, x, n);
      if (row) {
        constexpr std::int64_t kChunk = 256;
        float a[kChunk], b[kChunk];
        for (std::int64_t i = 0; i < n; i += kChunk) {
          const std::int64_t m = std::min(kChunk, n - i);
          for (std::int64_t j = 0; j < m; ++j) a[j] = x[(i + j) * st[1]];
          row(b, a, m);
          for (std::int64_t j = 0; j < m; ++j) o[(i + j) * st[0]] = b[j];
        }
        return;
      }
    }
    if (st[0] == 1 && st[1] == 1) {
      for (std::int64_t i = 0; i < n; ++i) o[i] = f(x[i]);
    } else {
      for (std::int64_t i = 0; i < n; ++i) o[i * st[0]] = f(x[i * st[1]]);
    }
  });
}

const char* op_name(UnaryOp op) {
  static const char* names[] = {"neg", "exp", "log", "sqrt", "abs", "sigmoid", "tanh", "relu"};
  return names[static_cast<int>(op)];
}

}  // namespace

Tensor unary(UnaryOp op, const Tensor& t) {
  bool keeps_int = op == UnaryOp::Neg || op == UnaryOp::Abs || op == UnaryOp::Relu;
  Tensor in = !keeps_int && is_integral(t.dtype()) ? to(t, kFloat32) : t;
  Tensor out = Tensor::empty(in.sizes(), in.dtype());
  dispatch(in.dtype(), [&]<class T>() {
    switch (op) {
      case UnaryOp::Neg: unary_kernel<T>(out, in, [](T x) { return wrapping_neg(x); }); break;
      case UnaryOp::Abs:
        if constexpr (std::is_unsigned_v<T>) unary_kernel<T>(out, in, [](T x) { return x; });
        else unary_kernel<T>(out, in, [](T x) { return x < 0 ? wrapping_neg(x) : x; });
        break;
      case UnaryOp::Relu: unary_kernel<T>(out, in, [](T x) { return x > 0 ? x : (x != x ? x : T(0)); }); break;
      default:
        if constexpr (std::is_floating_point_v<T>) {
          switch (op) {
            // float32 goes through the rows; f is the float64 path.
            case UnaryOp::Exp: unary_kernel<T>(out, in, [](T x) { return std::exp(x); }, exp_row); break;
            case UnaryOp::Log: unary_kernel<T>(out, in, [](T x) { return std::log(x); }); break;
            case UnaryOp::Sqrt: unary_kernel<T>(out, in, [](T x) { return std::sqrt(x); }); break;
            case UnaryOp::Sigmoid:
              unary_kernel<T>(out, in, [](T x) { return T(1) / (T(1) + std::exp(-x)); }, sigmoid_row);
              break;
            case UnaryOp::Tanh: unary_kernel<T>(out, in, [](T x) { return std::tanh(x); }, tanh_row); break;
            default: TG_ASSERT(false, "unhandled unary op {}", op_name(op));
          }
        }
    }
  });
  return out;
}

void sigmoid_contiguous(float* o, const float* x, std::int64_t n) { sigmoid_row(o, x, n); }

void sigmoid_contiguous(double* o, const double* x, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) o[i] = 1.0 / (1.0 + std::exp(-x[i]));
}

Tensor activation_backward(ActivationGrad kind, const Tensor& grad, const Tensor& y) {
  TG_CHECK(grad.sizes() == y.sizes() && is_floating(y.dtype()),
           "[activation_backward] expected a gradient of shape {} for a floating output, got {}", y.sizes(),
           grad.sizes());
  Tensor g = cast(grad, y.dtype());
  Tensor out = Tensor::empty(y.sizes(), y.dtype());
  StridedLoop<3> loop(y.sizes(), {out.strides(), g.strides(), y.strides()});
  dispatch_floating(y.dtype(), [&]<class T>() {
    T* po = ptr<T>(out);
    const T* pg = ptr<T>(g);
    const T* py = ptr<T>(y);
    // One pass; contiguous rows in the processor's widest vectors.
    auto run = [&](auto f) {
      loop.run_parallel([&](std::int64_t n, const auto& off, const auto& st) {
        T* o = po + off[0];
        const T *dy = pg + off[1], *v = py + off[2];
        if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
          simd::with_isa([&]<simd::Isa>() TG_SIMD_LAMBDA {
            for (std::int64_t i = 0; i < n; ++i) o[i] = f(dy[i], v[i]);
          });
        } else {
          binary_row(n, o, st[0], dy, st[1], v, st[2], f);
        }
      });
    };
    switch (kind) {
      case ActivationGrad::Sigmoid: run([](T dy, T v) { return dy * v * (T(1) - v); }); break;
      case ActivationGrad::Tanh: run([](T dy, T v) { return dy * (T(1) - v * v); }); break;
      case ActivationGrad::Relu: run([](T dy, T v) { return v > T(0) ? dy : T(0); }); break;
    }
  });
  return out;
}

Tensor clamp(const Tensor& t, std::optional<Scalar> min, std::optional<Scalar> max) {
  TG_CHECK(min || max, "[clamp] at least one of min and max must be given");
  DType d = t.dtype();
  for (const std::optional<Scalar>& bound : {min, max})
    if (bound) d = promote(d, scalar_partner_dtype(t.dtype(), *bound));
  Tensor in = cast(t, d);
  Tensor out = Tensor::empty(t.sizes(), d);
  dispatch(d, [&]<class T>() {
    T lo = min ? min->to<T>("clamp") : std::numeric_limits<T>::lowest();
    T hi = max ? max->to<T>("clamp") : std::numeric_limits<T>::max();
    // max(x, lo) then min(·, hi): NaN stays NaN, and hi wins when lo > hi (as PyTorch).
    unary_kernel<T>(out, in, [lo, hi](T x) { return x != x ? x : std::min(std::max(x, lo), hi); });
  });
  return out;
}

Tensor clamp(const Tensor& t, const Tensor& min, const Tensor& max) {
  TG_CHECK(min.defined() || max.defined(), "[clamp] at least one of min and max must be given");
  Shape shape = t.sizes();
  for (const Tensor& bound : {min, max})
    if (bound.defined()) shape = broadcast_shapes(shape, bound.sizes(), "clamp");
  Tensor out = min.defined() ? binary(BinaryOp::Maximum, t, min) : t;
  return max.defined() ? binary(BinaryOp::Minimum, out, max) : out;
}

}  // namespace tg::native
