// The one place that picks the instruction set of the vectorized kernels (core/elementwise.cpp,
// core/random.cpp, layers/conv2d_direct.cpp, layers/batchnorm.cpp): each kernel is one template, instantiated once per
// Isa inside a function compiled for that target, and with_isa runs the best the processor has.
// Tests lower the ceiling (limit_isa) to run every version. Layer: core; knows nothing of tensors.
#pragma once

namespace tg::simd {

// Portable: the build's own target (SSE2 on plain x86-64). Avx2: AVX2 + FMA (x86-64-v3).
// Avx512: AVX-512 F/VL/BW/DQ + FMA (x86-64-v4), whose 32 vector registers the kernels may count on.
enum class Isa { Portable = 0, Avx2 = 1, Avx512 = 2 };

const char* isa_name(Isa isa);
// The best instruction set both this build and this processor can run.
Isa supported_isa();
// What with_isa runs: supported_isa(), capped by limit_isa.
Isa active_isa();
// Caps the instruction set the kernels run at `isa` (tests and benchmarks run each version this
// way); returns the previous cap. The cap starts at the environment's TG_CPU_CAPABILITY (portable,
// avx2 or avx512, as PyTorch's ATEN_CPU_CAPABILITY), else at Avx512.
Isa limit_isa(Isa isa);

// limit_isa for a scope: restores the previous ceiling on exit, exceptions included.
class IsaLimit {
 public:
  explicit IsaLimit(Isa isa) : previous_(limit_isa(isa)) {}
  ~IsaLimit() { limit_isa(previous_); }
  IsaLimit(const IsaLimit&) = delete;
  IsaLimit& operator=(const IsaLimit&) = delete;

 private:
  Isa previous_;
};

// Run-time dispatch by explicit target attributes and __builtin_cpu_supports, not GCC's
// target_clones: target_clones resolves through ifuncs at load time, which ThreadSanitizer builds
// cannot run; this dispatch needs no ifunc, so such builds keep every version. Only GCC-compatible x86-64 builds get the AVX versions.
#if defined(__GNUC__) && defined(__x86_64__)
#define TG_SIMD_DISPATCH 1
// Features, not "arch=x86-64-v3": LeNet's conv1 forward ran 20% slower built for that arch.
#define TG_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define TG_TARGET_AVX512 __attribute__((target("avx2,fma,avx512f,avx512vl,avx512bw,avx512dq,avx512cd")))
#else
#define TG_SIMD_DISPATCH 0
#define TG_TARGET_AVX2
#define TG_TARGET_AVX512
#endif

// Everything a kernel calls below its with_isa body must be inlined into it, so that it is compiled
// for the body's target: mark such helpers TG_SIMD_INLINE, and the body lambda TG_SIMD_LAMBDA.
#define TG_SIMD_INLINE [[gnu::always_inline]] inline
#define TG_SIMD_LAMBDA __attribute__((always_inline))

namespace detail {
template <class Body>
TG_TARGET_AVX512 decltype(auto) run_avx512(Body& body) {
  return body.template operator()<Isa::Avx512>();
}
template <class Body>
TG_TARGET_AVX2 decltype(auto) run_avx2(Body& body) {
  return body.template operator()<Isa::Avx2>();
}
template <class Body>
decltype(auto) run_portable(Body& body) {
  return body.template operator()<Isa::Portable>();
}
}  // namespace detail

// Calls body.template operator()<I>() for I = active_isa(), compiled for that instruction set.
template <class Body>
decltype(auto) with_isa(Body&& body) {
#if TG_SIMD_DISPATCH
  switch (active_isa()) {
    case Isa::Avx512: return detail::run_avx512(body);
    case Isa::Avx2: return detail::run_avx2(body);
    case Isa::Portable: break;
  }
#endif
  return detail::run_portable(body);
}

}  // namespace tg::simd
