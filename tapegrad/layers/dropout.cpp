// dropout: zeroes each element (dropout) or each channel (dropout1d, dropout2d) with
// probability p and scales the kept ones by 1/(1 − p), with the mask drawn from the global
// generator; one tape entry whose backward reuses the mask; and nn::Dropout, Dropout1d, Dropout2d.
// Layer: layers; must not know optimizers.
#include "tapegrad/layers/dropout.h"

#include <cstdint>
#include <vector>

#include "tapegrad/autograd/tape.h"
#include "tapegrad/core/native.h"
#include "tapegrad/core/parallel.h"
#include "tapegrad/core/random.h"

namespace tg {

namespace {

// --- kernels: R rows of S elements (S = 1: every element is its own row) -------------------------
// Plain dropout draws one mask value per element; feature dropout (dropout1d/2d) one per
// channel row, shared by its S = L or H·W values.

// mask[r] = scale where u ≥ p (probability 1 − p) else 0, written over the draw u;
// y[r, s] = x[r, s] · mask[r].
template <class T>
void dropout_forward(T* y, T* mask, const T* x, T p, T scale, std::int64_t R, std::int64_t S) {
  parallel_for(0, R, R * S, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t r = lo; r < hi; ++r) {
      const T m = mask[r] = mask[r] >= p ? scale : T(0);
      for (std::int64_t s = 0; s < S; ++s) y[r * S + s] = x[r * S + s] * m;
    }
  });
}

// y = x · mask  ⇒  dx = dy · mask.
template <class T>
void dropout_backward(T* dx, const T* dy, const T* mask, std::int64_t R, std::int64_t S) {
  parallel_for(0, R, R * S, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t r = lo; r < hi; ++r)
      for (std::int64_t s = 0; s < S; ++s) dx[r * S + s] = dy[r * S + s] * mask[r];
  });
}

// Dropout over R rows of S values of x viewed as [R, S], one mask value per row, recorded as
// `grad_fn`. x is floating and p in [0, 1] (checked by the caller).
Tensor dropout_rows(const Tensor& x, double p, std::int64_t R, std::int64_t S, const char* grad_fn) {
  Tensor xc = native::contiguous(x);
  Tensor mask = rand({R}, x.dtype());  // uniform draws, turned into the scaled mask in place
  Tensor y = Tensor::empty(x.sizes(), x.dtype());
  dispatch_floating(x.dtype(), [&]<class T>() {
    const T scale = p == 1.0 ? T(0) : static_cast<T>(1.0 / (1.0 - p));
    dropout_forward<T>(y.data_ptr<T>(), mask.data_ptr<T>(), xc.data_ptr<T>(), static_cast<T>(p), scale, R, S);
  });
  return autograd::record(
      grad_fn, y, {x},
      [mask, R, S](const Tensor& g) {
        Tensor dy = native::contiguous(g);
        Tensor dx = Tensor::empty(dy.sizes(), dy.dtype());
        dispatch_floating(dy.dtype(), [&]<class T>() {
          dropout_backward<T>(dx.data_ptr<T>(), dy.data_ptr<T>(), mask.data_ptr<T>(), R, S);
        });
        return std::vector<Tensor>{dx};
      },
      {});
}

void check_dropout(const Tensor& x, double p, const char* op) {
  TG_CHECK(p >= 0.0 && p <= 1.0, "[{}] expected a probability p in [0, 1], got {}", op, p);
  TG_CHECK(x.defined(), "[{}] expected a defined input", op);
  TG_CHECK(is_floating(x.dtype()), "[{}] expected a floating point input, got {}", op, dtype_name(x.dtype()));
}

// PyTorch's feature_dropout: x [d0, d1, *] loses whole rows x[i, j, ...] (one draw per (i, j)).
Tensor feature_dropout(const Tensor& x, double p, bool training) {
  if (!training || p == 0.0 || x.numel() == 0) return x;
  const std::int64_t R = x.size(0) * x.size(1);
  return dropout_rows(x, p, R, x.numel() / R, "MulBackward0");
}

}  // namespace

// --- the differentiable function ------------------------------------------------------------------

Tensor dropout(const Tensor& x, double p, bool training) {
  check_dropout(x, p, "dropout");
  if (!training || p == 0.0 || x.numel() == 0) return x;  // the identity, as PyTorch: the same tensor
  return dropout_rows(x, p, x.numel(), 1, "NativeDropoutBackward0");
}

Tensor dropout1d(const Tensor& x, double p, bool training) {
  check_dropout(x, p, "dropout1d");
  TG_CHECK(x.dim() == 2 || x.dim() == 3,
           "[dropout1d] expected a 2-D input [C, L] or a 3-D input [N, C, L], got {}-D input of shape {}", x.dim(),
           x.sizes());
  if (x.dim() == 3) return feature_dropout(x, p, training);
  return feature_dropout(x.unsqueeze(0), p, training).squeeze(0);
}

Tensor dropout2d(const Tensor& x, double p, bool training) {
  check_dropout(x, p, "dropout2d");
  TG_CHECK(x.dim() == 3 || x.dim() == 4,
           "[dropout2d] expected a 4-D input [N, C, H, W] or a 3-D input [N, C, L], got {}-D input of shape {}",
           x.dim(), x.sizes());
  return feature_dropout(x, p, training);
}

// --- the module ---------------------------------------------------------------------------

namespace nn {

Dropout::Dropout(double p_) : Dropout(p_, "Dropout") {}

Dropout::Dropout(double p_, const char* module) : p(p_) {
  TG_CHECK(p >= 0.0 && p <= 1.0, "[{}] dropout probability has to be between 0 and 1, but got {}", module, p);
}

Tensor Dropout::forward(const Tensor& input) { return dropout(input, p, is_training()); }
std::string Dropout::extra_repr() const { return fmt::format("p={}, inplace=False", p); }

Dropout1d::Dropout1d(double p_) : Dropout(p_, "Dropout1d") {}
Tensor Dropout1d::forward(const Tensor& input) { return dropout1d(input, p, is_training()); }

Dropout2d::Dropout2d(double p_) : Dropout(p_, "Dropout2d") {}
Tensor Dropout2d::forward(const Tensor& input) { return dropout2d(input, p, is_training()); }

}  // namespace nn

}  // namespace tg
