// nn::Module: owns named parameters, buffers and child modules, in registration order, and
// switches between training and evaluation. Names are PyTorch's ("0.weight",
// "1.running_mean"). Copying a module is shallow: the copy shares its tensors. Layer: layers;
// must not know optimizers.
#pragma once

#include <functional>
#include <iosfwd>
#include <memory>
#include <type_traits>
#include <string>
#include <utility>
#include <vector>

#include "tapegrad/core/tensor.h"

namespace tg::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  virtual ~Module() = default;

  // The module's computation on one input. Modules that take more (the losses) have their own
  // operator(); calling this on them throws.
  virtual Tensor forward(const Tensor& input);
  // forward(input), with the module's hooks around it; in anomaly mode, ops recorded inside are
  // tagged with the module's path ("3 (Sigmoid)"). Call children this way, not through forward().
  Tensor operator()(const Tensor& input);

  // Hooks, as PyTorch's (whose tuples have one element here: a call takes and returns one tensor).
  // Each returns a handle whose remove() takes the hook out; hooks run in registration order.
  //   forward hook:  fn(module, input, output) after forward; may return a replacement output.
  //   full backward hook:  fn(module, grad_input, grad_output) once the gradient with respect to the
  //     call's input is complete; may return a replacement grad_input, which flows on. When the
  //     input does not require grad, it runs with an undefined grad_input once grad_output is known,
  //     and must return nothing. The module must outlive the backward.
  // An undefined Tensor returned (or a void fn) keeps the value.
  using ForwardHook = std::function<Tensor(Module& module, const Tensor& input, const Tensor& output)>;
  using BackwardHook = std::function<Tensor(Module& module, const Tensor& grad_input, const Tensor& grad_output)>;
  template <class F>
  RemovableHandle register_forward_hook(F&& fn) {
    return add_forward_hook(ForwardHook(keep_if_void<const Tensor&, const Tensor&>(std::forward<F>(fn))));
  }
  template <class F>
  RemovableHandle register_full_backward_hook(F&& fn) {
    return add_backward_hook(BackwardHook(keep_if_void<const Tensor&, const Tensor&>(std::forward<F>(fn))));
  }

  // Registers (and returns, sharing it) a parameter: requires_grad is set on it.
  Tensor register_parameter(std::string name, Tensor tensor, bool requires_grad = true);
  // Registers (and returns, sharing it) a buffer: state that is saved but not trained.
  Tensor register_buffer(std::string name, Tensor tensor);
  template <class M>
  std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> module) {
    add_child(std::move(name), module);
    return module;
  }
  // Puts `module` in the place of the existing child `name` (PyTorch's C++ replace_module);
  // throws when there is no such child.
  template <class M>
  std::shared_ptr<M> replace_module(const std::string& name, std::shared_ptr<M> module) {
    replace_child(name, module);
    return module;
  }

  std::vector<Tensor> parameters(bool recurse = true) const;
  NamedTensors named_parameters(bool recurse = true) const;
  std::vector<Tensor> buffers(bool recurse = true) const;
  NamedTensors named_buffers(bool recurse = true) const;
  std::vector<std::shared_ptr<Module>> children() const;
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named_children() const { return children_; }
  // Parameters and buffers of this module and its children, PyTorch's state_dict order.
  NamedTensors state_dict() const;

  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // Zeroes every parameter's gradient in place (PyTorch 1.13's default).
  void zero_grad();
  // Converts every floating parameter and buffer (and gradient) to `dtype` in place, as
  // module.to(torch.float64): each tensor keeps its identity (handles to it, the layers' public
  // members, see the new data), int64 buffers stay. Optimizers made before keep the old tensors'
  // state: make them after.
  Module& to(DType dtype);

  // PyTorch's printed form: "Linear(in_features=4, out_features=2, bias=True)", children
  // nested and indented.
  virtual std::string name() const { return "Module"; }
  virtual std::string extra_repr() const { return ""; }
  std::string to_string() const;

 protected:
  Module() = default;
  Module(const Module&) = default;
  Module& operator=(const Module&) = default;
  Module(Module&&) = default;
  Module& operator=(Module&&) = default;

 private:
  struct Hooks;
  // fn, or fn wrapped to return an undefined Tensor when it returns void.
  template <class... Args, class F>
  static auto keep_if_void(F&& fn) {
    if constexpr (std::is_void_v<std::invoke_result_t<F&, Module&, Args...>>)
      return [f = std::forward<F>(fn)](Module& m, Args... args) mutable {
        f(m, args...);
        return Tensor();
      };
    else
      return std::forward<F>(fn);
  }
  template <class Fn>
  static RemovableHandle add_hook(std::shared_ptr<Hooks>& hooks, std::vector<std::pair<std::uint64_t, Fn>> Hooks::*list,
                                  Fn fn, const char* op);
  RemovableHandle add_forward_hook(ForwardHook fn);
  RemovableHandle add_backward_hook(BackwardHook fn);
  Tensor call_with_hooks(const Tensor& input);
  void add_child(std::string name, std::shared_ptr<Module> module);
  void replace_child(const std::string& name, std::shared_ptr<Module> module);
  void collect(const std::string& prefix, bool params, bool recurse, NamedTensors& out) const;

  NamedTensors parameters_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
  std::shared_ptr<Hooks> hooks_;  // null until a hook is registered; shared by shallow copies
};

std::ostream& operator<<(std::ostream& os, const Module& module);

}  // namespace tg::nn
