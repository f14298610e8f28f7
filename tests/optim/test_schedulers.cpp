// The learning-rate schedulers against PyTorch's sequences (torch 1.13, scripts/gen_optim_refs.py):
// each alone, chained, step(epoch)'s closed forms, OneCycleLR's momentum, ReduceLROnPlateau; their
// errors, state dicts, and a run resumed mid-schedule that continues bit for bit. Tag [optim].
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <memory>

#include "tapegrad.h"
#include "tests/support/files.h"

using Catch::Contains;
using tg::Tensor;
namespace optim = tg::optim;

namespace {

using Scheduler = std::shared_ptr<optim::LRScheduler>;
using Schedulers = std::vector<Scheduler>;

Schedulers schedulers(Schedulers list) { return list; }  // a braced list builds in order
Scheduler step_lr(optim::Optimizer& o, std::int64_t step_size, double gamma = 0.1) {
  return std::make_shared<optim::StepLR>(o, step_size, gamma);
}
Scheduler multi_step_lr(optim::Optimizer& o, std::vector<std::int64_t> milestones, double gamma) {
  return std::make_shared<optim::MultiStepLR>(o, milestones, gamma);
}
Scheduler exponential_lr(optim::Optimizer& o, double gamma) { return std::make_shared<optim::ExponentialLR>(o, gamma); }
Scheduler cosine_annealing_lr(optim::Optimizer& o, std::int64_t T_max, double eta_min = 0.0) {
  return std::make_shared<optim::CosineAnnealingLR>(o, T_max, eta_min);
}
Scheduler lambda_lr(optim::Optimizer& o, optim::LambdaLR::Lambda f) { return std::make_shared<optim::LambdaLR>(o, f); }
Scheduler lambda_lr(optim::Optimizer& o, std::vector<optim::LambdaLR::Lambda> fs) {
  return std::make_shared<optim::LambdaLR>(o, fs);
}
Scheduler linear_lr(optim::Optimizer& o, optim::LinearLROptions options) {
  return std::make_shared<optim::LinearLR>(o, options);
}

// The script's optimizer: two groups, lr 0.1 and 0.01 (SGD with momentum 0.9, or Adam).
struct TwoGroups {
  Tensor a = tg::zeros({2}, tg::kFloat64).requires_grad_();
  Tensor b = tg::zeros({1}, tg::kFloat64).requires_grad_();
  std::unique_ptr<optim::Optimizer> opt;
  explicit TwoGroups(bool adam = false) {
    std::vector<optim::ParamGroup> groups = {{{a}, {.lr = 0.1}}, {{b}, {.lr = 0.01}}};
    if (adam) opt = std::make_unique<optim::Adam>(groups);
    else opt = std::make_unique<optim::SGD>(groups, optim::SGDOptions{.lr = 0.5, .momentum = 0.9});
  }
};

// Each group's lr (and the cycled option's first value) after construction and after each step.
std::vector<double> lr_sequence(const std::function<Schedulers(optim::Optimizer&)>& make, int epochs,
                                const char* momentum = nullptr) {
  TwoGroups groups(momentum && std::string(momentum) == "betas");
  optim::Optimizer& opt = *groups.opt;
  Schedulers s = make(opt);
  std::vector<double> out;
  auto record = [&] {
    for (std::size_t g = 0; g < 2; ++g) {
      out.push_back(opt.lr(g));
      if (momentum) out.push_back(opt.hyperparameter(g, momentum)[0]);
    }
  };
  record();
  for (int e = 0; e < epochs; ++e) {
    opt.step();
    for (const Scheduler& one : s) one->step();
    CHECK(s.back()->get_last_lr() == std::vector<double>{opt.lr(0), opt.lr(1)});
    CHECK(s.back()->last_epoch() == e + 1);
    record();
  }
  return out;
}

std::vector<double> one_cycle_sequence(optim::OneCycleLROptions options, int steps, const char* momentum) {
  return lr_sequence(
      [&](optim::Optimizer& opt) { return schedulers({std::make_shared<optim::OneCycleLR>(opt, std::vector<double>{0.5, 0.05}, options)}); },
      steps, momentum);
}

std::vector<double> closed_form_sequence(const std::function<Scheduler(optim::Optimizer&)>& make,
                                         const std::vector<std::int64_t>& epochs) {
  TwoGroups groups;
  Scheduler s = make(*groups.opt);
  std::vector<double> out;
  for (std::int64_t e : epochs) {
    s->step(e);
    CHECK(s->last_epoch() == e);
    for (double lr : s->get_last_lr()) out.push_back(lr);
  }
  return out;
}

std::vector<double> plateau_sequence(optim::ReduceLROnPlateauOptions options, const std::vector<double>& metrics) {
  TwoGroups groups;
  optim::ReduceLROnPlateau s(*groups.opt, options);
  std::vector<double> out;
  for (double m : metrics) {
    s.step(m);
    for (double lr : s.get_last_lr()) out.push_back(lr);
  }
  return out;
}

void check_close(const std::vector<double>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want[i]).epsilon(1e-13).margin(1e-15));
}

}  // namespace

TEST_CASE("schedulers give PyTorch's learning rates, alone and chained", "[optim]") {
#include "scheduler_refs.inc"
}

TEST_CASE("schedulers record initial_lr once, so chained ones share a base", "[optim]") {
  TwoGroups groups;
  optim::Optimizer& opt = *groups.opt;
  CHECK_FALSE(opt.initial_lr(0).has_value());
  optim::LinearLR warmup(opt, {.start_factor = 0.5, .total_iters = 2});
  CHECK(opt.initial_lr(0) == 0.1);
  CHECK(opt.lr(0) == 0.05);
  optim::CosineAnnealingLR cosine(opt, 10);
  CHECK(cosine.base_lrs() == std::vector<double>{0.1, 0.01});  // not the warmed-down 0.05
  CHECK(warmup.get_last_lr() == std::vector<double>{0.05, 0.005});
}

TEST_CASE("schedulers reject bad settings and leave the optimizer as it was", "[optim][errors]") {
  TwoGroups groups;
  optim::Optimizer& opt = *groups.opt;
  CHECK_THROWS_WITH(optim::StepLR(opt, 0), Contains("[StepLR]") && Contains("step_size"));
  CHECK_THROWS_WITH(optim::CosineAnnealingLR(opt, 0), Contains("[CosineAnnealingLR]") && Contains("T_max"));
  CHECK_THROWS_WITH(optim::LinearLR(opt, {.start_factor = 0.0}), Contains("[LinearLR]") && Contains("start_factor"));
  CHECK_THROWS_WITH(optim::LinearLR(opt, {.end_factor = 1.5}), Contains("[LinearLR]") && Contains("end_factor"));
  CHECK_THROWS_WITH(optim::LinearLR(opt, {.total_iters = 0}), Contains("[LinearLR]") && Contains("total_iters"));
  CHECK_THROWS_WITH(optim::LambdaLR(opt, std::vector<optim::LambdaLR::Lambda>{[](std::int64_t) { return 1.0; }}),
                    Contains("[LambdaLR] expected 2 lr_lambdas"));
  CHECK_THROWS_WITH(optim::OneCycleLR(opt, {0.1}, {}), Contains("[OneCycleLR]") && Contains("total_steps"));
  CHECK_THROWS_WITH(optim::OneCycleLR(opt, {0.1}, {.total_steps = 0}), Contains("positive total_steps"));
  CHECK_THROWS_WITH(optim::OneCycleLR(opt, {0.1}, {.epochs = 2}), Contains("steps_per_epoch"));
  CHECK_THROWS_WITH(optim::OneCycleLR(opt, {0.1}, {.total_steps = 5, .pct_start = 1.5}), Contains("pct_start"));
  CHECK_THROWS_WITH(optim::OneCycleLR(opt, {0.1}, {.total_steps = 5, .anneal_strategy = "cosine"}),
                    Contains("anneal_strategy"));
  CHECK_THROWS_WITH(optim::OneCycleLR(opt, {0.1, 0.2, 0.3}, {.total_steps = 5}), Contains("max_lr"));
  // SGD refuses the negative momentum: its momentum is put back and initial_lr unset again.
  optim::SGD nesterov({tg::zeros({1}).requires_grad_()}, {.lr = 0.1, .momentum = 0.9, .nesterov = true});
  CHECK_THROWS_WITH(optim::OneCycleLR(nesterov, {0.1}, {.total_steps = 5, .max_momentum = -1.0}),
                    Contains("[SGD]") && Contains("momentum"));
  CHECK(nesterov.options().momentum == 0.9);
  CHECK_FALSE(nesterov.initial_lr(0).has_value());
  optim::Adagrad adagrad({tg::zeros({1}).requires_grad_()});
  CHECK_THROWS_WITH(optim::OneCycleLR(adagrad, {0.1}, {.total_steps = 5}),
                    Contains("[OneCycleLR] Adagrad has no momentum or betas"));
  CHECK_THROWS_WITH(optim::ReduceLROnPlateau(opt, {.factor = 1.0}), Contains("[ReduceLROnPlateau]") && Contains("factor"));
  CHECK_THROWS_WITH(optim::ReduceLROnPlateau(opt, {.mode = "least"}), Contains("mode"));
  CHECK_THROWS_WITH(optim::ReduceLROnPlateau(opt, {.threshold_mode = "relative"}), Contains("threshold_mode"));
  CHECK_THROWS_WITH(optim::ReduceLROnPlateau(opt, {.min_lr = {0.1, 0.2, 0.3}}), Contains("min_lr"));
  CHECK(opt.lr(0) == 0.1);
  CHECK_FALSE(opt.initial_lr(0).has_value());

  // Past total_steps OneCycleLR throws, and stays where it was.
  optim::OneCycleLR cycle(opt, {0.5}, {.total_steps = 2});
  cycle.step();
  cycle.step();
  double lr = opt.lr(0);
  CHECK_THROWS_WITH(cycle.step(), Contains("[OneCycleLR] tried to step 4 times; total_steps is 2"));
  CHECK(cycle.last_epoch() == 2);
  CHECK(opt.lr(0) == lr);
  // A schedule that gives a negative lr is refused before any group changes.
  TwoGroups other;
  optim::LambdaLR negative(*other.opt, [](std::int64_t e) { return 1.0 - static_cast<double>(e); });
  negative.step();
  CHECK_THROWS_WITH(negative.step(), Contains("[LambdaLR]") && Contains("-0.1"));
  CHECK(negative.last_epoch() == 1);
  CHECK(other.opt->lr(0) == 0.0);
}

TEST_CASE("scheduler state dicts round-trip, and a checkpoint of other settings is refused", "[optim][errors]") {
  TwoGroups groups;
  optim::MultiStepLR s(*groups.opt, {3, 1}, 0.5);
  s.step();
  s.step();
  tg::nn::NamedTensors state = s.state_dict();
  std::vector<std::string> names;
  for (const auto& [name, _] : state) names.push_back(name);
  CHECK(names == std::vector<std::string>{"last_epoch", "step_count", "base_lrs", "last_lr", "milestones", "gamma"});
  CHECK(state[0].second.item<std::int64_t>() == 2);
  CHECK(state[1].second.item<std::int64_t>() == 3);
  CHECK(state[4].second.to_vector<double>() == std::vector<double>{1, 3});

  TwoGroups fresh_groups;
  optim::MultiStepLR fresh(*fresh_groups.opt, {1, 3}, 0.5);
  std::string path = tg_test::temp_path("sched.safetensors");
  tg::save(s, path);
  tg::load(fresh, path);
  std::filesystem::remove(path);
  CHECK(fresh.last_epoch() == 2);
  CHECK(fresh.get_last_lr() == s.get_last_lr());

  optim::MultiStepLR other(*fresh_groups.opt, {1, 4}, 0.5);
  CHECK_THROWS_WITH(other.load_state_dict(state), Contains("[MultiStepLR] the state was saved with milestones [1, 3]") &&
                                                      Contains("[1, 4]"));
  CHECK(other.last_epoch() == 0);
  optim::StepLR step(*fresh_groups.opt, 2);
  CHECK_THROWS_WITH(step.load_state_dict(state), Contains("[StepLR]") && Contains("step_size"));
  tg::nn::NamedTensors extra = state;
  extra.emplace_back("bogus", tg::zeros({1}, tg::kFloat64));
  CHECK_THROWS_WITH(fresh.check_state_dict(extra), Contains("unexpected entry \"bogus\""));
  tg::nn::NamedTensors bad = state;
  bad[2].second = tg::zeros({3}, tg::kFloat64);
  CHECK_THROWS_WITH(fresh.load_state_dict(bad), Contains("base_lrs") && Contains("[3]"));

  optim::ReduceLROnPlateau plateau(*groups.opt, {.patience = 0});
  plateau.step(1.0);
  plateau.step(2.0);
  optim::ReduceLROnPlateau plateau_again(*fresh_groups.opt, {.patience = 0});
  plateau_again.load_state_dict(plateau.state_dict());
  CHECK(plateau_again.best() == 1.0);
  CHECK(plateau_again.last_epoch() == 2);
  CHECK(plateau_again.get_last_lr() == plateau.get_last_lr());
  optim::ReduceLROnPlateau plateau_max(*fresh_groups.opt, {.mode = "max", .patience = 0});
  CHECK_THROWS_WITH(plateau_max.load_state_dict(plateau.state_dict()), Contains("[ReduceLROnPlateau]") && Contains("mode"));
}

// AdamW with a warm-up, cosine annealing and ReduceLROnPlateau chained, as training scripts do:
// stopping after 5 steps, saving, and going on in new objects gives the very bits of the run that
// never stopped.
TEST_CASE("a run resumed mid-schedule continues bit for bit", "[optim]") {
  struct Run {
    Tensor w = tg::tensor(std::vector<double>{0.5, -1.0, 2.0, 0.25}, {4}).requires_grad_();
    Tensor bias = tg::tensor(std::vector<double>{0.1}, {1}).requires_grad_();
    optim::AdamW opt{{{{w}}, {{bias}, {.weight_decay = 0.0}}}, {.lr = 0.05, .amsgrad = true}};
    optim::LinearLR warmup{opt, {.start_factor = 0.2, .total_iters = 3}};
    optim::CosineAnnealingLR cosine{opt, 12, 0.001};
    optim::ReduceLROnPlateau plateau{opt, {.factor = 0.5, .patience = 1}};
    double step(int i) {
      opt.zero_grad();
      Tensor x = tg::tensor(std::vector<double>{std::sin(i), std::cos(i), 0.5, -0.25 * i}, {4});
      Tensor loss = ((w * x).sum() + bias - 1.0).pow(2).sum() + (w * w).sum() * 0.01;
      loss.backward();
      opt.step();
      warmup.step();
      cosine.step();
      double l = loss.item<double>();
      plateau.step(l);
      return l;
    }
  };
  Run straight, first;
  std::vector<double> want, got;
  for (int i = 0; i < 12; ++i) want.push_back(straight.step(i));
  for (int i = 0; i < 5; ++i) got.push_back(first.step(i));

  tg::save(first.opt, tg_test::temp_path("resume_opt.safetensors"));
  tg::save(first.warmup, tg_test::temp_path("resume_warmup.safetensors"));
  tg::save(first.cosine, tg_test::temp_path("resume_cosine.safetensors"));
  tg::save(first.plateau, tg_test::temp_path("resume_plateau.safetensors"));
  Run resumed;  // fresh objects; the schedulers' construction set the lrs back to the start
  {
    tg::NoGradGuard no_grad;
    resumed.w.copy_(first.w);
    resumed.bias.copy_(first.bias);
  }
  tg::load(resumed.opt, tg_test::temp_path("resume_opt.safetensors"));
  tg::load(resumed.warmup, tg_test::temp_path("resume_warmup.safetensors"));
  tg::load(resumed.cosine, tg_test::temp_path("resume_cosine.safetensors"));
  tg::load(resumed.plateau, tg_test::temp_path("resume_plateau.safetensors"));
  for (const char* name : {"opt", "warmup", "cosine", "plateau"})
    std::filesystem::remove(tg_test::temp_path(std::string("resume_") + name + ".safetensors"));
  CHECK(resumed.opt.lr(0) == first.opt.lr(0));
  for (int i = 5; i < 12; ++i) got.push_back(resumed.step(i));
  CHECK(got == want);  // bit for bit
  CHECK(resumed.w.to_vector<double>() == straight.w.to_vector<double>());
  CHECK(resumed.opt.lr(1) == straight.opt.lr(1));
}
