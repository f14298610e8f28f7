// The engine: grad mode, recording, and backward as a reverse walk of the tape. Entries are
// appended in execution order, so walking back from the root's entry visits every entry after
// all entries that consume its output: no topological sort. Gradients of intermediate tensors
// live in a map keyed by tensor identity; a leaf's gradient is summed until its last reachable
// consumer has run, then hooked and accumulated into .grad (or returned, by autograd::grad).
// Registering hooks is in hooks.cpp, anomaly mode in anomaly.cpp. Layer: autograd.
#include "tapegrad/autograd/tape.h"

#include <algorithm>
#include <unordered_map>
#include <utility>

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

using autograd::detail::ensure_meta;
using autograd::detail::meta_of;

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

// sum += g; in place only when nothing else can see `sum`.
void add_into(Tensor& sum, const Tensor& g) {
  if (!sum.defined()) sum = g;
  else if (exclusive(sum)) native::binary_(native::BinaryOp::Add, sum, g);
  else sum = native::binary(native::BinaryOp::Add, sum, g);
}

// The tensor's gradient hooks, in registration order, each fed the previous one's result. A copy
// of the list runs, so that a hook may remove itself.
Tensor run_hooks(const Tensor& t, Tensor grad) {
  const autograd::Meta* m = meta_of(t);
  if (!m || m->hooks.empty()) return grad;
  auto hooks = m->hooks;
  for (const auto& [id, hook] : hooks) {
    Tensor replaced = hook(grad);
    if (!replaced.defined()) continue;
    TG_CHECK(replaced.sizes() == grad.sizes() && replaced.dtype() == grad.dtype(),
             "[register_hook] a hook returned a gradient of shape {} and dtype {} for a gradient of shape {} and "
             "dtype {}",
             replaced.sizes(), dtype_name(replaced.dtype()), grad.sizes(), dtype_name(grad.dtype()));
    grad = std::move(replaced);
  }
  return grad;
}

// One backward (or autograd::grad) walk. Intermediate gradients are complete when the walk reaches
// their entry (every consumer was recorded later). A leaf has no entry: its gradient is complete
// once every reachable entry that takes it has run, so the walk first counts those uses.
class Walk {
 public:
  // capture: the tensors whose gradients autograd::grad returns; null for backward (accumulate).
  Walk(bool retain_graph, const std::vector<Tensor>* capture) : retain_graph_(retain_graph), capture_(capture) {
    if (capture_) captured_.resize(capture_->size());
  }

  void run(const std::vector<Tensor>& roots, const std::vector<Tensor>& root_grads);
  // Whether `t` is a root or reachable from them (valid after run).
  bool reached(const Tensor& t) const;
  std::vector<Tensor> take_captured() { return std::move(captured_); }

 private:
  struct Pending {
    Tensor tensor;  // holds the tensor, and so its entry, until its gradient is used
    Tensor grad;
  };
  struct PendingLeaf {
    Tensor tensor;
    Tensor grad;
    int uses_left = 0;  // reachable entries taking it that have not run yet
    bool done = false;
  };

  void count_leaf_uses(const std::vector<autograd::Node*>& root_entries);
  void check_can_run(const autograd::Node& node) const;
  void check_gradients(const autograd::Node& node, const std::vector<Tensor>& grad_in) const;
  void send(const Tensor& input, const Tensor& g);
  void finish_leaf(PendingLeaf& leaf);
  bool capture(const Tensor& t, const Tensor& g);  // whether t was asked for
  bool all_captured() const { return capture_ && captures_left_ == 0; }

  bool retain_graph_;
  const std::vector<Tensor>* capture_;
  std::vector<Tensor> captured_;
  std::size_t captures_left_ = 0;
  std::uint64_t walk_id_ = 0;
  std::unordered_map<const TensorImpl*, Pending> grads_;
  std::unordered_map<const TensorImpl*, PendingLeaf> leaves_;
  std::vector<const TensorImpl*> leaf_order_;  // discovery order: the order of a final flush
};

thread_local std::uint64_t walks = 0;

void Walk::run(const std::vector<Tensor>& roots, const std::vector<Tensor>& root_grads) {
  NoGradGuard no_grad;
  std::vector<autograd::Node*> root_entries;
  for (std::size_t r = 0; r < roots.size(); ++r) {
    autograd::Meta* m = meta_of(roots[r]);
    if (m->grad_fn) {
      root_entries.push_back(m->grad_fn.get());
      add_into(grads_.try_emplace(roots[r].impl(), Pending{roots[r], Tensor()}).first->second.grad, root_grads[r]);
    } else {
      auto [it, fresh] = leaves_.try_emplace(roots[r].impl(), PendingLeaf{roots[r], Tensor()});
      if (fresh) leaf_order_.push_back(roots[r].impl());
      add_into(it->second.grad, root_grads[r]);
    }
  }
  count_leaf_uses(root_entries);
  if (capture_) captures_left_ = capture_->size();
  for (const TensorImpl* key : leaf_order_)
    if (leaves_.at(key).uses_left == 0) finish_leaf(leaves_.at(key));  // a root that is a leaf

  const auto& entries = tape.entries;
  std::uint64_t top = 0;
  for (const autograd::Node* n : root_entries) top = std::max(top, n->seq);
  auto it = std::lower_bound(entries.begin(), entries.end(), top,
                             [](const auto& e, std::uint64_t s) { return e.first < s; });
  TG_ASSERT(root_entries.empty() || (it != entries.end() && it->first == top),
            "the root's entry is not on this thread's tape");
  for (std::ptrdiff_t i = root_entries.empty() ? -1 : it - entries.begin(); i >= 0 && !grads_.empty(); --i) {
    std::shared_ptr<autograd::Node> node = entries[static_cast<std::size_t>(i)].second.lock();
    auto g = node ? grads_.find(node->output) : grads_.end();
    if (g == grads_.end()) continue;
    Pending pending = std::move(g->second);
    grads_.erase(g);
    Tensor grad_out = run_hooks(pending.tensor, std::move(pending.grad));
    if (capture(pending.tensor, grad_out) && all_captured()) return;
    check_can_run(*node);
    std::vector<Tensor> grad_in = node->backward(grad_out);
    check_gradients(*node, grad_in);
    std::vector<Tensor> inputs = retain_graph_ ? node->inputs : std::exchange(node->inputs, {});
    if (!retain_graph_) {  // consumed: release what it holds
      node->backward = nullptr;
      node->saved.clear();
    }
    for (std::size_t j = 0; j < inputs.size(); ++j) send(inputs[j], grad_in[j]);
    if (all_captured()) return;
  }
  // Leaves whose other uses never received a gradient (an entry whose output got none).
  for (const TensorImpl* key : leaf_order_) finish_leaf(leaves_.at(key));
}

// Depth-first over the entries reachable from the roots (each once): how many take each leaf.
void Walk::count_leaf_uses(const std::vector<autograd::Node*>& root_entries) {
  walk_id_ = ++walks;
  std::vector<autograd::Node*> stack;
  for (autograd::Node* n : root_entries)
    if (n->visited != walk_id_) n->visited = walk_id_, stack.push_back(n);
  while (!stack.empty()) {
    autograd::Node* n = stack.back();
    stack.pop_back();
    for (const Tensor& in : n->inputs) {
      if (!in.defined()) continue;
      autograd::Node* producer = meta_of(in)->grad_fn.get();
      if (producer) {
        if (producer->visited != walk_id_) producer->visited = walk_id_, stack.push_back(producer);
        continue;
      }
      auto [it, fresh] = leaves_.try_emplace(in.impl(), PendingLeaf{in, Tensor()});
      if (fresh) leaf_order_.push_back(in.impl());
      ++it->second.uses_left;
    }
  }
}

bool Walk::reached(const Tensor& t) const {
  const autograd::Meta* m = meta_of(t);
  if (!m) return false;
  return m->grad_fn ? m->grad_fn->visited == walk_id_ : leaves_.contains(t.impl());
}

void Walk::check_can_run(const autograd::Node& node) const {
  TG_CHECK(node.backward,
           "[backward] trying to backward through the graph a second time (or directly access saved tensors after "
           "they have already been freed): {} was already consumed. Saved intermediate values of the graph are freed "
           "when you call backward() or autograd::grad(); pass retain_graph=true to the first if you need to backward "
           "through the graph a second time",
           node.name);
  for (const autograd::Saved& s : node.saved)
    TG_CHECK(s.storage->version() == s.version,
             "[backward] one of the tensors needed for gradient computation has been modified by an in-place "
             "operation: {} saved it at version {}, it is now at version {}",
             node.name, s.version, s.storage->version());
}

void Walk::check_gradients(const autograd::Node& node, const std::vector<Tensor>& grad_in) const {
  TG_CHECK(grad_in.size() == node.inputs.size(), "[{}] backward returned {} gradients for {} inputs", node.name,
           grad_in.size(), node.inputs.size());
  for (std::size_t j = 0; j < grad_in.size(); ++j) {
    const Tensor& in = node.inputs[j];
    const Tensor& gj = grad_in[j];
    if (!in.defined() || !gj.defined()) continue;
    TG_CHECK(gj.sizes() == in.sizes() && gj.dtype() == in.dtype(),
             "[{}] backward returned a gradient of shape {} and dtype {} for input {} of shape {} and dtype {}",
             node.name, gj.sizes(), dtype_name(gj.dtype()), j, in.sizes(), dtype_name(in.dtype()));
    if (!autograd::is_anomaly_enabled()) continue;
    const char* bad = autograd::detail::non_finite(gj);
    TG_CHECK(!bad, "[backward] {} returned {} values in its {}th output; it was recorded {}", node.name, bad, j,
             node.recorded_in.empty() ? "outside any module" : "in module " + node.recorded_in);
  }
}

// Adds an entry's gradient for one of its inputs to that input's pending sum.
void Walk::send(const Tensor& input, const Tensor& g) {
  if (!input.defined()) return;
  if (meta_of(input)->grad_fn) {
    if (g.defined()) add_into(grads_.try_emplace(input.impl(), Pending{input, Tensor()}).first->second.grad, g);
    return;
  }
  auto it = leaves_.find(input.impl());
  TG_ASSERT(it != leaves_.end(), "an entry ran whose leaf input was not counted");
  PendingLeaf& leaf = it->second;
  if (g.defined()) add_into(leaf.grad, g);
  if (--leaf.uses_left == 0) finish_leaf(leaf);
}

// The leaf's gradient of this walk is complete: hooks, then .grad and the post-accumulate hooks
// (backward) or the returned gradient (autograd::grad, which leaves .grad alone).
void Walk::finish_leaf(PendingLeaf& leaf) {
  if (leaf.done || !leaf.grad.defined()) return;
  leaf.done = true;
  if (capture_) {
    for (const Tensor& t : *capture_)
      if (t.is_same(leaf.tensor)) {
        capture(leaf.tensor, run_hooks(leaf.tensor, std::move(leaf.grad)));
        return;
      }
    return;  // not asked for: autograd::grad runs nothing of it
  }
  Tensor grad = run_hooks(leaf.tensor, std::move(leaf.grad));
  accumulate_leaf(leaf.tensor, grad);
  grad = Tensor();
  const autograd::Meta* m = meta_of(leaf.tensor);
  if (m->post_accumulate_hooks.empty()) return;
  auto hooks = m->post_accumulate_hooks;
  for (const auto& [id, hook] : hooks) hook(leaf.tensor);
}

bool Walk::capture(const Tensor& t, const Tensor& g) {
  if (!capture_) return false;
  bool asked = false;
  for (std::size_t k = 0; k < capture_->size(); ++k)
    if ((*capture_)[k].is_same(t) && !captured_[k].defined()) {
      captured_[k] = g;
      --captures_left_;
      asked = true;
    }
  return asked;
}

// Validates the roots and their gradients (undefined: implicit ones), then walks.
std::vector<Tensor> root_gradients(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
                                   const char* op) {
  TG_CHECK(grads.empty() || grads.size() == roots.size(), "[{}] expected {} output gradients, got {}", op,
           roots.size(), grads.size());
  std::vector<Tensor> out;
  for (std::size_t r = 0; r < roots.size(); ++r) {
    const Tensor& root = roots[r];
    const autograd::Meta* m = root.defined() ? meta_of(root) : nullptr;
    TG_CHECK(m && m->requires_grad_flag,
             "[{}] element {} of tensors does not require grad and does not have a grad_fn", op, r);
    Tensor g = grads.empty() ? Tensor() : grads[r];
    if (!g.defined()) {
      TG_CHECK(root.numel() == 1, "[{}] grad can be implicitly created only for scalar outputs, got shape {}", op,
               root.sizes());
      out.push_back(ones_like(root));
      continue;
    }
    TG_CHECK(g.sizes() == root.sizes(), "[{}] expected a gradient of shape {}, got {}", op, root.sizes(), g.sizes());
    out.push_back(g.dtype() == root.dtype() ? g : native::to(g, root.dtype()));
  }
  return out;
}

}  // namespace

bool is_grad_enabled() { return grad_enabled; }
void set_grad_enabled(bool enabled) { grad_enabled = enabled; }

NoGradGuard::NoGradGuard() : previous_(grad_enabled) { grad_enabled = false; }
NoGradGuard::~NoGradGuard() { grad_enabled = previous_; }

namespace autograd {

bool needs_grad(TensorList inputs) {
  if (!grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

namespace detail {

Tensor record_entry(std::string_view name, const Tensor& output, TensorList inputs, BackwardFn backward,
                    TensorList saved) {
  TG_CHECK(output.defined(), "[record] {}: the output is undefined", name);
  TG_CHECK(is_floating(output.dtype()), "[record] {}: only floating point outputs can have gradients, got {}", name,
           dtype_name(output.dtype()));
  TG_CHECK(!output.requires_grad(), "[record] {}: the output is already on the tape or a leaf that requires grad",
           name);
  TG_CHECK(backward != nullptr, "[record] {}: the backward function is empty", name);
  std::shared_ptr<Node> node(new Node(), delete_node);
  node->name = std::string(name);
  node->output = output.impl();
  node->inputs.reserve(inputs.size());
  for (const Tensor& t : inputs) {
    TG_CHECK(!t.defined() || !t.is_same(output), "[record] {}: the output cannot be one of its inputs", node->name);
    node->inputs.push_back(t.defined() && t.requires_grad() ? t : Tensor());
  }
  node->saved.reserve(saved.size());
  for (const Tensor& t : saved)
    if (t.defined()) node->saved.push_back({t.storage(), t.storage()->version(), t.sizes()});
  if (is_anomaly_enabled()) node->recorded_in = recording_location();
  node->backward = std::move(backward);
  tape.push(node);
  Meta& m = ensure_meta(output);
  m.requires_grad_flag = true;
  m.grad_fn = std::move(node);
  return output;
}

}  // namespace detail

std::size_t tape_size() {
  return static_cast<std::size_t>(
      std::count_if(tape.entries.begin(), tape.entries.end(), [](const auto& e) { return !e.second.expired(); }));
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, bool retain_graph, bool allow_unused) {
  for (std::size_t k = 0; k < inputs.size(); ++k)
    TG_CHECK(inputs[k].defined() && inputs[k].requires_grad(),
             "[autograd::grad] input {} of the differentiated tensors does not require grad", k);
  std::vector<Tensor> root_grads = root_gradients(outputs, grad_outputs, "autograd::grad");
  Walk walk(retain_graph, &inputs);
  walk.run(outputs, root_grads);
  std::vector<Tensor> grads = walk.take_captured();
  for (std::size_t k = 0; k < inputs.size(); ++k)
    TG_CHECK(allow_unused || walk.reached(inputs[k]),
             "[autograd::grad] input {} of the differentiated tensors appears to not have been used in the graph; "
             "pass allow_unused=true if this is the desired behavior",
             k);
  return grads;
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

void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
  std::vector<Tensor> root_grads = root_gradients({*this}, {gradient}, "backward");
  Walk(retain_graph, nullptr).run({*this}, root_grads);
}

Tensor Tensor::detach() const { return native::alias(*this); }

bool Tensor::is_leaf() const {
  const autograd::Meta* m = meta_of(*this);
  return !(m && m->grad_fn);
}

}  // namespace tg
