// matmul with PyTorch's semantics (1-D operands, batched with broadcast batch dims), one GEMM per
// batch matrix through OpenBLAS; strided operands are passed as transposes instead of copied
// whenever their strides allow. Layer: core.
#include <cstring>

#include "tapegrad/core/blas.h"
#include "tapegrad/core/loop.h"
#include "tapegrad/core/native.h"

namespace tg::native {

namespace {

// How a row-major [rows, cols] matrix with strides (rs, cs) is handed to GEMM, if it can be.
struct MatLayout {
  bool ok = false;
  bool trans = false;
  std::int64_t ld = 0;
};

MatLayout layout_of(std::int64_t rows, std::int64_t cols, std::int64_t rs, std::int64_t cs) {
  if (cols == 1) cs = 1;  // a size-1 dim's stride is free
  if (rows == 1) rs = std::max<std::int64_t>(cols, 1);
  if (cs == 1 && rs >= std::max<std::int64_t>(1, cols)) return {true, false, rs};
  if (rs == 1 && cs >= std::max<std::int64_t>(1, rows)) return {true, true, cs};
  return {};
}

MatLayout last_two(const Tensor& t) {
  std::int64_t d = t.dim();
  return layout_of(t.sizes()[d - 2], t.sizes()[d - 1], t.strides()[d - 2], t.strides()[d - 1]);
}

template <class T>
void naive_gemm(std::int64_t m, std::int64_t n, std::int64_t k, const T* a, std::int64_t ars, std::int64_t acs,
                const T* b, std::int64_t brs, std::int64_t bcs, T* c) {
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      using Acc = std::conditional_t<std::is_integral_v<T>, std::uint64_t, T>;  // integers wrap around, no UB
      Acc s = 0;
      for (std::int64_t p = 0; p < k; ++p) s += static_cast<Acc>(a[i * ars + p * acs]) * static_cast<Acc>(b[p * brs + j * bcs]);
      c[i * n + j] = static_cast<T>(s);
    }
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  TG_CHECK(a.dim() >= 1 && b.dim() >= 1, "[matmul] both arguments need at least 1 dimension, got shapes {} and {}",
           a.sizes(), b.sizes());
  TG_CHECK(a.dtype() == b.dtype(), "[matmul] expected both operands of one dtype, got {} {} and {} {}",
           dtype_name(a.dtype()), a.sizes(), dtype_name(b.dtype()), b.sizes());
  Tensor A = a.dim() == 1 ? unsqueeze(a, 0) : a;
  Tensor B = b.dim() == 1 ? unsqueeze(b, 1) : b;
  std::int64_t m = A.sizes()[A.dim() - 2], k = A.sizes()[A.dim() - 1];
  std::int64_t k2 = B.sizes()[B.dim() - 2], n = B.sizes()[B.dim() - 1];
  TG_CHECK(k == k2, "[matmul] shapes {} and {} cannot be multiplied ({}x{} and {}x{})", a.sizes(), b.sizes(), m, k,
           k2, n);
  const Shape batch_a(A.sizes().begin(), A.sizes().end() - 2), batch_b(B.sizes().begin(), B.sizes().end() - 2);
  TG_CHECK(broadcastable(batch_a, batch_b),
           "[matmul] shapes {} and {} cannot be multiplied: their batch dimensions {} and {} do not broadcast",
           a.sizes(), b.sizes(), batch_a, batch_b);
  const Shape batch = broadcast_shapes(batch_a, batch_b, "matmul");

  MatLayout la = last_two(A), lb = last_two(B);
  if (!la.ok || is_integral(a.dtype())) {
    A = contiguous(A);
    la = last_two(A);
  }
  if (!lb.ok || is_integral(b.dtype())) {
    B = contiguous(B);
    lb = last_two(B);
  }
  Shape a_full = batch, b_full = batch, out_sizes = batch;
  a_full.insert(a_full.end(), {m, k});
  b_full.insert(b_full.end(), {k, n});
  out_sizes.insert(out_sizes.end(), {m, n});
  Tensor Ae = expand(A, a_full), Be = expand(B, b_full);
  Tensor out = Tensor::empty(out_sizes, a.dtype());

  if (out.numel() > 0) {
    Shape sa(Ae.strides().begin(), Ae.strides().end() - 2), sb(Be.strides().begin(), Be.strides().end() - 2);
    Shape so(out.strides().begin(), out.strides().end() - 2);
    detail::StridedLoop<3> loop(batch, {so, sa, sb});
    dispatch(a.dtype(), [&]<class T>() {
      T* po = static_cast<T*>(out.raw_data());
      const T* pa = static_cast<const T*>(Ae.raw_data());
      const T* pb = static_cast<const T*>(Be.raw_data());
      std::int64_t ars = Ae.strides()[Ae.dim() - 2], acs = Ae.strides()[Ae.dim() - 1];
      std::int64_t brs = Be.strides()[Be.dim() - 2], bcs = Be.strides()[Be.dim() - 1];
      loop.run([&](std::int64_t cnt, const auto& off, const auto& st) {
        for (std::int64_t i = 0; i < cnt; ++i) {
          T* c = po + off[0] + i * st[0];
          const T* x = pa + off[1] + i * st[1];
          const T* y = pb + off[2] + i * st[2];
          if constexpr (std::is_integral_v<T>) {
            naive_gemm(m, n, k, x, ars, acs, y, brs, bcs, c);
          } else if (k == 0) {
            std::memset(c, 0, static_cast<std::size_t>(m * n) * sizeof(T));
          } else {
            blas::gemm(la.trans, lb.trans, m, n, k, T(1), x, la.ld, y, lb.ld, T(0), c, n);
          }
        }
      });
    });
  }
  if (a.dim() == 1 && b.dim() == 1) return reshape(out, {});
  if (a.dim() == 1) return squeeze(out, -2);
  if (b.dim() == 1) return squeeze(out, -1);
  return out;
}

}  // namespace tg::native
