// RemovableHandle: what registering a hook returns (as torch.utils.hooks.RemovableHandle). Layer:
// core, so that Tensor::register_hook can return it; autograd and layers create them.
#pragma once

#include <functional>
#include <utility>

namespace tg {

// remove() takes the hook out; it is explicit (dropping the handle keeps the hook, as in
// PyTorch), idempotent, and harmless once the tensor or module that held the hook is gone.
class RemovableHandle {
 public:
  RemovableHandle() = default;
  explicit RemovableHandle(std::function<void()> remover) : remover_(std::move(remover)) {}

  void remove() {
    std::function<void()> remover = std::move(remover_);
    remover_ = nullptr;
    if (remover) remover();
  }

 private:
  std::function<void()> remover_;
};

}  // namespace tg
