// The containers: nn::ModuleList (modules held by index, as torch.nn.ModuleList) and
// nn::Sequential (a ModuleList whose forward runs its modules in order). Children are named "0",
// "1", ...; each is passed by value (moved into shared ownership) or as a shared_ptr (shared with
// the caller). Construct with braces, Sequential{A(), B()}, when the initial weights should be
// drawn left to right as PyTorch draws them: C++ evaluates function arguments in no fixed order
// (GCC: right to left), a braced list left to right. Layer: layers.
#pragma once

#include <memory>
#include <type_traits>
#include <vector>

#include "tapegrad/layers/module.h"

namespace tg::nn {

namespace detail {
template <class T>
struct is_module_ptr : std::false_type {};
template <class M>
struct is_module_ptr<std::shared_ptr<M>> : std::is_base_of<Module, M> {};
}  // namespace detail

// A module, or a shared_ptr to one.
template <class T>
concept ModuleOrPtr =
    std::is_base_of_v<Module, std::remove_cvref_t<T>> || detail::is_module_ptr<std::remove_cvref_t<T>>::value;

class ModuleList : public Module {
 public:
  ModuleList() = default;
  // A single list argument is a copy, not an element.
  template <class... Ms>
    requires(sizeof...(Ms) > 0 && (ModuleOrPtr<Ms> && ...) &&
             !(sizeof...(Ms) == 1 && (std::is_base_of_v<ModuleList, std::remove_cvref_t<Ms>> && ...)))
  explicit ModuleList(Ms&&... modules) {
    (push_back(std::forward<Ms>(modules)), ...);
  }
  explicit ModuleList(const std::vector<std::shared_ptr<Module>>& modules);

  template <class M>
    requires std::is_base_of_v<Module, std::remove_cvref_t<M>>
  void push_back(M&& module) {
    push_back(std::shared_ptr<Module>(std::make_shared<std::remove_cvref_t<M>>(std::forward<M>(module))));
  }
  void push_back(std::shared_ptr<Module> module);  // throws for null
  void extend(const std::vector<std::shared_ptr<Module>>& modules);

  std::size_t size() const { return named_children().size(); }
  bool empty() const { return named_children().empty(); }
  const std::shared_ptr<Module>& operator[](std::size_t i) const;  // throws out of range
  std::string name() const override { return "ModuleList"; }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
};

class Sequential : public ModuleList {
 public:
  using ModuleList::ModuleList;
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "Sequential"; }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
};

}  // namespace tg::nn
