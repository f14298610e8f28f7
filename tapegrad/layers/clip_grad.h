// nn::utils::clip_grad_norm_ and clip_grad_value_, PyTorch 1.13's gradient clipping: in place on
// the parameters' .grad, under no-grad. Layer: layers (needs only tensors); must not know
// optimizers.
#pragma once

#include <vector>

#include "tapegrad/core/tensor.h"

namespace tg::nn::utils {

// The norm of order norm_type of all the gradients taken together (as if concatenated; inf: the
// largest |g|), returned; when max_norm / (norm + 1e-6) is below 1, every gradient is scaled by it.
// Parameters without a gradient are skipped (the norm is 0 when none has one). Throws for a
// norm_type that is not positive and a negative max_norm; with error_if_nonfinite, for a NaN or
// infinite norm, changing nothing.
double clip_grad_norm_(const std::vector<Tensor>& parameters, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);

// Clamps every gradient into [−clip_value, clip_value]; throws for a negative clip_value.
void clip_grad_value_(const std::vector<Tensor>& parameters, double clip_value);

}  // namespace tg::nn::utils
