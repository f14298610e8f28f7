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
  static const Isa best = __builtin_cpu_supports("x86-64-v4")   ? Isa::Avx512
                          : __builtin_cpu_supports("x86-64-v3") ? Isa::Avx2
                                                                : Isa::Portable;
  return best;
#else
  return Isa::Portable;
#endif
}

Isa active_isa() { return std::min(supported_isa(), ceiling.load(std::memory_order_relaxed)); }

Isa limit_isa(Isa isa) { return ceiling.exchange(isa); }

}  // namespace tg::simd
