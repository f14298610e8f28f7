// optim::Optimizer: parameters in groups, each group with its own options (PyTorch's
// param_groups), and per-parameter state (PyTorch's state[p]). The state dict flattens PyTorch's
// {state, param_groups} into named tensors ("state.3.exp_avg", "param_groups.0.lr"), so it saves
// like a module's: the hyperparameters and each group's current lr travel with the moments.
// Layer: optim; must not know datasets.
#pragma once

#include <array>
#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tapegrad/layers/module.h"

namespace tg::optim {

// A group's own learning rate and weight decay; unset ones are the optimizer's options.
struct ParamGroupOptions {
  std::optional<double> lr = std::nullopt;
  std::optional<double> weight_decay = std::nullopt;
};

// One entry of a `{params, options}` list, PyTorch's {"params": [...], "weight_decay": 0}:
//   AdamW opt({{weights}, {biases, {.weight_decay = 0.0}}}, {.lr = 1e-3});
// (A group of literal tensors without options reads {.params = {w1, w2}}: `{{w1, w2}}` alone
// could also be a list of tensors.)
struct ParamGroup {
  std::vector<Tensor> params;
  ParamGroupOptions options = {};
};

// A group's hyperparameters under PyTorch's names and in its order, as numbers: "betas" holds two,
// a flag 0 or 1, every other one a single value.
using Hyperparameters = std::vector<std::pair<std::string, std::vector<double>>>;

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;  // the state is updated in place: a copy would share it
  Optimizer& operator=(const Optimizer&) = delete;

  virtual void step() = 0;
  // Zeroes every parameter's gradient in place (PyTorch 1.13's default, set_to_none=False).
  void zero_grad();
  const std::string& name() const { return name_; }  // "Adam"

  // Every group's parameters, group after group: the indices of the state dict.
  const std::vector<Tensor>& params() const { return params_; }
  std::size_t num_param_groups() const { return group_begin_.size() - 1; }
  std::span<const Tensor> group_params(std::size_t group) const;

  double lr(std::size_t group = 0) const;
  void set_lr(double lr);  // every group
  void set_lr(std::size_t group, double lr);
  // Any option of a group by PyTorch's name ("momentum", "betas"). Setting one validates it as the
  // constructor does, and refuses to change the kind of state a parameter that has already stepped
  // holds (turning amsgrad on, say); on an error nothing changes.
  bool has_hyperparameter(std::string_view name) const;
  std::vector<double> hyperparameter(std::size_t group, std::string_view name) const;
  void set_hyperparameter(std::size_t group, std::string_view name, std::vector<double> value);
  // The lr a group's schedule starts from (PyTorch's group["initial_lr"]): set by the first
  // scheduler built on the optimizer, saved and loaded with the state.
  std::optional<double> initial_lr(std::size_t group) const;
  void set_initial_lr(std::size_t group, std::optional<double> lr);

  // The state of parameter i ("step", "exp_avg", ...), empty before its first step.
  const nn::NamedTensors& state(std::size_t i) const;

  // "state.<i>.<name>" for every parameter's state, then per group "param_groups.<g>.<option>"
  // (float64: 0-dim, "betas" [2], flags 0 or 1), "param_groups.<g>.initial_lr" once a scheduler
  // set it, and "param_groups.<g>.params" (int64 indices).
  nn::NamedTensors state_dict() const;
  // Throws what load_state_dict would throw, changing nothing: every name must be known, each
  // group complete with valid options and as many parameters as here, each parameter's state
  // either empty or all its optimizer keeps for those options, with the parameter's shape and
  // dtype ("step": a 0-dim float32 count).
  void check_state_dict(const nn::NamedTensors& state) const;
  // Replaces every group's options, initial lr and every parameter's state (copies), as
  // PyTorch's load_state_dict; on an error nothing changes.
  void load_state_dict(const nn::NamedTensors& state);

 protected:
  // Throws "[name] optimizer got an empty parameter list", for a parameter that is not a leaf
  // requiring grad, and for one given twice.
  Optimizer(std::string name, const std::vector<ParamGroup>& groups);

  // The group's options as Hyperparameters, and back (validated: throws and changes nothing).
  virtual Hyperparameters hyperparameters(std::size_t group) const = 0;
  virtual void set_hyperparameters(std::size_t group, const Hyperparameters& values) = 0;
  // Throws unless `values` are valid options; returns the state a parameter of a group with
  // those options holds after its first step, by name, in order.
  virtual std::vector<std::string> state_names(const Hyperparameters& values) const = 0;

  // Calls update(group, i, param, grad) for each parameter i that has a gradient (made contiguous),
  // under a NoGradGuard, and bumps the parameter's version after.
  using Update = std::function<void(std::size_t group, std::size_t i, const Tensor& param, const Tensor& grad)>;
  void update_each(const Update& update);
  // state_[i] is parameter i's state: empty, or exactly the entries state_names gives for its
  // group, in that order (derived classes index it by position).
  std::vector<nn::NamedTensors> state_;

 private:
  void apply_hyperparameters(std::size_t group, const Hyperparameters& values, std::string_view what);
  struct Loaded;
  Loaded parse_state_dict(const nn::NamedTensors& state) const;
  std::size_t group_begin(std::size_t group) const { return group_begin_[group]; }
  std::size_t group_end(std::size_t group) const { return group_begin_[group + 1]; }
  std::size_t group_of(std::size_t i) const;

  std::string name_;
  std::vector<Tensor> params_;
  std::vector<std::size_t> group_begin_;  // group g holds params_[group_begin_[g], group_begin_[g + 1])
  std::vector<std::optional<double>> initial_lrs_;
};

// How an options struct lists its fields: a visit function calls v(name, field) for each, in
// PyTorch's order, so that one function serves the state file and access by name.
class OptionVisitor {
 public:
  virtual void operator()(const char* name, double& value) = 0;
  virtual void operator()(const char* name, bool& flag) = 0;
  virtual void operator()(const char* name, std::array<double, 2>& pair) = 0;

 protected:
  ~OptionVisitor() = default;
};

namespace detail {
// "[Adam] invalid eps: expected a value >= 0, got -1" unless value >= 0 (NaN fails too).
void check_non_negative(std::string_view optimizer, std::string_view option, double value);
// check_non_negative for every numeric field that `visit` lists (PyTorch's rule for Adagrad and
// RMSprop, whose every numeric option must be >= 0).
void check_every_option_non_negative(std::string_view optimizer, const std::function<void(OptionVisitor&)>& visit);
Hyperparameters describe_options(const std::function<void(OptionVisitor&)>& visit);
// Writes every field from `values`; throws naming the optimizer on a missing, unknown or
// ill-sized value, or a flag other than 0 or 1.
void assign_options(const std::function<void(OptionVisitor&)>& visit, const Hyperparameters& values,
                    std::string_view optimizer);
}  // namespace detail

// An optimizer whose groups each hold an Options struct (with fields lr and weight_decay). What it
// knows of Options comes from three functions: visit (the fields), check (throws naming the
// optimizer on a bad value) and state_names (the per-parameter state those options keep).
template <class Options>
class TypedOptimizer : public Optimizer {
 public:
  const Options& options(std::size_t group = 0) const {
    group_params(group);  // throws naming the optimizer for a group it does not have
    return options_[group];
  }

 protected:
  struct Spec {
    void (*visit)(Options&, OptionVisitor&);
    void (*check)(const Options&);
    std::vector<std::string> (*state_names)(const Options&);
  };

  TypedOptimizer(std::string name, const std::vector<ParamGroup>& groups, const Options& defaults, Spec spec)
      : Optimizer(std::move(name), groups), spec_(spec) {
    for (const ParamGroup& group : groups) {
      Options o = defaults;
      if (group.options.lr) o.lr = *group.options.lr;
      if (group.options.weight_decay) o.weight_decay = *group.options.weight_decay;
      spec_.check(o);
      options_.push_back(o);
    }
  }

  Hyperparameters hyperparameters(std::size_t group) const override {
    Options o = options_.at(group);
    return detail::describe_options([&](OptionVisitor& v) { spec_.visit(o, v); });
  }
  void set_hyperparameters(std::size_t group, const Hyperparameters& values) override {
    options_.at(group) = parse(values);
  }
  std::vector<std::string> state_names(const Hyperparameters& values) const override {
    return spec_.state_names(parse(values));
  }

  std::vector<Options> options_;  // per group

 private:
  Options parse(const Hyperparameters& values) const {
    Options o{};
    detail::assign_options([&](OptionVisitor& v) { spec_.visit(o, v); }, values, name());
    spec_.check(o);
    return o;
  }
  Spec spec_;
};

}  // namespace tg::optim

namespace tg {
// The optimizer's state dict as a safetensors file (load_state_dict's checks apply: on a
// mismatch nothing changes).
void save(const optim::Optimizer& optimizer, const std::string& path);
void load(optim::Optimizer& optimizer, const std::string& path);
}  // namespace tg
