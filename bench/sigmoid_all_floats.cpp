// sigmoid_all_floats: float32 sigmoid over all 2^32 bit patterns, under AVX-512 and under AVX2,
// compared bit for bit (NaNs included). The two versions are one algorithm (core/simd_math.h); the
// AVX-512 one reaches some steps through other instructions (vmaxps, vscalefps), and this is the
// check that they give the same bits everywhere, too long for the test suite (about a minute here),
// which compares a sweep of a million floats (tests/core/test_exp_simd.cpp).
//   sigmoid_all_floats
// Prints the number of differing floats and the first few; exits 1 if any differ, 2 without AVX-512.
// Layer: bench.
#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <vector>

#include "tapegrad.h"
#include "tapegrad/core/simd.h"

int main() try {
  if (tg::simd::supported_isa() != tg::simd::Isa::Avx512) {
    std::fprintf(stderr, "sigmoid_all_floats: this processor has no AVX-512; nothing to compare\n");
    return 2;
  }
  tg::set_num_threads(1);
  constexpr std::uint64_t kChunk = std::uint64_t{1} << 24;
  std::vector<float> xs(kChunk);
  std::uint64_t differing = 0;
  for (std::uint64_t base = 0; base < (std::uint64_t{1} << 32); base += kChunk) {
    for (std::uint64_t i = 0; i < kChunk; ++i) xs[i] = std::bit_cast<float>(static_cast<std::uint32_t>(base + i));
    const tg::Tensor x = tg::tensor(xs);
    auto sigmoid_under = [&](tg::simd::Isa isa) {
      const tg::simd::IsaLimit limit(isa);
      return x.sigmoid().to_vector<float>();
    };
    const std::vector<float> wide = sigmoid_under(tg::simd::Isa::Avx512), narrow = sigmoid_under(tg::simd::Isa::Avx2);
    for (std::uint64_t i = 0; i < kChunk; ++i)
      if (std::bit_cast<std::uint32_t>(wide[i]) != std::bit_cast<std::uint32_t>(narrow[i]) && ++differing <= 5)
        std::printf("x bits %08x: AVX-512 %08x, AVX2 %08x\n", static_cast<unsigned>(base + i),
                    std::bit_cast<std::uint32_t>(wide[i]), std::bit_cast<std::uint32_t>(narrow[i]));
  }
  std::printf("sigmoid over all 2^32 floats: %llu differ between AVX-512 and AVX2\n",
              static_cast<unsigned long long>(differing));
  return differing == 0 ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "sigmoid_all_floats: %s\n", e.what());
  return 1;
}
