// avg_pool2d and max_pool2d: kernel pairs over one [H, W] plane at a time, and the differentiable
// functions that record "AvgPool2DBackward0" / "MaxPool2DWithIndicesBackward0".
// Layer: layers; must not depend on modules or optimizers.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "autograd/tape.h"
#include "core/native.h"
#include "core/parallel.h"
#include "layers/functional.h"

namespace tg {

namespace {

// NC = N·C planes of H×W input, KH×KW window moved by SH×SW over the input padded by PH×PW,
// OH×OW output.
struct PoolShape {
  std::int64_t N, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW;
  std::int64_t NC() const { return N * C; }
  // The 2×2, stride 2, unpadded case LeNet-style networks use: windows tile the input.
  bool tiles_2x2() const { return KH == 2 && KW == 2 && SH == 2 && SW == 2 && PH == 0 && PW == 0; }
};

// The window of output (oh, ow) clipped to the input: rows [h0, h1), columns [w0, w1).
struct Window {
  std::int64_t h0, h1, w0, w1;
};
Window window_of(const PoolShape& s, std::int64_t oh, std::int64_t ow) {
  std::int64_t h0 = oh * s.SH - s.PH, w0 = ow * s.SW - s.PW;
  return {std::max<std::int64_t>(h0, 0), std::min(h0 + s.KH, s.H), std::max<std::int64_t>(w0, 0),
          std::min(w0 + s.KW, s.W)};
}

bool parallel_worth(const PoolShape& s) { return s.NC() * s.H * s.W >= kParallelGrain; }

// --- avg_pool2d ---------------------------------------------------------------------------------

// y[oh, ow] = Σ x over the window / (KH·KW): padding counts as zeros (count_include_pad).
template <class T>
void avg_pool2d_forward(T* y, const T* x, const PoolShape& s) {
  const T scale = T(1) / static_cast<T>(s.KH * s.KW);
#pragma omp parallel for schedule(static) if (parallel_worth(s))
  for (std::int64_t nc = 0; nc < s.NC(); ++nc) {
    const T* xp = x + nc * s.H * s.W;
    T* yp = y + nc * s.OH * s.OW;
    if (s.tiles_2x2()) {
      for (std::int64_t oh = 0; oh < s.OH; ++oh) {
        const T *r0 = xp + 2 * oh * s.W, *r1 = r0 + s.W;
        for (std::int64_t ow = 0; ow < s.OW; ++ow)
          yp[oh * s.OW + ow] = (r0[2 * ow] + r0[2 * ow + 1] + r1[2 * ow] + r1[2 * ow + 1]) * scale;
      }
      continue;
    }
    for (std::int64_t oh = 0; oh < s.OH; ++oh) {
      for (std::int64_t ow = 0; ow < s.OW; ++ow) {
        const Window win = window_of(s, oh, ow);
        T sum = 0;
        for (std::int64_t ih = win.h0; ih < win.h1; ++ih)
          for (std::int64_t iw = win.w0; iw < win.w1; ++iw) sum += xp[ih * s.W + iw];
        yp[oh * s.OW + ow] = sum * scale;
      }
    }
  }
}

// Each x in the window of (oh, ow) enters y[oh, ow] with weight 1/(KH·KW):
//   dx[ih, iw] = Σ over the windows holding (ih, iw) of dy[oh, ow] / (KH·KW)
template <class T>
void avg_pool2d_backward(T* dx, const T* dy, const PoolShape& s) {
  const T scale = T(1) / static_cast<T>(s.KH * s.KW);
#pragma omp parallel for schedule(static) if (parallel_worth(s))
  for (std::int64_t nc = 0; nc < s.NC(); ++nc) {
    T* dxp = dx + nc * s.H * s.W;
    const T* dyp = dy + nc * s.OH * s.OW;
    std::fill(dxp, dxp + s.H * s.W, T(0));
    for (std::int64_t oh = 0; oh < s.OH; ++oh) {
      for (std::int64_t ow = 0; ow < s.OW; ++ow) {
        const Window win = window_of(s, oh, ow);
        const T g = dyp[oh * s.OW + ow] * scale;
        for (std::int64_t ih = win.h0; ih < win.h1; ++ih)
          for (std::int64_t iw = win.w0; iw < win.w1; ++iw) dxp[ih * s.W + iw] += g;
      }
    }
  }
}

// --- max_pool2d ---------------------------------------------------------------------------------

// y[oh, ow] = max of x over the window (padding is −inf, so never chosen); argmax[oh, ow] = ih·W + iw
// of the first maximum, or of the first NaN, which propagates as in PyTorch.
template <class T>
void max_pool2d_forward(T* y, std::int64_t* argmax, const T* x, const PoolShape& s) {
#pragma omp parallel for schedule(static) if (parallel_worth(s))
  for (std::int64_t nc = 0; nc < s.NC(); ++nc) {
    const T* xp = x + nc * s.H * s.W;
    T* yp = y + nc * s.OH * s.OW;
    std::int64_t* ap = argmax + nc * s.OH * s.OW;
    for (std::int64_t oh = 0; oh < s.OH; ++oh) {
      for (std::int64_t ow = 0; ow < s.OW; ++ow) {
        const Window win = window_of(s, oh, ow);
        T best = -std::numeric_limits<T>::infinity();
        std::int64_t at = win.h0 * s.W + win.w0;
        for (std::int64_t ih = win.h0; ih < win.h1 && !std::isnan(best); ++ih) {
          for (std::int64_t iw = win.w0; iw < win.w1; ++iw) {
            const T v = xp[ih * s.W + iw];
            if (v > best || std::isnan(v)) {
              best = v;
              at = ih * s.W + iw;
              if (std::isnan(v)) break;
            }
          }
        }
        yp[oh * s.OW + ow] = best;
        ap[oh * s.OW + ow] = at;
      }
    }
  }
}

// y[oh, ow] = x[argmax[oh, ow]], so dx[i] = Σ of dy over the outputs whose argmax is i.
template <class T>
void max_pool2d_backward(T* dx, const T* dy, const std::int64_t* argmax, const PoolShape& s) {
#pragma omp parallel for schedule(static) if (parallel_worth(s))
  for (std::int64_t nc = 0; nc < s.NC(); ++nc) {
    T* dxp = dx + nc * s.H * s.W;
    const T* dyp = dy + nc * s.OH * s.OW;
    const std::int64_t* ap = argmax + nc * s.OH * s.OW;
    std::fill(dxp, dxp + s.H * s.W, T(0));
    for (std::int64_t o = 0; o < s.OH * s.OW; ++o) dxp[ap[o]] += dyp[o];
  }
}

// --- validation ---------------------------------------------------------------------------------

PoolShape pool_shape(const char* op, const Tensor& x, Size2 kernel, std::optional<Size2> stride_opt, Size2 padding) {
  TG_CHECK(x.defined(), "[{}] expected a defined input", op);
  TG_CHECK(x.dim() == 4, "[{}] expected input of shape [N, C, H, W], got {}", op, x.sizes());
  TG_CHECK(is_floating(x.dtype()), "[{}] expected a float32 or float64 input, got {}", op, dtype_name(x.dtype()));
  const Size2 stride = stride_opt.value_or(kernel);
  TG_CHECK(kernel.h >= 1 && kernel.w >= 1, "[{}] expected a positive kernel size, got [{}, {}]", op, kernel.h,
           kernel.w);
  TG_CHECK(stride.h >= 1 && stride.w >= 1, "[{}] expected a positive stride, got [{}, {}]", op, stride.h, stride.w);
  TG_CHECK(padding.h >= 0 && padding.w >= 0 && 2 * padding.h <= kernel.h && 2 * padding.w <= kernel.w,
           "[{}] expected padding between 0 and half the kernel size, got padding [{}, {}] for kernel [{}, {}]", op,
           padding.h, padding.w, kernel.h, kernel.w);
  PoolShape s{};
  s.N = x.size(0), s.C = x.size(1), s.H = x.size(2), s.W = x.size(3);
  s.KH = kernel.h, s.KW = kernel.w, s.SH = stride.h, s.SW = stride.w, s.PH = padding.h, s.PW = padding.w;
  TG_CHECK(s.KH <= s.H + 2 * s.PH && s.KW <= s.W + 2 * s.PW,
           "[{}] kernel size [{}, {}] is larger than the padded input size [{}, {}] (input {})", op, s.KH, s.KW,
           s.H + 2 * s.PH, s.W + 2 * s.PW, x.sizes());
  s.OH = (s.H + 2 * s.PH - s.KH) / s.SH + 1;
  s.OW = (s.W + 2 * s.PW - s.KW) / s.SW + 1;
  return s;
}

}  // namespace

// --- the differentiable functions ---------------------------------------------------------------

Tensor avg_pool2d(const Tensor& x, Size2 kernel, std::optional<Size2> stride, Size2 padding) {
  const PoolShape s = pool_shape("avg_pool2d", x, kernel, stride, padding);
  const DType dt = x.dtype();
  Tensor xc = native::contiguous(x);
  Tensor y = Tensor::empty({s.N, s.C, s.OH, s.OW}, dt);
  dispatch_floating(dt, [&]<class T>() { avg_pool2d_forward(y.data_ptr<T>(), xc.data_ptr<T>(), s); });
  return autograd::record("AvgPool2DBackward0", y, {x}, [s, dt](const Tensor& grad) {
    Tensor dy = native::contiguous(grad);
    Tensor dx = Tensor::empty({s.N, s.C, s.H, s.W}, dt);
    dispatch_floating(dt, [&]<class T>() { avg_pool2d_backward(dx.data_ptr<T>(), dy.data_ptr<T>(), s); });
    return std::vector<Tensor>{dx};
  }, {});
}

Tensor max_pool2d(const Tensor& x, Size2 kernel, std::optional<Size2> stride, Size2 padding) {
  const PoolShape s = pool_shape("max_pool2d", x, kernel, stride, padding);
  const DType dt = x.dtype();
  Tensor xc = native::contiguous(x);
  Tensor y = Tensor::empty({s.N, s.C, s.OH, s.OW}, dt);
  Tensor argmax = Tensor::empty({s.N, s.C, s.OH, s.OW}, kInt64);
  dispatch_floating(dt, [&]<class T>() {
    max_pool2d_forward(y.data_ptr<T>(), argmax.data_ptr<std::int64_t>(), xc.data_ptr<T>(), s);
  });
  return autograd::record("MaxPool2DWithIndicesBackward0", y, {x}, [s, dt, argmax](const Tensor& grad) {
    Tensor dy = native::contiguous(grad);
    Tensor dx = Tensor::empty({s.N, s.C, s.H, s.W}, dt);
    dispatch_floating(dt, [&]<class T>() {
      max_pool2d_backward(dx.data_ptr<T>(), dy.data_ptr<T>(), argmax.data_ptr<std::int64_t>(), s);
    });
    return std::vector<Tensor>{dx};
  }, {});
}

}  // namespace tg
