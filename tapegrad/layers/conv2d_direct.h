// Direct float32 convolution for stride 1: no im2col columns, the products accumulate in vector
// registers along the output width. conv2d.cpp calls it for float32, stride-1 convolutions and keeps
// im2col + GEMM for the rest. Internal to layers/. Layer: layers; must not depend on modules.
#pragma once

#include <cstdint>
#include <functional>

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

// direct_conv2d_backward's gradients, the same values bit for bit, from a dy that is never whole in
// memory: make_dy(dy_chunk, n0, n1) writes samples [n0, n1) of dy into dy_chunk [n1 − n0, F, OH, OW],
// at most kConvDyChunk samples at a time (per thread), and the chunk is used while it is in cache.
// For a dy that is itself computed from tensors that the backward reads anyway (batch norm's input
// gradient, conv2d_batch_norm_act): it is neither written to memory nor read back.
inline constexpr std::int64_t kConvDyChunk = 32;
using DyChunks = std::function<void(float* dy_chunk, std::int64_t n0, std::int64_t n1)>;
void direct_conv2d_backward_chunked(float* dx, float* dweight, float* dbias, const float* x, const float* weight,
                                    const ConvShape& s, const DyChunks& make_dy);

}  // namespace tg::detail
