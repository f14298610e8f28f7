// Adam's and AdamW's update: one pass per parameter over raw memory, in PyTorch's order of
// operations (so float64 runs follow torch's to the last bits or nearly). Layer: optim.
#include "tapegrad/optim/adam.h"

#include <cmath>

namespace tg::optim {

namespace {

// AdamOptions and AdamWOptions have the same fields; these serve both.
template <class Options>
void check_options(const Options& o, const char* name) {
  detail::check_non_negative(name, "lr", o.lr);
  detail::check_non_negative(name, "eps", o.eps);
  for (int k = 0; k < 2; ++k)
    TG_CHECK(o.betas[k] >= 0.0 && o.betas[k] < 1.0, "[{}] invalid betas[{}]: expected a value in [0, 1), got {}",
             name, k, o.betas[k]);
  detail::check_non_negative(name, "weight_decay", o.weight_decay);
}

template <class Options>
void visit_options(Options& o, OptionVisitor& v) {
  v("lr", o.lr);
  v("betas", o.betas);
  v("eps", o.eps);
  v("weight_decay", o.weight_decay);
  v("amsgrad", o.amsgrad);
  v("maximize", o.maximize);
}

template <class Options>
std::vector<std::string> kept_state(const Options& o) {
  std::vector<std::string> names = {"step", "exp_avg", "exp_avg_sq"};
  if (o.amsgrad) names.push_back("max_exp_avg_sq");
  return names;
}

enum Slot { kStep, kExpAvg, kExpAvgSq, kMaxExpAvgSq };

// The scalars of one step, in PyTorch's double arithmetic; the loop casts them to the element type
// as torch's kernels do.
struct Coefficients {
  double beta1, one_minus_beta1, beta2, one_minus_beta2;
  double weight_decay;  // added to the gradient (Adam), 0 for AdamW
  double decay;         // the parameter's factor 1 − lr·weight_decay (AdamW), 1 for Adam
  double neg_step_size, bias_correction2_sqrt, eps, sign;
};

template <class T>
void adam_loop(std::int64_t n, T* p, const T* grad, T* m, T* v, T* v_max, const Coefficients& c) {
  const T beta1 = static_cast<T>(c.beta1), keep1 = static_cast<T>(c.one_minus_beta1);
  const T beta2 = static_cast<T>(c.beta2), keep2 = static_cast<T>(c.one_minus_beta2);
  const T wd = static_cast<T>(c.weight_decay), decay = static_cast<T>(c.decay), sign = static_cast<T>(c.sign);
  const T neg_step = static_cast<T>(c.neg_step_size), bc2_sqrt = static_cast<T>(c.bias_correction2_sqrt);
  const T eps = static_cast<T>(c.eps);
  for (std::int64_t i = 0; i < n; ++i) {
    T g = sign * grad[i];
    if (c.weight_decay != 0.0) g = g + wd * p[i];  // grad.add(param, alpha=weight_decay)
    T param = p[i] * decay;                          // param.mul_(1 - lr * weight_decay)
    m[i] = m[i] * beta1 + keep1 * g;                 // exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
    v[i] = v[i] * beta2 + keep2 * g * g;             // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    T second = v[i];
    if (v_max) {  // torch.maximum, NaN-propagating
      v_max[i] = (std::isnan(v[i]) || v[i] > v_max[i]) ? v[i] : v_max[i];
      second = v_max[i];
    }
    T denom = std::sqrt(second) / bc2_sqrt + eps;
    p[i] = param + neg_step * m[i] / denom;  // param.addcdiv_(exp_avg, denom, value=-step_size)
  }
}

// One parameter's step; `decoupled` is AdamW's weight decay.
template <class Options>
void adam_update(const Tensor& p, const Tensor& grad, nn::NamedTensors& state, const Options& o, bool decoupled) {
  if (state.empty()) {
    state.emplace_back("step", scalar_tensor(0.0, kFloat32));
    state.emplace_back("exp_avg", zeros_like(p));
    state.emplace_back("exp_avg_sq", zeros_like(p));
    if (o.amsgrad) state.emplace_back("max_exp_avg_sq", zeros_like(p));
  }
  float& count = *state[kStep].second.data_ptr<float>();  // a float32 count, as torch's tensor(0.)
  count += 1.0f;
  const double step = count;
  const double bias_correction1 = 1.0 - std::pow(o.betas[0], step);
  const double bias_correction2 = 1.0 - std::pow(o.betas[1], step);
  Coefficients c{};
  c.beta1 = o.betas[0];
  c.one_minus_beta1 = 1.0 - o.betas[0];
  c.beta2 = o.betas[1];
  c.one_minus_beta2 = 1.0 - o.betas[1];
  c.weight_decay = decoupled ? 0.0 : o.weight_decay;
  c.decay = decoupled ? 1.0 - o.lr * o.weight_decay : 1.0;
  c.neg_step_size = -(o.lr / bias_correction1);
  c.bias_correction2_sqrt = std::sqrt(bias_correction2);
  c.eps = o.eps;
  c.sign = o.maximize ? -1.0 : 1.0;
  const Tensor& v_max = o.amsgrad ? state[kMaxExpAvgSq].second : Tensor();
  dispatch_floating(p.dtype(), [&]<class T>() {
    adam_loop<T>(p.numel(), p.data_ptr<T>(), grad.data_ptr<T>(), state[kExpAvg].second.data_ptr<T>(),
                 state[kExpAvgSq].second.data_ptr<T>(), v_max.defined() ? v_max.data_ptr<T>() : nullptr, c);
  });
}

void check_adam(const AdamOptions& o) { check_options(o, "Adam"); }
void check_adamw(const AdamWOptions& o) { check_options(o, "AdamW"); }

}  // namespace

Adam::Adam(std::vector<Tensor> params, AdamOptions options) : Adam({ParamGroup{std::move(params)}}, options) {}

Adam::Adam(std::vector<ParamGroup> groups, AdamOptions defaults)
    : TypedOptimizer("Adam", groups, defaults,
                     {visit_options<AdamOptions>, check_adam, kept_state<AdamOptions>}) {}

void Adam::step() {
  update_each([&](std::size_t group, std::size_t i, const Tensor& p, const Tensor& grad) {
    adam_update(p, grad, state_[i], options_[group], false);
  });
}

AdamW::AdamW(std::vector<Tensor> params, AdamWOptions options) : AdamW({ParamGroup{std::move(params)}}, options) {}

AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions defaults)
    : TypedOptimizer("AdamW", groups, defaults,
                     {visit_options<AdamWOptions>, check_adamw, kept_state<AdamWOptions>}) {}

void AdamW::step() {
  update_each([&](std::size_t group, std::size_t i, const Tensor& p, const Tensor& grad) {
    adam_update(p, grad, state_[i], options_[group], true);
  });
}

}  // namespace tg::optim
