// Optimizer's shared parts: parameter groups and their checks, zero_grad, options by name, and
// the state dict (flattened PyTorch {state, param_groups}) with its all-or-nothing load.
// Layer: optim.
#include "tapegrad/optim/optimizer.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>

#include "tapegrad/autograd/tape.h"
#include "tapegrad/core/native.h"
#include "tapegrad/layers/serialize.h"

namespace tg::optim {

namespace {

// "3" -> 3; nullopt for anything but plain decimal digits.
std::optional<std::size_t> parse_index(std::string_view s) {
  std::size_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

// Splits "<prefix>.<index>.<key>" into (index, key).
std::optional<std::pair<std::size_t, std::string>> split_entry(const std::string& name, std::string_view prefix) {
  if (!name.starts_with(prefix) || name.size() <= prefix.size() || name[prefix.size()] != '.') return std::nullopt;
  std::string_view rest = std::string_view(name).substr(prefix.size() + 1);
  std::size_t dot = rest.find('.');
  if (dot == std::string_view::npos || dot + 1 == rest.size()) return std::nullopt;
  std::optional<std::size_t> index = parse_index(rest.substr(0, dot));
  if (!index) return std::nullopt;
  return std::pair{*index, std::string(rest.substr(dot + 1))};
}

std::vector<std::string> keys_of(const std::map<std::string, Tensor>& entries) {
  std::vector<std::string> keys;
  for (const auto& [key, _] : entries) keys.push_back(key);
  return keys;
}

std::string describe(const Tensor& t) { return fmt::format("{} {}", dtype_name(t.dtype()), t.sizes()); }

Tensor values_tensor(const std::vector<double>& values) {
  Tensor t = tg::tensor(values, {static_cast<std::int64_t>(values.size())});
  return values.size() == 1 ? t.view({}) : t;
}

}  // namespace

Optimizer::Optimizer(std::string name, const std::vector<ParamGroup>& groups) : name_(std::move(name)) {
  group_begin_.push_back(0);
  for (std::size_t g = 0; g < groups.size(); ++g) {
    for (const Tensor& p : groups[g].params) {
      std::size_t i = params_.size();
      TG_CHECK(p.defined() && p.requires_grad() && p.is_leaf(),
               "[{}] parameter {} must be a defined leaf tensor that requires grad", name_, i);
      for (std::size_t j = 0; j < i; ++j) {
        if (!p.is_same(params_[j])) continue;
        std::size_t h = group_of(j);
        TG_CHECK(h != g, "[{}] parameter {} appears twice (also at {})", name_, i, j);
        TG_CHECK(false, "[{}] some parameters appear in more than one parameter group (parameter {} of group {} is "
                 "parameter {} of group {})", name_, i, g, j, h);
      }
      params_.push_back(p);
    }
    group_begin_.push_back(params_.size());
  }
  TG_CHECK(!params_.empty(), "[{}] optimizer got an empty parameter list", name_);
  initial_lrs_.resize(num_param_groups());
  state_.resize(params_.size());
}

void Optimizer::update_each(const Update& update) {
  NoGradGuard no_grad;
  for (std::size_t group = 0; group < num_param_groups(); ++group) {
    for (std::size_t i = group_begin(group); i < group_end(group); ++i) {
      const Tensor& p = params_[i];
      if (!p.grad().defined()) continue;
      TG_ASSERT(p.is_contiguous(), "{} expects contiguous parameters", name_);
      update(group, i, p, native::contiguous(p.grad()));
      p.storage()->bump_version();
    }
  }
}

std::size_t Optimizer::group_of(std::size_t i) const {
  return static_cast<std::size_t>(std::upper_bound(group_begin_.begin(), group_begin_.end(), i) - group_begin_.begin() -
                                  1);
}

void Optimizer::zero_grad() {
  NoGradGuard no_grad;
  for (Tensor& p : params_)
    if (p.grad().defined()) native::fill_(p.grad(), 0);
}

std::span<const Tensor> Optimizer::group_params(std::size_t group) const {
  TG_CHECK(group < num_param_groups(), "[{}] no parameter group {}: the optimizer has {}", name_, group,
           num_param_groups());
  return std::span<const Tensor>(params_).subspan(group_begin(group), group_end(group) - group_begin(group));
}

double Optimizer::lr(std::size_t group) const { return hyperparameter(group, "lr")[0]; }

void Optimizer::set_lr(double lr) {
  // Valid for one group means valid for all (an lr's checks do not depend on the group), so a bad
  // value throws at group 0, before anything changed.
  for (std::size_t g = 0; g < num_param_groups(); ++g) set_lr(g, lr);
}

void Optimizer::set_lr(std::size_t group, double lr) { set_hyperparameter(group, "lr", {lr}); }

bool Optimizer::has_hyperparameter(std::string_view name) const {
  for (const auto& [key, _] : hyperparameters(0))
    if (key == name) return true;
  return false;
}

std::vector<double> Optimizer::hyperparameter(std::size_t group, std::string_view name) const {
  (void)group_params(group);  // checks the index
  for (auto& [key, values] : hyperparameters(group))
    if (key == name) return values;
  TG_CHECK(false, "[{}] has no option \"{}\"", name_, name);
  return {};
}

void Optimizer::set_hyperparameter(std::size_t group, std::string_view name, std::vector<double> value) {
  (void)group_params(group);
  Hyperparameters values = hyperparameters(group);
  auto it = std::find_if(values.begin(), values.end(), [&](const auto& entry) { return entry.first == name; });
  TG_CHECK(it != values.end(), "[{}] has no option \"{}\"", name_, name);
  TG_CHECK(value.size() == it->second.size(), "[{}] option \"{}\" takes {} value(s), got {}", name_, name,
           it->second.size(), value.size());
  it->second = std::move(value);
  apply_hyperparameters(group, values, name);
}

void Optimizer::apply_hyperparameters(std::size_t group, const Hyperparameters& values, std::string_view what) {
  std::vector<std::string> now = state_names(hyperparameters(group));
  std::vector<std::string> next = state_names(values);  // validates
  if (now != next)
    for (std::size_t i = group_begin(group); i < group_end(group); ++i)
      TG_CHECK(state_[i].empty(),
               "[{}] cannot set {} of group {}: parameter {} has stepped and holds {}, the new options keep {}", name_,
               what, group, i, now, next);
  set_hyperparameters(group, values);
}

std::optional<double> Optimizer::initial_lr(std::size_t group) const {
  (void)group_params(group);
  return initial_lrs_[group];
}

void Optimizer::set_initial_lr(std::size_t group, std::optional<double> lr) {
  (void)group_params(group);
  initial_lrs_[group] = lr;
}

const nn::NamedTensors& Optimizer::state(std::size_t i) const {
  TG_CHECK(i < params_.size(), "[{}] no parameter {}: the optimizer has {}", name_, i, params_.size());
  return state_[i];
}

nn::NamedTensors Optimizer::state_dict() const {
  nn::NamedTensors out;
  for (std::size_t i = 0; i < state_.size(); ++i)
    for (const auto& [key, t] : state_[i]) out.emplace_back(fmt::format("state.{}.{}", i, key), t);
  for (std::size_t g = 0; g < num_param_groups(); ++g) {
    std::string prefix = fmt::format("param_groups.{}.", g);
    for (const auto& [key, values] : hyperparameters(g)) out.emplace_back(prefix + key, values_tensor(values));
    if (initial_lrs_[g]) out.emplace_back(prefix + "initial_lr", values_tensor({*initial_lrs_[g]}));
    Tensor indices = arange(static_cast<std::int64_t>(group_begin(g)), static_cast<std::int64_t>(group_end(g)), 1, kInt64);
    out.emplace_back(prefix + "params", indices);
  }
  return out;
}

// A state dict, checked and sorted out: what load_state_dict installs.
struct Optimizer::Loaded {
  std::vector<Hyperparameters> groups;
  std::vector<std::optional<double>> initial_lrs;
  std::vector<nn::NamedTensors> state;
};

Optimizer::Loaded Optimizer::parse_state_dict(const nn::NamedTensors& dict) const {
  const std::size_t num_groups = num_param_groups();
  std::vector<std::map<std::string, Tensor>> group_entries(num_groups);
  std::map<std::size_t, std::map<std::string, Tensor>> state_entries;  // by the file's parameter index
  for (const auto& [name, t] : dict) {
    auto group = split_entry(name, "param_groups");
    auto state = split_entry(name, "state");
    TG_CHECK(group || state, "[{}] unexpected entry \"{}\" in the state dict", name_, name);
    TG_CHECK(!group || group->first < num_groups, "[{}] the state dict has a parameter group {} (\"{}\"); the "
             "optimizer has {} group(s)", name_, group ? group->first : 0, name, num_groups);
    bool fresh = group ? group_entries[group->first].emplace(group->second, t).second
                       : state_entries[state->first].emplace(state->second, t).second;
    TG_CHECK(fresh, "[{}] the state dict holds \"{}\" twice", name_, name);
  }

  Loaded out;
  std::vector<std::vector<std::string>> layouts;
  std::map<std::size_t, std::size_t> param_of_id;  // the file's index -> ours, as PyTorch's id_map
  for (std::size_t g = 0; g < num_groups; ++g) {
    std::map<std::string, Tensor>& entries = group_entries[g];
    std::string prefix = fmt::format("param_groups.{}.", g);
    auto take = [&](const std::string& key) {
      auto it = entries.find(key);
      TG_CHECK(it != entries.end(), "[{}] the state dict has no \"{}{}\"", name_, prefix, key);
      Tensor t = it->second;
      entries.erase(it);
      return t;
    };

    Tensor ids = take("params");
    std::size_t size = group_end(g) - group_begin(g);
    TG_CHECK(ids.dtype() == kInt64 && ids.dim() == 1 && static_cast<std::size_t>(ids.numel()) == size,
             "[{}] {}params: expected int64 [{}] (the group's parameters), got {}", name_, prefix, size, describe(ids));
    std::vector<std::int64_t> id_values = ids.to_vector<std::int64_t>();
    for (std::size_t k = 0; k < size; ++k) {
      TG_CHECK(id_values[k] >= 0 && param_of_id.emplace(static_cast<std::size_t>(id_values[k]), group_begin(g) + k).second,
               "[{}] {}params: parameter index {} is negative or repeated", name_, prefix, id_values[k]);
    }

    Hyperparameters values = hyperparameters(g);  // the names and sizes expected
    for (auto& [key, value] : values) {
      Tensor t = take(key);
      Shape want = value.size() == 1 ? Shape{} : Shape{static_cast<std::int64_t>(value.size())};
      TG_CHECK(t.dtype() == kFloat64 && t.sizes() == want, "[{}] {}{}: expected float64 {}, got {}", name_, prefix,
               key, want, describe(t));
      value = t.to_vector<double>();
    }
    layouts.push_back(state_names(values));  // validates the options
    out.groups.push_back(std::move(values));

    std::optional<double> initial_lr;
    if (entries.contains("initial_lr")) {
      Tensor t = take("initial_lr");
      TG_CHECK(t.dtype() == kFloat64 && t.dim() == 0, "[{}] {}initial_lr: expected float64 [], got {}", name_, prefix,
               describe(t));
      initial_lr = t.item<double>();
    }
    out.initial_lrs.push_back(initial_lr);
    TG_CHECK(entries.empty(), "[{}] unexpected entry \"{}{}\" in the state dict", name_, prefix,
             entries.begin()->first);
  }

  out.state.resize(params_.size());
  for (auto& [id, entries] : state_entries) {
    auto found = param_of_id.find(id);
    TG_CHECK(found != param_of_id.end(), "[{}] unexpected entry \"state.{}.{}\": no group lists parameter {}", name_,
             id, entries.begin()->first, id);
    std::size_t i = found->second;
    std::size_t g = group_of(i);
    const Tensor& p = params_[i];
    for (const std::string& key : layouts[g]) {
      auto it = entries.find(key);
      TG_CHECK(it != entries.end(), "[{}] state.{} has {} but not \"{}\": a parameter that has stepped keeps {}",
               name_, id, keys_of(entries), key, layouts[g]);
      const Tensor& t = it->second;
      if (key == "step") {
        TG_CHECK(t.dtype() == kFloat32 && t.dim() == 0, "[{}] state.{}.step: expected float32 [], got {}", name_, id,
                 describe(t));
        float count = t.item<float>();
        TG_CHECK(count >= 0 && std::floor(count) == count, "[{}] state.{}.step: expected a count, got {}", name_, id,
                 count);
      } else {
        TG_CHECK(t.dtype() == p.dtype() && t.sizes() == p.sizes(), "[{}] state.{}.{}: {}, parameter {} is {}", name_,
                 id, key, describe(t), i, describe(p));
      }
      out.state[i].emplace_back(key, t);
    }
    TG_CHECK(entries.size() == layouts[g].size(), "[{}] state.{} has {}: a parameter of group {} keeps only {}",
             name_, id, keys_of(entries), g, layouts[g]);
  }
  return out;
}

void Optimizer::check_state_dict(const nn::NamedTensors& state) const { (void)parse_state_dict(state); }

void Optimizer::load_state_dict(const nn::NamedTensors& state) {
  Loaded loaded = parse_state_dict(state);
  for (std::size_t g = 0; g < num_param_groups(); ++g) set_hyperparameters(g, loaded.groups[g]);
  initial_lrs_ = std::move(loaded.initial_lrs);
  for (nn::NamedTensors& entries : loaded.state)
    for (auto& [_, t] : entries) t = native::clone(t);
  state_ = std::move(loaded.state);
}

namespace detail {

void check_non_negative(std::string_view optimizer, std::string_view option, double value) {
  TG_CHECK(value >= 0.0, "[{}] invalid {}: expected a value >= 0, got {}", optimizer, option, value);
}

void check_every_option_non_negative(std::string_view optimizer, const std::function<void(OptionVisitor&)>& visit) {
  struct Check final : OptionVisitor {
    std::string_view optimizer;
    explicit Check(std::string_view o) : optimizer(o) {}
    void operator()(const char* name, double& value) override { check_non_negative(optimizer, name, value); }
    void operator()(const char*, bool&) override {}
    void operator()(const char* name, std::array<double, 2>& pair) override {
      for (double v : pair) check_non_negative(optimizer, name, v);
    }
  } check(optimizer);
  visit(check);
}

Hyperparameters describe_options(const std::function<void(OptionVisitor&)>& visit) {
  struct Describe final : OptionVisitor {
    Hyperparameters out;
    void operator()(const char* name, double& value) override { out.emplace_back(name, std::vector<double>{value}); }
    void operator()(const char* name, bool& flag) override { out.emplace_back(name, std::vector<double>{flag ? 1.0 : 0.0}); }
    void operator()(const char* name, std::array<double, 2>& pair) override {
      out.emplace_back(name, std::vector<double>{pair[0], pair[1]});
    }
  } describe;
  visit(describe);
  return describe.out;
}

void assign_options(const std::function<void(OptionVisitor&)>& visit, const Hyperparameters& values,
                    std::string_view optimizer) {
  struct Assign final : OptionVisitor {
    const Hyperparameters& values;
    std::string_view optimizer;
    std::size_t used = 0;
    Assign(const Hyperparameters& v, std::string_view o) : values(v), optimizer(o) {}
    const std::vector<double>& find(const char* name, std::size_t size) {
      auto it = std::find_if(values.begin(), values.end(), [&](const auto& entry) { return entry.first == name; });
      TG_CHECK(it != values.end(), "[{}] option \"{}\" is missing", optimizer, name);
      TG_CHECK(it->second.size() == size, "[{}] option \"{}\" takes {} value(s), got {}", optimizer, name, size,
               it->second.size());
      ++used;
      return it->second;
    }
    void operator()(const char* name, double& value) override { value = find(name, 1)[0]; }
    void operator()(const char* name, bool& flag) override {
      double v = find(name, 1)[0];
      TG_CHECK(v == 0.0 || v == 1.0, "[{}] option \"{}\" is a flag: expected 0 or 1, got {}", optimizer, name, v);
      flag = v == 1.0;
    }
    void operator()(const char* name, std::array<double, 2>& pair) override {
      const std::vector<double>& v = find(name, 2);
      pair = {v[0], v[1]};
    }
  } assign(values, optimizer);
  visit(assign);
  TG_CHECK(assign.used == values.size(), "[{}] unknown options among {}", optimizer, [&] {
    std::vector<std::string> names;
    for (const auto& [name, _] : values) names.push_back(name);
    return names;
  }());
}

}  // namespace detail

}  // namespace tg::optim

namespace tg {

void save(const optim::Optimizer& optimizer, const std::string& path) { save_tensors(optimizer.state_dict(), path); }

void load(optim::Optimizer& optimizer, const std::string& path) { optimizer.load_state_dict(load_tensors(path)); }

}  // namespace tg
