// The one threading policy: OpenMP for our kernels, OpenBLAS for GEMM, never both at once (GEMM
// is called outside parallel regions), and one thread count for both. Layer: core.
#pragma once

#include <cstdint>

namespace tg {

// Sets the threads of our kernels (OpenMP); OpenBLAS stays single-threaded and large GEMMs are
// split across these threads instead. n >= 1.
void set_num_threads(int n);
int get_num_threads();

// Below this many elements an elementwise kernel runs on one thread.
inline constexpr std::int64_t kParallelGrain = 32768;

}  // namespace tg
