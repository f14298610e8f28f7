// Reductions over any set of dims: sum, mean, two-pass var, amax/amin, argmax/argmin, and sum_to
// (un-broadcasting a gradient). The input is read in its own memory order; each innermost row
// either folds into one accumulator or adds onto a row of accumulators. Layer: core.
#include <algorithm>
#include <cmath>
#include <limits>

#include "tapegrad/core/loop.h"
#include "tapegrad/core/native.h"

namespace tg::native {

namespace {

using detail::StridedLoop;

// The layout of one reduction: the output's shape and, for iterating over the input's shape,
// strides into a contiguous buffer of the kept dims (0 along reduced dims).
struct Plan {
  Shape out_sizes;   // with keepdim's 1s
  Shape acc_strides; // over the input's shape
  std::int64_t out_numel = 1;
  std::int64_t count = 1;  // elements folded into each output
};

Plan plan_reduction(const Tensor& t, const Shape& dims, bool keepdim, std::string_view op) {
  Shape rd = reduction_dims(dims, t.dim(), op);
  std::vector<bool> reduced(static_cast<std::size_t>(t.dim()), false);
  for (std::int64_t d : rd) reduced[d] = true;
  Plan p;
  Shape kept;
  for (std::int64_t d = 0; d < t.dim(); ++d) {
    if (reduced[d]) {
      p.count *= t.sizes()[d];
      if (keepdim) p.out_sizes.push_back(1);
    } else {
      p.out_sizes.push_back(t.sizes()[d]);
      kept.push_back(t.sizes()[d]);
    }
  }
  Shape kept_strides = contiguous_strides(kept);
  p.acc_strides.assign(static_cast<std::size_t>(t.dim()), 0);
  for (std::int64_t d = 0, k = 0; d < t.dim(); ++d)
    if (!reduced[d]) p.acc_strides[d] = kept_strides[k++];
  p.out_numel = numel_of(kept);
  return p;
}

// acc[o] = fold over the input elements that reduce into o, of f(x, o); acc pre-initialized.
template <class T, class A, class Fold>
void reduce_loop(const Tensor& t, const Plan& p, A* acc, Fold fold) {
  StridedLoop<2> loop(t.sizes(), {p.acc_strides, t.strides()});
  const T* x = static_cast<const T*>(t.raw_data());
  loop.run([&](std::int64_t n, const auto& off, const auto& st) { fold(n, acc + off[0], st[0], x + off[1], st[1]); });
}

// Sum into double (floats) or uint64 accumulators (integers, wrapping around).
template <class T, class A>
void sum_into(const Tensor& t, const Plan& p, A* acc) {
  reduce_loop<T>(t, p, acc, [](std::int64_t n, A* a, std::int64_t sa, const T* x, std::int64_t sx) {
    if (sa == 0) {
      A s = 0;
      if (sx == 1) {
#pragma omp simd reduction(+ : s)
        for (std::int64_t i = 0; i < n; ++i) s += static_cast<A>(x[i]);
      } else {
        for (std::int64_t i = 0; i < n; ++i) s += static_cast<A>(x[i * sx]);
      }
      *a += s;
    } else {
      for (std::int64_t i = 0; i < n; ++i) a[i * sa] += static_cast<A>(x[i * sx]);
    }
  });
}

template <class T, class A>
Tensor finish(const std::vector<A>& acc, const Shape& sizes, DType dtype, double scale) {
  Tensor out = Tensor::empty(sizes, dtype);
  T* o = static_cast<T*>(out.raw_data());
  for (std::size_t i = 0; i < acc.size(); ++i) {
    if constexpr (std::is_integral_v<A>) o[i] = static_cast<T>(acc[i]);  // not through double: exact, no UB
    else o[i] = static_cast<T>(scale == 1.0 ? acc[i] : acc[i] * scale);
  }
  return out;
}

Tensor extreme(const Tensor& t, const Shape& dims, bool keepdim, bool is_max, std::string_view op) {
  Plan p = plan_reduction(t, dims, keepdim, op);
  TG_CHECK(p.count > 0 || p.out_numel == 0,
           "[{}] expected a non-empty tensor (or reduced dims of nonzero size), got shape {}", op, t.sizes());
  return dispatch(t.dtype(), [&]<class T>() {
    T init = is_max ? std::numeric_limits<T>::lowest() : std::numeric_limits<T>::max();
    std::vector<T> acc(static_cast<std::size_t>(p.out_numel), init);
    reduce_loop<T>(t, p, acc.data(), [is_max](std::int64_t n, T* a, std::int64_t sa, const T* x, std::int64_t sx) {
      for (std::int64_t i = 0; i < n; ++i) {
        T v = x[i * sx];
        T& r = a[i * sa];
        if (r != r) continue;  // NaN propagates
        if (v != v || (is_max ? v > r : v < r)) r = v;
      }
    });
    return finish<T>(acc, p.out_sizes, t.dtype(), 1.0);
  });
}

Tensor arg_extreme(const Tensor& t, std::optional<std::int64_t> dim, bool keepdim, bool is_max,
                   std::string_view op) {
  Tensor src = t;
  Shape out_sizes;
  if (!dim) {
    TG_CHECK(t.numel() > 0, "[{}] expected a non-empty tensor, got shape {}", op, t.sizes());
    src = reshape(t, {1, t.numel()});
    if (keepdim) out_sizes.assign(static_cast<std::size_t>(t.dim()), 1);
  } else {
    std::int64_t d = wrap_dim(*dim, t.dim(), op);
    if (t.dim() == 0) {
      src = reshape(t, {1, 1});
    } else {
      TG_CHECK(t.sizes()[d] > 0, "[{}] expected a non-empty dimension {}, got shape {}", op, d, t.sizes());
      Shape perm;
      for (std::int64_t i = 0; i < t.dim(); ++i)
        if (i != d) perm.push_back(i);
      perm.push_back(d);
      src = reshape(contiguous(permute(t, perm)), {-1, t.sizes()[d]});
      out_sizes = t.sizes();
      if (keepdim) out_sizes[d] = 1;
      else out_sizes.erase(out_sizes.begin() + d);
    }
  }
  std::int64_t rows = src.size(0), n = src.size(1);
  Tensor out = Tensor::empty(out_sizes, kInt64);
  std::int64_t* o = out.data_ptr<std::int64_t>();
  dispatch(src.dtype(), [&]<class T>() {
    const T* x = static_cast<const T*>(contiguous(src).raw_data());
    for (std::int64_t r = 0; r < rows; ++r) {
      const T* row = x + r * n;
      std::int64_t best = 0;
      for (std::int64_t i = 1; i < n && row[best] == row[best]; ++i)
        if (row[i] != row[i] || (is_max ? row[i] > row[best] : row[i] < row[best])) best = i;
      o[r] = best;
    }
  });
  return out;
}

}  // namespace

Shape reduction_dims(const Shape& dims, std::int64_t rank, std::string_view op) {
  Shape out;
  if (dims.empty()) {
    for (std::int64_t d = 0; d < rank; ++d) out.push_back(d);
    return out;
  }
  for (std::int64_t d : dims) {
    std::int64_t w = wrap_dim(d, rank, op);
    TG_CHECK(std::find(out.begin(), out.end(), w) == out.end(), "[{}] dim {} appears multiple times in the list {}",
             op, w, dims);
    out.push_back(w);
  }
  if (rank == 0) out.clear();
  std::sort(out.begin(), out.end());
  return out;
}

std::int64_t reduction_count(const Shape& sizes, const Shape& dims) {
  std::int64_t n = 1;
  for (std::int64_t d : reduction_dims(dims, static_cast<std::int64_t>(sizes.size()), "reduce")) n *= sizes[d];
  return n;
}

Tensor sum(const Tensor& t, const Shape& dims, bool keepdim) {
  Plan p = plan_reduction(t, dims, keepdim, "sum");
  return dispatch(t.dtype(), [&]<class T>() {
    // Integer sums are int64 (uint8's too, as PyTorch's) and wrap around on overflow as PyTorch's
    // do (an unsigned accumulator: no UB).
    using A = std::conditional_t<std::is_floating_point_v<T>, double, std::uint64_t>;
    using Out = std::conditional_t<std::is_floating_point_v<T>, T, std::int64_t>;
    std::vector<A> acc(static_cast<std::size_t>(p.out_numel), A(0));
    sum_into<T>(t, p, acc.data());
    return finish<Out>(acc, p.out_sizes, dtype_of<Out>(), 1.0);
  });
}

Tensor mean(const Tensor& t, const Shape& dims, bool keepdim) {
  TG_CHECK(is_floating(t.dtype()),
           "[mean] could not infer output dtype: input dtype must be floating point, got {} (use .to(kFloat32))",
           dtype_name(t.dtype()));
  Plan p = plan_reduction(t, dims, keepdim, "mean");
  return dispatch_floating(t.dtype(), [&]<class T>() {
    std::vector<double> acc(static_cast<std::size_t>(p.out_numel), 0.0);
    sum_into<T>(t, p, acc.data());
    return finish<T>(acc, p.out_sizes, t.dtype(), p.count ? 1.0 / static_cast<double>(p.count) : NAN);
  });
}

Tensor var(const Tensor& t, const Shape& dims, std::int64_t correction, bool keepdim, std::string_view op) {
  TG_CHECK(is_floating(t.dtype()), "[{}] expected a floating point tensor, got {}", op, dtype_name(t.dtype()));
  Plan p = plan_reduction(t, dims, keepdim, op);
  return dispatch_floating(t.dtype(), [&]<class T>() {
    std::vector<double> mu(static_cast<std::size_t>(p.out_numel), 0.0);
    sum_into<T>(t, p, mu.data());
    for (double& m : mu) m /= static_cast<double>(p.count);
    std::vector<double> acc(mu.size(), 0.0);
    const double* m0 = mu.data();
    double* a0 = acc.data();
    reduce_loop<T>(t, p, a0, [&](std::int64_t n, double* a, std::int64_t sa, const T* x, std::int64_t sx) {
      const double* m = m0 + (a - a0);
      if (sa == 0) {
        double s = 0, mv = *m;
        for (std::int64_t i = 0; i < n; ++i) {
          double dlt = static_cast<double>(x[i * sx]) - mv;
          s += dlt * dlt;
        }
        *a += s;
      } else {
        for (std::int64_t i = 0; i < n; ++i) {
          double dlt = static_cast<double>(x[i * sx]) - m[i * sa];
          a[i * sa] += dlt * dlt;
        }
      }
    });
    double denom = static_cast<double>(p.count - correction);
    return finish<T>(acc, p.out_sizes, t.dtype(), denom > 0 ? 1.0 / denom : NAN);
  });
}

// Σ f(|x|) per output in double, then g(Σ): p = 0 counts nonzeros, 1 sums |x|, 2 sums x² and
// takes the square root, any other p sums |x|^p and takes the 1/p-th power. ±inf fold with
// max / min of |x| instead (an empty max is 0, as PyTorch's).
Tensor norm(const Tensor& t, double p, const Shape& dims, bool keepdim) {
  TG_CHECK(is_floating(t.dtype()), "[norm] expected a floating point input, got {}", dtype_name(t.dtype()));
  Plan plan = plan_reduction(t, dims, keepdim, "norm");
  return dispatch_floating(t.dtype(), [&]<class T>() {
    const bool is_inf = std::isinf(p), is_max = p > 0;
    std::vector<double> acc(static_cast<std::size_t>(plan.out_numel),
                            !is_inf ? 0.0 : is_max ? 0.0 : std::numeric_limits<double>::infinity());
    auto fold = [&](auto f) {
      reduce_loop<T>(t, plan, acc.data(), [&](std::int64_t n, double* a, std::int64_t sa, const T* x, std::int64_t sx) {
        for (std::int64_t i = 0; i < n; ++i) f(a[i * sa], std::fabs(static_cast<double>(x[i * sx])));
      });
    };
    if (is_inf && is_max) fold([](double& a, double v) { a = v != v || a != a ? NAN : std::max(a, v); });
    else if (is_inf) fold([](double& a, double v) { a = v != v || a != a ? NAN : std::min(a, v); });
    else if (p == 0) fold([](double& a, double v) { a += v != 0; });
    else if (p == 1) fold([](double& a, double v) { a += v; });
    else if (p == 2) fold([](double& a, double v) { a += v * v; });
    else fold([p](double& a, double v) { a += std::pow(v, p); });
    if (p == 2) for (double& a : acc) a = std::sqrt(a);
    else if (!is_inf && p != 0 && p != 1) for (double& a : acc) a = std::pow(a, 1.0 / p);
    return finish<T>(acc, plan.out_sizes, t.dtype(), 1.0);
  });
}

Tensor amax(const Tensor& t, const Shape& dims, bool keepdim) { return extreme(t, dims, keepdim, true, "max"); }
Tensor amin(const Tensor& t, const Shape& dims, bool keepdim) { return extreme(t, dims, keepdim, false, "min"); }

Tensor argmax(const Tensor& t, std::optional<std::int64_t> dim, bool keepdim) {
  return arg_extreme(t, dim, keepdim, true, "argmax");
}
Tensor argmin(const Tensor& t, std::optional<std::int64_t> dim, bool keepdim) {
  return arg_extreme(t, dim, keepdim, false, "argmin");
}

Tensor sum_to(const Tensor& grad, const Shape& shape) {
  if (grad.sizes() == shape) return grad;
  std::int64_t lead = grad.dim() - static_cast<std::int64_t>(shape.size());
  TG_ASSERT(lead >= 0, "sum_to: gradient of shape {} cannot reduce to {}", grad.sizes(), shape);
  Shape dims;
  for (std::int64_t d = 0; d < grad.dim(); ++d)
    if (d < lead || (shape[d - lead] == 1 && grad.sizes()[d] != 1)) dims.push_back(d);
  if (dims.empty()) return reshape(grad, shape);
  return reshape(sum(grad, dims, true), shape);
}

}  // namespace tg::native
