// OpenBLAS bindings and the one threading policy for GEMM: OpenBLAS itself runs single-threaded
// (its own pool would spin against ours on two cores), and a large GEMM is split into row or
// column blocks across the kernel pool, each a single-threaded OpenBLAS call.
// Layer: core.
#include "tapegrad/core/blas.h"

#include <cblas.h>
#include "tapegrad/core/parallel.h"

namespace tg::blas {

namespace {

// Single-threaded OpenBLAS from the moment the library loads. The pthread build has already started
// its server threads by then, which spin (sched_yield) for a fraction of a second before they sleep:
// a core taken from the kernel pool at every program start. They are shut down here (OpenBLAS starts
// them again if anyone asks it for more than one thread); a build without the symbol has none.
extern "C" int blas_thread_shutdown_(void) __attribute__((weak));

const bool kSingleThreaded = [] {
  openblas_set_num_threads(1);
  if (blas_thread_shutdown_) blas_thread_shutdown_();
  return true;
}();

constexpr std::int64_t kParallelFlops = 1 << 21;  // below this, one thread

// OpenBLAS's C entry points for one element type.
template <class T>
struct Cblas;
template <>
struct Cblas<float> {
  static constexpr auto gemv = cblas_sgemv;
  static constexpr auto gemm = cblas_sgemm;
};
template <>
struct Cblas<double> {
  static constexpr auto gemv = cblas_dgemv;
  static constexpr auto gemm = cblas_dgemm;
};

// One row of output (a batch of one) goes to GEMV: OpenBLAS's sgemm packs all of B at every call,
// which for one row costs more than the products (43% of a batch-1 LeNet inference profile).
// c's row is contiguous; op(A)'s one row is a's row, or a column of lda-strided values.
template <class T>
void call(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, T alpha, const T* a, std::int64_t lda,
          const T* b, std::int64_t ldb, T beta, T* c, std::int64_t ldc) {
  const auto i = [](std::int64_t v) { return static_cast<blasint>(v); };
  if (m == 1) {
    if (tb)  // c[n] = alpha · B[n, k] · a + beta · c
      Cblas<T>::gemv(CblasRowMajor, CblasNoTrans, i(n), i(k), alpha, b, i(ldb), a, i(ta ? lda : 1), beta, c, 1);
    else  // c[n] = alpha · B[k, n]ᵀ · a + beta · c
      Cblas<T>::gemv(CblasRowMajor, CblasTrans, i(k), i(n), alpha, b, i(ldb), a, i(ta ? lda : 1), beta, c, 1);
    return;
  }
  Cblas<T>::gemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, i(m), i(n), i(k),
                 alpha, a, i(lda), b, i(ldb), beta, c, i(ldc));
}

// Row-major op(A)[i, p] lives at a + i·lda + p (no transpose) or a + p·lda + i (transpose).
template <class T>
void split_gemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, T alpha, const T* a,
                std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c, std::int64_t ldc) {
  (void)kSingleThreaded;
  bool by_rows = m >= n;
  parallel_for(0, by_rows ? m : n, m * n * k, [&](std::int64_t lo, std::int64_t hi) {
    if (by_rows) {
      const T* a_blk = ta ? a + lo : a + lo * lda;
      call(ta, tb, hi - lo, n, k, alpha, a_blk, lda, b, ldb, beta, c + lo * ldc, ldc);
    } else {
      const T* b_blk = tb ? b + lo * ldb : b + lo;
      call(ta, tb, m, hi - lo, k, alpha, a, lda, b_blk, ldb, beta, c + lo, ldc);
    }
  }, kParallelFlops);
}

}  // namespace

void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
          std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
  split_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, double alpha, const double* a,
          std::int64_t lda, const double* b, std::int64_t ldb, double beta, double* c, std::int64_t ldc) {
  split_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}


}  // namespace tg::blas
