// avg_pool2d and max_pool2d: kernel pairs over one [H, W] plane at a time, and the differentiable
// functions that record "AvgPool2DBackward0" / "MaxPool2DWithIndicesBackward0", and the modules.
// Layer: layers; must not know optimizers.
#include "tapegrad/layers/pooling.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "tapegrad/autograd/tape.h"
#include "tapegrad/core/native.h"
#include "tapegrad/core/parallel.h"
#include "tapegrad/core/simd.h"
#include "tapegrad/core/simd_math.h"
#include "tapegrad/layers/avg_pool_2x2.h"
#include "tapegrad/layers/window.h"

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

std::int64_t work_of(const PoolShape& s) { return s.NC() * s.H * s.W; }

// The general case walks the window offsets (kh, kw) row-major and, for each, the run of outputs in
// one output row whose input falls inside the plane (layers/window.h): no per-element bounds tests.
using detail::Span;
using detail::valid_spans;

// Calls visit(ih, iw, lo, hi) for output row oh, for each window offset (kh, kw) in row-major order
// that lands inside the plane: outputs ow in [lo, hi) read input (ih, iw + (ow − lo)·SW).
template <class Visit>
void for_each_offset(const PoolShape& s, const std::vector<Span>& wspan, std::int64_t oh, Visit&& visit) {
  const std::int64_t h0 = oh * s.SH - s.PH;
  for (std::int64_t ih = std::max<std::int64_t>(h0, 0); ih < std::min(h0 + s.KH, s.H); ++ih)
    for (std::int64_t kw = 0; kw < s.KW; ++kw) {
      const Span sp = wspan[static_cast<std::size_t>(kw)];
      if (sp.lo < sp.hi) visit(ih, sp.lo * s.SW + kw - s.PW, sp.lo, sp.hi);
    }
}

// --- avg_pool2d ---------------------------------------------------------------------------------

// plane(nc) for each of the N·C planes, split over the threads, each run under simd::with_isa: the
// 2×2 case's kernels (layers/avg_pool_2x2.h) are compiled for the running instruction set.
template <class Plane>
void for_each_plane_2x2(const PoolShape& s, const Plane& plane) {
  parallel_for(0, s.NC(), work_of(s), [&](std::int64_t nc_lo, std::int64_t nc_hi) {
    simd::with_isa([&]<simd::Isa>() TG_SIMD_LAMBDA {
      for (std::int64_t nc = nc_lo; nc < nc_hi; ++nc) plane(nc);
    });
  });
}

// y[oh, ow] = Σ x over the window / (KH·KW): padding counts as zeros (count_include_pad).
template <class T>
void avg_pool2d_forward(T* y, const T* x, const PoolShape& s) {
  if (s.tiles_2x2()) {
    for_each_plane_2x2(s, [&](std::int64_t nc) TG_SIMD_LAMBDA {
      detail::avg_pool_2x2_plane(y + nc * s.OH * s.OW, x + nc * s.H * s.W, s.H, s.W);
    });
    return;
  }
  const T scale = T(1) / static_cast<T>(s.KH * s.KW);
  const std::vector<Span> wspan = valid_spans(s.W, s.OW, s.SW, s.PW, s.KW);
  parallel_for(0, s.NC(), work_of(s), [&](std::int64_t nc_lo, std::int64_t nc_hi) {
    for (std::int64_t nc = nc_lo; nc < nc_hi; ++nc) {
      const T* xp = x + nc * s.H * s.W;
      T* yp = y + nc * s.OH * s.OW;
      for (std::int64_t oh = 0; oh < s.OH; ++oh) {
        T* yrow = yp + oh * s.OW;
        std::fill(yrow, yrow + s.OW, T(0));
        for_each_offset(s, wspan, oh, [&](std::int64_t ih, std::int64_t iw, std::int64_t lo, std::int64_t hi) {
          const T* src = xp + ih * s.W + iw;
          for (std::int64_t ow = lo; ow < hi; ++ow) yrow[ow] += src[(ow - lo) * s.SW];
        });
        for (std::int64_t ow = 0; ow < s.OW; ++ow) yrow[ow] *= scale;
      }
    }
  });
}

// Each x in the window of (oh, ow) enters y[oh, ow] with weight 1/(KH·KW):
//   dx[ih, iw] = Σ over the windows holding (ih, iw) of dy[oh, ow] / (KH·KW)
template <class T>
void avg_pool2d_backward(T* dx, const T* dy, const PoolShape& s) {
  if (s.tiles_2x2()) {  // every dx written once, without a zeroing pass first
    for_each_plane_2x2(s, [&](std::int64_t nc) TG_SIMD_LAMBDA {
      detail::avg_pool_2x2_backward_plane(dx + nc * s.H * s.W, dy + nc * s.OH * s.OW, s.H, s.W);
    });
    return;
  }
  const T scale = T(1) / static_cast<T>(s.KH * s.KW);
  const std::vector<Span> wspan = valid_spans(s.W, s.OW, s.SW, s.PW, s.KW);
  parallel_for(0, s.NC(), work_of(s), [&](std::int64_t nc_lo, std::int64_t nc_hi) {
    for (std::int64_t nc = nc_lo; nc < nc_hi; ++nc) {
      T* dxp = dx + nc * s.H * s.W;
      const T* dyp = dy + nc * s.OH * s.OW;
      std::fill(dxp, dxp + s.H * s.W, T(0));
      for (std::int64_t oh = 0; oh < s.OH; ++oh) {
        const T* dyrow = dyp + oh * s.OW;
        for_each_offset(s, wspan, oh, [&](std::int64_t ih, std::int64_t iw, std::int64_t lo, std::int64_t hi) {
          T* dst = dxp + ih * s.W + iw;
          for (std::int64_t ow = lo; ow < hi; ++ow) dst[(ow - lo) * s.SW] += dyrow[ow] * scale;
        });
      }
    }
  });
}

// --- max_pool2d ---------------------------------------------------------------------------------

// take ? a : b without a branch: compilers turn the ternary into one, and on real data the
// comparisons of max pooling are coin flips.
template <class T>
T select(bool take, T a, T b) {
  using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  const Bits mask = Bits(0) - Bits(take);
  return std::bit_cast<T>((std::bit_cast<Bits>(a) & mask) | (std::bit_cast<Bits>(b) & ~mask));
}

// One output row of the 2×2, stride 2 case: which[ow] is the row-major position (0-3) in its window
// of the maximum. Selects, not branches (on real data the comparisons are coin flips), and no
// aliasing, so the compiler vectorizes it.
template <class T>
void max_pool_2x2_row(T* __restrict y, std::int32_t* __restrict which, const T* __restrict r0, const T* __restrict r1,
                      std::int64_t OW) {
  for (std::int64_t ow = 0; ow < OW; ++ow) {
    const T b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
    T best = r0[2 * ow];
    std::int32_t k = 0;
    bool take = (b > best) | (b != b);
    best = take ? b : best;
    k = take ? 1 : k;
    take = (c > best) | (c != c);
    best = take ? c : best;
    k = take ? 2 : k;
    take = (d > best) | (d != d);
    best = take ? d : best;
    k = take ? 3 : k;
    y[ow] = best;
    which[ow] = k;
  }
}

// y[oh, ow] = max of x over the window (padding is −inf, so never chosen); argmax[oh, ow] = ih·W + iw
// of the first maximum in row-major order, or of the last NaN, which propagates (PyTorch's rule).
template <class T>
void max_pool2d_forward(T* y, std::int64_t* argmax, const T* x, const PoolShape& s) {
  const std::vector<Span> wspan = valid_spans(s.W, s.OW, s.SW, s.PW, s.KW);
  parallel_for(0, s.NC(), work_of(s), [&](std::int64_t nc_lo, std::int64_t nc_hi) {
    std::vector<std::int32_t> which(static_cast<std::size_t>(s.OW));
    for (std::int64_t nc = nc_lo; nc < nc_hi; ++nc) {
      const T* xp = x + nc * s.H * s.W;
      for (std::int64_t oh = 0; oh < s.OH; ++oh) {
        T* yrow = y + (nc * s.OH + oh) * s.OW;
        std::int64_t* arow = argmax + (nc * s.OH + oh) * s.OW;
        if (s.tiles_2x2()) {
          const T* r0 = xp + 2 * oh * s.W;
          max_pool_2x2_row(yrow, which.data(), r0, r0 + s.W, s.OW);
          for (std::int64_t ow = 0; ow < s.OW; ++ow) {
            const std::int32_t k = which[static_cast<std::size_t>(ow)];
            arow[ow] = (2 * oh + k / 2) * s.W + 2 * ow + k % 2;
          }
          continue;
        }
        std::fill(yrow, yrow + s.OW, -std::numeric_limits<T>::infinity());
        for (std::int64_t ow = 0; ow < s.OW; ++ow)  // the window's first element inside the plane
          arow[ow] = std::max<std::int64_t>(oh * s.SH - s.PH, 0) * s.W + std::max<std::int64_t>(ow * s.SW - s.PW, 0);
        for_each_offset(s, wspan, oh, [&](std::int64_t ih, std::int64_t iw, std::int64_t lo, std::int64_t hi) {
          const std::int64_t at = ih * s.W + iw;
          for (std::int64_t ow = lo; ow < hi; ++ow) {
            const T v = xp[at + (ow - lo) * s.SW];
            const bool take = (v > yrow[ow]) | (v != v);
            yrow[ow] = select(take, v, yrow[ow]);
            arow[ow] = select(take, at + (ow - lo) * s.SW, arow[ow]);
          }
        });
      }
    }
  });
}

// y[oh, ow] = x[argmax[oh, ow]], so dx[i] = Σ of dy over the outputs whose argmax is i.
template <class T>
void max_pool2d_backward(T* dx, const T* dy, const std::int64_t* argmax, const PoolShape& s) {
  parallel_for(0, s.NC(), work_of(s), [&](std::int64_t nc_lo, std::int64_t nc_hi) {
    for (std::int64_t nc = nc_lo; nc < nc_hi; ++nc) {
      T* dxp = dx + nc * s.H * s.W;
      const T* dyp = dy + nc * s.OH * s.OW;
      const std::int64_t* ap = argmax + nc * s.OH * s.OW;
      std::fill(dxp, dxp + s.H * s.W, T(0));
      for (std::int64_t o = 0; o < s.OH * s.OW; ++o) dxp[ap[o]] += dyp[o];
    }
  });
}

// --- validation ---------------------------------------------------------------------------------

PoolShape pool_shape(const char* op, const Tensor& x, Size2 kernel, std::optional<Size2> stride_opt, Size2 padding) {
  TG_CHECK(x.defined(), "[{}] expected a defined input", op);
  TG_CHECK(x.dim() == 3 || x.dim() == 4, "[{}] expected input of shape [N, C, H, W] or [C, H, W], got {}", op,
           x.sizes());
  TG_CHECK(is_floating(x.dtype()), "[{}] expected a float32 or float64 input, got {}", op, dtype_name(x.dtype()));
  const Size2 stride = stride_opt.value_or(kernel);
  TG_CHECK(kernel.h >= 1 && kernel.w >= 1, "[{}] expected a positive kernel size, got [{}, {}]", op, kernel.h,
           kernel.w);
  TG_CHECK(stride.h >= 1 && stride.w >= 1, "[{}] expected a positive stride, got [{}, {}]", op, stride.h, stride.w);
  TG_CHECK(padding.h >= 0 && padding.w >= 0 && 2 * padding.h <= kernel.h && 2 * padding.w <= kernel.w,
           "[{}] expected padding between 0 and half the kernel size, got padding [{}, {}] for kernel [{}, {}]", op,
           padding.h, padding.w, kernel.h, kernel.w);
  TG_CHECK(x.size(-3) >= 1 && x.size(-2) >= 1 && x.size(-1) >= 1,
           "[{}] expected non-empty channel and spatial dims, got input {}", op, x.sizes());
  PoolShape s{};  // an unbatched [C, H, W] is one sample
  s.N = x.dim() == 4 ? x.size(0) : 1, s.C = x.size(-3), s.H = x.size(-2), s.W = x.size(-1);
  s.KH = kernel.h, s.KW = kernel.w, s.SH = stride.h, s.SW = stride.w, s.PH = padding.h, s.PW = padding.w;
  TG_CHECK(s.KH <= s.H + 2 * s.PH && s.KW <= s.W + 2 * s.PW,
           "[{}] kernel size [{}, {}] is larger than the padded input size [{}, {}] (input {})", op, s.KH, s.KW,
           s.H + 2 * s.PH, s.W + 2 * s.PW, x.sizes());
  s.OH = (s.H + 2 * s.PH - s.KH) / s.SH + 1;
  s.OW = (s.W + 2 * s.PW - s.KW) / s.SW + 1;
  return s;
}

// The output's shape: [N, C, OH, OW], or [C, OH, OW] for an unbatched input.
Shape pool_output_shape(const Tensor& x, const PoolShape& s) {
  return x.dim() == 4 ? Shape{s.N, s.C, s.OH, s.OW} : Shape{s.C, s.OH, s.OW};
}

}  // namespace

// --- the differentiable functions ---------------------------------------------------------------

Tensor avg_pool2d(const Tensor& x, Size2 kernel, std::optional<Size2> stride, Size2 padding) {
  const PoolShape s = pool_shape("avg_pool2d", x, kernel, stride, padding);
  const DType dt = x.dtype();
  Tensor xc = native::contiguous(x);
  Tensor y = Tensor::empty(pool_output_shape(x, s), dt);
  dispatch_floating(dt, [&]<class T>() { avg_pool2d_forward(y.data_ptr<T>(), xc.data_ptr<T>(), s); });
  auto backward = [s, dt, shape = x.sizes()](const Tensor& grad) {  // needs only the shapes
    Tensor dy = native::contiguous(grad);
    Tensor dx = Tensor::empty(shape, dt);
    dispatch_floating(dt, [&]<class T>() { avg_pool2d_backward(dx.data_ptr<T>(), dy.data_ptr<T>(), s); });
    return std::vector<Tensor>{dx};
  };
  return autograd::record("AvgPool2DBackward0", y, {x}, std::move(backward), {});
}

Tensor max_pool2d(const Tensor& x, Size2 kernel, std::optional<Size2> stride, Size2 padding) {
  const PoolShape s = pool_shape("max_pool2d", x, kernel, stride, padding);
  const DType dt = x.dtype();
  Tensor xc = native::contiguous(x);
  Tensor y = Tensor::empty(pool_output_shape(x, s), dt);
  Tensor argmax = Tensor::empty(y.sizes(), kInt64);
  dispatch_floating(dt, [&]<class T>() {
    max_pool2d_forward(y.data_ptr<T>(), argmax.data_ptr<std::int64_t>(), xc.data_ptr<T>(), s);
  });
  auto backward = [s, dt, argmax, shape = x.sizes()](const Tensor& grad) {  // needs only the argmax, which it owns
    Tensor dy = native::contiguous(grad);
    Tensor dx = Tensor::empty(shape, dt);
    dispatch_floating(dt, [&]<class T>() {
      max_pool2d_backward(dx.data_ptr<T>(), dy.data_ptr<T>(), argmax.data_ptr<std::int64_t>(), s);
    });
    return std::vector<Tensor>{dx};
  };
  return autograd::record("MaxPool2DWithIndicesBackward0", y, {x}, std::move(backward), {});
}

// --- the modules ---------------------------------------------------------------------------

namespace nn {

AvgPool2d::AvgPool2d(Size2 kernel, std::optional<Size2> stride_, Size2 padding_)
    : kernel_size(kernel), stride(stride_.value_or(kernel)), padding(padding_) {}

Tensor AvgPool2d::forward(const Tensor& input) { return avg_pool2d(input, kernel_size, stride, padding); }

std::string AvgPool2d::extra_repr() const {
  return fmt::format("kernel_size={}, stride={}, padding={}", format_pool_size(kernel_size), format_pool_size(stride),
                     format_pool_size(padding));
}

MaxPool2d::MaxPool2d(Size2 kernel, std::optional<Size2> stride_, Size2 padding_)
    : kernel_size(kernel), stride(stride_.value_or(kernel)), padding(padding_) {}

Tensor MaxPool2d::forward(const Tensor& input) { return max_pool2d(input, kernel_size, stride, padding); }

std::string MaxPool2d::extra_repr() const {
  return fmt::format("kernel_size={}, stride={}, padding={}, dilation=1, ceil_mode=False",
                     format_pool_size(kernel_size),
                     format_pool_size(stride), format_pool_size(padding));
}

}  // namespace nn

}  // namespace tg
