// nn::Module's call operator and hooks, registries, recursion, deep copies and printing.
// Layer: layers.
#include "tapegrad/layers/module.h"

#include <cxxabi.h>

#include <cstdlib>
#include <functional>
#include <optional>
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

// --- the call operator and its hooks ---------------------------------------------------------

struct Module::Hooks {
  std::vector<std::pair<std::uint64_t, ForwardHook>> forward;
  std::vector<std::pair<std::uint64_t, BackwardHook>> backward;
  std::uint64_t next_id = 0;
};

namespace {

// The modules being called on this thread, outermost first, with their paths ("" for the
// outermost, then "features", "features.3"): kept in anomaly mode only, to tag recorded ops.
struct Call {
  const Module* module;
  std::string path;
};
thread_local std::vector<Call> calls;

std::string path_in_caller(const Module& m) {
  if (calls.empty()) return "";
  const Call& caller = calls.back();
  for (const auto& [n, child] : caller.module->named_children())
    if (child.get() == &m) return caller.path.empty() ? n : caller.path + "." + n;
  return caller.path;  // called by a module that has not registered it: reported as the caller
}

// Shared by the two identity entries a full backward hook puts around a call.
struct BackwardHookCall {
  Module* module;
  std::vector<Module::BackwardHook> hooks;
  bool input_requires_grad;
  Tensor grad_output;
};

constexpr const char* kHookEntry = "BackwardHookFunctionBackward";

// An identity entry on `t` (a new handle on the same memory) whose backward is `backward`.
Tensor identity_entry(const Tensor& t, std::function<Tensor(const Tensor&)> backward) {
  Tensor same = native::alias(t);
  return autograd::record(
      kHookEntry, same, {t}, [backward = std::move(backward)](const Tensor& g) { return std::vector<Tensor>{backward(g)}; },
      /*saved: nothing, an identity reads no values*/ {});
}

}  // namespace

Tensor Module::operator()(const Tensor& input) {
  if (!hooks_ && !autograd::is_anomaly_enabled()) return forward(input);
  return call_with_hooks(input);
}

Tensor Module::call_with_hooks(const Tensor& input) {
  std::optional<autograd::RecordingLocationGuard> where;
  if (autograd::is_anomaly_enabled()) {
    std::string path = path_in_caller(*this);
    where.emplace(path.empty() ? name() : path + " (" + name() + ")");
    calls.push_back({this, std::move(path)});
  }
  struct PopCall {
    bool active;
    ~PopCall() {
      if (active) calls.pop_back();
    }
  } pop{where.has_value()};

  std::shared_ptr<Hooks> hooks = hooks_;  // a hook may remove hooks while they run
  std::shared_ptr<BackwardHookCall> bw;
  Tensor x = input;
  if (hooks && !hooks->backward.empty() && is_grad_enabled()) {
    bw = std::make_shared<BackwardHookCall>(BackwardHookCall{this, {}, input.defined() && input.requires_grad(), {}});
    for (const auto& [id, hook] : hooks->backward) bw->hooks.push_back(hook);
    if (bw->input_requires_grad)
      x = identity_entry(input, [bw](const Tensor& grad_input) {
        Tensor g = grad_input;
        for (const BackwardHook& hook : bw->hooks) {
          Tensor replaced = hook(*bw->module, g, bw->grad_output);
          if (replaced.defined()) g = replaced;
        }
        return g;
      });
  }
  Tensor out = forward(x);
  if (hooks) {
    auto forward_hooks = hooks->forward;
    for (const auto& [id, hook] : forward_hooks) {
      Tensor replaced = hook(*this, x, out);
      if (replaced.defined()) out = replaced;
    }
  }
  if (!bw || !out.defined() || !out.requires_grad()) return out;
  return identity_entry(out, [bw](const Tensor& grad_output) {
    bw->grad_output = grad_output;
    if (bw->input_requires_grad) return grad_output;
    for (const BackwardHook& hook : bw->hooks)
      TG_CHECK(!hook(*bw->module, Tensor(), grad_output).defined(),
               "[register_full_backward_hook] a backward hook of {} returned a grad_input, but the module's input "
               "does not require grad: it should return nothing",
               bw->module->name());
    return grad_output;
  });
}

// Appends fn to one of the module's hook lists; the handle erases it by id.
template <class Fn>
RemovableHandle Module::add_hook(std::shared_ptr<Hooks>& hooks, std::vector<std::pair<std::uint64_t, Fn>> Hooks::*list,
                                 Fn fn, const char* op) {
  TG_CHECK(fn != nullptr, "[{}] the hook is empty", op);
  if (!hooks) hooks = std::make_shared<Hooks>();
  std::uint64_t id = hooks->next_id++;
  ((*hooks).*list).emplace_back(id, std::move(fn));
  return RemovableHandle([weak = std::weak_ptr(hooks), list, id] {
    if (auto live = weak.lock()) std::erase_if((*live).*list, [id](const auto& h) { return h.first == id; });
  });
}

RemovableHandle Module::add_forward_hook(ForwardHook fn) {
  return add_hook(hooks_, &Hooks::forward, std::move(fn), "register_forward_hook");
}

RemovableHandle Module::add_backward_hook(BackwardHook fn) {
  return add_hook(hooks_, &Hooks::backward, std::move(fn), "register_full_backward_hook");
}

// --- registries -------------------------------------------------------------------------------

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

void Module::replace_child(const std::string& name, std::shared_ptr<Module> module) {
  TG_CHECK(module != nullptr, "[Module] replacement for submodule \"{}\" is null", name);
  for (auto& [n, child] : children_)
    if (n == name) {
      child = std::move(module);
      return;
    }
  TG_CHECK(false, "[Module] expected a submodule named \"{}\" to replace, got none", name);
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

Module& Module::to(DType dtype) {
  TG_CHECK(is_floating(dtype), "[Module::to] expected a floating point dtype (float32 or float64), got {}",
           dtype_name(dtype));
  NoGradGuard no_grad;
  // The converted copy's storage and layout go into the tensor's own TensorImpl, which every
  // handle to the tensor shares: they all see the new dtype.
  auto convert = [dtype](Tensor t) {
    if (!t.defined() || !is_floating(t.dtype()) || t.dtype() == dtype) return;
    Tensor grad = t.grad();
    Tensor converted = native::to(t, dtype);
    TensorImpl& impl = *t.impl();
    impl.storage = converted.storage();
    impl.strides = converted.strides();
    impl.offset = converted.storage_offset();
    impl.dtype = dtype;
    if (grad.defined()) t.set_grad(native::to(grad, dtype));
  };
  for (const auto& [_, t] : state_dict()) convert(t);
  return *this;
}

// --- clone --------------------------------------------------------------------------------------

namespace {

// The map of the clone in progress on this thread: the outermost clone_as owns it, the children's
// clones add to it, so a tensor or child shared anywhere in the tree is copied once.
thread_local Module::Rebind* active_clone = nullptr;

// The class name of `type`, demangled, without namespaces: "ResBlock", "Wrap<tg::nn::Linear>".
std::string demangled_name(const std::type_info& type) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> demangled(abi::__cxa_demangle(type.name(), nullptr, nullptr, &status),
                                                   std::free);
  const std::string full = status == 0 && demangled ? demangled.get() : type.name();
  // Drop the namespaces (and "(anonymous namespace)::") outside template arguments.
  std::size_t start = 0;
  int depth = 0;
  for (std::size_t i = 0; i + 1 < full.size(); ++i) {
    if (full[i] == '<') ++depth;
    else if (full[i] == '>') --depth;
    else if (depth == 0 && full[i] == ':' && full[i + 1] == ':') start = ++i + 1;
  }
  return full.substr(start);
}

}  // namespace

Module::CloneScope::CloneScope() {
  if (active_clone) return;
  owned_ = std::make_unique<Rebind>();
  active_clone = owned_.get();
}

Module::CloneScope::~CloneScope() {
  if (owned_) active_clone = nullptr;
}

Module::Rebind& Module::CloneScope::map() { return *active_clone; }

void Module::Rebind::operator()(Tensor& t) const {
  if (!t.defined()) return;
  auto it = tensors_.find(t.impl());
  if (it != tensors_.end()) t = it->second;  // a member the module never registered stays shared
}

std::shared_ptr<Module> Module::Rebind::child(const Module* original) const {
  auto it = children_.find(original);
  TG_CHECK(it != children_.end(), "[clone] a member points to a module that is not a registered child");
  return it->second;
}

std::shared_ptr<Module> Module::clone() const {
  TG_CHECK(false, "[clone] {} does not implement clone(); override it with clone_as (see nn::Module::clone)",
           demangled_name(typeid(*this)));
  return nullptr;
}

void Module::check_clone_type(const std::type_info& implemented) const {
  TG_CHECK(typeid(*this) == implemented, "[clone] {} does not implement clone() (it inherits {}'s); override it with "
           "clone_as (see nn::Module::clone)", demangled_name(typeid(*this)), demangled_name(implemented));
}

void Module::take_copies(Rebind& r) {
  NoGradGuard no_grad;
  if (hooks_) hooks_ = std::make_shared<Hooks>(*hooks_);  // the copy's own lists, with the same hooks
  auto copy_of = [&](Tensor& t) {
    auto it = r.tensors_.find(t.impl());
    if (it == r.tensors_.end()) {
      Tensor c = native::clone(t);
      if (t.requires_grad()) c.requires_grad_();
      it = r.tensors_.emplace(t.impl(), c).first;
    }
    t = it->second;
  };
  for (auto& [_, t] : parameters_) copy_of(t);
  for (auto& [_, t] : buffers_) copy_of(t);
  for (auto& [_, c] : children_) {
    auto it = r.children_.find(c.get());
    if (it == r.children_.end()) {
      std::shared_ptr<Module> copy = c->clone();  // adds the child's own tensors to r
      it = r.children_.emplace(c.get(), std::move(copy)).first;
    }
    c = it->second;
  }
}

// --- printing ----------------------------------------------------------------------------------

std::string Module::name() const { return demangled_name(typeid(*this)); }

// PyTorch's Module.__repr__: the one-line form when extra_repr is one line and there are no
// children; otherwise each line of extra_repr, then "(name): child", indented by two.
std::string Module::to_string() const {
  std::vector<std::string> lines;
  const std::string extra = extra_repr();
  for (std::size_t begin = 0; !extra.empty() && begin <= extra.size();) {
    std::size_t end = extra.find('\n', begin);
    if (end == std::string::npos) end = extra.size();
    lines.push_back(extra.substr(begin, end - begin));
    begin = end + 1;
  }
  const std::size_t extra_lines = lines.size();
  for (const auto& [n, c] : children_) {
    std::string line = "(" + n + "): ";
    for (char ch : c->to_string()) {
      line += ch;
      if (ch == '\n') line += "  ";
    }
    lines.push_back(std::move(line));
  }
  if (lines.empty()) return name() + "()";
  if (extra_lines == 1 && children_.empty()) return name() + "(" + lines[0] + ")";
  std::string s = name() + "(";
  for (const std::string& line : lines) s += "\n  " + line;
  return s + "\n)";
}

std::ostream& operator<<(std::ostream& os, const Module& module) { return os << module.to_string(); }

}  // namespace tg::nn
