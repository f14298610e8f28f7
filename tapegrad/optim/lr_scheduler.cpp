// The learning-rate schedulers: PyTorch 1.13's get_lr and _get_closed_form_lr, written in its
// order of floating-point operations so that the sequences match torch's to the last bit or
// nearly; and their state dicts. Layer: optim.
#include "tapegrad/optim/lr_scheduler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numbers>

#include "tapegrad/layers/serialize.h"

namespace tg::optim {

namespace {

constexpr double kPi = std::numbers::pi;

Tensor float64_list(const std::vector<double>& values) {
  return tg::tensor(values, {static_cast<std::int64_t>(values.size())});
}

std::vector<double> as_doubles(const std::vector<std::int64_t>& values) {
  return std::vector<double>(values.begin(), values.end());
}

// A scheduler's state dict, taken apart entry by entry: every entry must be taken, once.
class StateReader {
 public:
  StateReader(const nn::NamedTensors& state, std::string_view scheduler) : scheduler_(scheduler) {
    for (const auto& [name, t] : state)
      TG_CHECK(entries_.emplace(name, t).second, "[{}] the state dict holds \"{}\" twice", scheduler_, name);
  }
  std::int64_t count(const std::string& name) {
    Tensor t = take(name);
    TG_CHECK(t.dtype() == kInt64 && t.dim() == 0, "[{}] {}: expected int64 [], got {} {}", scheduler_, name,
             dtype_name(t.dtype()), t.sizes());
    return t.item<std::int64_t>();
  }
  // A float64 list; of `size` values unless size is nullopt.
  std::vector<double> list(const std::string& name, std::optional<std::size_t> size = std::nullopt) {
    Tensor t = take(name);
    TG_CHECK(t.dtype() == kFloat64 && t.dim() == 1 && (!size || static_cast<std::size_t>(t.numel()) == *size),
             "[{}] {}: expected float64 [{}], got {} {}", scheduler_, name, size ? fmt::format("{}", *size) : "n",
             dtype_name(t.dtype()), t.sizes());
    return t.to_vector<double>();
  }
  // Each setting must be the one this scheduler was built with.
  void expect_settings(const Hyperparameters& settings) {
    for (const auto& [name, mine] : settings) {
      std::vector<double> saved = list(name);
      TG_CHECK(saved == mine, "[{}] the state was saved with {} {}, this scheduler has {}", scheduler_, name,
               saved, mine);
    }
  }
  void finish() const {
    TG_CHECK(entries_.empty(), "[{}] unexpected entry \"{}\" in the state dict", scheduler_, entries_.begin()->first);
  }

 private:
  Tensor take(const std::string& name) {
    auto it = entries_.find(name);
    TG_CHECK(it != entries_.end(), "[{}] the state dict has no \"{}\"", scheduler_, name);
    Tensor t = it->second;
    entries_.erase(it);
    return t;
  }
  std::string_view scheduler_;
  std::map<std::string, Tensor> entries_;
};

void add_settings(nn::NamedTensors& out, const Hyperparameters& settings) {
  for (const auto& [name, values] : settings) out.emplace_back(name, float64_list(values));
}

}  // namespace

// --- LRScheduler ---------------------------------------------------------------------------------

LRScheduler::LRScheduler(std::string name, Optimizer& optimizer) : optimizer_(optimizer), name_(std::move(name)) {}

void LRScheduler::initial_step() {
  std::vector<std::size_t> recorded;  // the groups whose initial_lr this scheduler sets
  for (std::size_t g = 0; g < optimizer_.num_param_groups(); ++g) {
    if (!optimizer_.initial_lr(g)) {  // setdefault
      optimizer_.set_initial_lr(g, optimizer_.lr(g));
      recorded.push_back(g);
    }
    base_lrs_.push_back(*optimizer_.initial_lr(g));
  }
  try {
    step();
  } catch (...) {  // a refused first step (a negative lr from a LambdaLR) leaves the optimizer as it was
    for (std::size_t g : recorded) optimizer_.set_initial_lr(g, std::nullopt);
    throw;
  }
}

std::vector<double> LRScheduler::group_lrs() const {
  std::vector<double> lrs;
  for (std::size_t g = 0; g < optimizer_.num_param_groups(); ++g) lrs.push_back(optimizer_.lr(g));
  return lrs;
}

void LRScheduler::step() { advance(last_epoch_ + 1, false); }

void LRScheduler::step(std::int64_t epoch) {
  TG_CHECK(epoch >= 0, "[{}] expected an epoch >= 0, got {}", name_, epoch);
  advance(epoch, true);
}

void LRScheduler::advance(std::int64_t epoch, bool closed_form) {
  const std::int64_t saved_epoch = last_epoch_, saved_count = step_count_;
  ++step_count_;
  last_epoch_ = epoch;
  std::vector<double> lrs;
  try {
    std::optional<std::vector<double>> closed = closed_form ? closed_form_lr() : std::nullopt;
    lrs = closed ? std::move(*closed) : get_lr();
    for (std::size_t g = 0; g < lrs.size(); ++g)
      TG_CHECK(lrs[g] >= 0.0, "[{}] the schedule gives group {} the lr {} at epoch {}", name_, g, lrs[g], epoch);
  } catch (...) {
    last_epoch_ = saved_epoch;
    step_count_ = saved_count;
    throw;
  }
  for (std::size_t g = 0; g < lrs.size(); ++g) optimizer_.set_lr(g, lrs[g]);
  last_lr_ = group_lrs();
}

nn::NamedTensors LRScheduler::state_dict() const {
  nn::NamedTensors out = {{"last_epoch", scalar_tensor(last_epoch_, kInt64)},
                          {"step_count", scalar_tensor(step_count_, kInt64)},
                          {"base_lrs", float64_list(base_lrs_)},
                          {"last_lr", float64_list(last_lr_)}};
  add_settings(out, settings());
  return out;
}

void LRScheduler::check_state_dict(const nn::NamedTensors& state) const {
  StateReader reader(state, name_);
  (void)reader.count("last_epoch");
  (void)reader.count("step_count");
  (void)reader.list("base_lrs", base_lrs_.size());
  (void)reader.list("last_lr", base_lrs_.size());
  reader.expect_settings(settings());
  reader.finish();
}

void LRScheduler::load_state_dict(const nn::NamedTensors& state) {
  check_state_dict(state);
  StateReader reader(state, name_);
  last_epoch_ = reader.count("last_epoch");
  step_count_ = reader.count("step_count");
  base_lrs_ = reader.list("base_lrs");
  last_lr_ = reader.list("last_lr");
}

// --- StepLR, MultiStepLR, ExponentialLR ------------------------------------------------------------

StepLR::StepLR(Optimizer& optimizer, std::int64_t step_size, double gamma)
    : LRScheduler("StepLR", optimizer), step_size_(step_size), gamma_(gamma) {
  TG_CHECK(step_size > 0, "[StepLR] expected a positive step_size, got {}", step_size);
  initial_step();
}

std::vector<double> StepLR::get_lr() {
  std::vector<double> lrs = group_lrs();
  if (last_epoch_ == 0 || last_epoch_ % step_size_ != 0) return lrs;
  for (double& lr : lrs) lr *= gamma_;
  return lrs;
}

std::optional<std::vector<double>> StepLR::closed_form_lr() const {
  std::vector<double> lrs;
  for (double base : base_lrs_) lrs.push_back(base * std::pow(gamma_, static_cast<double>(last_epoch_ / step_size_)));
  return lrs;
}

Hyperparameters StepLR::settings() const {
  return {{"step_size", {static_cast<double>(step_size_)}}, {"gamma", {gamma_}}};
}

MultiStepLR::MultiStepLR(Optimizer& optimizer, std::vector<std::int64_t> milestones, double gamma)
    : LRScheduler("MultiStepLR", optimizer), milestones_(std::move(milestones)), gamma_(gamma) {
  std::sort(milestones_.begin(), milestones_.end());
  initial_step();
}

std::vector<double> MultiStepLR::get_lr() {
  std::vector<double> lrs = group_lrs();
  auto times = std::count(milestones_.begin(), milestones_.end(), last_epoch_);
  if (times == 0) return lrs;
  for (double& lr : lrs) lr *= std::pow(gamma_, static_cast<double>(times));
  return lrs;
}

std::optional<std::vector<double>> MultiStepLR::closed_form_lr() const {
  auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), last_epoch_) - milestones_.begin();
  std::vector<double> lrs;
  for (double base : base_lrs_) lrs.push_back(base * std::pow(gamma_, static_cast<double>(passed)));
  return lrs;
}

Hyperparameters MultiStepLR::settings() const { return {{"milestones", as_doubles(milestones_)}, {"gamma", {gamma_}}}; }

ExponentialLR::ExponentialLR(Optimizer& optimizer, double gamma) : LRScheduler("ExponentialLR", optimizer), gamma_(gamma) {
  initial_step();
}

std::vector<double> ExponentialLR::get_lr() {
  std::vector<double> lrs = group_lrs();
  if (last_epoch_ == 0) return lrs;
  for (double& lr : lrs) lr *= gamma_;
  return lrs;
}

std::optional<std::vector<double>> ExponentialLR::closed_form_lr() const {
  std::vector<double> lrs;
  for (double base : base_lrs_) lrs.push_back(base * std::pow(gamma_, static_cast<double>(last_epoch_)));
  return lrs;
}

Hyperparameters ExponentialLR::settings() const { return {{"gamma", {gamma_}}}; }

// --- CosineAnnealingLR ---------------------------------------------------------------------------

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, std::int64_t T_max, double eta_min)
    : LRScheduler("CosineAnnealingLR", optimizer), T_max_(T_max), eta_min_(eta_min) {
  TG_CHECK(T_max > 0, "[CosineAnnealingLR] expected a positive T_max, got {}", T_max);
  initial_step();
}

std::vector<double> CosineAnnealingLR::get_lr() {
  const double e = static_cast<double>(last_epoch_), T = static_cast<double>(T_max_);
  std::vector<double> lrs = group_lrs();
  if (last_epoch_ == 0) return lrs;
  for (std::size_t g = 0; g < lrs.size(); ++g) {
    if (step_count_ == 1 && last_epoch_ > 0)  // the first step lands mid-schedule: closed form
      lrs[g] = eta_min_ + (base_lrs_[g] - eta_min_) * (1 + std::cos(e * kPi / T)) / 2;
    else if ((last_epoch_ - 1 - T_max_) % (2 * T_max_) == 0)  // the trough: climb back by one step
      lrs[g] = lrs[g] + (base_lrs_[g] - eta_min_) * (1 - std::cos(kPi / T)) / 2;
    else
      lrs[g] = (1 + std::cos(kPi * e / T)) / (1 + std::cos(kPi * (e - 1) / T)) * (lrs[g] - eta_min_) + eta_min_;
  }
  return lrs;
}

std::optional<std::vector<double>> CosineAnnealingLR::closed_form_lr() const {
  const double e = static_cast<double>(last_epoch_), T = static_cast<double>(T_max_);
  std::vector<double> lrs;
  for (double base : base_lrs_) lrs.push_back(eta_min_ + (base - eta_min_) * (1 + std::cos(kPi * e / T)) / 2);
  return lrs;
}

Hyperparameters CosineAnnealingLR::settings() const {
  return {{"T_max", {static_cast<double>(T_max_)}}, {"eta_min", {eta_min_}}};
}

// --- LambdaLR, LinearLR ----------------------------------------------------------------------------

LambdaLR::LambdaLR(Optimizer& optimizer, Lambda lr_lambda)
    : LambdaLR(optimizer, std::vector<Lambda>(optimizer.num_param_groups(), lr_lambda)) {}

LambdaLR::LambdaLR(Optimizer& optimizer, std::vector<Lambda> lr_lambdas)
    : LRScheduler("LambdaLR", optimizer), lr_lambdas_(std::move(lr_lambdas)) {
  TG_CHECK(lr_lambdas_.size() == optimizer.num_param_groups(), "[LambdaLR] expected {} lr_lambdas (one per group), got {}",
           optimizer.num_param_groups(), lr_lambdas_.size());
  for (std::size_t g = 0; g < lr_lambdas_.size(); ++g)
    TG_CHECK(static_cast<bool>(lr_lambdas_[g]), "[LambdaLR] lr_lambda {} is empty", g);
  initial_step();
}

std::vector<double> LambdaLR::get_lr() {
  std::vector<double> lrs;
  for (std::size_t g = 0; g < base_lrs_.size(); ++g) lrs.push_back(base_lrs_[g] * lr_lambdas_[g](last_epoch_));
  return lrs;
}

LinearLR::LinearLR(Optimizer& optimizer, LinearLROptions options) : LRScheduler("LinearLR", optimizer), options_(options) {
  TG_CHECK(options.start_factor > 0.0 && options.start_factor <= 1.0,
           "[LinearLR] expected start_factor in (0, 1], got {}", options.start_factor);
  TG_CHECK(options.end_factor >= 0.0 && options.end_factor <= 1.0, "[LinearLR] expected end_factor in [0, 1], got {}",
           options.end_factor);
  TG_CHECK(options.total_iters > 0, "[LinearLR] expected a positive total_iters, got {}", options.total_iters);
  initial_step();
}

std::vector<double> LinearLR::get_lr() {
  const double start = options_.start_factor, end = options_.end_factor;
  const double total = static_cast<double>(options_.total_iters), e = static_cast<double>(last_epoch_);
  std::vector<double> lrs = group_lrs();
  for (double& lr : lrs) {
    if (last_epoch_ == 0) lr = lr * start;
    else if (last_epoch_ <= options_.total_iters) lr = lr * (1. + (end - start) / (total * start + (e - 1) * (end - start)));
  }
  return lrs;
}

std::optional<std::vector<double>> LinearLR::closed_form_lr() const {
  const double start = options_.start_factor, end = options_.end_factor;
  const std::int64_t reached = std::min(options_.total_iters, last_epoch_);
  std::vector<double> lrs;
  for (double base : base_lrs_)
    lrs.push_back(base * (start + (end - start) * static_cast<double>(reached) / static_cast<double>(options_.total_iters)));
  return lrs;
}

Hyperparameters LinearLR::settings() const {
  return {{"start_factor", {options_.start_factor}},
          {"end_factor", {options_.end_factor}},
          {"total_iters", {static_cast<double>(options_.total_iters)}}};
}

// --- OneCycleLR ----------------------------------------------------------------------------------

OneCycleLR::OneCycleLR(Optimizer& optimizer, std::vector<double> max_lr, OneCycleLROptions options)
    : LRScheduler("OneCycleLR", optimizer), options_(std::move(options)) {
  const OneCycleLROptions& o = options_;
  const std::size_t groups = optimizer.num_param_groups();
  if (o.total_steps) {
    TG_CHECK(*o.total_steps > 0, "[OneCycleLR] expected a positive total_steps, got {}", *o.total_steps);
    total_steps_ = *o.total_steps;
  } else {
    TG_CHECK(o.epochs && o.steps_per_epoch,
             "[OneCycleLR] expected total_steps, or epochs and steps_per_epoch (got neither)");
    TG_CHECK(*o.epochs > 0, "[OneCycleLR] expected a positive epochs, got {}", *o.epochs);
    TG_CHECK(*o.steps_per_epoch > 0, "[OneCycleLR] expected a positive steps_per_epoch, got {}", *o.steps_per_epoch);
    total_steps_ = *o.epochs * *o.steps_per_epoch;
  }
  TG_CHECK(o.pct_start >= 0.0 && o.pct_start <= 1.0, "[OneCycleLR] expected pct_start in [0, 1], got {}", o.pct_start);
  TG_CHECK(o.anneal_strategy == "cos" || o.anneal_strategy == "linear",
           "[OneCycleLR] anneal_strategy must be \"cos\" or \"linear\", got \"{}\"", o.anneal_strategy);
  TG_CHECK(max_lr.size() == 1 || max_lr.size() == groups, "[OneCycleLR] expected 1 or {} values for max_lr, got {}",
           groups, max_lr.size());
  if (o.cycle_momentum) {
    momentum_name_ = optimizer.has_hyperparameter("betas") ? "betas" : "momentum";
    TG_CHECK(optimizer.has_hyperparameter(momentum_name_),
             "[OneCycleLR] {} has no momentum or betas: pass cycle_momentum = false", optimizer.name());
  }

  const double steps = static_cast<double>(total_steps_);
  if (o.three_phase)
    phases_ = {{o.pct_start * steps - 1, Level::Initial, Level::High, Level::High, Level::Low},
               {2 * o.pct_start * steps - 2, Level::High, Level::Initial, Level::Low, Level::High},
               {steps - 1, Level::Initial, Level::Low, Level::High, Level::High}};
  else
    phases_ = {{o.pct_start * steps - 1, Level::Initial, Level::High, Level::High, Level::Low},
               {steps - 1, Level::High, Level::Low, Level::Low, Level::High}};

  // The optimizer's groups start at max_lr / div_factor and, cycled, at max_momentum; restored if
  // the optimizer refuses a value.
  std::vector<std::optional<double>> saved_initial;
  std::vector<std::vector<double>> saved_momentum;
  try {
    for (std::size_t g = 0; g < groups; ++g) {
      max_lrs_.push_back(max_lr.size() == 1 ? max_lr[0] : max_lr[g]);
      double initial = max_lrs_[g] / o.div_factor;
      min_lrs_.push_back(initial / o.final_div_factor);
      saved_initial.push_back(optimizer.initial_lr(g));
      optimizer.set_initial_lr(g, initial);
      if (!momentum_name_.empty()) {
        std::vector<double> momentum = optimizer.hyperparameter(g, momentum_name_);
        saved_momentum.push_back(momentum);
        momentum[0] = o.max_momentum;
        optimizer.set_hyperparameter(g, momentum_name_, momentum);
      }
    }
    initial_step();
  } catch (...) {
    for (std::size_t g = 0; g < saved_initial.size(); ++g) optimizer.set_initial_lr(g, saved_initial[g]);
    for (std::size_t g = 0; g < saved_momentum.size(); ++g)
      optimizer.set_hyperparameter(g, momentum_name_, saved_momentum[g]);
    throw;
  }
}

double OneCycleLR::anneal(double start, double end, double pct) const {
  if (options_.anneal_strategy == "linear") return (end - start) * pct + start;
  double cos_out = std::cos(kPi * pct) + 1;
  return end + (start - end) / 2.0 * cos_out;
}

std::vector<double> OneCycleLR::get_lr() {
  TG_CHECK(last_epoch_ <= total_steps_, "[OneCycleLR] tried to step {} times; total_steps is {}", last_epoch_ + 1,
           total_steps_);
  const double step = static_cast<double>(last_epoch_);
  std::vector<double> lrs;
  for (std::size_t g = 0; g < base_lrs_.size(); ++g) {
    auto lr_at = [&](Level level) { return level == Level::Initial ? base_lrs_[g] : level == Level::High ? max_lrs_[g] : min_lrs_[g]; };
    auto momentum_at = [&](Level level) { return level == Level::High ? options_.max_momentum : options_.base_momentum; };
    double start_step = 0;
    for (std::size_t i = 0; i < phases_.size(); ++i) {
      const Phase& phase = phases_[i];
      if (step <= phase.end_step || i + 1 == phases_.size()) {
        double pct = (step - start_step) / (phase.end_step - start_step);
        lrs.push_back(anneal(lr_at(phase.start_lr), lr_at(phase.end_lr), pct));
        if (!momentum_name_.empty()) {
          std::vector<double> momentum = optimizer_.hyperparameter(g, momentum_name_);
          momentum[0] = anneal(momentum_at(phase.start_momentum), momentum_at(phase.end_momentum), pct);
          optimizer_.set_hyperparameter(g, momentum_name_, momentum);
        }
        break;
      }
      start_step = phase.end_step;
    }
  }
  return lrs;
}

Hyperparameters OneCycleLR::settings() const {
  const OneCycleLROptions& o = options_;
  return {{"total_steps", {static_cast<double>(total_steps_)}},
          {"max_lr", max_lrs_},
          {"pct_start", {o.pct_start}},
          {"anneal_strategy", {o.anneal_strategy == "cos" ? 0.0 : 1.0}},
          {"cycle_momentum", {o.cycle_momentum ? 1.0 : 0.0}},
          {"base_momentum", {o.base_momentum}},
          {"max_momentum", {o.max_momentum}},
          {"div_factor", {o.div_factor}},
          {"final_div_factor", {o.final_div_factor}},
          {"three_phase", {o.three_phase ? 1.0 : 0.0}}};
}

// --- ReduceLROnPlateau ---------------------------------------------------------------------------

ReduceLROnPlateau::ReduceLROnPlateau(Optimizer& optimizer, ReduceLROnPlateauOptions options)
    : optimizer_(optimizer), options_(std::move(options)) {
  const ReduceLROnPlateauOptions& o = options_;
  const std::size_t groups = optimizer.num_param_groups();
  TG_CHECK(o.factor < 1.0, "[ReduceLROnPlateau] expected a factor < 1, got {}", o.factor);
  TG_CHECK(o.mode == "min" || o.mode == "max", "[ReduceLROnPlateau] mode must be \"min\" or \"max\", got \"{}\"", o.mode);
  TG_CHECK(o.threshold_mode == "rel" || o.threshold_mode == "abs",
           "[ReduceLROnPlateau] threshold_mode must be \"rel\" or \"abs\", got \"{}\"", o.threshold_mode);
  TG_CHECK(o.min_lr.size() == 1 || o.min_lr.size() == groups,
           "[ReduceLROnPlateau] expected 1 or {} values for min_lr, got {}", groups, o.min_lr.size());
  min_lrs_ = o.min_lr.size() == 1 ? std::vector<double>(groups, o.min_lr[0]) : o.min_lr;
  best_ = o.mode == "min" ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity();
  for (std::size_t g = 0; g < groups; ++g) last_lr_.push_back(optimizer.lr(g));
}

bool ReduceLROnPlateau::is_better(double a, double best) const {
  const ReduceLROnPlateauOptions& o = options_;
  if (o.mode == "min" && o.threshold_mode == "rel") return a < best * (1. - o.threshold);
  if (o.mode == "min") return a < best - o.threshold;
  if (o.threshold_mode == "rel") return a > best * (o.threshold + 1.);
  return a > best + o.threshold;
}

void ReduceLROnPlateau::step(double metric) {
  ++last_epoch_;
  if (is_better(metric, best_)) {
    best_ = metric;
    num_bad_epochs_ = 0;
  } else {
    ++num_bad_epochs_;
  }
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    num_bad_epochs_ = 0;  // bad epochs in cooldown do not count
  }
  if (num_bad_epochs_ > options_.patience) {
    for (std::size_t g = 0; g < optimizer_.num_param_groups(); ++g) {
      double old_lr = optimizer_.lr(g);
      double new_lr = std::max(old_lr * options_.factor, min_lrs_[g]);
      if (old_lr - new_lr > options_.eps) optimizer_.set_lr(g, new_lr);
    }
    cooldown_counter_ = options_.cooldown;
    num_bad_epochs_ = 0;
  }
  last_lr_.clear();
  for (std::size_t g = 0; g < optimizer_.num_param_groups(); ++g) last_lr_.push_back(optimizer_.lr(g));
}

Hyperparameters ReduceLROnPlateau::settings() const {
  const ReduceLROnPlateauOptions& o = options_;
  return {{"mode", {o.mode == "min" ? 0.0 : 1.0}},
          {"factor", {o.factor}},
          {"patience", {static_cast<double>(o.patience)}},
          {"threshold", {o.threshold}},
          {"threshold_mode", {o.threshold_mode == "rel" ? 0.0 : 1.0}},
          {"cooldown", {static_cast<double>(o.cooldown)}},
          {"min_lrs", min_lrs_},
          {"eps", {o.eps}}};
}

nn::NamedTensors ReduceLROnPlateau::state_dict() const {
  nn::NamedTensors out = {{"best", float64_list({best_})},
                          {"num_bad_epochs", scalar_tensor(num_bad_epochs_, kInt64)},
                          {"cooldown_counter", scalar_tensor(cooldown_counter_, kInt64)},
                          {"last_epoch", scalar_tensor(last_epoch_, kInt64)},
                          {"last_lr", float64_list(last_lr_)}};
  add_settings(out, settings());
  return out;
}

void ReduceLROnPlateau::check_state_dict(const nn::NamedTensors& state) const {
  StateReader reader(state, "ReduceLROnPlateau");
  (void)reader.list("best", 1);
  (void)reader.count("num_bad_epochs");
  (void)reader.count("cooldown_counter");
  (void)reader.count("last_epoch");
  (void)reader.list("last_lr", min_lrs_.size());
  reader.expect_settings(settings());
  reader.finish();
}

void ReduceLROnPlateau::load_state_dict(const nn::NamedTensors& state) {
  check_state_dict(state);
  StateReader reader(state, "ReduceLROnPlateau");
  best_ = reader.list("best")[0];
  num_bad_epochs_ = reader.count("num_bad_epochs");
  cooldown_counter_ = reader.count("cooldown_counter");
  last_epoch_ = reader.count("last_epoch");
  last_lr_ = reader.list("last_lr");
}

}  // namespace tg::optim

namespace tg {

void save(const optim::LRScheduler& scheduler, const std::string& path) { save_tensors(scheduler.state_dict(), path); }
void load(optim::LRScheduler& scheduler, const std::string& path) { scheduler.load_state_dict(load_tensors(path)); }
void save(const optim::ReduceLROnPlateau& scheduler, const std::string& path) {
  save_tensors(scheduler.state_dict(), path);
}
void load(optim::ReduceLROnPlateau& scheduler, const std::string& path) {
  scheduler.load_state_dict(load_tensors(path));
}

}  // namespace tg
