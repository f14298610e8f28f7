// Registering tensor hooks: gradient hooks (run by the engine when the tensor's gradient is
// complete, in registration order) and post-accumulate-grad hooks (leaves, after .grad is
// written). Each returns a handle that removes it. Layer: autograd.
#include "tapegrad/autograd/meta.h"

namespace tg {

using autograd::detail::ensure_meta;

namespace {

// Appends fn to one of the tensor's hook lists; the handle erases it by id, if the tensor lives.
template <class Fn>
RemovableHandle add_hook(const Tensor& t, std::vector<std::pair<std::uint64_t, Fn>> autograd::Meta::*list, Fn fn) {
  autograd::Meta& m = ensure_meta(t);
  std::uint64_t id = m.next_hook_id++;
  (m.*list).emplace_back(id, std::move(fn));
  return RemovableHandle([slot = std::weak_ptr(t.impl()->autograd), list, id] {
    if (auto live = slot.lock())
      std::erase_if(static_cast<autograd::Meta&>(*live).*list, [id](const auto& h) { return h.first == id; });
  });
}

}  // namespace

RemovableHandle Tensor::register_gradient_hook(GradientHook fn) {
  TG_CHECK(requires_grad(), "[register_hook] cannot register a hook on a tensor that doesn't require gradient");
  TG_CHECK(fn != nullptr, "[register_hook] the hook is empty");
  return add_hook(*this, &autograd::Meta::hooks, std::move(fn));
}

RemovableHandle Tensor::register_post_accumulate_grad_hook(PostAccumulateGradHook fn) {
  TG_CHECK(requires_grad() && is_leaf(),
           "[register_post_accumulate_grad_hook] post accumulate grad hooks can only be registered on leaf tensors "
           "that require grad{}",
           is_leaf() ? "" : fmt::format(" (this one is the output of {})", grad_fn_name()));
  TG_CHECK(fn != nullptr, "[register_post_accumulate_grad_hook] the hook is empty");
  return add_hook(*this, &autograd::Meta::post_accumulate_hooks, std::move(fn));
}

}  // namespace tg
