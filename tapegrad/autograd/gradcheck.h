// gradcheck: every hand-derived backward against central differences, PyTorch's rule. The
// output is weighted by a fixed random tensor w, so the checked objective is sum(w ⊙ fn(x)).
// Layer: autograd.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "tapegrad/core/tensor.h"

namespace tg::autograd {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-5;
  double rtol = 1e-3;
};

// Converts to true when every check passed; `message` names the input, the element and both
// values of the first mismatch.
struct GradcheckResult {
  bool ok = true;
  std::string message;
  explicit operator bool() const { return ok; }
};

// For each input that requires grad (float64 expected; others are checked in their own dtype
// with a looser result), compares the analytic gradient of sum(w ⊙ fn(inputs)) from backward()
// with central differences (f(x+eps) - f(x-eps)) / 2eps, element by element:
// |analytic - numerical| <= atol + rtol · |numerical|. Also checks that a second backward gives
// the same gradients, and that non-contiguous copies of the inputs give them too. Never throws
// on a mismatch; exceptions from fn propagate. Throws when no input requires grad. An input
// that requires grad and is not float64 puts a warning first in `message` (float32's central
// differences are too coarse: PyTorch fails such checks), whatever the result.
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, GradcheckOptions options = {});

}  // namespace tg::autograd
