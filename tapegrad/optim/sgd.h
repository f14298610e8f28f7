// optim::SGD with PyTorch's update rule, step for step: g = grad + weight_decay·p;
// buf = g on the first step, then momentum·buf + (1 − dampening)·g; g = g + momentum·buf with
// Nesterov, else buf; p −= lr·g (p += lr·g with maximize). Layer: optim.
#pragma once

#include <limits>
#include <vector>

#include "tapegrad/optim/optimizer.h"

namespace tg::optim {

struct SGDOptions {
  double lr = std::numeric_limits<double>::quiet_NaN();  // required, as in PyTorch
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  bool maximize = false;
};

// State per parameter: "momentum_buffer" once it has stepped with a momentum.
class SGD : public TypedOptimizer<SGDOptions> {
 public:
  // Throws for a missing or negative lr, negative momentum or weight decay, Nesterov without
  // momentum or with dampening, and an empty parameter list.
  SGD(std::vector<Tensor> params, SGDOptions options);
  // Each group takes `defaults` with its own lr and weight_decay, if given.
  SGD(std::vector<ParamGroup> groups, SGDOptions defaults);
  void step() override;
};

}  // namespace tg::optim
