// optim::Optimizer: the parameters it updates and their per-parameter state (named tensors, so
// it saves like a module's state dict). Layer: optim; must not know datasets.
#pragma once

#include <string>
#include <vector>

#include "tapegrad/layers/module.h"

namespace tg::optim {

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  // Zeroes every parameter's gradient in place (PyTorch 1.13's default, set_to_none=False).
  void zero_grad();
  const std::vector<Tensor>& params() const { return params_; }

  virtual double lr() const = 0;
  virtual void set_lr(double lr) = 0;

  // Per-parameter state as named tensors ("momentum_buffer.3" for parameter 3); loading checks
  // names, shapes and dtypes first and changes nothing when they do not fit.
  virtual nn::NamedTensors state_dict() const = 0;
  virtual void load_state_dict(const nn::NamedTensors& state) = 0;

 protected:
  explicit Optimizer(std::vector<Tensor> params);
  std::vector<Tensor> params_;
};

}  // namespace tg::optim

namespace tg {
// The optimizer's state (load_state_dict's checks apply: on a mismatch nothing changes).
void save(const optim::Optimizer& optimizer, const std::string& path);
void load(optim::Optimizer& optimizer, const std::string& path);
}  // namespace tg
