// The consumer's own core/tensor.h: a different Tensor in a different namespace. If tapegrad's
// headers resolved "core/tensor.h" against the user's path, tg::Tensor would be missing.
#pragma once

namespace app {
struct Tensor {
  double value = 0;
};
}  // namespace app
