// nn::Sequential: children named "0", "1", ... applied in order. Modules are passed by value
// (moved into shared ownership) or as shared_ptr. Construct it with braces, Sequential{A(), B()},
// when the initial weights should be drawn left to right as PyTorch draws them: C++ evaluates
// function arguments in no fixed order (GCC: right to left), a braced list left to right.
// Layer: layers.
#pragma once

#include <memory>
#include <type_traits>

#include "tapegrad/layers/module.h"

namespace tg::nn {

class Sequential : public Module {
 public:
  Sequential() = default;
  template <class... Ms>
    requires(sizeof...(Ms) > 0 && (std::is_base_of_v<Module, std::remove_cvref_t<Ms>> && ...) &&
             !(sizeof...(Ms) == 1 && (std::is_same_v<std::remove_cvref_t<Ms>, Sequential> && ...)))
  explicit Sequential(Ms&&... modules) {
    (push_back(std::forward<Ms>(modules)), ...);
  }

  template <class M>
    requires std::is_base_of_v<Module, std::remove_cvref_t<M>>
  void push_back(M&& module) {
    push_back(std::shared_ptr<Module>(std::make_shared<std::remove_cvref_t<M>>(std::forward<M>(module))));
  }
  void push_back(std::shared_ptr<Module> module);

  Tensor forward(const Tensor& input) override;
  std::size_t size() const { return named_children().size(); }
  const std::shared_ptr<Module>& operator[](std::size_t i) const;
  std::string name() const override { return "Sequential"; }
};

}  // namespace tg::nn
