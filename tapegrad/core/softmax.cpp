// The softmax family's kernels: softmax and log_softmax with their backward, and logsumexp. Each
// works on x viewed as [outer, D, inner] and normalizes along D; the inner positions of a line are
// processed together so every pass reads rows of `inner` contiguous values. Every line is shifted
// by its max first, so no exp overflows. Layer: core.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "tapegrad/core/native.h"
#include "tapegrad/core/parallel.h"

namespace tg::native {

namespace {

// With max over D and sum = Σ_D exp(x − max):
//   log_softmax: y = (x − max) − log sum,  softmax: y = exp(x − max) / sum.
template <class T>
void softmax_forward(T* y, const T* x, std::int64_t outer, std::int64_t D, std::int64_t inner, bool log) {
  parallel_for(0, outer, outer * D * inner, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<T> mx(static_cast<std::size_t>(inner)), sum(static_cast<std::size_t>(inner));
    for (std::int64_t o = lo; o < hi; ++o) {
      const T* xo = x + o * D * inner;
      T* yo = y + o * D * inner;
      std::fill(mx.begin(), mx.end(), -std::numeric_limits<T>::infinity());
      std::fill(sum.begin(), sum.end(), T(0));
      for (std::int64_t d = 0; d < D; ++d)
        for (std::int64_t i = 0; i < inner; ++i) mx[i] = std::max(mx[i], xo[d * inner + i]);
      for (std::int64_t d = 0; d < D; ++d)
        for (std::int64_t i = 0; i < inner; ++i) sum[i] += std::exp(xo[d * inner + i] - mx[i]);
      for (std::int64_t i = 0; i < inner; ++i) sum[i] = log ? std::log(sum[i]) : T(1) / sum[i];
      for (std::int64_t d = 0; d < D; ++d)
        for (std::int64_t i = 0; i < inner; ++i) {
          T v = xo[d * inner + i] - mx[i];
          yo[d * inner + i] = log ? v - sum[i] : std::exp(v) * sum[i];
        }
    }
  });
}

// From the output y, summing along D:
//   log_softmax: y = x − lse, ∂lse/∂x = exp(y)   ⇒  dx = dy − exp(y) · Σ_D dy
//   softmax:     ∂y_j/∂x_k = y_j ([j = k] − y_k) ⇒  dx = y · (dy − Σ_D dy·y)
template <class T>
void softmax_backward(T* dx, const T* dy, const T* y, std::int64_t outer, std::int64_t D, std::int64_t inner,
                      bool log) {
  parallel_for(0, outer, outer * D * inner, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<T> sum(static_cast<std::size_t>(inner));
    for (std::int64_t o = lo; o < hi; ++o) {
      const std::int64_t base = o * D * inner;
      std::fill(sum.begin(), sum.end(), T(0));
      for (std::int64_t d = 0; d < D; ++d)
        for (std::int64_t i = 0; i < inner; ++i) {
          std::int64_t j = base + d * inner + i;
          sum[i] += log ? dy[j] : dy[j] * y[j];
        }
      for (std::int64_t d = 0; d < D; ++d)
        for (std::int64_t i = 0; i < inner; ++i) {
          std::int64_t j = base + d * inner + i;
          dx[j] = log ? dy[j] - std::exp(y[j]) * sum[i] : y[j] * (dy[j] - sum[i]);
        }
    }
  });
}

// out = max + log Σ_D exp(x − max), the sum in double. An infinite max shifts by 0 instead
// (PyTorch's rule): a line of -inf gives log 0 = -inf, a +inf gives +inf, not inf − inf = nan.
template <class T>
void logsumexp_forward(T* out, const T* x, std::int64_t outer, std::int64_t D, std::int64_t inner) {
  parallel_for(0, outer, outer * D * inner, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<T> mx(static_cast<std::size_t>(inner));
    std::vector<double> sum(static_cast<std::size_t>(inner));
    for (std::int64_t o = lo; o < hi; ++o) {
      const T* xo = x + o * D * inner;
      std::fill(mx.begin(), mx.end(), -std::numeric_limits<T>::infinity());
      std::fill(sum.begin(), sum.end(), 0.0);
      for (std::int64_t d = 0; d < D; ++d)
        for (std::int64_t i = 0; i < inner; ++i) mx[i] = std::max(mx[i], xo[d * inner + i]);
      for (std::int64_t i = 0; i < inner; ++i)
        if (std::isinf(mx[i])) mx[i] = 0;
      for (std::int64_t d = 0; d < D; ++d)
        for (std::int64_t i = 0; i < inner; ++i) sum[i] += std::exp(static_cast<double>(xo[d * inner + i] - mx[i]));
      for (std::int64_t i = 0; i < inner; ++i) out[o * inner + i] = static_cast<T>(std::log(sum[i]) + mx[i]);
    }
  });
}

void check_floating(const Tensor& t, const char* op) {
  TG_CHECK(is_floating(t.dtype()), "[{}] expected a floating point input, got {} (pass a dtype, or use .to(kFloat32))",
           op, dtype_name(t.dtype()));
}

}  // namespace

Tensor softmax(const Tensor& t, std::int64_t dim, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  check_floating(t, op);
  DimSplit l = split_at_dim(t.sizes(), wrap_dim(dim, t.dim(), op));
  Tensor x = contiguous(t);
  Tensor y = Tensor::empty(t.sizes(), t.dtype());
  dispatch_floating(t.dtype(), [&]<class T>() {
    softmax_forward<T>(y.data_ptr<T>(), x.data_ptr<T>(), l.outer, l.n, l.inner, log);
  });
  return y;
}

Tensor softmax_backward(const Tensor& grad, const Tensor& y, std::int64_t dim, bool log) {
  TG_ASSERT(grad.sizes() == y.sizes() && is_floating(y.dtype()), "softmax_backward: gradient {} for output {}",
            grad.sizes(), y.sizes());
  DimSplit l = split_at_dim(y.sizes(), wrap_dim(dim, y.dim(), "softmax_backward"));
  Tensor dy = contiguous(grad.dtype() == y.dtype() ? grad : to(grad, y.dtype())), yc = contiguous(y);
  Tensor dx = Tensor::empty(y.sizes(), y.dtype());
  dispatch_floating(y.dtype(), [&]<class T>() {
    softmax_backward<T>(dx.data_ptr<T>(), dy.data_ptr<T>(), yc.data_ptr<T>(), l.outer, l.n, l.inner, log);
  });
  return dx;
}

Tensor logsumexp(const Tensor& t, const Shape& dims, bool keepdim) {
  Tensor x = is_floating(t.dtype()) ? t : to(t, kFloat32);
  Shape rd = reduction_dims(dims, x.dim(), "logsumexp");
  Shape out_sizes, perm;
  DimSplit l;
  for (std::int64_t d = 0; d < x.dim(); ++d) {
    bool reduced = std::find(rd.begin(), rd.end(), d) != rd.end();
    if (!reduced || keepdim) out_sizes.push_back(reduced ? 1 : x.sizes()[d]);
    if (!reduced) perm.push_back(d);
    (reduced ? l.n : rd.empty() || d < rd.front() ? l.outer : l.inner) *= x.sizes()[d];
  }
  Tensor lines = contiguous(x);
  if (!rd.empty() && rd.back() - rd.front() + 1 != static_cast<std::int64_t>(rd.size())) {
    // Reduced dims apart: move them after the kept ones, so each line is D contiguous values.
    perm.insert(perm.end(), rd.begin(), rd.end());
    lines = contiguous(permute(x, perm));
    l = {l.outer * l.inner, l.n, 1};
  }
  Tensor out = Tensor::empty(out_sizes, x.dtype());
  dispatch_floating(x.dtype(), [&]<class T>() {
    logsumexp_forward<T>(out.data_ptr<T>(), lines.data_ptr<T>(), l.outer, l.n, l.inner);
  });
  return out;
}

}  // namespace tg::native
