// layer_norm: normalization over the trailing dims of each sample, with the hand-derived backward
// recorded as one tape entry (NativeLayerNormBackward0), and nn::LayerNorm.
// Layer: layers; must not know optimizers.
#include "tapegrad/layers/layernorm.h"

#include <cmath>
#include <cstdint>
#include <vector>

#include "tapegrad/autograd/tape.h"
#include "tapegrad/core/native.h"
#include "tapegrad/core/parallel.h"
#include "tapegrad/layers/init.h"

namespace tg {

namespace {

// --- kernels: M rows (samples) of D normalized values, row m the contiguous run x[m·D, + D) ---

// Per row, two-pass statistics accumulated in double (never E[x²] − E[x]²):
//   mean = Σ x / D,  var = Σ (x − mean)² / D,  rstd = 1/sqrt(var + eps),
//   y = (x − mean)·rstd·weight + bias   (weight ≡ 1, bias ≡ 0 when null).
template <class T>
void layer_norm_forward(T* y, T* mean, T* rstd, const T* x, const T* weight, const T* bias, std::int64_t M,
                        std::int64_t D, double eps) {
  parallel_for(0, M, M * D, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t m = lo; m < hi; ++m) {
      const T* xr = x + m * D;
      T* yr = y + m * D;
      double s = 0, sq = 0;
      for (std::int64_t d = 0; d < D; ++d) s += static_cast<double>(xr[d]);
      const double mu = s / static_cast<double>(D);
      for (std::int64_t d = 0; d < D; ++d) {
        const double c = static_cast<double>(xr[d]) - mu;
        sq += c * c;
      }
      const T mu_t = static_cast<T>(mu), r = static_cast<T>(1.0 / std::sqrt(sq / static_cast<double>(D) + eps));
      mean[m] = mu_t;
      rstd[m] = r;
      for (std::int64_t d = 0; d < D; ++d) {
        const T xhat = (xr[d] - mu_t) * r;
        yr[d] = weight ? xhat * weight[d] + (bias ? bias[d] : T(0)) : xhat + (bias ? bias[d] : T(0));
      }
    }
  });
}

// xhat = (x − mean)·rstd, y = weight·xhat + bias. Per row, with g = dy·weight (the gradient
// reaching xhat) and mean and rstd depending on the row's x:
//   dx = rstd/D · (D·g − Σ g − xhat·Σ g·xhat);
// per column d, over the M rows:  dweight = Σ dy·xhat,  dbias = Σ dy.
// dx, dweight, dbias may be null (not wanted).
template <class T>
void layer_norm_backward(T* dx, T* dweight, T* dbias, const T* dy, const T* x, const T* mean, const T* rstd,
                         const T* weight, std::int64_t M, std::int64_t D) {
  if (dx)
    parallel_for(0, M, M * D, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t m = lo; m < hi; ++m) {
        const T* xr = x + m * D;
        const T* dyr = dy + m * D;
        const T mu = mean[m], r = rstd[m];
        double sum_g = 0, sum_g_xhat = 0;
        for (std::int64_t d = 0; d < D; ++d) {
          const T g = weight ? dyr[d] * weight[d] : dyr[d];
          sum_g += static_cast<double>(g);
          sum_g_xhat += static_cast<double>(g * (xr[d] - mu) * r);
        }
        const T a = static_cast<T>(sum_g / static_cast<double>(D));
        const T b = static_cast<T>(sum_g_xhat / static_cast<double>(D));
        T* dxr = dx + m * D;
        for (std::int64_t d = 0; d < D; ++d) {
          const T g = weight ? dyr[d] * weight[d] : dyr[d];
          dxr[d] = r * (g - a - (xr[d] - mu) * r * b);
        }
      }
    });
  if (!dweight && !dbias) return;
  // Column sums: threads split the columns; each walks every row in order.
  parallel_for(0, D, M * D, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<double> sw(static_cast<std::size_t>(hi - lo), 0.0), sb(static_cast<std::size_t>(hi - lo), 0.0);
    for (std::int64_t m = 0; m < M; ++m) {
      const T* xr = x + m * D;
      const T* dyr = dy + m * D;
      const T mu = mean[m], r = rstd[m];
      for (std::int64_t d = lo; d < hi; ++d) {
        sw[static_cast<std::size_t>(d - lo)] += static_cast<double>(dyr[d] * (xr[d] - mu) * r);
        sb[static_cast<std::size_t>(d - lo)] += static_cast<double>(dyr[d]);
      }
    }
    for (std::int64_t d = lo; d < hi; ++d) {
      if (dweight) dweight[d] = static_cast<T>(sw[static_cast<std::size_t>(d - lo)]);
      if (dbias) dbias[d] = static_cast<T>(sb[static_cast<std::size_t>(d - lo)]);
    }
  });
}

void check_layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias) {
  TG_CHECK(x.defined(), "[layer_norm] expected a defined input");
  TG_CHECK(is_floating(x.dtype()), "[layer_norm] expected a floating point input, got {}", dtype_name(x.dtype()));
  TG_CHECK(!normalized_shape.empty(), "[layer_norm] expected a non-empty normalized_shape, got []");
  const std::size_t k = normalized_shape.size();
  TG_CHECK(x.sizes().size() >= k && Shape(x.sizes().end() - static_cast<std::ptrdiff_t>(k), x.sizes().end()) ==
                                        normalized_shape,
           "[layer_norm] expected input of shape [*, {}] (normalized_shape {}), got {}",
           fmt::join(normalized_shape, ", "), normalized_shape, x.sizes());
  const std::pair<const char*, const Tensor*> params[] = {{"weight", &weight}, {"bias", &bias}};
  for (const auto& [name, t] : params) {
    if (!t->defined()) continue;
    TG_CHECK(t->sizes() == normalized_shape, "[layer_norm] expected {} of shape {} (normalized_shape), got {}", name,
             normalized_shape, t->sizes());
    TG_CHECK(t->dtype() == x.dtype(), "[layer_norm] expected {} of dtype {} (the input's), got {}", name,
             dtype_name(x.dtype()), dtype_name(t->dtype()));
  }
}

}  // namespace

// --- the differentiable function ------------------------------------------------------------------

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps) {
  check_layer_norm(x, normalized_shape, weight, bias);
  const DType dtype = x.dtype();
  const std::int64_t D = numel_of(normalized_shape), M = D == 0 ? 0 : x.numel() / D;
  Tensor xc = native::contiguous(x);
  Tensor wc = weight.defined() ? native::contiguous(weight) : Tensor();
  Tensor bc = bias.defined() ? native::contiguous(bias) : Tensor();
  Tensor mean = Tensor::empty({M}, dtype), rstd = Tensor::empty({M}, dtype), y = Tensor::empty(x.sizes(), dtype);
  dispatch_floating(dtype, [&]<class T>() {
    auto ptr = [](const Tensor& t) { return t.defined() ? t.data_ptr<T>() : nullptr; };
    layer_norm_forward<T>(y.data_ptr<T>(), mean.data_ptr<T>(), rstd.data_ptr<T>(), xc.data_ptr<T>(), ptr(wc),
                          ptr(bc), M, D, eps);
  });
  const bool gx = x.requires_grad(), gw = weight.defined() && weight.requires_grad();
  const bool gb = bias.defined() && bias.requires_grad();
  return autograd::record(
      "NativeLayerNormBackward0", y, {x, weight, bias},
      [xc, wc, mean, rstd, gx, gw, gb, M, D, pshape = normalized_shape](const Tensor& g) {
        Tensor dy = native::contiguous(g);
        Tensor dx = gx ? Tensor::empty(xc.sizes(), dy.dtype()) : Tensor();
        Tensor dweight = gw ? Tensor::empty(pshape, dy.dtype()) : Tensor();
        Tensor dbias = gb ? Tensor::empty(pshape, dy.dtype()) : Tensor();
        dispatch_floating(dy.dtype(), [&]<class T>() {
          auto ptr = [](const Tensor& t) { return t.defined() ? t.data_ptr<T>() : nullptr; };
          layer_norm_backward<T>(ptr(dx), ptr(dweight), ptr(dbias), dy.data_ptr<T>(), xc.data_ptr<T>(),
                                 mean.data_ptr<T>(), rstd.data_ptr<T>(), ptr(wc), M, D);
        });
        return std::vector<Tensor>{dx, dweight, dbias};
      },
      {x, weight});
}

// --- the module ---------------------------------------------------------------------------

namespace nn {

LayerNorm::LayerNorm(Shape shape, LayerNormOptions opts) : normalized_shape(std::move(shape)), options(opts) {
  TG_CHECK(!normalized_shape.empty(), "[LayerNorm] expected a non-empty normalized_shape, got []");
  for (std::int64_t s : normalized_shape)
    TG_CHECK(s >= 0, "[LayerNorm] expected non-negative sizes in normalized_shape, got {}", normalized_shape);
  if (options.elementwise_affine) {
    weight = register_parameter("weight", empty(normalized_shape));
    bias = register_parameter("bias", empty(normalized_shape));
  }
  reset_parameters();
}

void LayerNorm::reset_parameters() {
  if (!options.elementwise_affine) return;
  init::ones_(weight);
  init::zeros_(bias);
}

Tensor LayerNorm::forward(const Tensor& input) {
  return layer_norm(input, normalized_shape, weight, bias, options.eps);
}

std::string LayerNorm::extra_repr() const {
  // PyTorch prints normalized_shape as a Python tuple: (4,) or (3, 4).
  std::string shape = normalized_shape.size() == 1 ? fmt::format("({},)", normalized_shape[0])
                                                   : fmt::format("({})", fmt::join(normalized_shape, ", "));
  return fmt::format("{}, eps={}, elementwise_affine={}", shape, options.eps,
                     options.elementwise_affine ? "True" : "False");
}

}  // namespace nn

}  // namespace tg
