// Adagrad's update: one pass per parameter over raw memory, in PyTorch's order of operations.
// Layer: optim.
#include "tapegrad/optim/adagrad.h"

#include <cmath>

namespace tg::optim {

namespace {

void visit_options(AdagradOptions& o, OptionVisitor& v) {
  v("lr", o.lr);
  v("lr_decay", o.lr_decay);
  v("eps", o.eps);
  v("weight_decay", o.weight_decay);
  v("initial_accumulator_value", o.initial_accumulator_value);
  v("maximize", o.maximize);
}

void check_options(const AdagradOptions& o) {
  AdagradOptions copy = o;
  detail::check_every_option_non_negative("Adagrad", [&](OptionVisitor& v) { visit_options(copy, v); });
}

std::vector<std::string> kept_state(const AdagradOptions&) { return {"step", "sum"}; }

nn::NamedTensors fresh_state(const Tensor& p, const AdagradOptions& o) {
  return {{"step", scalar_tensor(0.0, kFloat32)}, {"sum", full_like(p, o.initial_accumulator_value)}};
}

template <class T>
void adagrad_loop(std::int64_t n, T* p, const T* grad, T* sum, double clr, const AdagradOptions& o) {
  const T sign = o.maximize ? T(-1) : T(1), wd = static_cast<T>(o.weight_decay), eps = static_cast<T>(o.eps);
  const T neg_clr = static_cast<T>(-clr);
  for (std::int64_t i = 0; i < n; ++i) {
    T g = sign * grad[i];
    if (o.weight_decay != 0.0) g = g + wd * p[i];  // grad.add(param, alpha=weight_decay)
    sum[i] = sum[i] + T(1) * g * g;                // state_sum.addcmul_(grad, grad, value=1)
    T std = std::sqrt(sum[i]) + eps;               // state_sum.sqrt().add_(eps)
    p[i] = p[i] + neg_clr * g / std;               // param.addcdiv_(grad, std, value=-clr)
  }
}

}  // namespace

Adagrad::Adagrad(std::vector<Tensor> params, AdagradOptions options)
    : Adagrad({ParamGroup{std::move(params)}}, options) {}

Adagrad::Adagrad(std::vector<ParamGroup> groups, AdagradOptions defaults)
    : TypedOptimizer("Adagrad", groups, defaults, {visit_options, check_options, kept_state}) {
  std::size_t i = 0;
  for (std::size_t group = 0; group < num_param_groups(); ++group)
    for (const Tensor& p : group_params(group)) state_[i++] = fresh_state(p, options_[group]);
}

void Adagrad::step() {
  update_each([&](std::size_t group, std::size_t i, const Tensor& p, const Tensor& grad) {
    const AdagradOptions& o = options_[group];
    nn::NamedTensors& state = state_[i];
    if (state.empty()) state = fresh_state(p, o);  // a loaded state dict may leave it empty
    float& count = *state[0].second.data_ptr<float>();
    count += 1.0f;
    const double step = count;
    const double clr = o.lr / (1.0 + (step - 1.0) * o.lr_decay);
    dispatch_floating(p.dtype(), [&]<class T>() {
      adagrad_loop<T>(p.numel(), p.data_ptr<T>(), grad.data_ptr<T>(), state[1].second.data_ptr<T>(), clr, o);
    });
  });
}

}  // namespace tg::optim
