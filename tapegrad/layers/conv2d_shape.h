// What conv2d's two backends share: the shape of one call (conv2d.cpp's im2col + GEMM path and the
// direct kernels of conv2d_direct.cpp both take it) and the reduction of their per-thread partial
// sums. Internal to layers/. Layer: layers; must not depend on modules.
#pragma once

#include <cstdint>

#include "tapegrad/core/tensor.h"
#include "tapegrad/layers/size2.h"

namespace tg::detail {

// N batch, C input channels, F filters, G groups (Cg = C/G, Fg = F/G), H×W input, KH×KW kernel,
// SH×SW stride, PH×PW zero padding, OH×OW output (OH = (H + 2·PH − KH) / SH + 1), P = OH·OW;
// R = Cg·KH·KW taps per filter (the rows of one group's im2col columns). The im2col path processes
// the batch in blocks of NB samples, whose NB·P columns have row stride LD (unused by the direct
// kernels).
struct ConvShape {
  std::int64_t N, C, H, W, F, KH, KW, SH, SW, PH, PW, G, OH, OW, NB, LD;
  std::int64_t P() const { return OH * OW; }
  std::int64_t Cg() const { return C / G; }
  std::int64_t Fg() const { return F / G; }
  std::int64_t R() const { return C / G * KH * KW; }
  std::int64_t rows() const { return C * KH * KW; }
};

// conv2d's shape for these arguments, checked: throws "[conv2d] ..." for a bad input, weight, bias,
// stride, padding or groups (x [N, C, H, W]).
ConvShape conv2d_shape(const Tensor& x, const Tensor& weight, const Tensor& bias, Size2 stride, Size2 padding,
                       std::int64_t groups);

// out[i] = Σ_t parts[t·n + i] over the slots t in [0, slots), added in double in slot order: the
// threads' partial sums combine the same way for the same thread count, run to run. out may be
// parts itself (slot 0's sums are read before out[i] is written).
template <class T, class S>
void sum_slots(T* out, const S* parts, int slots, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    double sum = 0;
    for (int t = 0; t < slots; ++t) sum += static_cast<double>(parts[t * n + i]);
    out[i] = static_cast<T>(sum);
  }
}

}  // namespace tg::detail
