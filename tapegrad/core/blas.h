// GEMM through OpenBLAS: the only place that includes cblas.h. Row-major operands given as
// (pointer, row stride) with a transpose flag, so transposed views need no copy. Layer: core.
#pragma once

#include <cstdint>

namespace tg::blas {

// C[m, n] = alpha * op(A)[m, k] · op(B)[k, n] + beta * C; ld* are row strides in elements.
void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
          std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc);
void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, double alpha, const double* a,
          std::int64_t lda, const double* b, std::int64_t ldb, double beta, double* c, std::int64_t ldc);


}  // namespace tg::blas
