// to_dot: the graph behind a tensor as Graphviz DOT, with the content of torchviz's make_dot
// (show_saved=True). Layer: autograd; names come from the caller (a module's named_parameters),
// so it knows no modules.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "tapegrad/core/tensor.h"

namespace tg::autograd {

// One DOT digraph, nodes as make_dot draws them:
//   - the root tensor: green box, its shape, e.g. "\n (1)";
//   - one gray box per tape entry reachable from it, once even when reached twice: its grad_fn
//     name and its output's shape ("MulBackward0\n (2, 3)");
//   - per leaf that requires grad: an AccumulateGrad box, and the leaf as a light blue box with
//     its name in `params` (empty when unknown) and shape ("0.weight\n (6, 1, 5, 5)");
//   - each tensor an entry saved for its backward: orange box "saved\n (shape)" joined to the
//     entry by an undirected edge, or that edge to the leaf's own box when it saved a leaf.
// Edges point the way the gradient flows: root -> its entry -> entries of its inputs -> ...
// -> AccumulateGrad -> leaf. Entries a backward has consumed have released their inputs and
// saved tensors: draw before backward, or backward with retain_graph.
std::string to_dot(const Tensor& root);
std::string to_dot(const Tensor& root, const std::vector<std::pair<std::string, Tensor>>& params);

}  // namespace tg::autograd
