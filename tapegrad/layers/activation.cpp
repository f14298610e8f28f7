// The elementwise activations with hand-derived backwards (leaky_relu, gelu exact and tanh,
// silu), each a kernel pair over M contiguous elements recorded as one tape entry that saves x,
// and the activation modules' printing. Layer: layers; must not know optimizers.
#include "tapegrad/layers/activation.h"

#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

#include "tapegrad/autograd/tape.h"
#include "tapegrad/core/native.h"
#include "tapegrad/core/parallel.h"
#include "tapegrad/layers/losses.h"

namespace tg {

namespace {

// Calls f(i) for every i in [0, M), split across the pool for large M.
template <class F>
void for_each_element(std::int64_t M, F f) {
  parallel_for(0, M, M, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i) f(i);
  });
}

// --- kernels: M elements ---------------------------------------------------------------------

// y = x for x > 0, slope·x otherwise.
template <class T>
void leaky_relu_forward(T* y, const T* x, T slope, std::int64_t M) {
  for_each_element(M, [=](std::int64_t i) { y[i] = x[i] > T(0) ? x[i] : x[i] * slope; });
}

// dx = dy where x > 0, slope·dy elsewhere (PyTorch's choice at x = 0: the slope).
template <class T>
void leaky_relu_backward(T* dx, const T* dy, const T* x, T slope, std::int64_t M) {
  for_each_element(M, [=](std::int64_t i) { dx[i] = x[i] > T(0) ? dy[i] : dy[i] * slope; });
}

// Exact: y = x·Φ(x), Φ(x) = (1 + erf(x/√2)) / 2.
// Tanh:  y = x/2 · (1 + tanh(u)),  u = √(2/π)·(x + κx³),  κ = 0.044715.
constexpr double kGeluKappa = 0.044715;
const double kInvSqrt2 = 1.0 / std::numbers::sqrt2, kSqrt2OverPi = std::sqrt(2.0 / std::numbers::pi);
const double kInvSqrt2Pi = 1.0 / std::sqrt(2.0 * std::numbers::pi);

template <class T>
void gelu_forward(T* y, const T* x, bool tanh_approx, std::int64_t M) {
  const T inv_sqrt2 = static_cast<T>(kInvSqrt2), beta = static_cast<T>(kSqrt2OverPi);
  const T kappa = static_cast<T>(kGeluKappa);
  if (tanh_approx)
    for_each_element(M, [=](std::int64_t i) {
      const T v = x[i], u = beta * (v + kappa * v * v * v);
      y[i] = T(0.5) * v * (T(1) + std::tanh(u));
    });
  else
    for_each_element(M, [=](std::int64_t i) { y[i] = x[i] * T(0.5) * (T(1) + std::erf(x[i] * inv_sqrt2)); });
}

// Exact: dy/dx = Φ(x) + x·φ(x),  φ(x) = exp(−x²/2) / √(2π).
// Tanh:  dy/dx = (1 + t)/2 + x/2 · (1 − t²) · √(2/π)·(1 + 3κx²),  t = tanh(u).
template <class T>
void gelu_backward(T* dx, const T* dy, const T* x, bool tanh_approx, std::int64_t M) {
  const T inv_sqrt2 = static_cast<T>(kInvSqrt2), beta = static_cast<T>(kSqrt2OverPi);
  const T kappa = static_cast<T>(kGeluKappa), inv_sqrt_2pi = static_cast<T>(kInvSqrt2Pi);
  if (tanh_approx)
    for_each_element(M, [=](std::int64_t i) {
      const T v = x[i], t = std::tanh(beta * (v + kappa * v * v * v));
      const T du = beta * (T(1) + T(3) * kappa * v * v);
      dx[i] = dy[i] * (T(0.5) * (T(1) + t) + T(0.5) * v * (T(1) - t * t) * du);
    });
  else
    for_each_element(M, [=](std::int64_t i) {
      const T v = x[i], cdf = T(0.5) * (T(1) + std::erf(v * inv_sqrt2)), pdf = inv_sqrt_2pi * std::exp(T(-0.5) * v * v);
      dx[i] = dy[i] * (cdf + v * pdf);
    });
}

// y = x·σ(x) = x / (1 + exp(−x)).
template <class T>
void silu_forward(T* y, const T* x, std::int64_t M) {
  for_each_element(M, [=](std::int64_t i) { y[i] = x[i] / (T(1) + std::exp(-x[i])); });
}

// dy/dx = σ + x·σ(1 − σ) = σ·(1 + x·(1 − σ)).
template <class T>
void silu_backward(T* dx, const T* dy, const T* x, std::int64_t M) {
  for_each_element(M, [=](std::int64_t i) {
    const T s = T(1) / (T(1) + std::exp(-x[i]));
    dx[i] = dy[i] * s * (T(1) + x[i] * (T(1) - s));
  });
}

// --- the shared function part ------------------------------------------------------------------

// y = forward(x) over x's contiguous data; one tape entry `grad_fn` whose backward maps dy to
// dx = backward(dy, x). forward and backward are called as f.template operator()<T>(...).
template <class Forward, class Backward>
Tensor elementwise_activation(const char* op, const char* grad_fn, const Tensor& x, Forward forward,
                              Backward backward) {
  TG_CHECK(x.defined(), "[{}] expected a defined input", op);
  TG_CHECK(is_floating(x.dtype()), "[{}] expected a floating point input, got {}", op, dtype_name(x.dtype()));
  Tensor xc = native::contiguous(x);
  Tensor y = Tensor::empty(x.sizes(), x.dtype());
  dispatch_floating(x.dtype(), [&]<class T>() {
    forward.template operator()<T>(y.data_ptr<T>(), xc.data_ptr<T>(), x.numel());
  });
  return autograd::record(grad_fn, y, {x}, [xc, backward](const Tensor& g) {
    Tensor dy = native::contiguous(g);
    Tensor dx = Tensor::empty(dy.sizes(), dy.dtype());
    dispatch_floating(dy.dtype(), [&]<class T>() {
      backward.template operator()<T>(dx.data_ptr<T>(), dy.data_ptr<T>(), xc.data_ptr<T>(), dy.numel());
    });
    return std::vector<Tensor>{dx};
  });
}

bool gelu_uses_tanh(const std::string& approximate, const char* op) {
  TG_CHECK(approximate == "none" || approximate == "tanh",
           "[{}] expected approximate to be 'none' or 'tanh', got '{}'", op, approximate);
  return approximate == "tanh";
}

}  // namespace

// --- the differentiable functions ----------------------------------------------------------------

Tensor leaky_relu(const Tensor& x, double negative_slope) {
  return elementwise_activation(
      "leaky_relu", "LeakyReluBackward0", x,
      [negative_slope]<class T>(T* y, const T* xp, std::int64_t M) {
        leaky_relu_forward<T>(y, xp, static_cast<T>(negative_slope), M);
      },
      [negative_slope]<class T>(T* dx, const T* dy, const T* xp, std::int64_t M) {
        leaky_relu_backward<T>(dx, dy, xp, static_cast<T>(negative_slope), M);
      });
}

Tensor gelu(const Tensor& x, const std::string& approximate) {
  const bool tanh_approx = gelu_uses_tanh(approximate, "gelu");
  return elementwise_activation(
      "gelu", "GeluBackward0", x,
      [tanh_approx]<class T>(T* y, const T* xp, std::int64_t M) { gelu_forward<T>(y, xp, tanh_approx, M); },
      [tanh_approx]<class T>(T* dx, const T* dy, const T* xp, std::int64_t M) {
        gelu_backward<T>(dx, dy, xp, tanh_approx, M);
      });
}

Tensor silu(const Tensor& x) {
  return elementwise_activation(
      "silu", "SiluBackward0", x, []<class T>(T* y, const T* xp, std::int64_t M) { silu_forward<T>(y, xp, M); },
      []<class T>(T* dx, const T* dy, const T* xp, std::int64_t M) { silu_backward<T>(dx, dy, xp, M); });
}

// --- the modules ----------------------------------------------------------------------------

namespace nn {

std::string LeakyReLU::extra_repr() const { return fmt::format("negative_slope={}", negative_slope); }

GELU::GELU(std::string approximate_) : approximate(std::move(approximate_)) { gelu_uses_tanh(approximate, "GELU"); }

Tensor Softmax::forward(const Tensor& input) { return softmax(input, dim); }
std::string Softmax::extra_repr() const { return fmt::format("dim={}", dim); }

Tensor LogSoftmax::forward(const Tensor& input) { return log_softmax(input, dim); }
std::string LogSoftmax::extra_repr() const { return fmt::format("dim={}", dim); }

}  // namespace nn

}  // namespace tg
