// conv2d: im2col + one GEMM per group over the whole batch, col2im for the input's gradient, and
// the differentiable function that records one "ConvolutionBackward0" entry.
// Layer: layers; must not depend on modules or optimizers.
#include <omp.h>

#include <algorithm>

#include "autograd/tape.h"
#include "core/blas.h"
#include "core/native.h"
#include "core/parallel.h"
#include "layers/functional.h"

namespace tg {

namespace {

// N batch, C input channels, F filters, G groups (Cg = C/G, Fg = F/G), H×W input, KH×KW kernel,
// OH×OW output, P = OH·OW, NP = N·P; R = Cg·KH·KW rows of one group's im2col columns.
struct ConvShape {
  std::int64_t N, C, H, W, F, KH, KW, SH, SW, PH, PW, G, OH, OW;
  std::int64_t P() const { return OH * OW; }
  std::int64_t NP() const { return N * OH * OW; }
  std::int64_t Fg() const { return F / G; }
  std::int64_t R() const { return C / G * KH * KW; }
};

// The outputs o in [lo, hi) whose input index o·stride − pad + k falls inside [0, size).
void valid_range(std::int64_t& lo, std::int64_t& hi, std::int64_t size, std::int64_t out, std::int64_t stride,
                 std::int64_t pad, std::int64_t k) {
  std::int64_t first = pad - k, end = size + pad - k;
  lo = first <= 0 ? 0 : (first + stride - 1) / stride;
  hi = end <= 0 ? 0 : std::min(out, (end + stride - 1) / stride);
  lo = std::min(lo, hi);
}

// cols [C·KH·KW, NP]: row (c, kh, kw), column (n, oh, ow) holds x[n, c, oh·SH − PH + kh, ow·SW − PW + kw],
// zero where that falls in the padding.
template <class T>
void im2col(T* cols, const T* x, const ConvShape& s) {
  const std::int64_t rows = s.C * s.KH * s.KW, P = s.P(), NP = s.NP();
#pragma omp parallel for collapse(2) schedule(static) if (rows * NP >= kParallelGrain)
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t n = 0; n < s.N; ++n) {
      const std::int64_t c = r / (s.KH * s.KW), kh = r / s.KW % s.KH, kw = r % s.KW;
      const T* plane = x + (n * s.C + c) * s.H * s.W;
      T* dst = cols + r * NP + n * P;
      std::int64_t lo, hi;
      valid_range(lo, hi, s.W, s.OW, s.SW, s.PW, kw);
      const std::int64_t shift = kw - s.PW;  // iw = ow·SW + shift
      for (std::int64_t oh = 0; oh < s.OH; ++oh, dst += s.OW) {
        const std::int64_t ih = oh * s.SH - s.PH + kh;
        if (ih < 0 || ih >= s.H) {
          std::fill(dst, dst + s.OW, T(0));
          continue;
        }
        const T* row = plane + ih * s.W;
        std::fill(dst, dst + lo, T(0));
        if (s.SW == 1) std::copy(row + lo + shift, row + hi + shift, dst + lo);
        else
          for (std::int64_t ow = lo; ow < hi; ++ow) dst[ow] = row[ow * s.SW + shift];
        std::fill(dst + hi, dst + s.OW, T(0));
      }
    }
  }
}

// The adjoint of im2col: dx[n, c, ih, iw] = Σ of dcols over the entries im2col copied x[n, c, ih, iw] to.
// One (n, c) plane per iteration, so threads never write the same element.
template <class T>
void col2im(T* dx, const T* dcols, const ConvShape& s) {
  const std::int64_t P = s.P(), NP = s.NP();
#pragma omp parallel for collapse(2) schedule(static) if (s.C * s.KH * s.KW * NP >= kParallelGrain)
  for (std::int64_t n = 0; n < s.N; ++n) {
    for (std::int64_t c = 0; c < s.C; ++c) {
      T* plane = dx + (n * s.C + c) * s.H * s.W;
      std::fill(plane, plane + s.H * s.W, T(0));
      for (std::int64_t kh = 0; kh < s.KH; ++kh) {
        for (std::int64_t kw = 0; kw < s.KW; ++kw) {
          const T* src = dcols + ((c * s.KH + kh) * s.KW + kw) * NP + n * P;
          std::int64_t lo, hi;
          valid_range(lo, hi, s.W, s.OW, s.SW, s.PW, kw);
          const std::int64_t shift = kw - s.PW;
          for (std::int64_t oh = 0; oh < s.OH; ++oh, src += s.OW) {
            const std::int64_t ih = oh * s.SH - s.PH + kh;
            if (ih < 0 || ih >= s.H) continue;
            T* row = plane + ih * s.W;
            for (std::int64_t ow = lo; ow < hi; ++ow) row[ow * s.SW + shift] += src[ow];
          }
        }
      }
    }
  }
}

// --- the kernel pair ----------------------------------------------------------------------------

// y [N, F, OH, OW]; cols [C·KH·KW, NP] is kept for dweight; ycols [F, NP] is scratch.
template <class T>
void conv2d_forward(T* y, T* cols, T* ycols, const T* x, const T* weight, const T* bias, const ConvShape& s) {
  const std::int64_t P = s.P(), NP = s.NP(), Fg = s.Fg(), R = s.R();
  im2col(cols, x, s);
  for (std::int64_t g = 0; g < s.G; ++g)  // ycols_g [Fg, NP] = weight_g [Fg, R] · cols_g [R, NP]
    blas::gemm(false, false, Fg, NP, R, T(1), weight + g * Fg * R, R, cols + g * R * NP, NP, T(0),
               ycols + g * Fg * NP, NP);
#pragma omp parallel for collapse(2) schedule(static) if (s.F * NP >= kParallelGrain)
  for (std::int64_t n = 0; n < s.N; ++n) {
    for (std::int64_t f = 0; f < s.F; ++f) {  // y[n, f, p] = ycols[f, n·P + p] + bias[f]
      const T* src = ycols + f * NP + n * P;
      T* dst = y + (n * s.F + f) * P;
      const T b = bias ? bias[f] : T(0);
      for (std::int64_t p = 0; p < P; ++p) dst[p] = src[p] + b;
    }
  }
}

// y[n, f, p] = Σ_r weight[f, r] · cols[g·R + r, n·P + p] + bias[f] (g = f / Fg). With the gradient
// gathered as dyT[f, n·P + p] = dy[n, f, p]:
//   dbias[f]  = Σ_{n,p} dy[n, f, p]
//   dweight_g = dyT_g · cols_gᵀ      [Fg, NP]·[NP, R]
//   dcols_g   = weight_gᵀ · dyT_g    [R, Fg]·[Fg, NP],   dx = col2im(dcols)
// dx, dweight, dbias are null when not wanted; dyT [F, NP] and dcols [C·KH·KW, NP] are scratch.
template <class T>
void conv2d_backward(T* dx, T* dweight, T* dbias, T* dyT, T* dcols, const T* dy, const T* cols, const T* weight,
                     const ConvShape& s) {
  const std::int64_t P = s.P(), NP = s.NP(), Fg = s.Fg(), R = s.R();
#pragma omp parallel for schedule(static) if (s.F * NP >= kParallelGrain)
  for (std::int64_t f = 0; f < s.F; ++f) {  // dyT and dbias in one pass
    double sum = 0;
    for (std::int64_t n = 0; n < s.N; ++n) {
      const T* src = dy + (n * s.F + f) * P;
      T* dst = dyT + f * NP + n * P;
      T part = 0;
      for (std::int64_t p = 0; p < P; ++p) {
        dst[p] = src[p];
        part += src[p];
      }
      sum += part;
    }
    if (dbias) dbias[f] = static_cast<T>(sum);
  }
  for (std::int64_t g = 0; g < s.G; ++g) {
    if (dweight)
      blas::gemm(false, true, Fg, R, NP, T(1), dyT + g * Fg * NP, NP, cols + g * R * NP, NP, T(0),
                 dweight + g * Fg * R, R);
    if (dx)
      blas::gemm(true, false, R, NP, Fg, T(1), weight + g * Fg * R, R, dyT + g * Fg * NP, NP, T(0),
                 dcols + g * R * NP, NP);
  }
  if (dx) col2im(dx, dcols, s);
}

ConvShape conv2d_shape(const Tensor& x, const Tensor& weight, const Tensor& bias, Size2 stride, Size2 padding,
                       std::int64_t groups) {
  TG_CHECK(x.defined() && weight.defined(), "[conv2d] expected a defined input and weight");
  TG_CHECK(x.dim() == 4, "[conv2d] expected input of shape [N, C, H, W], got {}", x.sizes());
  TG_CHECK(weight.dim() == 4, "[conv2d] expected weight of shape [F, C/groups, KH, KW], got {}", weight.sizes());
  TG_CHECK(is_floating(x.dtype()), "[conv2d] expected a float32 or float64 input, got {}", dtype_name(x.dtype()));
  TG_CHECK(x.dtype() == weight.dtype(), "[conv2d] expected input and weight of one dtype, got {} and {}",
           dtype_name(x.dtype()), dtype_name(weight.dtype()));
  TG_CHECK(stride.h >= 1 && stride.w >= 1, "[conv2d] expected a positive stride, got [{}, {}]", stride.h, stride.w);
  TG_CHECK(padding.h >= 0 && padding.w >= 0, "[conv2d] expected a non-negative padding, got [{}, {}]", padding.h,
           padding.w);
  TG_CHECK(groups >= 1, "[conv2d] expected groups >= 1, got {}", groups);
  ConvShape s{};
  s.N = x.size(0), s.C = x.size(1), s.H = x.size(2), s.W = x.size(3);
  s.F = weight.size(0), s.KH = weight.size(2), s.KW = weight.size(3);
  s.SH = stride.h, s.SW = stride.w, s.PH = padding.h, s.PW = padding.w, s.G = groups;
  TG_CHECK(s.F >= 1 && weight.size(1) >= 1 && s.KH >= 1 && s.KW >= 1, "[conv2d] expected a non-empty weight, got {}",
           weight.sizes());
  TG_CHECK(s.F % groups == 0, "[conv2d] expected the filters of weight {} to divide into groups={}", weight.sizes(),
           groups);
  TG_CHECK(s.C % groups == 0, "[conv2d] expected the channels of input {} to divide into groups={}", x.sizes(), groups);
  TG_CHECK(weight.size(1) * groups == s.C,
           "[conv2d] expected input {} to have {} channels (weight {}, groups={}), got {} channels", x.sizes(),
           weight.size(1) * groups, weight.sizes(), groups, s.C);
  if (bias.defined()) {
    TG_CHECK(bias.dtype() == x.dtype(), "[conv2d] expected bias of dtype {}, got {}", dtype_name(x.dtype()),
             dtype_name(bias.dtype()));
    TG_CHECK(bias.dim() == 1 && bias.size(0) == s.F, "[conv2d] expected bias of shape [{}], got {}", s.F,
             bias.sizes());
  }
  TG_CHECK(s.KH <= s.H + 2 * s.PH && s.KW <= s.W + 2 * s.PW,
           "[conv2d] kernel size [{}, {}] is larger than the padded input size [{}, {}] (input {})", s.KH, s.KW,
           s.H + 2 * s.PH, s.W + 2 * s.PW, x.sizes());
  s.OH = (s.H + 2 * s.PH - s.KH) / s.SH + 1;
  s.OW = (s.W + 2 * s.PW - s.KW) / s.SW + 1;
  return s;
}

}  // namespace

// --- the differentiable function ----------------------------------------------------------------

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Size2 stride, Size2 padding,
              std::int64_t groups) {
  const ConvShape s = conv2d_shape(x, weight, bias, stride, padding, groups);
  const DType dt = x.dtype();
  Tensor xc = native::contiguous(x), wc = native::contiguous(weight);
  Tensor bc = bias.defined() ? native::contiguous(bias) : Tensor();
  Tensor y = Tensor::empty({s.N, s.F, s.OH, s.OW}, dt);
  Tensor cols = Tensor::empty({s.C * s.KH * s.KW, s.NP()}, dt);
  if (y.numel() > 0) {
    Tensor ycols = Tensor::empty({s.F, s.NP()}, dt);
    dispatch_floating(dt, [&]<class T>() {
      conv2d_forward(y.data_ptr<T>(), cols.data_ptr<T>(), ycols.data_ptr<T>(), xc.data_ptr<T>(), wc.data_ptr<T>(),
                     bc.defined() ? bc.data_ptr<T>() : nullptr, s);
    });
  }
  if (!autograd::needs_grad({x, weight, bias})) return y;

  const bool need_dx = x.requires_grad(), need_dw = weight.requires_grad();
  const bool need_db = bias.defined() && bias.requires_grad();
  // dweight reads the columns, dx reads the weight: keep only those.
  auto backward = [s, dt, need_dx, need_dw, need_db, cols = need_dw ? cols : Tensor(),
                   w = need_dx ? wc : Tensor()](const Tensor& grad) {
    Tensor dy = native::contiguous(grad);
    Tensor dx = need_dx ? Tensor::empty({s.N, s.C, s.H, s.W}, dt) : Tensor();
    Tensor dw = need_dw ? Tensor::empty({s.F, s.C / s.G, s.KH, s.KW}, dt) : Tensor();
    Tensor db = need_db ? Tensor::empty({s.F}, dt) : Tensor();
    if (dy.numel() == 0) {
      for (Tensor* t : {&dx, &dw, &db})
        if (t->defined()) native::fill_(*t, 0);
      return std::vector<Tensor>{dx, dw, db};
    }
    Tensor dyT = Tensor::empty({s.F, s.NP()}, dt);
    Tensor dcols = need_dx ? Tensor::empty({s.C * s.KH * s.KW, s.NP()}, dt) : Tensor();
    dispatch_floating(dt, [&]<class T>() {
      auto ptr = [](const Tensor& t) { return t.defined() ? t.data_ptr<T>() : nullptr; };
      conv2d_backward(ptr(dx), ptr(dw), ptr(db), ptr(dyT), ptr(dcols), dy.data_ptr<T>(), ptr(cols), ptr(w), s);
    });
    return std::vector<Tensor>{dx, dw, db};
  };
  return autograd::record("ConvolutionBackward0", y, {x, weight, bias}, std::move(backward),
                          need_dx ? std::vector<Tensor>{weight} : std::vector<Tensor>{});
}

}  // namespace tg
