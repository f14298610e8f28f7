// nn::Module: owns named parameters, buffers and child modules, in registration order, and
// switches between training and evaluation. Names are PyTorch's ("0.weight",
// "1.running_mean"). Copying a module is shallow: the copy shares its tensors; clone() is the
// deep copy. Layer: layers; must not know optimizers.
#pragma once

#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <unordered_map>
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

  // A deep copy that shares nothing with this module: the same type and settings, its own
  // copies of every parameter and buffer (same values and requires_grad, no gradient; a tensor
  // registered twice stays one tensor) and a clone of every child, in training mode as this one.
  // Every built-in module implements it; a module of your own implements it with clone_as:
  //   std::shared_ptr<Module> clone() const override {
  //     return clone_as(*this, [](ResBlock& m, const Rebind& r) { r(m.conv); r(m.scale); });
  //   }
  // (r points each member that holds a registered tensor or child at the copy's). Module's own
  // clone() throws naming the type.
  virtual std::shared_ptr<Module> clone() const;

  // PyTorch's printed form: "Linear(in_features=4, out_features=2, bias=True)", children
  // nested and indented after the lines of extra_repr(). name() defaults to the class's own
  // name (demangled, without namespaces), as PyTorch prints a user's module.
  virtual std::string name() const;
  virtual std::string extra_repr() const { return ""; }
  std::string to_string() const;

  // The originals' tensors and children mapped to a clone's, filled while clone() runs.
  class Rebind {
   public:
    // Points t (a member holding a registered tensor, or undefined) at the copy's tensor.
    void operator()(Tensor& t) const;
    // Points m (a member holding a registered child, or null) at the copy's child.
    template <class M>
    void operator()(std::shared_ptr<M>& m) const {
      if (m) m = std::dynamic_pointer_cast<M>(child(m.get()));
    }

   private:
    friend class Module;
    std::shared_ptr<Module> child(const Module* original) const;
    std::unordered_map<const TensorImpl*, Tensor> tensors_;
    std::unordered_map<const Module*, std::shared_ptr<Module>> children_;
  };

 protected:
  Module() = default;
  Module(const Module&) = default;
  Module& operator=(const Module&) = default;
  Module(Module&&) = default;
  Module& operator=(Module&&) = default;

  // clone() for a module of type M: M's copy constructor (which shares every tensor and child),
  // then the copy's registries get copies of the tensors and clones of the children, then
  // rebind_members(copy, r) points M's own members at them. Throws when *this is of a type
  // derived from M that does not implement clone() itself.
  template <class M, class F>
  static std::shared_ptr<Module> clone_as(const M& module, F rebind_members) {
    module.check_clone_type(typeid(M));
    CloneScope scope;
    auto copy = std::make_shared<M>(module);
    copy->take_copies(scope.map());
    rebind_members(*copy, static_cast<const Rebind&>(scope.map()));
    return copy;
  }
  template <class M>
  static std::shared_ptr<Module> clone_as(const M& module) {
    return clone_as(module, [](M&, const Rebind&) {});
  }

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
  void check_clone_type(const std::type_info& implemented) const;
  // Replaces this fresh (shallow) copy's tensors and children with their copies, recorded in r.
  void take_copies(Rebind& r);
  // The map of the clone in progress on this thread, made by the outermost clone_as.
  class CloneScope {
   public:
    CloneScope();
    ~CloneScope();
    CloneScope(const CloneScope&) = delete;
    CloneScope& operator=(const CloneScope&) = delete;
    Rebind& map();

   private:
    std::unique_ptr<Rebind> owned_;
  };

  NamedTensors parameters_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
  std::shared_ptr<Hooks> hooks_;  // null until a hook is registered; shared by shallow copies
};

std::ostream& operator<<(std::ostream& os, const Module& module);

}  // namespace tg::nn
