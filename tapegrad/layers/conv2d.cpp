// conv2d: the differentiable function that records one "ConvolutionBackward0" entry. float32
// stride-1 convolutions run the direct kernels of layers/conv2d_direct.h; the others im2col + GEMM
// over blocks of samples (here), col2im for the input's gradient. Then nn::Conv2d.
// Layer: layers; must not know optimizers.
#include "tapegrad/layers/conv2d.h"

#include <algorithm>
#include <vector>

#include "tapegrad/autograd/tape.h"
#include "tapegrad/core/blas.h"
#include "tapegrad/core/native.h"
#include "tapegrad/core/parallel.h"
#include "tapegrad/layers/conv2d_direct.h"
#include "tapegrad/layers/init.h"
#include "tapegrad/layers/pooling.h"
#include "tapegrad/layers/window.h"

namespace tg {

namespace {

using detail::ConvShape;

// Why blocks (measured at LeNet's shapes, batch 256): whole-batch columns (10-15 MB) go through
// memory twice, and OpenBLAS runs these skinny products up to 3x slower (15x on two threads) on
// N·P-wide operands than on blocks of a few thousand columns; 256 KB blocks of columns ran best. A
// row stride that is a multiple of a large power of two also makes the rows OpenBLAS packs together
// collide in cache: pad it.
constexpr std::int64_t kBlockBytes = std::int64_t{1} << 18;  // one block's im2col columns
std::int64_t padded_stride(std::int64_t cols) {
  std::int64_t ld = (cols + 15) / 16 * 16;  // rows start on 64-byte lines...
  return ld % 256 == 0 ? ld + 16 : ld;      // ...but not every 1 KiB
}

// Threads split the blocks, each running im2col, GEMMs and col2im on its own blocks with its own
// scratch: one parallel_for per call, whose bodies' GEMMs run single-threaded. (Splitting each
// block's im2col and GEMM across the pool instead costs two fork-joins per block.) With one block,
// one thread or little work, blocks run in order and im2col, col2im and GEMM split themselves.
int block_threads(const ConvShape& s) {
  const std::int64_t blocks = (s.N + s.NB - 1) / s.NB;
  if (in_parallel_region() || s.rows() * s.N * s.P() < kParallelGrain) return 1;
  return static_cast<int>(std::min<std::int64_t>(get_num_threads(), blocks));
}

// body(n0, nb, t): samples [n0, n0 + nb) on thread slot t in [0, threads).
template <class Body>
void for_each_block(const ConvShape& s, int threads, Body&& body) {
  const std::int64_t blocks = (s.N + s.NB - 1) / s.NB;
  auto run = [&](std::int64_t t0, std::int64_t t1) {
    for (std::int64_t t = t0; t < t1; ++t)
      for (std::int64_t b = blocks * t / threads; b < blocks * (t + 1) / threads; ++b)
        body(b * s.NB, std::min(s.NB, s.N - b * s.NB), static_cast<int>(t));
  };
  if (threads <= 1)
    run(0, 1);
  else
    parallel_for(0, threads, s.rows() * s.N * s.P(), run);  // one slot per chunk
}

using detail::Span;
using detail::valid_spans;

// For the nb samples of x: cols [C·KH·KW, nb·P], row (c, kh, kw), column (n, oh, ow) holds
// x[n, c, oh·SH − PH + kh, ow·SW − PW + kw], zero where that falls in the padding.
template <class T>
void im2col(T* cols, const T* x, std::int64_t nb, const ConvShape& s) {
  const std::int64_t rows = s.rows(), P = s.P(), OW = s.OW;
  const std::vector<Span> hspan = valid_spans(s.H, s.OH, s.SH, s.PH, s.KH);
  const std::vector<Span> wspan = valid_spans(s.W, s.OW, s.SW, s.PW, s.KW);
  parallel_for(0, rows, rows * nb * P, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      const std::int64_t c = r / (s.KH * s.KW), kh = r / s.KW % s.KH, kw = r % s.KW;
      const Span hs = hspan[static_cast<std::size_t>(kh)], ws = wspan[static_cast<std::size_t>(kw)];
      const std::int64_t in_offset = (kh - s.PH) * s.W + (kw - s.PW);  // of x[oh·SH − PH + kh, ow·SW − PW + kw]
      for (std::int64_t n = 0; n < nb; ++n) {
        const T* plane = x + (n * s.C + c) * s.H * s.W;
        T* dst = cols + r * s.LD + n * P;
        std::fill(dst, dst + hs.lo * OW, T(0));
        for (std::int64_t oh = hs.lo; oh < hs.hi; ++oh) {
          T* d = dst + oh * OW;
          for (std::int64_t ow = 0; ow < ws.lo; ++ow) d[ow] = T(0);
          for (std::int64_t ow = ws.hi; ow < OW; ++ow) d[ow] = T(0);
          if (ws.lo == ws.hi) continue;
          const T* src = plane + oh * s.SH * s.W + ws.lo * s.SW + in_offset;
          if (s.SW == 1)
            for (std::int64_t ow = ws.lo; ow < ws.hi; ++ow) d[ow] = src[ow - ws.lo];
          else
            for (std::int64_t ow = ws.lo; ow < ws.hi; ++ow) d[ow] = src[(ow - ws.lo) * s.SW];
        }
        std::fill(dst + hs.hi * OW, dst + P, T(0));
      }
    }
  });
}

// The adjoint of im2col, for nb samples: dx[n, c, ih, iw] = Σ of dcols over the entries im2col copied
// x[n, c, ih, iw] to.
template <class T>
void col2im(T* dx, const T* dcols, std::int64_t nb, const ConvShape& s) {
  const std::int64_t P = s.P(), OW = s.OW;
  const std::vector<Span> hspan = valid_spans(s.H, s.OH, s.SH, s.PH, s.KH);
  const std::vector<Span> wspan = valid_spans(s.W, s.OW, s.SW, s.PW, s.KW);
  parallel_for(0, nb, s.rows() * nb * P, [&](std::int64_t n_lo, std::int64_t n_hi) {
    for (std::int64_t n = n_lo; n < n_hi; ++n) {
      for (std::int64_t c = 0; c < s.C; ++c) {
        T* plane = dx + (n * s.C + c) * s.H * s.W;
        std::fill(plane, plane + s.H * s.W, T(0));
        for (std::int64_t kh = 0; kh < s.KH; ++kh) {
          const Span hs = hspan[static_cast<std::size_t>(kh)];
          for (std::int64_t kw = 0; kw < s.KW; ++kw) {
            const Span ws = wspan[static_cast<std::size_t>(kw)];
            if (ws.lo == ws.hi) continue;
            const T* src = dcols + ((c * s.KH + kh) * s.KW + kw) * s.LD + n * P;
            const std::int64_t in_offset = (kh - s.PH) * s.W + (kw - s.PW);
            for (std::int64_t oh = hs.lo; oh < hs.hi; ++oh) {
              const T* srow = src + oh * OW;
              T* row = plane + oh * s.SH * s.W + ws.lo * s.SW + in_offset;
              if (s.SW == 1)
                for (std::int64_t ow = ws.lo; ow < ws.hi; ++ow) row[ow - ws.lo] += srow[ow];
              else
                for (std::int64_t ow = ws.lo; ow < ws.hi; ++ow) row[(ow - ws.lo) * s.SW] += srow[ow];
            }
          }
        }
      }
    }
  });
}

// Σ v[0, n) with eight independent partial sums: one running sum would wait on each add's latency
// (4x slower at LeNet's shapes).
template <class T>
double sum_of(const T* v, std::int64_t n) {
  T part[8] = {};
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) part[j] += v[i + j];
  double sum = 0;
  for (; i < n; ++i) sum += v[i];
  for (T p : part) sum += p;
  return sum;
}

// --- the kernel pair ----------------------------------------------------------------------------

// y [N, F, OH, OW]. Scratch per thread: cols [C·KH·KW, LD] and ycols [F, LD].
template <class T>
void conv2d_forward(T* y, T* cols, T* ycols, const T* x, const T* weight, const T* bias, const ConvShape& s,
                    int threads) {
  const std::int64_t P = s.P(), Fg = s.Fg(), R = s.R(), LD = s.LD;
  for_each_block(s, threads, [&](std::int64_t n0, std::int64_t nb, int t) {
    T* c = cols + t * s.rows() * LD;
    T* yc = ycols + t * s.F * LD;
    im2col(c, x + n0 * s.C * s.H * s.W, nb, s);
    for (std::int64_t g = 0; g < s.G; ++g)  // ycols_g [Fg, nb·P] = weight_g [Fg, R] · cols_g [R, nb·P]
      blas::gemm(false, false, Fg, nb * P, R, T(1), weight + g * Fg * R, R, c + g * R * LD, LD, T(0), yc + g * Fg * LD,
                 LD);
    for (std::int64_t n = 0; n < nb; ++n) {
      for (std::int64_t f = 0; f < s.F; ++f) {  // y[n0 + n, f, p] = ycols[f, n·P + p] + bias[f]
        const T* src = yc + f * LD + n * P;
        T* dst = y + ((n0 + n) * s.F + f) * P;
        const T b = bias ? bias[f] : T(0);
        for (std::int64_t p = 0; p < P; ++p) dst[p] = src[p] + b;
      }
    }
  });
}

// y[n, f, p] = Σ_r weight[f, r] · cols[g·R + r, n·P + p] + bias[f] (g = f / Fg). Per block, with the
// gradient gathered as dyT[f, n·P + p] = dy[n, f, p] and the block's cols recomputed from x:
//   dbias[f]   = Σ_{n,p} dy[n, f, p]
//   dweight_gᵀ = Σ_blocks cols_g · dyT_gᵀ    [R, nb·P]·[nb·P, Fg] (OpenBLAS runs this orientation ~2x
//                                            faster than dyT_g · cols_gᵀ; transposed once at the end)
//   dcols_g    = weight_gᵀ · dyT_g           [R, Fg]·[Fg, nb·P],  dx = col2im(dcols)
// dx, dweight, dbias are null when not wanted. Scratch per thread: cols and dcols [C·KH·KW, LD],
// dyT [F, LD], dwT [G, R, Fg] and bias_sum [F] (zeroed here; the threads' sums are added at the end).
template <class T>
void conv2d_backward(T* dx, T* dweight, T* dbias, T* cols, T* dcols, T* dyT, T* dwT, double* bias_sum, const T* dy,
                     const T* x, const T* weight, const ConvShape& s, int threads) {
  const std::int64_t P = s.P(), Fg = s.Fg(), R = s.R(), LD = s.LD, WR = s.F * R;  // WR: weight numel
  if (dweight) std::fill(dwT, dwT + threads * WR, T(0));
  std::fill(bias_sum, bias_sum + threads * s.F, 0.0);
  for_each_block(s, threads, [&](std::int64_t n0, std::int64_t nb, int t) {
    T* dyT_t = dyT + t * s.F * LD;
    for (std::int64_t f = 0; f < s.F; ++f) {
      for (std::int64_t n = 0; n < nb; ++n) {
        const T* src = dy + ((n0 + n) * s.F + f) * P;
        std::copy(src, src + P, dyT_t + f * LD + n * P);
      }
      if (dbias) bias_sum[t * s.F + f] += sum_of(dyT_t + f * LD, nb * P);
    }
    if (dweight) {
      T* c = cols + t * s.rows() * LD;
      im2col(c, x + n0 * s.C * s.H * s.W, nb, s);
      for (std::int64_t g = 0; g < s.G; ++g)
        blas::gemm(false, true, R, Fg, nb * P, T(1), c + g * R * LD, LD, dyT_t + g * Fg * LD, LD, T(1),
                   dwT + t * WR + g * R * Fg, Fg);
    }
    if (dx) {
      T* dc = dcols + t * s.rows() * LD;
      for (std::int64_t g = 0; g < s.G; ++g)
        blas::gemm(true, false, R, nb * P, Fg, T(1), weight + g * Fg * R, R, dyT_t + g * Fg * LD, LD, T(0),
                   dc + g * R * LD, LD);
      col2im(dx + n0 * s.C * s.H * s.W, dc, nb, s);
    }
  });
  if (dweight) {
    detail::sum_slots(dwT, dwT, threads, WR);  // into slot 0, then dweight_g = dwT_gᵀ
    for (std::int64_t g = 0; g < s.G; ++g)
      for (std::int64_t f = 0; f < Fg; ++f)
        for (std::int64_t r = 0; r < R; ++r) dweight[(g * Fg + f) * R + r] = dwT[(g * R + r) * Fg + f];
  }
  if (dbias) detail::sum_slots(dbias, bias_sum, threads, s.F);
}

}  // namespace

namespace detail {

ConvShape conv2d_shape(const Tensor& x, const Tensor& weight, const Tensor& bias, Size2 stride, Size2 padding,
                       std::int64_t groups) {
  TG_CHECK(x.defined() && weight.defined(), "[conv2d] expected a defined input and weight");
  TG_CHECK(x.dim() == 4, "[conv2d] expected input of shape [N, C, H, W] or [C, H, W], got {}", x.sizes());
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
    TG_CHECK(bias.dim() == 1 && bias.size(0) == s.F, "[conv2d] expected bias of shape [{}], got {}", s.F, bias.sizes());
  }
  TG_CHECK(s.KH <= s.H + 2 * s.PH && s.KW <= s.W + 2 * s.PW,
           "[conv2d] kernel size [{}, {}] is larger than the padded input size [{}, {}] (input {})", s.KH, s.KW,
           s.H + 2 * s.PH, s.W + 2 * s.PW, x.sizes());
  s.OH = (s.H + 2 * s.PH - s.KH) / s.SH + 1;
  s.OW = (s.W + 2 * s.PW - s.KW) / s.SW + 1;
  const std::int64_t sample_bytes = s.rows() * s.P() * static_cast<std::int64_t>(itemsize(x.dtype()));
  s.NB = std::clamp<std::int64_t>(kBlockBytes / sample_bytes, 1, std::max<std::int64_t>(s.N, 1));
  s.LD = padded_stride(s.NB * s.P());
  return s;
}

}  // namespace detail

namespace {

// float32 stride-1 convolutions run the direct kernels of layers/conv2d_direct.h (2-4x faster at
// LeNet's shapes, docs/BENCHMARKS.md); float64 and strided ones im2col + GEMM.
bool use_direct(const ConvShape& s, DType dt) { return dt == kFloat32 && s.SH == 1 && s.SW == 1; }

}  // namespace

// --- the differentiable function ----------------------------------------------------------------

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Size2 stride, Size2 padding,
              std::int64_t groups) {
  // An unbatched [C, H, W] is a batch of one, as PyTorch 1.13 runs it (grad_fn SqueezeBackward1).
  if (x.defined() && x.dim() == 3) return conv2d(x.unsqueeze(0), weight, bias, stride, padding, groups).squeeze(0);
  const ConvShape s = detail::conv2d_shape(x, weight, bias, stride, padding, groups);
  const DType dt = x.dtype();
  Tensor xc = native::contiguous(x), wc = native::contiguous(weight);
  Tensor bc = bias.defined() ? native::contiguous(bias) : Tensor();
  Tensor y = Tensor::empty({s.N, s.F, s.OH, s.OW}, dt);
  const bool direct = use_direct(s, dt);
  if (y.numel() > 0 && direct) {
    detail::direct_conv2d_forward(y.data_ptr<float>(), xc.data_ptr<float>(), wc.data_ptr<float>(),
                                  bc.defined() ? bc.data_ptr<float>() : nullptr, s);
  } else if (y.numel() > 0) {
    const int threads = block_threads(s);
    Tensor cols = Tensor::empty({threads, s.rows(), s.LD}, dt), ycols = Tensor::empty({threads, s.F, s.LD}, dt);
    dispatch_floating(dt, [&]<class T>() {
      conv2d_forward(y.data_ptr<T>(), cols.data_ptr<T>(), ycols.data_ptr<T>(), xc.data_ptr<T>(), wc.data_ptr<T>(),
                     bc.defined() ? bc.data_ptr<T>() : nullptr, s, threads);
    });
  }

  const bool need_dx = x.requires_grad(), need_dw = weight.requires_grad();
  const bool need_db = bias.defined() && bias.requires_grad();
  // dweight reads the input, dx reads the weight: keep only those.
  auto backward = [s, dt, direct, need_dx, need_dw, need_db, x = need_dw ? xc : Tensor(),
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
    if (direct) {
      auto ptr = [](const Tensor& t) { return t.defined() ? t.data_ptr<float>() : nullptr; };
      detail::direct_conv2d_backward(ptr(dx), ptr(dw), ptr(db), dy.data_ptr<float>(), ptr(x), ptr(w), s);
      return std::vector<Tensor>{dx, dw, db};
    }
    const int threads = block_threads(s);
    Tensor cols = need_dw ? Tensor::empty({threads, s.rows(), s.LD}, dt) : Tensor();
    Tensor dcols = need_dx ? Tensor::empty({threads, s.rows(), s.LD}, dt) : Tensor();
    Tensor dyT = Tensor::empty({threads, s.F, s.LD}, dt);
    Tensor dwT = need_dw ? Tensor::empty({threads, s.F * s.R()}, dt) : Tensor();
    std::vector<double> bias_sum(static_cast<std::size_t>(threads * s.F));
    dispatch_floating(dt, [&]<class T>() {
      auto ptr = [](const Tensor& t) { return t.defined() ? t.data_ptr<T>() : nullptr; };
      conv2d_backward(ptr(dx), ptr(dw), ptr(db), ptr(cols), ptr(dcols), ptr(dyT), ptr(dwT), bias_sum.data(),
                      dy.data_ptr<T>(), ptr(x), ptr(w), s, threads);
    });
    return std::vector<Tensor>{dx, dw, db};
  };
  return autograd::record("ConvolutionBackward0", y, {x, weight, bias}, std::move(backward),
                          {need_dw ? x : Tensor(), need_dx ? weight : Tensor()});
}

// --- the fused inference op ---------------------------------------------------------------------

const char* activation_name(ConvActivation act) {
  switch (act) {
    case ConvActivation::None: return "None";
    case ConvActivation::Sigmoid: return "Sigmoid";
    case ConvActivation::ReLU: return "ReLU";
  }
  return "?";
}

Tensor conv2d_act(const Tensor& x, const Tensor& weight, const Tensor& bias, Size2 stride, Size2 padding,
                  std::int64_t groups, ConvActivation act, bool avg_pool_2x2) {
  if (x.defined() && x.dim() == 3)
    return conv2d_act(x.unsqueeze(0), weight, bias, stride, padding, groups, act, avg_pool_2x2).squeeze(0);
  const ConvShape s = detail::conv2d_shape(x, weight, bias, stride, padding, groups);
  TG_CHECK(!avg_pool_2x2 || (s.OH >= 2 && s.OW >= 2),
           "[conv2d_act] expected a convolution output of at least [2, 2] to pool over 2x2 windows, got [{}, {}] "
           "(input {}, weight {})", s.OH, s.OW, x.sizes(), weight.sizes());
  if (autograd::needs_grad(x, weight, bias) || !use_direct(s, x.dtype())) {
    Tensor y = conv2d(x, weight, bias, stride, padding, groups);
    if (act == ConvActivation::Sigmoid) y = y.sigmoid();
    if (act == ConvActivation::ReLU) y = y.relu();
    return avg_pool_2x2 ? avg_pool2d(y, 2, 2) : y;
  }
  Tensor xc = native::contiguous(x), wc = native::contiguous(weight);
  Tensor bc = bias.defined() ? native::contiguous(bias) : Tensor();
  Tensor y = avg_pool_2x2 ? Tensor::empty({s.N, s.F, s.OH / 2, s.OW / 2}, kFloat32)
                          : Tensor::empty({s.N, s.F, s.OH, s.OW}, kFloat32);
  if (y.numel() > 0)
    detail::direct_conv2d_forward(y.data_ptr<float>(), xc.data_ptr<float>(), wc.data_ptr<float>(),
                                  bc.defined() ? bc.data_ptr<float>() : nullptr, s, {act, avg_pool_2x2});
  return y;
}

// --- the modules ----------------------------------------------------------------------------

namespace nn {

Conv2d::Conv2d(std::int64_t in, std::int64_t out, Size2 kernel, Size2 stride_, Size2 padding_, bool with_bias,
               std::int64_t groups_)
    : in_channels(in), out_channels(out), kernel_size(kernel), stride(stride_), padding(padding_), groups(groups_) {
  TG_CHECK(in >= 0 && out >= 0, "[Conv2d] expected non-negative channels, got in_channels={}, out_channels={}", in,
           out);
  TG_CHECK(groups > 0 && in % groups == 0 && out % groups == 0,
           "[Conv2d] in_channels ({}) and out_channels ({}) must be divisible by groups ({})", in, out, groups);
  TG_CHECK(kernel.h > 0 && kernel.w > 0 && stride.h > 0 && stride.w > 0 && padding.h >= 0 && padding.w >= 0,
           "[Conv2d] expected positive kernel_size and stride and non-negative padding, got kernel_size={}, "
           "stride={}, padding={}", format_size2(kernel), format_size2(stride), format_size2(padding));
  weight = register_parameter("weight", empty({out, in / groups, kernel.h, kernel.w}));
  if (with_bias) bias = register_parameter("bias", empty({out}));
  reset_parameters();
}

void Conv2d::reset_parameters() { init::default_reset_(weight, bias); }

void Conv2d::check_input(const Tensor& input, const char* module) const {
  TG_CHECK((input.dim() == 4 || input.dim() == 3) && input.size(-3) == in_channels,
           "[{}] expected input of shape [N, {}, H, W] or [{}, H, W], got {}", module, in_channels, in_channels,
           input.sizes());
}

Tensor Conv2d::forward(const Tensor& input) {
  check_input(input, "Conv2d");
  return conv2d(input, weight, bias, stride, padding, groups);
}

Tensor ConvAct2d::forward(const Tensor& input) {
  check_input(input, "ConvAct2d");
  return conv2d_act(input, weight, bias, stride, padding, groups, activation, avg_pool_2x2);
}

std::string ConvAct2d::extra_repr() const {
  return Conv2d::extra_repr() + ", activation=" + activation_name(activation) + (avg_pool_2x2 ? ", avg_pool2d=2" : "");
}

std::string Conv2d::extra_repr() const {
  std::string s = fmt::format("{}, {}, kernel_size={}, stride={}", in_channels, out_channels, format_size2(kernel_size),
                              format_size2(stride));
  if (padding != Size2(0)) s += ", padding=" + format_size2(padding);
  if (groups != 1) s += fmt::format(", groups={}", groups);
  if (!bias.defined()) s += ", bias=False";
  return s;
}

}  // namespace nn

}  // namespace tg
