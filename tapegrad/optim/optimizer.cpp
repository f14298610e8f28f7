// Optimizer's shared parts: parameter checks, zero_grad, and saving its state as safetensors.
// Layer: optim.
#include "tapegrad/optim/optimizer.h"

#include "tapegrad/autograd/tape.h"
#include "tapegrad/core/native.h"
#include "tapegrad/layers/serialize.h"

namespace tg::optim {

Optimizer::Optimizer(std::vector<Tensor> params) : params_(std::move(params)) {
  for (std::size_t i = 0; i < params_.size(); ++i) {
    TG_CHECK(params_[i].defined() && params_[i].requires_grad() && params_[i].is_leaf(),
             "[Optimizer] parameter {} must be a defined leaf tensor that requires grad", i);
    for (std::size_t j = 0; j < i; ++j)
      TG_CHECK(!params_[i].is_same(params_[j]), "[Optimizer] parameter {} appears twice (also at {})", i, j);
  }
}

void Optimizer::zero_grad() {
  NoGradGuard no_grad;
  for (Tensor& p : params_)
    if (p.grad().defined()) native::fill_(p.grad(), 0);
}

}  // namespace tg::optim

namespace tg {

void save(const optim::Optimizer& optimizer, const std::string& path) { save_tensors(optimizer.state_dict(), path); }

void load(optim::Optimizer& optimizer, const std::string& path) {
  optimizer.load_state_dict(load_tensors(path));
}

}  // namespace tg
