// linear: y = x · weightᵀ + bias over the last dim of x, one GEMM against the weight as stored
// (PyTorch's [out, in] layout, transposed by the GEMM, never copied), the hand-derived
// backward as one tape entry. Layer: layers; must not know modules or optimizers.
#include "tapegrad/layers/linear.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "tapegrad/autograd/tape.h"
#include "tapegrad/core/blas.h"
#include "tapegrad/core/native.h"
#include "tapegrad/core/parallel.h"
#include "tapegrad/layers/init.h"

namespace tg {

namespace {

// --- kernels: B rows of x (every dim but the last), I in-features, O out-features ---------------

// Below this many multiply-adds in the two backward GEMMs together, they run one after the other
// (each splitting itself when it is large enough).
constexpr std::int64_t kTwoGemmGrain = std::int64_t{1} << 20;

// C[m, n] = op(A) · op(B) + beta·C through OpenBLAS, tolerating empty operands (k = 0 gives 0).
template <class T>
void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, const T* a, std::int64_t lda,
          const T* b, std::int64_t ldb, T beta, T* c) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (beta == T(0)) std::fill(c, c + m * n, T(0));
    return;
  }
  blas::gemm(trans_a, trans_b, m, n, k, T(1), a, lda, b, ldb, beta, c, n);
}

// y[B, O] = x[B, I] · weight[O, I]ᵀ + bias[O]: rows start as the bias, then one GEMM adds onto them.
template <class T>
void linear_forward(T* y, const T* x, const T* weight, const T* bias, std::int64_t B, std::int64_t I,
                    std::int64_t O) {
  for (std::int64_t b = 0; b < B && bias; ++b) std::copy(bias, bias + O, y + b * O);
  gemm(false, true, B, O, I, x, I, weight, I, bias ? T(1) : T(0), y);
}

// y = x·weightᵀ + bias, so for each row:
//   dx = dy · weight   [B, O]·[O, I],   dweight = dyᵀ · x   [O, B]·[B, I],   dbias = Σ_B dy.
// Outputs that are not wanted are null. dx and dweight are two GEMMs of the same B·I·O size: on
// several threads each runs whole on its own thread (task 0 on the caller), which measured faster at
// LeNet's sizes than splitting each GEMM in halves whose operands both threads pack.
template <class T>
void linear_backward(T* dx, T* dweight, T* dbias, const T* dy, const T* x, const T* weight, std::int64_t B,
                     std::int64_t I, std::int64_t O) {
  auto task = [&](std::int64_t t) {
    if (t == 0 && dx) gemm(false, false, B, I, O, dy, O, weight, I, T(0), dx);
    if (t == 1 && dweight) gemm(true, false, O, I, B, dy, O, x, I, T(0), dweight);
    if (t == 1 && dbias) {
      std::vector<double> acc(static_cast<std::size_t>(O), 0.0);
      for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t o = 0; o < O; ++o) acc[static_cast<std::size_t>(o)] += static_cast<double>(dy[b * O + o]);
      for (std::int64_t o = 0; o < O; ++o) dbias[o] = static_cast<T>(acc[static_cast<std::size_t>(o)]);
    }
  };
  if (dx && dweight) {
    parallel_for(0, 2, 2 * B * I * O, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t t = lo; t < hi; ++t) task(t);
    }, kTwoGemmGrain);
  } else {
    task(0);
    task(1);
  }
}

}  // namespace

// --- the differentiable function ------------------------------------------------------------------

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  TG_CHECK(x.dim() >= 1, "[linear] expected input of shape [*, in_features], got {}", x.sizes());
  TG_CHECK(weight.dim() == 2, "[linear] expected weight of shape [out_features, in_features], got {}",
           weight.sizes());
  const std::int64_t I = weight.size(1), O = weight.size(0);
  TG_CHECK(x.size(-1) == I, "[linear] input {} has {} features, weight {} expects {}", x.sizes(), x.size(-1),
           weight.sizes(), I);
  TG_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == O),
           "[linear] expected bias of shape [{}] for weight {}, got {}", O, weight.sizes(),
           bias.defined() ? bias.sizes() : Shape{});
  TG_CHECK(is_floating(x.dtype()) && weight.dtype() == x.dtype() && (!bias.defined() || bias.dtype() == x.dtype()),
           "[linear] expected input, weight and bias of one floating point dtype, got {}, {} and {}",
           dtype_name(x.dtype()), dtype_name(weight.dtype()), bias.defined() ? dtype_name(bias.dtype()) : "none");
  Shape out_sizes = x.sizes();
  out_sizes.back() = O;
  std::int64_t B = 1;  // the rows: every dim but the last
  for (std::int64_t d = 0; d + 1 < x.dim(); ++d) B *= x.size(d);
  Tensor xc = native::contiguous(x), wc = native::contiguous(weight);
  Tensor bc = bias.defined() ? native::contiguous(bias) : Tensor();
  Tensor y = Tensor::empty(out_sizes, x.dtype());
  dispatch_floating(x.dtype(), [&]<class T>() {
    linear_forward<T>(y.data_ptr<T>(), xc.data_ptr<T>(), wc.data_ptr<T>(), bc.defined() ? bc.data_ptr<T>() : nullptr,
                      B, I, O);
  });

  // PyTorch's names: addmm / mm for a matrix input, a view of them for any other rank.
  const char* name = x.dim() == 2 ? (bias.defined() ? "AddmmBackward0" : "MmBackward0")
                                  : (bias.defined() ? "ViewBackward0" : "UnsafeViewBackward0");
  const bool gx = x.requires_grad(), gw = weight.requires_grad(), gb = bias.defined() && bias.requires_grad();
  return autograd::record(
      name, y, {x, weight, bias},
      [x_saved = gw ? xc : Tensor(), w_saved = gx ? wc : Tensor(), x_sizes = x.sizes(), gx, gw, gb, B, I,
       O](const Tensor& g) {
        Tensor dy = native::contiguous(g);
        Tensor dx = gx ? Tensor::empty(x_sizes, dy.dtype()) : Tensor();
        Tensor dweight = gw ? Tensor::empty({O, I}, dy.dtype()) : Tensor();
        Tensor dbias = gb ? Tensor::empty({O}, dy.dtype()) : Tensor();
        dispatch_floating(dy.dtype(), [&]<class T>() {
          auto ptr = [](const Tensor& t) { return t.defined() ? t.data_ptr<T>() : nullptr; };
          linear_backward<T>(ptr(dx), ptr(dweight), ptr(dbias), dy.data_ptr<T>(), ptr(x_saved), ptr(w_saved), B,
                             I, O);
        });
        return std::vector<Tensor>{dx, dweight, dbias};
      },
      {x, weight});
}

// --- the module ---------------------------------------------------------------------------

namespace nn {

Linear::Linear(std::int64_t in, std::int64_t out, bool with_bias) : in_features(in), out_features(out) {
  TG_CHECK(in >= 0 && out >= 0, "[Linear] expected non-negative features, got in_features={}, out_features={}", in,
           out);
  weight = register_parameter("weight", empty({out, in}));
  if (with_bias) bias = register_parameter("bias", empty({out}));
  reset_parameters();
}

void Linear::reset_parameters() { init::default_reset_(weight, bias); }

Tensor Linear::forward(const Tensor& input) {
  TG_CHECK(input.dim() >= 1 && input.size(-1) == in_features,
           "[Linear] expected input of shape [*, {}], got {}", in_features, input.sizes());
  return linear(input, weight, bias);
}

std::string Linear::extra_repr() const {
  return fmt::format("in_features={}, out_features={}, bias={}", in_features, out_features,
                     bias.defined() ? "True" : "False");
}

}  // namespace nn

}  // namespace tg
