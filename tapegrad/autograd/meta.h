// The autograd state a tensor carries in core's opaque slot, and the tape entry (Node) that an
// op records. Layer: autograd (internal header; users go through Tensor and autograd/tape.h).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tapegrad/autograd/tape.h"
#include "tapegrad/core/tensor.h"

namespace tg::autograd {

// One tape entry: the op's name, its inputs (those that need a gradient), and the backward that
// maps the output's gradient to one gradient per input. The output owns its entry; the entry
// never holds its output (only its address, as the key of the output's gradient).
// A tensor the backward reads: its storage, the storage's version when recorded (in-place
// detection), and its shape (for to_dot).
struct Saved {
  std::shared_ptr<Storage> storage;
  std::uint64_t version = 0;
  Shape sizes;
};

struct Node {
  std::string name;
  std::uint64_t seq = 0;                 // position on the tape
  const TensorImpl* output = nullptr;    // key only
  std::vector<Tensor> inputs;            // undefined where no gradient is needed
  BackwardFn backward;                   // released once consumed (unless retain_graph)
  std::vector<Saved> saved;              // released with `backward`
  std::string recorded_in;               // anomaly mode only: the module path it was recorded under
  std::uint64_t visited = 0;             // engine scratch: the last walk that counted its edges
};

struct Meta final : AutogradMetaInterface {
  bool requires_grad_flag = false;
  Tensor grad;                      // leaves only
  std::shared_ptr<Node> grad_fn;    // null for leaves
  // Hooks in registration order, each with the id its RemovableHandle removes.
  std::vector<std::pair<std::uint64_t, Tensor::GradientHook>> hooks;
  std::vector<std::pair<std::uint64_t, Tensor::PostAccumulateGradHook>> post_accumulate_hooks;  // leaves only
  std::uint64_t next_hook_id = 0;

  bool requires_grad() const override { return requires_grad_flag; }
  std::string grad_fn_name() const override { return grad_fn ? grad_fn->name : std::string(); }
};

namespace detail {

// The slot holds nothing but Meta: only autograd creates it.
inline Meta* meta_of(const Tensor& t) { return static_cast<Meta*>(t.impl()->autograd.get()); }

inline Meta& ensure_meta(const Tensor& t) {
  if (!t.impl()->autograd) t.impl()->autograd = std::make_shared<Meta>();
  return *meta_of(t);
}

}  // namespace detail

}  // namespace tg::autograd
