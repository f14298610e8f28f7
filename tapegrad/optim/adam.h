// optim::Adam and optim::AdamW with PyTorch 1.13's updates, bias correction included. At step t,
// per element (g = −grad with maximize):
//   Adam:  g += weight_decay·p             AdamW: p ·= 1 − lr·weight_decay (decoupled)
//   m = β1·m + (1 − β1)·g,   v = β2·v + (1 − β2)·g²,   with amsgrad v_max = max(v_max, v)
//   p += −lr/(1 − β1^t) · m / (√v / √(1 − β2^t) + eps)          (√v_max with amsgrad)
// Layer: optim.
#pragma once

#include <array>
#include <vector>

#include "tapegrad/optim/optimizer.h"

namespace tg::optim {

struct AdamOptions {
  double lr = 1e-3;
  std::array<double, 2> betas = {0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool amsgrad = false;
  bool maximize = false;
};

// AdamOptions with AdamW's default weight decay.
struct AdamWOptions {
  double lr = 1e-3;
  std::array<double, 2> betas = {0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 1e-2;
  bool amsgrad = false;
  bool maximize = false;
};

// State per parameter once it has stepped: "step", "exp_avg", "exp_avg_sq", and "max_exp_avg_sq"
// with amsgrad. Bad options (lr, eps or weight_decay < 0, a beta outside [0, 1)) throw naming the
// optimizer.
class Adam : public TypedOptimizer<AdamOptions> {
 public:
  explicit Adam(std::vector<Tensor> params, AdamOptions options = {});
  // Each group takes `defaults` with its own lr and weight_decay, if given.
  explicit Adam(std::vector<ParamGroup> groups, AdamOptions defaults = {});
  void step() override;
};

class AdamW : public TypedOptimizer<AdamWOptions> {
 public:
  explicit AdamW(std::vector<Tensor> params, AdamWOptions options = {});
  explicit AdamW(std::vector<ParamGroup> groups, AdamWOptions defaults = {});
  void step() override;
};

}  // namespace tg::optim
