// dropout: zeroes each element with probability p and scales the kept ones by 1/(1 − p), with
// the mask drawn from the global generator; one tape entry whose backward reuses the mask; and
// nn::Dropout.
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

// --- kernels: M elements ---------------------------------------------------------------------

// mask = scale where u ≥ p (probability 1 − p) else 0, written over u; y = x · mask.
template <class T>
void dropout_forward(T* y, T* mask, const T* x, T p, T scale, std::int64_t M) {
  parallel_for(0, M, M, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i) {
      mask[i] = mask[i] >= p ? scale : T(0);
      y[i] = x[i] * mask[i];
    }
  });
}

// y = x · mask  ⇒  dx = dy · mask.
template <class T>
void dropout_backward(T* dx, const T* dy, const T* mask, std::int64_t M) {
  parallel_for(0, M, M, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i) dx[i] = dy[i] * mask[i];
  });
}

}  // namespace

// --- the differentiable function ------------------------------------------------------------------

Tensor dropout(const Tensor& x, double p, bool training) {
  TG_CHECK(p >= 0.0 && p <= 1.0, "[dropout] expected a probability p in [0, 1], got {}", p);
  TG_CHECK(is_floating(x.dtype()), "[dropout] expected a floating point input, got {}", dtype_name(x.dtype()));
  if (!training || p == 0.0 || x.numel() == 0) return x;  // the identity, as PyTorch: the same tensor
  Tensor xc = native::contiguous(x);
  Tensor mask = rand(x.sizes(), x.dtype());  // uniform draws, turned into the scaled mask in place
  Tensor y = Tensor::empty(x.sizes(), x.dtype());
  const std::int64_t M = x.numel();
  dispatch_floating(x.dtype(), [&]<class T>() {
    const T scale = p == 1.0 ? T(0) : static_cast<T>(1.0 / (1.0 - p));
    dropout_forward<T>(y.data_ptr<T>(), mask.data_ptr<T>(), xc.data_ptr<T>(), static_cast<T>(p), scale, M);
  });
  return autograd::record(
      "NativeDropoutBackward0", y, {x},
      [mask, M](const Tensor& g) {
        Tensor dy = native::contiguous(g);
        Tensor dx = Tensor::empty(dy.sizes(), dy.dtype());
        dispatch_floating(dy.dtype(), [&]<class T>() {
          dropout_backward<T>(dx.data_ptr<T>(), dy.data_ptr<T>(), mask.data_ptr<T>(), M);
        });
        return std::vector<Tensor>{dx};
      },
      {});
}

// --- the module ---------------------------------------------------------------------------

namespace nn {

Dropout::Dropout(double p_) : p(p_) {
  TG_CHECK(p >= 0.0 && p <= 1.0, "[Dropout] dropout probability has to be between 0 and 1, but got {}", p);
}

Tensor Dropout::forward(const Tensor& input) { return dropout(input, p, is_training()); }

std::string Dropout::extra_repr() const { return fmt::format("p={}, inplace=False", p); }

}  // namespace nn

}  // namespace tg
