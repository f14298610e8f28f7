// fma_peak: one core's FMA throughput, the yardstick for the convolution kernels' share of the peak
// in docs/BENCHMARKS.md. Twelve independent chains of vfmadd231ps (more than latency × ports, so
// only the FMA ports limit them) on ymm (AVX2) and zmm (AVX-512) registers, written in assembly so
// that the compiler cannot change them; prints the best of `repeats` runs in GFLOP/s (an FMA is 2
// flops per lane) and the FMAs per nanosecond that implies.
//   fma_peak [repeats=5]
// Layer: bench.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace {

constexpr long kIterations = 50'000'000;  // of 12 FMAs each
constexpr int kChains = 12;

#define TG_FMA_CHAINS(reg)                                                                                     \
  "vfmadd231ps %%" reg "14, %%" reg "15, %%" reg "0\n\t"                                                       \
  "vfmadd231ps %%" reg "14, %%" reg "15, %%" reg "1\n\t"                                                       \
  "vfmadd231ps %%" reg "14, %%" reg "15, %%" reg "2\n\t"                                                       \
  "vfmadd231ps %%" reg "14, %%" reg "15, %%" reg "3\n\t"                                                       \
  "vfmadd231ps %%" reg "14, %%" reg "15, %%" reg "4\n\t"                                                       \
  "vfmadd231ps %%" reg "14, %%" reg "15, %%" reg "5\n\t"                                                       \
  "vfmadd231ps %%" reg "14, %%" reg "15, %%" reg "6\n\t"                                                       \
  "vfmadd231ps %%" reg "14, %%" reg "15, %%" reg "7\n\t"                                                       \
  "vfmadd231ps %%" reg "14, %%" reg "15, %%" reg "8\n\t"                                                       \
  "vfmadd231ps %%" reg "14, %%" reg "15, %%" reg "9\n\t"                                                       \
  "vfmadd231ps %%" reg "14, %%" reg "15, %%" reg "10\n\t"                                                      \
  "vfmadd231ps %%" reg "14, %%" reg "15, %%" reg "11\n\t"

// Seconds for kIterations × kChains FMAs on ymm (wide = false) or zmm registers. Plain code around the
// assembly: no target attribute, so nothing else in here needs AVX-512.
double time_fmas(bool wide) {
  const auto start = std::chrono::steady_clock::now();
  long n = kIterations;
  if (wide)
    asm volatile(
        "vxorps %%zmm14, %%zmm14, %%zmm14\n\tvxorps %%zmm15, %%zmm15, %%zmm15\n"
        "1:\n\t" TG_FMA_CHAINS("zmm") "dec %0\n\tjnz 1b\n\tvzeroupper"
        : "+r"(n)
        :
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm14",
          "xmm15", "cc");
  else
    asm volatile(
        "vxorps %%ymm14, %%ymm14, %%ymm14\n\tvxorps %%ymm15, %%ymm15, %%ymm15\n"
        "1:\n\t" TG_FMA_CHAINS("ymm") "dec %0\n\tjnz 1b\n\tvzeroupper"
        : "+r"(n)
        :
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm14",
          "xmm15", "cc");
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void report(const char* name, bool wide, int repeats) {
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) best = std::min(best, time_fmas(wide));
  const double fmas_per_ns = static_cast<double>(kIterations) * kChains / best / 1e9;
  const int lanes = wide ? 16 : 8;
  std::printf("%-8s %7.1f GFLOP/s (%.2f FMAs/ns of %d lanes)\n", name, fmas_per_ns * lanes * 2, fmas_per_ns, lanes);
}

}  // namespace

int main(int argc, char** argv) {
  const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    std::printf("fma_peak: this processor has no AVX2 FMA\n");
    return 0;
  }
  report("AVX2", false, repeats);
  if (__builtin_cpu_supports("avx512f")) report("AVX-512", true, repeats);
  else std::printf("AVX-512  not supported by this processor\n");
}
