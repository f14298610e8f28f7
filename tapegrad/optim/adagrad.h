// optim::Adagrad with PyTorch 1.13's update. At step t, per element (g = −grad with maximize):
//   g += weight_decay·p;   sum += g²;   p −= lr / (1 + (t − 1)·lr_decay) · g / (√sum + eps)
// Layer: optim.
#pragma once

#include <vector>

#include "tapegrad/optim/optimizer.h"

namespace tg::optim {

struct AdagradOptions {
  double lr = 1e-2;
  double lr_decay = 0.0;
  double weight_decay = 0.0;
  double initial_accumulator_value = 0.0;
  double eps = 1e-10;
  bool maximize = false;
};

// State per parameter, from construction on (as PyTorch's): "step" (a count) and "sum" (filled
// with initial_accumulator_value). Bad options (any of the numbers < 0) throw naming the
// optimizer.
class Adagrad : public TypedOptimizer<AdagradOptions> {
 public:
  explicit Adagrad(std::vector<Tensor> params, AdagradOptions options = {});
  // Each group takes `defaults` with its own lr and weight_decay, if given.
  explicit Adagrad(std::vector<ParamGroup> groups, AdagradOptions defaults = {});
  void step() override;
};

}  // namespace tg::optim
