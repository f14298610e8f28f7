// optim::RMSprop with PyTorch 1.13's update. Per element (g = −grad with maximize):
//   g += weight_decay·p;   v = α·v + (1 − α)·g²
//   centered: ḡ = α·ḡ + (1 − α)·g,  avg = √(v − ḡ²) + eps;   else avg = √v + eps
//   momentum > 0: buf = momentum·buf + g/avg, p −= lr·buf;    else p −= lr·g/avg
// Layer: optim.
#pragma once

#include <vector>

#include "tapegrad/optim/optimizer.h"

namespace tg::optim {

struct RMSpropOptions {
  double lr = 1e-2;
  double momentum = 0.0;
  double alpha = 0.99;
  double eps = 1e-8;
  bool centered = false;
  double weight_decay = 0.0;
  bool maximize = false;
};

// State per parameter once it has stepped: "step" (a count), "square_avg", "momentum_buffer" with
// a momentum, "grad_avg" when centered. Bad options (lr, momentum, alpha, eps or weight_decay < 0)
// throw naming the optimizer.
class RMSprop : public TypedOptimizer<RMSpropOptions> {
 public:
  explicit RMSprop(std::vector<Tensor> params, RMSpropOptions options = {});
  // Each group takes `defaults` with its own lr and weight_decay, if given.
  explicit RMSprop(std::vector<ParamGroup> groups, RMSpropOptions defaults = {});
  void step() override;
};

}  // namespace tg::optim
