// Direct float32 convolution for stride 1: no im2col columns, the products accumulate in vector
// registers along the output width. conv2d.cpp calls it for float32, stride-1 convolutions and keeps
// im2col + GEMM for the rest. Internal to layers/. Layer: layers; must not depend on modules.
#pragma once

#include "tapegrad/layers/conv2d.h"
#include "tapegrad/layers/conv2d_shape.h"

namespace tg::detail {

// What the forward does to each output in registers before storing it (conv2d_act): the activation,
// then, with avg_pool_2x2, the mean of each 2×2 window at stride 2 (AvgPool2d(2)), so that y is
// [N, F, OH / 2, OW / 2] (rounded down) and the convolution's own output is never written.
struct ConvEpilogue {
  ConvActivation activation = ConvActivation::None;
  bool avg_pool_2x2 = false;
};

// Shapes as in conv2d_shape.h, with SH = SW = 1 (NB and LD are not read).
// y [N, F, OH, OW] = conv(x [N, C, H, W], weight [F, C/G, KH, KW]) + bias [F] (bias may be null), then
// the epilogue (y smaller when it pools; OH, OW >= 2 then).
void direct_conv2d_forward(float* y, const float* x, const float* weight, const float* bias, const ConvShape& s,
                           ConvEpilogue epilogue = {});

// From dy [N, F, OH, OW]: dx [N, C, H, W] (needs weight), dweight [F, C/G, KH, KW] (needs x) and
// dbias [F]; each output is written whole, and skipped when null.
void direct_conv2d_backward(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                            const float* weight, const ConvShape& s);

}  // namespace tg::detail
