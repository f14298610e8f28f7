// to_dot: a depth-first walk from the root over the entries' inputs, writing DOT statements in
// the order torchviz's make_dot writes them. Node ids are numbered in visit order, so the text
// is the same for the same graph. Layer: autograd.
#include "tapegrad/autograd/graph.h"

#include <fmt/format.h>

#include <map>
#include <unordered_map>

#include "tapegrad/autograd/meta.h"

namespace tg::autograd {

namespace {

// make_dot's size_to_str: "(2, 3)", "()" for a scalar.
std::string shape_text(const Shape& s) { return fmt::format("({})", fmt::join(s, ", ")); }

class DotWriter {
 public:
  explicit DotWriter(const std::vector<std::pair<std::string, Tensor>>& params) {
    for (const auto& [name, t] : params)
      if (t.defined()) param_names_.emplace(t.impl(), name);
  }

  std::string write(const Tensor& root) {
    std::string id = node_id();
    body_.push_back(fmt::format("\t{} [label={} fillcolor=darkolivegreen1]", id, label(tensor_text("", root))));
    const Meta* m = static_cast<const Meta*>(root.impl()->autograd.get());
    if (m && m->grad_fn) body_.push_back(fmt::format("\t{} -> {}", id, add_entry(root, *m->grad_fn)));
    else if (m && m->requires_grad_flag) body_.push_back(fmt::format("\t{} -> {}", id, add_leaf(root)));
    // make_dot's resize_graph: 0.15 inch per statement, at least 12.
    double size = std::max(12.0, 0.15 * static_cast<double>(body_.size()));
    std::string out = "digraph {\n";
    out += fmt::format("\tgraph [size=\"{:.2f},{:.2f}\"]\n", size, size);
    out += "\tnode [align=left fontname=monospace fontsize=10 height=0.2 ranksep=0.1 shape=box style=filled]\n";
    for (const std::string& line : body_) out += line + "\n";
    return out + "}\n";
  }

 private:
  std::string node_id() { return fmt::format("n{}", next_id_++); }

  static std::string label(const std::string& text) {
    std::string escaped;
    for (char c : text) {
      if (c == '\n') escaped += "\\n";
      else if (c == '"' || c == '\\') escaped += std::string("\\") + c;
      else escaped += c;
    }
    return "\"" + escaped + "\"";
  }

  static std::string tensor_text(const std::string& name, const Tensor& t) {
    return name + "\n " + shape_text(t.sizes());
  }

  std::string add_leaf(const Tensor& leaf) {
    auto seen = leaves_.find(leaf.impl());
    if (seen != leaves_.end()) return seen->second;
    std::string acc = node_id(), var = node_id();
    leaves_.emplace(leaf.impl(), acc);
    leaf_boxes_.emplace(std::make_pair(leaf.storage().get(), leaf.sizes()), var);
    auto name = param_names_.find(leaf.impl());
    body_.push_back(fmt::format("\t{} [label={} fillcolor=lightblue]", var,
                                label(tensor_text(name == param_names_.end() ? "" : name->second, leaf))));
    body_.push_back(fmt::format("\t{} -> {}", acc, var));
    body_.push_back(fmt::format("\t{} [label=AccumulateGrad]", acc));
    return acc;
  }

  // `output` is the tensor whose entry `node` is: it gives the shape, since entries keep none.
  std::string add_entry(const Tensor& output, const Node& node) {
    auto seen = entries_.find(&node);
    if (seen != entries_.end()) return seen->second;
    std::string id = node_id();
    entries_.emplace(&node, id);
    // Leaves first (their boxes are what a saved leaf links to), then this entry, then recurse.
    for (const Tensor& in : node.inputs)
      if (in.defined() && in.is_leaf()) add_leaf(in);
    for (const Saved& s : node.saved) {
      auto leaf = leaf_boxes_.find(std::make_pair(s.storage.get(), s.sizes));
      if (leaf != leaf_boxes_.end()) {
        body_.push_back(fmt::format("\t{} -> {} [dir=none style=dashed]", id, leaf->second));
        continue;
      }
      auto [it, fresh] = saved_boxes_.try_emplace(std::make_pair(s.storage.get(), s.sizes), "");
      if (fresh) {
        it->second = node_id();
        body_.push_back(fmt::format("\t{} [label={} fillcolor=orange]", it->second, label("saved\n " + shape_text(s.sizes))));
      }
      body_.push_back(fmt::format("\t{} -> {} [dir=none style=dashed]", id, it->second));
    }
    body_.push_back(fmt::format("\t{} [label={}]", id, label(node.name + "\n " + shape_text(output.sizes()))));
    for (const Tensor& in : node.inputs) {
      if (!in.defined()) continue;
      const Meta* m = static_cast<const Meta*>(in.impl()->autograd.get());
      std::string next = m->grad_fn ? add_entry(in, *m->grad_fn) : add_leaf(in);
      body_.push_back(fmt::format("\t{} -> {}", id, next));
    }
    return id;
  }

  std::unordered_map<const TensorImpl*, std::string> param_names_;
  std::unordered_map<const Node*, std::string> entries_;
  std::unordered_map<const TensorImpl*, std::string> leaves_;  // leaf -> its AccumulateGrad box
  std::map<std::pair<const Storage*, Shape>, std::string> leaf_boxes_;
  std::map<std::pair<const Storage*, Shape>, std::string> saved_boxes_;
  std::vector<std::string> body_;
  int next_id_ = 0;
};

}  // namespace

std::string to_dot(const Tensor& root) { return to_dot(root, {}); }

std::string to_dot(const Tensor& root, const std::vector<std::pair<std::string, Tensor>>& params) {
  TG_CHECK(root.defined(), "[to_dot] expected a defined tensor, got an undefined one");
  return DotWriter(params).write(root);
}

}  // namespace tg::autograd
