// Losses: cross_entropy (fused log-softmax + NLL, with class weights, ignore_index and label
// smoothing), nll_loss, mse_loss, l1_loss, smooth_l1_loss, binary_cross_entropy_with_logits; the
// functions (hand-derived backwards) and the loss modules, called as loss(input, target), each
// with reduction none, mean or sum. softmax / log_softmax are tensor ops (autograd/functions.h).
// Layer: layers.
#pragma once

#include "tapegrad/autograd/functions.h"  // softmax, log_softmax (tensor ops)
#include "tapegrad/layers/module.h"

namespace tg {

enum class Reduction { None, Mean, Sum };

// Class-index losses. input [N, C], unbatched [C] (target 0-dim), or [N, C, d1, ...] (target
// [N, d1, ...]); target int64 class indices in [0, C) or ignore_index. weight [C] (the input's
// dtype) scales each class's loss; mean divides by the summed weight of the targets that are
// not ignored (nan when there are none, as PyTorch).
struct NLLLossOptions {
  Tensor weight = {};
  std::int64_t ignore_index = -100;
  Reduction reduction = Reduction::Mean;
};

// As NLLLossOptions, plus label_smoothing ε in [0, 1]: the target becomes (1 − ε)·one_hot + ε/C.
struct CrossEntropyLossOptions {
  Tensor weight = {};
  std::int64_t ignore_index = -100;
  Reduction reduction = Reduction::Mean;
  double label_smoothing = 0.0;
};

// Fused log-softmax + NLL (one tape entry, hand-derived backward).
Tensor cross_entropy(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
Tensor cross_entropy(const Tensor& input, const Tensor& target, const CrossEntropyLossOptions& options);
// −weight[target] · input[target], input holding log-probabilities.
Tensor nll_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
Tensor nll_loss(const Tensor& input, const Tensor& target, const NLLLossOptions& options);

// Elementwise losses: input and target of one shape and floating dtype; both get gradients.
// (input − target)².
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
// |input − target|.
Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
// With d = input − target: 0.5·d²/beta where |d| < beta, |d| − 0.5·beta elsewhere (beta ≥ 0;
// beta = 0 is the L1 loss).
Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean,
                      double beta = 1.0);

// Sigmoid + binary cross entropy in one stable expression, for x logits and y targets in [0, 1]:
//   loss = −weight · (pos_weight · y · log σ(x) + (1 − y) · log(1 − σ(x))).
// weight broadcasts to the input; pos_weight (one per class, along the last dim) too. They get
// no gradient.
struct BCEWithLogitsLossOptions {
  Tensor weight = {};
  Reduction reduction = Reduction::Mean;
  Tensor pos_weight = {};
};
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                        const BCEWithLogitsLossOptions& options = {});

}  // namespace tg

namespace tg::nn {

// The loss modules, called as loss(input, target). A weight or pos_weight is a buffer (saved in
// the state dict), as in PyTorch.
class Loss : public Module {
 public:
  using Module::forward;  // forward(input) alone throws, naming the loss
  Tensor forward(const Tensor& input, const Tensor& target) const { return compute(input, target); }
  Tensor operator()(const Tensor& input, const Tensor& target) const { return compute(input, target); }

 protected:
  virtual Tensor compute(const Tensor& input, const Tensor& target) const = 0;
};

class CrossEntropyLoss : public Loss {
 public:
  explicit CrossEntropyLoss(Reduction reduction = Reduction::Mean);
  explicit CrossEntropyLoss(CrossEntropyLossOptions options);
  std::string name() const override { return "CrossEntropyLoss"; }
  std::shared_ptr<Module> clone() const override {
    return clone_as(*this, [](CrossEntropyLoss& m, const Rebind& r) { r(m.options.weight); });
  }
  CrossEntropyLossOptions options;

 protected:
  Tensor compute(const Tensor& input, const Tensor& target) const override {
    return cross_entropy(input, target, options);
  }
};

class NLLLoss : public Loss {
 public:
  explicit NLLLoss(Reduction reduction = Reduction::Mean);
  explicit NLLLoss(NLLLossOptions options);
  std::string name() const override { return "NLLLoss"; }
  std::shared_ptr<Module> clone() const override {
    return clone_as(*this, [](NLLLoss& m, const Rebind& r) { r(m.options.weight); });
  }
  NLLLossOptions options;

 protected:
  Tensor compute(const Tensor& input, const Tensor& target) const override {
    return nll_loss(input, target, options);
  }
};

class MSELoss : public Loss {
 public:
  explicit MSELoss(Reduction r = Reduction::Mean) : reduction(r) {}
  std::string name() const override { return "MSELoss"; }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  Reduction reduction;

 protected:
  Tensor compute(const Tensor& input, const Tensor& target) const override {
    return mse_loss(input, target, reduction);
  }
};

class L1Loss : public Loss {
 public:
  explicit L1Loss(Reduction r = Reduction::Mean) : reduction(r) {}
  std::string name() const override { return "L1Loss"; }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  Reduction reduction;

 protected:
  Tensor compute(const Tensor& input, const Tensor& target) const override {
    return l1_loss(input, target, reduction);
  }
};

class SmoothL1Loss : public Loss {
 public:
  explicit SmoothL1Loss(Reduction r = Reduction::Mean, double beta_ = 1.0);
  std::string name() const override { return "SmoothL1Loss"; }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  Reduction reduction;
  double beta;

 protected:
  Tensor compute(const Tensor& input, const Tensor& target) const override {
    return smooth_l1_loss(input, target, reduction, beta);
  }
};

class BCEWithLogitsLoss : public Loss {
 public:
  explicit BCEWithLogitsLoss(BCEWithLogitsLossOptions options = {});
  std::string name() const override { return "BCEWithLogitsLoss"; }
  std::shared_ptr<Module> clone() const override {
    return clone_as(*this, [](BCEWithLogitsLoss& m, const Rebind& r) { r(m.options.weight); r(m.options.pos_weight); });
  }
  BCEWithLogitsLossOptions options;

 protected:
  Tensor compute(const Tensor& input, const Tensor& target) const override {
    return binary_cross_entropy_with_logits(input, target, options);
  }
};

}  // namespace tg::nn
