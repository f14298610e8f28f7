// The engine: grad mode, recording, and backward as a reverse walk of the tape. Entries are
// appended in execution order, so walking back from the root's entry visits every entry after
// all entries that consume its output: no topological sort. Gradients of intermediate tensors
// live in a map keyed by tensor identity; leaves accumulate into .grad. Layer: autograd.
#include "tapegrad/autograd/tape.h"

#include <algorithm>
#include <unordered_map>

#include "tapegrad/autograd/meta.h"
#include "tapegrad/core/native.h"

namespace tg {

namespace {

thread_local bool grad_enabled = true;

// Entries in execution order. The tape holds them weakly: an entry lives as long as its output.
struct Tape {
  std::vector<std::pair<std::uint64_t, std::weak_ptr<autograd::Node>>> entries;
  std::uint64_t next_seq = 0;
  std::size_t compact_at = 1024;

  void push(const std::shared_ptr<autograd::Node>& node) {
    node->seq = next_seq++;
    entries.emplace_back(node->seq, node);
    if (entries.size() >= compact_at) {
      std::erase_if(entries, [](const auto& e) { return e.second.expired(); });
      compact_at = std::max<std::size_t>(1024, 2 * entries.size());
    }
  }
};

thread_local Tape tape;

// The slot holds nothing but autograd::Meta: only this file creates it.
autograd::Meta* meta_of(const Tensor& t) { return static_cast<autograd::Meta*>(t.impl()->autograd.get()); }

// Deletes a node without recursing down the graph: a long chain dropped before backward would
// otherwise free each node from inside the previous one's destructor and overflow the stack.
// A node's last-owner inputs hand their entries to the outermost call, which frees them in a
// loop (PyTorch's deleteNode does the same). A raw thread_local pointer: safe at thread exit.
thread_local std::vector<std::shared_ptr<autograd::Node>>* pending_deletes = nullptr;

void delete_node(autograd::Node* node) {
  std::vector<std::shared_ptr<autograd::Node>> pending;
  bool outermost = pending_deletes == nullptr;
  if (outermost) pending_deletes = &pending;
  node->backward = nullptr;  // drop the captures first: then `inputs` holds the last references
  for (Tensor& t : node->inputs) {
    if (!t.defined() || t.impl_ptr().use_count() != 1) continue;
    const std::shared_ptr<AutogradMetaInterface>& slot = t.impl()->autograd;
    autograd::Meta* meta = meta_of(t);
    if (meta && slot.use_count() == 1 && meta->grad_fn && meta->grad_fn.use_count() == 1)
      pending_deletes->push_back(std::move(meta->grad_fn));
  }
  delete node;
  if (!outermost) return;
  while (!pending.empty()) {
    std::shared_ptr<autograd::Node> next = std::move(pending.back());
    pending.pop_back();
    next.reset();  // re-enters delete_node, which only appends to `pending`
  }
  pending_deletes = nullptr;
}


autograd::Meta& ensure_meta(const Tensor& t) {
  if (!t.impl()->autograd) t.impl()->autograd = std::make_shared<autograd::Meta>();
  return *meta_of(t);
}

// Whether nothing but this handle can reach t's memory: a dense tensor a backward has just made.
// Such a gradient can be kept, or added into in place, without a copy.
bool exclusive(const Tensor& t) {
  return t.impl_ptr().use_count() == 1 && t.storage().use_count() == 1 && !t.impl()->autograd &&
         t.is_contiguous() && t.storage_offset() == 0 &&
         t.storage()->nbytes() == static_cast<std::size_t>(t.numel()) * itemsize(t.dtype());
}

// .grad owns contiguous memory and never aliases another live tensor: the first gradient is kept
// when exclusive (the caller's handle is about to go), copied otherwise.
void accumulate_leaf(const Tensor& leaf, const Tensor& g) {
  autograd::Meta& m = ensure_meta(leaf);
  if (m.grad.defined()) native::binary_(native::BinaryOp::Add, m.grad, g);
  else m.grad = exclusive(g) ? g : native::clone(g);
}

void run_backward(const Tensor& root, const Tensor& root_grad) {
  autograd::Meta* rm = meta_of(root);
  TG_CHECK(rm && rm->requires_grad_flag,
           "[backward] element 0 of tensors does not require grad and does not have a grad_fn");
  NoGradGuard no_grad;
  if (!rm->grad_fn) {
    accumulate_leaf(root, root_grad);
    return;
  }
  const auto& entries = tape.entries;
  std::uint64_t root_seq = rm->grad_fn->seq;
  auto it = std::lower_bound(entries.begin(), entries.end(), root_seq,
                             [](const auto& e, std::uint64_t s) { return e.first < s; });
  TG_ASSERT(it != entries.end() && it->first == root_seq, "the root's entry is not on this thread's tape");

  // A pending gradient holds its tensor: the tensor owns its entry, and once the consuming entry
  // releases its inputs the map may be the only thing keeping an intermediate (and its entry) alive.
  struct Pending {
    Tensor tensor;
    Tensor grad;
  };
  std::unordered_map<const TensorImpl*, Pending> grads;
  grads.emplace(root.impl(), Pending{root, root_grad});
  for (std::ptrdiff_t i = it - entries.begin(); i >= 0 && !grads.empty(); --i) {
    std::shared_ptr<autograd::Node> node = entries[static_cast<std::size_t>(i)].second.lock();
    if (!node) continue;
    auto g = grads.find(node->output);
    if (g == grads.end()) continue;
    TG_CHECK(node->backward,
             "[backward] trying to backward through the graph a second time (or directly access saved tensors after "
             "they have already been freed): {} was already consumed",
             node->name);
    for (const auto& [storage, version] : node->saved_versions)
      TG_CHECK(storage->version() == version,
               "[backward] one of the tensors needed for gradient computation has been modified by an in-place "
               "operation: {} saved it at version {}, it is now at version {}",
               node->name, version, storage->version());
    Tensor grad_out = std::move(g->second.grad);
    grads.erase(g);
    std::vector<Tensor> grad_in = node->backward(grad_out);
    TG_CHECK(grad_in.size() == node->inputs.size(), "[{}] backward returned {} gradients for {} inputs", node->name,
             grad_in.size(), node->inputs.size());
    std::vector<Tensor> inputs = std::move(node->inputs);
    node->backward = nullptr;  // consumed: release what it captured
    node->saved_versions.clear();
    for (std::size_t j = 0; j < inputs.size(); ++j) {
      const Tensor& in = inputs[j];
      const Tensor& gj = grad_in[j];
      if (!in.defined() || !gj.defined()) continue;
      TG_CHECK(gj.sizes() == in.sizes() && gj.dtype() == in.dtype(),
               "[{}] backward returned a gradient of shape {} and dtype {} for input {} of shape {} and dtype {}",
               node->name, gj.sizes(), dtype_name(gj.dtype()), j, in.sizes(), dtype_name(in.dtype()));
      autograd::Meta* im = meta_of(in);
      if (!im->grad_fn) {
        accumulate_leaf(in, gj);
        continue;
      }
      auto [slot, fresh] = grads.try_emplace(in.impl(), Pending{in, gj});
      if (fresh) continue;
      Tensor& sum = slot->second.grad;
      if (exclusive(sum)) native::binary_(native::BinaryOp::Add, sum, gj);
      else sum = native::binary(native::BinaryOp::Add, sum, gj);
    }
  }
}

}  // namespace

bool is_grad_enabled() { return grad_enabled; }
void set_grad_enabled(bool enabled) { grad_enabled = enabled; }

NoGradGuard::NoGradGuard() : previous_(grad_enabled) { grad_enabled = false; }
NoGradGuard::~NoGradGuard() { grad_enabled = previous_; }

namespace autograd {

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

Tensor record(std::string name, const Tensor& output, const std::vector<Tensor>& inputs, BackwardFn backward) {
  return record(std::move(name), output, inputs, std::move(backward), inputs);
}

Tensor record(std::string name, const Tensor& output, const std::vector<Tensor>& inputs, BackwardFn backward,
              const std::vector<Tensor>& saved) {
  if (!needs_grad(inputs)) return output;
  TG_CHECK(output.defined(), "[record] {}: the output is undefined", name);
  TG_CHECK(is_floating(output.dtype()), "[record] {}: only floating point outputs can have gradients, got {}", name,
           dtype_name(output.dtype()));
  TG_CHECK(!output.requires_grad(), "[record] {}: the output is already on the tape or a leaf that requires grad",
           name);
  TG_CHECK(backward != nullptr, "[record] {}: the backward function is empty", name);
  std::shared_ptr<Node> node(new Node(), delete_node);
  node->name = std::move(name);
  node->output = output.impl();
  node->inputs.reserve(inputs.size());
  for (const Tensor& t : inputs) {
    TG_CHECK(!t.defined() || !t.is_same(output), "[record] {}: the output cannot be one of its inputs", node->name);
    node->inputs.push_back(t.defined() && t.requires_grad() ? t : Tensor());
  }
  for (const Tensor& t : saved)
    if (t.defined()) node->saved_versions.emplace_back(t.storage(), t.storage()->version());
  node->backward = std::move(backward);
  tape.push(node);
  Meta& m = ensure_meta(output);
  m.requires_grad_flag = true;
  m.grad_fn = std::move(node);
  return output;
}

std::size_t tape_size() {
  return static_cast<std::size_t>(
      std::count_if(tape.entries.begin(), tape.entries.end(), [](const auto& e) { return !e.second.expired(); }));
}

}  // namespace autograd

// --- the Tensor's autograd methods ----------------------------------------------------------------

Tensor Tensor::requires_grad_(bool flag) {
  const autograd::Meta* m = meta_of(*this);
  TG_CHECK(!(m && m->grad_fn), "[requires_grad_] you can only change requires_grad flags of leaf variables ({})",
           m ? m->grad_fn->name : "");
  TG_CHECK(!flag || is_floating(dtype()),
           "[requires_grad_] only tensors of floating point dtype can require gradients, got {}", dtype_name(dtype()));
  ensure_meta(*this).requires_grad_flag = flag;
  return *this;
}

Tensor Tensor::grad() const {
  const autograd::Meta* m = meta_of(*this);
  return m ? m->grad : Tensor();
}

void Tensor::set_grad(const Tensor& grad) {
  TG_CHECK(!grad.defined() || (grad.sizes() == sizes() && grad.dtype() == dtype()),
           "[set_grad] expected a gradient of shape {} and dtype {}, got shape {} and dtype {}", sizes(),
           dtype_name(dtype()), grad.defined() ? grad.sizes() : Shape{}, grad.defined() ? dtype_name(grad.dtype()) : "");
  ensure_meta(*this).grad = grad;
}

void Tensor::backward() const {
  TG_CHECK(numel() == 1, "[backward] grad can be implicitly created only for scalar outputs, got shape {}", sizes());
  run_backward(*this, ones_like(*this));
}

void Tensor::backward(const Tensor& gradient) const {
  TG_CHECK(gradient.sizes() == sizes(), "[backward] expected a gradient of shape {}, got {}", sizes(),
           gradient.sizes());
  run_backward(*this, gradient.dtype() == dtype() ? gradient : native::to(gradient, dtype()));
}

Tensor Tensor::detach() const { return native::alias(*this); }

bool Tensor::is_leaf() const {
  const autograd::Meta* m = meta_of(*this);
  return !(m && m->grad_fn);
}

}  // namespace tg
