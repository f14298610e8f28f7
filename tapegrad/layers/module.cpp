// nn::Module's registries, recursion and printing. Layer: layers.
#include "tapegrad/layers/module.h"

#include <functional>
#include <ostream>

#include "tapegrad/autograd/tape.h"
#include "tapegrad/core/native.h"

namespace tg::nn {

namespace {

void check_name(const std::string& name, const char* what) {
  TG_CHECK(!name.empty() && name.find('.') == std::string::npos,
           "[Module] {} name can't be empty or contain \".\", got \"{}\"", what, name);
}

template <class List>
bool has_name(const List& list, const std::string& name) {
  for (const auto& [n, _] : list)
    if (n == name) return true;
  return false;
}

}  // namespace

Tensor Module::forward(const Tensor& input) {
  TG_CHECK(false, "[{}] forward(input) is not defined for this module (got input of shape {})", name(),
           input.defined() ? input.sizes() : Shape{});
  return input;
}

Tensor Module::register_parameter(std::string name, Tensor tensor, bool requires_grad) {
  check_name(name, "parameter");
  TG_CHECK(!has_name(parameters_, name) && !has_name(buffers_, name) && !has_name(children_, name),
           "[Module] attribute \"{}\" already exists", name);
  TG_CHECK(tensor.defined(), "[Module] parameter \"{}\" is undefined", name);
  if (requires_grad) tensor.requires_grad_();
  parameters_.emplace_back(std::move(name), tensor);
  return tensor;
}

Tensor Module::register_buffer(std::string name, Tensor tensor) {
  check_name(name, "buffer");
  TG_CHECK(!has_name(parameters_, name) && !has_name(buffers_, name) && !has_name(children_, name),
           "[Module] attribute \"{}\" already exists", name);
  TG_CHECK(tensor.defined(), "[Module] buffer \"{}\" is undefined", name);
  buffers_.emplace_back(std::move(name), tensor);
  return tensor;
}

void Module::add_child(std::string name, std::shared_ptr<Module> module) {
  check_name(name, "module");
  TG_CHECK(module != nullptr, "[Module] submodule \"{}\" is null", name);
  TG_CHECK(!has_name(parameters_, name) && !has_name(buffers_, name) && !has_name(children_, name),
           "[Module] attribute \"{}\" already exists", name);
  children_.emplace_back(std::move(name), std::move(module));
}

void Module::collect(const std::string& prefix, bool params, bool recurse, NamedTensors& out) const {
  for (const auto& [n, t] : params ? parameters_ : buffers_) out.emplace_back(prefix + n, t);
  if (!recurse) return;
  for (const auto& [n, child] : children_) child->collect(prefix + n + ".", params, true, out);
}

NamedTensors Module::named_parameters(bool recurse) const {
  NamedTensors out;
  collect("", true, recurse, out);
  return out;
}

NamedTensors Module::named_buffers(bool recurse) const {
  NamedTensors out;
  collect("", false, recurse, out);
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [_, t] : named_parameters(recurse)) out.push_back(t);
  return out;
}

std::vector<Tensor> Module::buffers(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [_, t] : named_buffers(recurse)) out.push_back(t);
  return out;
}

std::vector<std::shared_ptr<Module>> Module::children() const {
  std::vector<std::shared_ptr<Module>> out;
  for (const auto& [_, c] : children_) out.push_back(c);
  return out;
}

NamedTensors Module::state_dict() const {
  NamedTensors out;
  std::function<void(const Module&, const std::string&)> walk = [&](const Module& m, const std::string& prefix) {
    for (const auto& [n, t] : m.parameters_) out.emplace_back(prefix + n, t);
    for (const auto& [n, t] : m.buffers_) out.emplace_back(prefix + n, t);
    for (const auto& [n, c] : m.children_) walk(*c, prefix + n + ".");
  };
  walk(*this, "");
  return out;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [_, c] : children_) c->train(on);
}

void Module::zero_grad() {
  NoGradGuard no_grad;
  for (Tensor& p : parameters())
    if (p.grad().defined()) native::fill_(p.grad(), 0);
}

std::string Module::to_string() const {
  std::string head = name() + "(" + extra_repr();
  if (children_.empty()) return head + ")";
  std::string s = head + "\n";
  for (const auto& [n, c] : children_) {
    std::string child = c->to_string();
    std::string indented;
    for (char ch : child) {
      indented += ch;
      if (ch == '\n') indented += "  ";
    }
    s += "  (" + n + "): " + indented + "\n";
  }
  return s + ")";
}

std::ostream& operator<<(std::ostream& os, const Module& module) { return os << module.to_string(); }

}  // namespace tg::nn
