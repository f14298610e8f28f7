// Direct float32 convolution for stride 1: no im2col columns, the products accumulate in vector
// registers along the output width. conv2d.cpp calls it for float32, stride-1 convolutions and keeps
// im2col + GEMM for the rest. Internal to layers/. Layer: layers; must not depend on modules.
#pragma once

#include <cstdint>

namespace tg::detail {

// N batch, C input channels, F filters, G groups (C and F divisible by G), H×W input, KH×KW kernel,
// PH×PW zero padding, stride 1, so OH = H + 2·PH − KH + 1 and OW = W + 2·PW − KW + 1 (both >= 1).
struct DirectConvShape {
  std::int64_t N, C, H, W, F, KH, KW, PH, PW, G, OH, OW;
};

// y [N, F, OH, OW] = conv(x [N, C, H, W], weight [F, C/G, KH, KW]) + bias [F] (bias may be null).
void direct_conv2d_forward(float* y, const float* x, const float* weight, const float* bias,
                           const DirectConvShape& s);

// From dy [N, F, OH, OW]: dx [N, C, H, W] (needs weight), dweight [F, C/G, KH, KW] (needs x) and
// dbias [F]; each output is written whole, and skipped when null.
void direct_conv2d_backward(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                            const float* weight, const DirectConvShape& s);

// For tests: run the portable kernels even where the AVX2 + FMA ones could run (off by default).
void force_portable_conv_kernels(bool on);

}  // namespace tg::detail
