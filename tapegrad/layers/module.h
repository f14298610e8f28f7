// nn::Module: owns named parameters, buffers and child modules, in registration order, and
// switches between training and evaluation. Names are PyTorch's ("0.weight",
// "1.running_mean"). Copying a module is shallow: the copy shares its tensors. Layer: layers;
// must not know optimizers.
#pragma once

#include <iosfwd>
#include <memory>
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
  Tensor operator()(const Tensor& input) { return forward(input); }

  // Registers (and returns, sharing it) a parameter: requires_grad is set on it.
  Tensor register_parameter(std::string name, Tensor tensor, bool requires_grad = true);
  // Registers (and returns, sharing it) a buffer: state that is saved but not trained.
  Tensor register_buffer(std::string name, Tensor tensor);
  template <class M>
  std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> module) {
    add_child(std::move(name), module);
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
  void add_child(std::string name, std::shared_ptr<Module> module);
  void collect(const std::string& prefix, bool params, bool recurse, NamedTensors& out) const;

  NamedTensors parameters_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

std::ostream& operator<<(std::ostream& os, const Module& module);

}  // namespace tg::nn
