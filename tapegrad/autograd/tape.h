// The tape: grad mode, and the public way to add a differentiable op. An op computes its output
// without recording, then calls record(), which appends one entry (name, inputs, backward) when
// grad mode is on and an input requires grad. Tensor::backward() walks the tape in reverse;
// autograd::grad() does too, returning the gradients. Anomaly mode is in autograd/anomaly.h.
// Layer: autograd; must not know modules.
#pragma once

#include <concepts>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tapegrad/autograd/anomaly.h"
#include "tapegrad/core/native.h"  // native::alias, which a backward captures instead of its output
#include "tapegrad/core/tensor.h"

namespace tg {

bool is_grad_enabled();
void set_grad_enabled(bool enabled);

// Turns recording off for its scope (nestable, per thread), as torch.no_grad().
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

namespace autograd {

// Maps the output's gradient to one gradient per input (an undefined Tensor for "none"). Runs
// with grad mode off; must return tensors of each input's shape and dtype (the engine checks).
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

// Clang's check that a view does not outlive what it views (-Wdangling); GCC has none.
#if defined(__clang__)
#define TG_LIFETIMEBOUND [[clang::lifetimebound]]
#else
#define TG_LIFETIMEBOUND
#endif

// The tensors an op names to record(): a braced list or a vector, viewed in place, as PyTorch's
// TensorList (c10::ArrayRef<Tensor>). A parameter type only: a braced list or a temporary vector
// it views ends with the full expression, so a TensorList kept in a variable would dangle (clang
// warns).
class TensorList {
 public:
  TensorList() = default;
  // Assigned rather than initialized: GCC's -Winit-list-lifetime warns of the dangling that only a
  // TensorList outliving its full expression could have.
  TensorList(std::initializer_list<Tensor> list TG_LIFETIMEBOUND) {
    first_ = list.begin();
    size_ = list.size();
  }
  TensorList(const std::vector<Tensor>& tensors TG_LIFETIMEBOUND) : first_(tensors.data()), size_(tensors.size()) {}
  const Tensor* begin() const { return first_; }
  const Tensor* end() const { return first_ + size_; }
  std::size_t size() const { return size_; }

 private:
  const Tensor* first_ = nullptr;
  std::size_t size_ = 0;
};

// Whether an op on these inputs must record: grad mode on and some input requires grad.
bool needs_grad(TensorList inputs);
// The same for tensors named one by one, building no list.
template <class... Rest>
bool needs_grad(const Tensor& first, const Rest&... rest) {
  const auto wants = [](const Tensor& t) { return t.defined() && t.requires_grad(); };
  return is_grad_enabled() && (wants(first) || (wants(rest) || ...));
}

namespace detail {
Tensor record_entry(std::string_view name, const Tensor& output, TensorList inputs, BackwardFn backward,
                    TensorList saved);
}  // namespace detail

// Records `output` as computed from `inputs` by an op whose gradient is `backward` (any callable
// a BackwardFn holds), and returns it (now requiring grad). A no-op returning `output` when
// needs_grad(inputs) is false. It asks that before it converts anything, so an op run without grad
// builds no std::function, vector or name: with those allocations, LeNet-BN's inference at batch 1
// ran an eighth slower. `saved` lists the tensors the backward reads (default: the inputs; undefined
// ones are skipped): modifying one of them in place before backward makes backward throw, naming
// the op. Never capture `output` itself in `backward` (a cycle); capture native::alias(output)
// instead.
template <class Backward>
  requires std::constructible_from<BackwardFn, Backward&&>
Tensor record(std::string_view name, const Tensor& output, TensorList inputs, Backward&& backward, TensorList saved) {
  if (!needs_grad(inputs)) return output;
  return detail::record_entry(name, output, inputs, BackwardFn(std::forward<Backward>(backward)), saved);
}
template <class Backward>
  requires std::constructible_from<BackwardFn, Backward&&>
Tensor record(std::string_view name, const Tensor& output, TensorList inputs, Backward&& backward) {
  return record(name, output, inputs, std::forward<Backward>(backward), inputs);
}

// Number of live entries on this thread's tape (entries whose output is still alive).
std::size_t tape_size();

// As torch.autograd.grad: the gradients of `outputs` with respect to `inputs` (each requiring
// grad), returned instead of accumulated into .grad. `grad_outputs` holds one gradient per output,
// or is empty for implicit ones (scalar outputs only). Walks the tape only until every input's
// gradient is complete; leaves' .grad and post-accumulate hooks are left alone, gradient hooks of
// the tensors it passes through run. An input the outputs do not depend on throws, unless
// allow_unused, which gives an undefined Tensor for it.
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs = {}, bool retain_graph = false,
                         bool allow_unused = false);

}  // namespace autograd
}  // namespace tg
