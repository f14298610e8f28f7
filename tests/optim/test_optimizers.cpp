// Adam, AdamW, RMSprop, Adagrad (and SGD's groups and maximize) against PyTorch's trajectories
// (torch 1.13, scripts/gen_optim_refs.py); parameter groups; option checks; the state dict with
// its hyperparameters, its checks, and a resumed run that continues bit for bit. Tag [optim].
#include <catch2/catch.hpp>

#include <filesystem>
#include <type_traits>

#include "tapegrad.h"
#include "tests/support/files.h"

using Catch::Contains;
using tg::Tensor;
namespace optim = tg::optim;

namespace {

template <class Opt>
using OptionsOf = std::remove_cvref_t<decltype(std::declval<const Opt&>().options())>;

// sum(k ⊙ (a − c)²) + sum((b ⊙ b − d)²), as the script writes it, in float64.
struct Problem {
  Tensor a = tg::tensor(std::vector<double>{1.0, -2.0, 3.0}, {3}).requires_grad_();
  Tensor b = tg::tensor(std::vector<double>{0.5, -1.5}, {2}).requires_grad_();
  Tensor c = tg::tensor(std::vector<double>{0.5, 0.5, -1.0}, {3});
  Tensor k = tg::tensor(std::vector<double>{1.0, 2.0, 0.5}, {3});
  Tensor d = tg::tensor(std::vector<double>{1.0, 0.25}, {2});

  void steps(optim::Optimizer& opt, int n) {
    for (int s = 0; s < n; ++s) {
      opt.zero_grad();
      (((a - c).pow(2) * k).sum() + (b * b - d).pow(2).sum()).backward();
      opt.step();
    }
  }
  std::vector<double> values() const {
    std::vector<double> out = a.to_vector<double>();
    for (double v : b.to_vector<double>()) out.push_back(v);
    return out;
  }
};

constexpr int kSteps = 8;

template <class Opt>
std::vector<double> run(OptionsOf<Opt> options) {
  Problem problem;
  Opt opt({problem.a, problem.b}, options);
  problem.steps(opt, kSteps);
  return problem.values();
}

template <class Opt>
std::vector<double> run_groups(OptionsOf<Opt> defaults, optim::ParamGroupOptions a_group,
                               optim::ParamGroupOptions b_group) {
  Problem problem;
  Opt opt({{{problem.a}, a_group}, {{problem.b}, b_group}}, defaults);
  problem.steps(opt, kSteps);
  return problem.values();
}

void check_close(const std::vector<double>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want[i]).epsilon(1e-12).margin(1e-12));
}

using tg_test::temp_path;

std::vector<std::vector<double>> all_state(const optim::Optimizer& opt) {
  std::vector<std::vector<double>> out;
  for (const auto& [_, t] : opt.state_dict()) out.push_back(t.to_vector<double>());
  return out;
}

}  // namespace

TEST_CASE("Adam, AdamW, RMSprop, Adagrad and SGD follow PyTorch's trajectories, with groups", "[optim]") {
#include "optim_refs.inc"
}

TEST_CASE("optimizer defaults are PyTorch's", "[optim]") {
  Tensor p = tg::ones({2}).requires_grad_();
  optim::Adam adam({p});
  CHECK(adam.options().lr == 1e-3);
  CHECK(adam.options().betas == std::array<double, 2>{0.9, 0.999});
  CHECK(adam.options().eps == 1e-8);
  CHECK(adam.options().weight_decay == 0.0);
  CHECK_FALSE(adam.options().amsgrad);
  CHECK(optim::AdamW({p}).options().weight_decay == 1e-2);
  optim::RMSprop rmsprop({p});
  CHECK(rmsprop.options().lr == 1e-2);
  CHECK(rmsprop.options().alpha == 0.99);
  CHECK(rmsprop.options().eps == 1e-8);
  optim::Adagrad adagrad({p});
  CHECK(adagrad.options().lr == 1e-2);
  CHECK(adagrad.options().eps == 1e-10);
  // Adagrad's state exists from construction on, as PyTorch's.
  REQUIRE(adagrad.state(0).size() == 2);
  CHECK(adagrad.state(0)[0].first == "step");
  CHECK(adagrad.state(0)[1].second.to_vector<float>() == std::vector<float>{0, 0});
  CHECK(optim::Adagrad({p}, {.initial_accumulator_value = 0.5}).state(0)[1].second.to_vector<float>() ==
        std::vector<float>{0.5, 0.5});
}

TEST_CASE("float32 parameters step as float64 ones do, to float32's precision", "[optim]") {
  auto trajectory = [](tg::DType dtype, auto make) {
    Tensor p = tg::tensor(std::vector<double>{1.0, -2.0, 3.0, 0.25}, {2, 2}).to(dtype).requires_grad_();
    auto opt = make(p);
    for (int s = 0; s < 6; ++s) {
      opt.zero_grad();
      (p * p * p).sum().backward();
      opt.step();
    }
    return p.to_vector<double>();
  };
  auto compare = [&](auto make) {
    std::vector<double> single = trajectory(tg::kFloat32, make), twice = trajectory(tg::kFloat64, make);
    for (std::size_t i = 0; i < single.size(); ++i) CHECK(single[i] == Approx(twice[i]).epsilon(1e-5).margin(1e-6));
  };
  compare([](Tensor p) { return optim::Adam({p}, {.lr = 0.1, .weight_decay = 0.1, .amsgrad = true}); });
  compare([](Tensor p) { return optim::AdamW({p}, {.lr = 0.1}); });
  compare([](Tensor p) { return optim::RMSprop({p}, {.lr = 0.01, .momentum = 0.5, .centered = true}); });
  compare([](Tensor p) { return optim::Adagrad({p}, {.lr = 0.1, .lr_decay = 0.1}); });
}

TEST_CASE("bad options throw naming the optimizer", "[optim][errors]") {
  Tensor p = tg::ones({2}).requires_grad_();
  CHECK_THROWS_WITH(optim::Adam({p}, {.lr = -1}), Contains("[Adam]") && Contains("lr") && Contains("-1"));
  CHECK_THROWS_WITH(optim::Adam({p}, {.betas = {1.0, 0.999}}), Contains("[Adam]") && Contains("betas[0]") &&
                                                                     Contains("[0, 1)") && Contains("got 1"));
  CHECK_THROWS_WITH(optim::Adam({p}, {.betas = {0.9, -0.1}}), Contains("[Adam]") && Contains("betas[1]"));
  CHECK_THROWS_WITH(optim::Adam({p}, {.eps = -1e-8}), Contains("[Adam]") && Contains("eps"));
  CHECK_THROWS_WITH(optim::Adam({p}, {.weight_decay = -0.1}), Contains("[Adam]") && Contains("weight_decay"));
  CHECK_THROWS_WITH(optim::AdamW({p}, {.lr = -1}), Contains("[AdamW]") && Contains("lr"));
  CHECK_THROWS_WITH(optim::AdamW({p}, {.betas = {0.9, 1.0}}), Contains("[AdamW]") && Contains("betas[1]"));
  CHECK_THROWS_WITH(optim::RMSprop({p}, {.lr = -1}), Contains("[RMSprop]") && Contains("lr"));
  CHECK_THROWS_WITH(optim::RMSprop({p}, {.momentum = -1}), Contains("[RMSprop]") && Contains("momentum"));
  CHECK_THROWS_WITH(optim::RMSprop({p}, {.alpha = -1}), Contains("[RMSprop]") && Contains("alpha"));
  CHECK_THROWS_WITH(optim::RMSprop({p}, {.eps = -1}), Contains("[RMSprop]") && Contains("eps"));
  CHECK_THROWS_WITH(optim::Adagrad({p}, {.lr = -1}), Contains("[Adagrad]") && Contains("lr"));
  CHECK_THROWS_WITH(optim::Adagrad({p}, {.lr_decay = -1}), Contains("[Adagrad]") && Contains("lr_decay"));
  CHECK_THROWS_WITH(optim::Adagrad({p}, {.initial_accumulator_value = -1}),
                    Contains("[Adagrad]") && Contains("initial_accumulator_value"));
  CHECK_THROWS_WITH(optim::Adagrad({p}, {.eps = -1}), Contains("[Adagrad]") && Contains("eps"));
  // A group's own values are checked too.
  CHECK_THROWS_WITH(optim::Adam({{{p}, {.lr = -0.5}}}), Contains("[Adam]") && Contains("-0.5"));

  CHECK_THROWS_WITH(optim::Adam(std::vector<Tensor>{}), Contains("[Adam] optimizer got an empty parameter list"));
  CHECK_THROWS_WITH(optim::SGD(std::vector<optim::ParamGroup>{}, {.lr = 0.1}),
                    Contains("[SGD] optimizer got an empty parameter list"));
  CHECK_THROWS_WITH(optim::RMSprop({{.params = {p}}, {.params = {p}}}), Contains("[RMSprop]") && Contains("more than one parameter group"));
  CHECK_THROWS_WITH(optim::Adagrad({p, p}), Contains("[Adagrad]") && Contains("twice"));
  CHECK_THROWS_WITH(optim::AdamW({tg::ones({2})}), Contains("[AdamW]") && Contains("requires grad"));
}

TEST_CASE("options by name: lr per group, validated, and state-changing options refused after a step",
          "[optim][errors]") {
  Tensor a = tg::ones({2}).requires_grad_(), b = tg::ones({3}).requires_grad_();
  optim::Adam opt({{.params = {a}}, {{b}, {.lr = 0.01, .weight_decay = 0.1}}}, {.lr = 0.1});
  REQUIRE(opt.num_param_groups() == 2);
  CHECK(opt.group_params(1).size() == 1);
  CHECK(opt.group_params(1)[0].is_same(b));
  CHECK(opt.lr(0) == 0.1);
  CHECK(opt.lr(1) == 0.01);
  CHECK(opt.options(1).weight_decay == 0.1);
  CHECK(opt.options(0).weight_decay == 0.0);
  CHECK(opt.hyperparameter(1, "betas") == std::vector<double>{0.9, 0.999});
  CHECK(opt.has_hyperparameter("betas"));
  CHECK_FALSE(opt.has_hyperparameter("momentum"));
  opt.set_hyperparameter(1, "betas", {0.8, 0.99});
  CHECK(opt.options(1).betas == std::array<double, 2>{0.8, 0.99});
  CHECK(opt.options(0).betas == std::array<double, 2>{0.9, 0.999});
  CHECK_THROWS_WITH(opt.set_hyperparameter(1, "betas", {1.5, 0.99}), Contains("[Adam]") && Contains("betas[0]"));
  CHECK_THROWS_WITH(opt.set_hyperparameter(1, "betas", {0.5}), Contains("takes 2"));
  CHECK_THROWS_WITH(opt.set_hyperparameter(0, "momentum", {0.5}), Contains("[Adam] has no option \"momentum\""));
  CHECK_THROWS_WITH(opt.set_hyperparameter(0, "amsgrad", {0.5}), Contains("0 or 1"));
  CHECK_THROWS_WITH(opt.lr(2), Contains("[Adam] no parameter group 2"));
  CHECK_THROWS_WITH(opt.set_lr(-1.0), Contains("[Adam]") && Contains("lr"));
  CHECK(opt.options(1).betas == std::array<double, 2>{0.8, 0.99});
  CHECK(opt.lr(0) == 0.1);
  opt.set_lr(0.5);
  CHECK(opt.lr(0) == 0.5);
  CHECK(opt.lr(1) == 0.5);

  // amsgrad keeps one more buffer: it may change only before the group's parameters step.
  opt.set_hyperparameter(1, "amsgrad", {1.0});
  CHECK(opt.options(1).amsgrad);
  (a.sum() + b.sum()).backward();
  opt.step();
  CHECK(opt.state(1).size() == 4);
  CHECK(opt.state(1)[3].first == "max_exp_avg_sq");
  CHECK_THROWS_WITH(opt.set_hyperparameter(0, "amsgrad", {1.0}),
                    Contains("[Adam] cannot set amsgrad of group 0") && Contains("max_exp_avg_sq"));
  CHECK_FALSE(opt.options(0).amsgrad);
  opt.set_hyperparameter(0, "eps", {1e-6});  // the state's kind stays: fine
  CHECK(opt.options(0).eps == 1e-6);
}

TEST_CASE("the state dict holds each group's options and lr, and a resumed run continues bit for bit", "[optim]") {
  auto make = [](Problem& problem) {
    return optim::Adam({{{problem.a}, {.weight_decay = 0.1}}, {{problem.b}, {.lr = 0.05}}},
                       {.lr = 0.1, .amsgrad = true});
  };
  Problem straight, first;
  optim::Adam straight_opt = make(straight), first_opt = make(first);
  straight.steps(straight_opt, 3);
  first.steps(first_opt, 3);
  straight_opt.set_lr(1, 0.02);  // as a scheduler would
  first_opt.set_lr(1, 0.02);
  first_opt.set_initial_lr(0, 0.1);

  tg::nn::NamedTensors state = first_opt.state_dict();
  std::vector<std::string> names;
  for (const auto& [name, _] : state) names.push_back(name);
  CHECK(names == std::vector<std::string>{
                     "state.0.step", "state.0.exp_avg", "state.0.exp_avg_sq", "state.0.max_exp_avg_sq",
                     "state.1.step", "state.1.exp_avg", "state.1.exp_avg_sq", "state.1.max_exp_avg_sq",
                     "param_groups.0.lr", "param_groups.0.betas", "param_groups.0.eps", "param_groups.0.weight_decay",
                     "param_groups.0.amsgrad", "param_groups.0.maximize", "param_groups.0.initial_lr",
                     "param_groups.0.params", "param_groups.1.lr", "param_groups.1.betas", "param_groups.1.eps",
                     "param_groups.1.weight_decay", "param_groups.1.amsgrad", "param_groups.1.maximize",
                     "param_groups.1.params"});
  CHECK(state[0].second.dtype() == tg::kFloat32);
  CHECK(state[0].second.item<float>() == 3.0f);
  CHECK(state[9].second.sizes() == tg::Shape{2});
  CHECK(state[16].second.item<double>() == 0.02);
  CHECK(state[22].second.to_vector<std::int64_t>() == std::vector<std::int64_t>{1});

  std::string path = temp_path("resume.safetensors");
  tg::save(first_opt, path);
  // A new run with other options: the file's win, as with PyTorch's load_state_dict.
  Problem resumed;
  resumed.a.detach().copy_(first.a.detach());
  resumed.b.detach().copy_(first.b.detach());
  optim::Adam resumed_opt({{.params = {resumed.a}}, {.params = {resumed.b}}}, {.lr = 0.7});
  tg::load(resumed_opt, path);
  std::filesystem::remove(path);
  CHECK(resumed_opt.lr(0) == 0.1);
  CHECK(resumed_opt.lr(1) == 0.02);
  CHECK(resumed_opt.options(0).weight_decay == 0.1);
  CHECK(resumed_opt.options(1).amsgrad);
  CHECK(resumed_opt.initial_lr(0) == 0.1);
  CHECK_FALSE(resumed_opt.initial_lr(1).has_value());
  CHECK(all_state(resumed_opt) == all_state(first_opt));

  straight.steps(straight_opt, 4);
  resumed.steps(resumed_opt, 4);
  CHECK(resumed.values() == straight.values());  // bit for bit
}

TEST_CASE("check_state_dict refuses what does not fit and load changes nothing then", "[optim][errors]") {
  Problem problem;
  optim::RMSprop opt({{.params = {problem.a}}, {{problem.b}, {.lr = 0.05}}}, {.momentum = 0.5});
  problem.steps(opt, 2);
  const tg::nn::NamedTensors good = opt.state_dict();
  opt.check_state_dict(good);
  const auto before = all_state(opt);

  auto without = [&](const std::string& name) {
    tg::nn::NamedTensors out;
    for (const auto& entry : good)
      if (entry.first != name) out.push_back(entry);
    return out;
  };
  auto with = [&](const std::string& name, Tensor t) {
    tg::nn::NamedTensors out = good;
    for (auto& entry : out)
      if (entry.first == name) entry.second = t;
    return out;
  };
  auto refuses = [&](const tg::nn::NamedTensors& state, const std::string& what) {
    CHECK_THROWS_WITH(opt.check_state_dict(state), Contains("[RMSprop]") && Contains(what));
    CHECK_THROWS_WITH(opt.load_state_dict(state), Contains("[RMSprop]") && Contains(what));
    CHECK(all_state(opt) == before);
  };
  refuses(without("param_groups.1.alpha"), "param_groups.1.alpha");
  refuses(without("state.1.square_avg"), "square_avg");
  refuses(with("state.0.square_avg", tg::zeros({2}, tg::kFloat64)), "[2]");
  refuses(with("state.0.square_avg", tg::zeros({3}, tg::kFloat32)), "float32");
  refuses(with("state.0.step", tg::scalar_tensor(2.5, tg::kFloat32)), "a count");
  refuses(with("state.0.step", tg::scalar_tensor(2, tg::kInt64)), "state.0.step");
  refuses(with("param_groups.0.lr", tg::scalar_tensor(-1.0, tg::kFloat64)), "lr");
  refuses(with("param_groups.0.centered", tg::scalar_tensor(1.0, tg::kFloat64)), "grad_avg");  // centered needs it
  refuses(with("param_groups.0.momentum", tg::scalar_tensor(0.0, tg::kFloat64)), "keeps only");
  refuses(with("param_groups.1.params", tg::arange(1, 3, 1, tg::kInt64)), "params");
  tg::nn::NamedTensors extra = good;
  extra.emplace_back("param_groups.2.lr", tg::scalar_tensor(0.1, tg::kFloat64));
  refuses(extra, "parameter group 2");
  extra = good;
  extra.emplace_back("state.7.square_avg", tg::zeros({3}, tg::kFloat64));
  refuses(extra, "state.7");
  extra = good;
  extra.emplace_back("param_groups.0.nesterov", tg::scalar_tensor(0.0, tg::kFloat64));
  refuses(extra, "nesterov");
  refuses({}, "param_groups.0.params");
  // Another optimizer's state is refused: its options are not RMSprop's.
  optim::Adam adam({{.params = {problem.a}}, {.params = {problem.b}}});
  CHECK_THROWS_WITH(adam.load_state_dict(good), Contains("[Adam]"));

  // A parameter without state (never stepped) is fine, and loads as empty.
  tg::nn::NamedTensors partial;
  for (const auto& entry : good)
    if (!entry.first.starts_with("state.1.")) partial.push_back(entry);
  opt.load_state_dict(partial);
  CHECK(opt.state(1).empty());
  CHECK(opt.state(0).size() == 3);
}
