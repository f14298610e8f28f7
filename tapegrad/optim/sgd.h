// optim::SGD with PyTorch's update rule, step for step: g = grad + weight_decay·p;
// buf = g on the first step, then momentum·buf + (1 − dampening)·g; g = g + momentum·buf with
// Nesterov, else buf; p −= lr·g. Layer: optim.
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
};

class SGD : public Optimizer {
 public:
  // Throws for a missing or negative lr, negative momentum or weight decay, and Nesterov without
  // momentum or with dampening.
  SGD(std::vector<Tensor> params, SGDOptions options);
  void step() override;
  double lr() const override { return options_.lr; }
  void set_lr(double lr) override;
  const SGDOptions& options() const { return options_; }

  nn::NamedTensors state_dict() const override;
  void load_state_dict(const nn::NamedTensors& state) override;

 private:
  SGDOptions options_;
  std::vector<Tensor> momentum_buffers_;  // undefined until a parameter's first step
};

// Multiplies the learning rate by gamma every step_size epochs (call step() once per epoch).
class StepLR {
 public:
  StepLR(Optimizer& optimizer, std::int64_t step_size, double gamma = 0.1);
  void step();
  std::int64_t last_epoch() const { return epoch_; }

 private:
  Optimizer& optimizer_;
  std::int64_t step_size_;
  double gamma_;
  double base_lr_;
  std::int64_t epoch_ = 0;
};

}  // namespace tg::optim
