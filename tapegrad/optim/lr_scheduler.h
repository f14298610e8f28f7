// Learning-rate schedulers with PyTorch 1.13's numbers and rules. Construction records each
// group's initial_lr in the optimizer (unless an earlier scheduler did: then both schedule from
// the same base) and takes the first step, to epoch 0. step() then computes each group's lr from
// the lr the group has now (PyTorch's "chainable" form), so that schedulers stepped one after the
// other compose: ExponentialLR and StepLR together multiply both factors in. step(epoch) uses the
// closed form where PyTorch has one. The state dict holds the progress (last_epoch, step_count,
// base_lrs, last_lr) and the settings, which loading checks against this scheduler's.
// To resume: build optimizer and schedulers, then load both states (the optimizer's restores the
// lrs the schedulers' construction reset). Layer: optim.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tapegrad/optim/optimizer.h"

namespace tg::optim {

class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  // Advances one epoch (call it after optimizer.step()) and sets every group's lr.
  void step();
  // Jumps to `epoch`: the closed form where PyTorch has one, else the chainable form at that epoch
  // (deprecated in PyTorch, which still computes these numbers).
  void step(std::int64_t epoch);
  // Each group's lr as this scheduler last set it.
  const std::vector<double>& get_last_lr() const { return last_lr_; }
  std::int64_t last_epoch() const { return last_epoch_; }
  const std::vector<double>& base_lrs() const { return base_lrs_; }
  const std::string& name() const { return name_; }

  // "last_epoch" and "step_count" (int64), "base_lrs" and "last_lr" (float64 [groups]), and each
  // setting under PyTorch's name as float64 [n] ("gamma", "milestones").
  nn::NamedTensors state_dict() const;
  // Throws what load_state_dict would throw: a missing or unexpected entry, a wrong shape, or a
  // setting other than this scheduler's ("[StepLR] the state was saved with step_size 3, ...").
  void check_state_dict(const nn::NamedTensors& state) const;
  void load_state_dict(const nn::NamedTensors& state);

 protected:
  LRScheduler(std::string name, Optimizer& optimizer);
  // Ends every derived constructor: PyTorch's first step, to epoch 0.
  void initial_step();
  // The chainable form: each group's lr at last_epoch_, from the group's current lr.
  virtual std::vector<double> get_lr() = 0;
  // PyTorch's _get_closed_form_lr at last_epoch_, if the scheduler has one.
  virtual std::optional<std::vector<double>> closed_form_lr() const { return std::nullopt; }
  // The settings, as float64 lists, for the state dict.
  virtual Hyperparameters settings() const = 0;

  std::vector<double> group_lrs() const;  // each group's current lr

  Optimizer& optimizer_;
  std::vector<double> base_lrs_;
  std::int64_t last_epoch_ = -1;
  std::int64_t step_count_ = 0;

 private:
  void advance(std::int64_t epoch, bool closed_form);

  std::string name_;
  std::vector<double> last_lr_;
};

// lr = base_lr · gamma^⌊epoch / step_size⌋.
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, std::int64_t step_size, double gamma = 0.1);

 private:
  std::vector<double> get_lr() override;
  std::optional<std::vector<double>> closed_form_lr() const override;
  Hyperparameters settings() const override;
  std::int64_t step_size_;
  double gamma_;
};

// lr = base_lr · gamma^(milestones passed); a milestone listed twice counts twice.
class MultiStepLR : public LRScheduler {
 public:
  MultiStepLR(Optimizer& optimizer, std::vector<std::int64_t> milestones, double gamma = 0.1);

 private:
  std::vector<double> get_lr() override;
  std::optional<std::vector<double>> closed_form_lr() const override;
  Hyperparameters settings() const override;
  std::vector<std::int64_t> milestones_;  // sorted
  double gamma_;
};

// lr = base_lr · gamma^epoch.
class ExponentialLR : public LRScheduler {
 public:
  ExponentialLR(Optimizer& optimizer, double gamma);

 private:
  std::vector<double> get_lr() override;
  std::optional<std::vector<double>> closed_form_lr() const override;
  Hyperparameters settings() const override;
  double gamma_;
};

// lr = eta_min + (base_lr − eta_min)·(1 + cos(π·epoch / T_max)) / 2, computed recursively as
// PyTorch does (past T_max it climbs back up).
class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, std::int64_t T_max, double eta_min = 0.0);

 private:
  std::vector<double> get_lr() override;
  std::optional<std::vector<double>> closed_form_lr() const override;
  Hyperparameters settings() const override;
  std::int64_t T_max_;
  double eta_min_;
};

// lr = base_lr · lr_lambda(epoch): one function for every group, or one per group. The
// functions are not saved with the state.
class LambdaLR : public LRScheduler {
 public:
  using Lambda = std::function<double(std::int64_t epoch)>;
  LambdaLR(Optimizer& optimizer, Lambda lr_lambda);
  LambdaLR(Optimizer& optimizer, std::vector<Lambda> lr_lambdas);

 private:
  std::vector<double> get_lr() override;
  Hyperparameters settings() const override { return {}; }
  std::vector<Lambda> lr_lambdas_;
};

struct LinearLROptions {
  double start_factor = 1.0 / 3.0;
  double end_factor = 1.0;
  std::int64_t total_iters = 5;
};

// Warm-up (or decay): lr = base_lr · (start_factor + (end_factor − start_factor)·min(epoch,
// total_iters) / total_iters). Factors must lie in [0, 1], start_factor above 0.
class LinearLR : public LRScheduler {
 public:
  explicit LinearLR(Optimizer& optimizer, LinearLROptions options = {});

 private:
  std::vector<double> get_lr() override;
  std::optional<std::vector<double>> closed_form_lr() const override;
  Hyperparameters settings() const override;
  LinearLROptions options_;
};

struct OneCycleLROptions {
  std::optional<std::int64_t> total_steps = std::nullopt;  // or epochs · steps_per_epoch
  std::optional<std::int64_t> epochs = std::nullopt;
  std::optional<std::int64_t> steps_per_epoch = std::nullopt;
  double pct_start = 0.3;
  std::string anneal_strategy = "cos";  // or "linear"
  bool cycle_momentum = true;
  double base_momentum = 0.85;
  double max_momentum = 0.95;
  double div_factor = 25.0;
  double final_div_factor = 1e4;
  bool three_phase = false;
};

// The 1cycle policy, stepped once per batch: lr climbs from max_lr/div_factor to max_lr over
// pct_start of the steps, then anneals to max_lr/(div_factor·final_div_factor) (three_phase: back
// to the initial lr first). With cycle_momentum the optimizer's "momentum" (SGD, RMSprop) or
// beta1 ("betas": Adam, AdamW) moves the opposite way, between max_momentum and base_momentum.
// max_lr is one value for every group or one per group. It sets the groups' initial_lr itself.
// Stepping past total_steps throws.
class OneCycleLR : public LRScheduler {
 public:
  OneCycleLR(Optimizer& optimizer, std::vector<double> max_lr, OneCycleLROptions options);

 private:
  // Where a phase starts and ends: lr at initial_lr, max_lr or min_lr; momentum at
  // max_momentum (High) or base_momentum (Low).
  enum class Level { Initial, High, Low };
  struct Phase {
    double end_step;
    Level start_lr, end_lr, start_momentum, end_momentum;
  };
  std::vector<double> get_lr() override;
  Hyperparameters settings() const override;
  double anneal(double start, double end, double pct) const;

  OneCycleLROptions options_;
  std::int64_t total_steps_;
  std::vector<double> max_lrs_, min_lrs_;
  std::vector<Phase> phases_;
  std::string momentum_name_;  // "momentum", "betas", or "" without cycle_momentum
};

struct ReduceLROnPlateauOptions {
  std::string mode = "min";  // or "max": the metric should rise
  double factor = 0.1;       // new lr = max(lr · factor, min_lr)
  std::int64_t patience = 10;
  double threshold = 1e-4;
  std::string threshold_mode = "rel";  // or "abs"
  std::int64_t cooldown = 0;
  std::vector<double> min_lr = {0.0};  // one for every group, or one per group
  double eps = 1e-8;                   // smaller lr changes are skipped
};

// Cuts every group's lr by `factor` once the metric has not improved (by more than `threshold`)
// for more than `patience` steps, then waits `cooldown` steps. Not an LRScheduler, as in
// PyTorch 1.13: its step takes the metric.
class ReduceLROnPlateau {
 public:
  explicit ReduceLROnPlateau(Optimizer& optimizer, ReduceLROnPlateauOptions options = {});
  ReduceLROnPlateau(const ReduceLROnPlateau&) = delete;
  ReduceLROnPlateau& operator=(const ReduceLROnPlateau&) = delete;

  void step(double metric);
  const std::vector<double>& get_last_lr() const { return last_lr_; }
  std::int64_t last_epoch() const { return last_epoch_; }
  double best() const { return best_; }
  std::int64_t num_bad_epochs() const { return num_bad_epochs_; }

  // "best", "num_bad_epochs", "cooldown_counter", "last_epoch", "last_lr", and the settings.
  nn::NamedTensors state_dict() const;
  void check_state_dict(const nn::NamedTensors& state) const;
  void load_state_dict(const nn::NamedTensors& state);

 private:
  bool is_better(double a, double best) const;
  Hyperparameters settings() const;

  Optimizer& optimizer_;
  ReduceLROnPlateauOptions options_;
  std::vector<double> min_lrs_;  // per group
  double best_;
  std::int64_t num_bad_epochs_ = 0;
  std::int64_t cooldown_counter_ = 0;
  std::int64_t last_epoch_ = 0;
  std::vector<double> last_lr_;
};

}  // namespace tg::optim

namespace tg {
// A scheduler's state dict as a safetensors file.
void save(const optim::LRScheduler& scheduler, const std::string& path);
void load(optim::LRScheduler& scheduler, const std::string& path);
void save(const optim::ReduceLROnPlateau& scheduler, const std::string& path);
void load(optim::ReduceLROnPlateau& scheduler, const std::string& path);
}  // namespace tg
