// The processor's instruction sets, asked once, and the tests' ceiling (core/simd.h). Layer: core.
#include "tapegrad/core/simd.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string_view>

namespace tg::simd {

namespace {

Isa initial_ceiling() {
  const char* env = std::getenv("TG_CPU_CAPABILITY");
  const std::string_view want = env ? env : "";
  for (Isa isa : {Isa::Portable, Isa::Avx2})
    if (want == isa_name(isa)) return isa;
  return Isa::Avx512;
}

std::atomic<Isa> ceiling{initial_ceiling()};

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    case Isa::Portable: break;
  }
  return "portable";
}

Isa supported_isa() {
#if TG_SIMD_DISPATCH
  // The features the versions are compiled for (TG_TARGET_AVX2, TG_TARGET_AVX512), by name: clang
  // 14 knows no "x86-64-v3" or "x86-64-v4" here, and those levels also require features unused.
  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  static const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                             __builtin_cpu_supports("avx512cd");
  return avx512 ? Isa::Avx512 : avx2 ? Isa::Avx2 : Isa::Portable;
#else
  return Isa::Portable;
#endif
}

Isa active_isa() { return std::min(supported_isa(), ceiling.load(std::memory_order_relaxed)); }

Isa limit_isa(Isa isa) { return ceiling.exchange(isa); }

}  // namespace tg::simd
