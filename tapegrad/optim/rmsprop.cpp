// RMSprop's update: one pass per parameter over raw memory, in PyTorch's order of operations.
// Layer: optim.
#include "tapegrad/optim/rmsprop.h"

#include <cmath>

namespace tg::optim {

namespace {

void visit_options(RMSpropOptions& o, OptionVisitor& v) {
  v("lr", o.lr);
  v("momentum", o.momentum);
  v("alpha", o.alpha);
  v("eps", o.eps);
  v("centered", o.centered);
  v("weight_decay", o.weight_decay);
  v("maximize", o.maximize);
}

void check_options(const RMSpropOptions& o) {
  RMSpropOptions copy = o;
  detail::check_every_option_non_negative("RMSprop", [&](OptionVisitor& v) { visit_options(copy, v); });
}

std::vector<std::string> kept_state(const RMSpropOptions& o) {
  std::vector<std::string> names = {"step", "square_avg"};
  if (o.momentum > 0.0) names.push_back("momentum_buffer");
  if (o.centered) names.push_back("grad_avg");
  return names;
}

// Pointers to a parameter's state; null for what its options do not keep.
template <class T>
struct Buffers {
  T* square_avg;
  T* momentum_buffer;
  T* grad_avg;
};

template <class T>
void rmsprop_loop(std::int64_t n, T* p, const T* grad, Buffers<T> s, const RMSpropOptions& o) {
  const T sign = o.maximize ? T(-1) : T(1), wd = static_cast<T>(o.weight_decay);
  const T alpha = static_cast<T>(o.alpha), keep = static_cast<T>(1.0 - o.alpha), eps = static_cast<T>(o.eps);
  const T momentum = static_cast<T>(o.momentum), neg_lr = static_cast<T>(-o.lr);
  for (std::int64_t i = 0; i < n; ++i) {
    T g = sign * grad[i];
    if (o.weight_decay != 0.0) g = g + wd * p[i];               // grad.add(param, alpha=weight_decay)
    s.square_avg[i] = s.square_avg[i] * alpha + keep * g * g;  // square_avg.mul_(alpha).addcmul_(grad, grad, 1 - alpha)
    T avg;
    if (s.grad_avg) {
      s.grad_avg[i] = s.grad_avg[i] * alpha + keep * g;  // grad_avg.mul_(alpha).add_(grad, alpha=1 - alpha)
      avg = std::sqrt(s.square_avg[i] + T(-1) * s.grad_avg[i] * s.grad_avg[i]);  // addcmul(.., value=-1).sqrt_()
    } else {
      avg = std::sqrt(s.square_avg[i]);
    }
    avg = avg + eps;
    if (s.momentum_buffer) {
      s.momentum_buffer[i] = s.momentum_buffer[i] * momentum + T(1) * g / avg;  // buf.mul_(momentum).addcdiv_(grad, avg)
      p[i] = p[i] + neg_lr * s.momentum_buffer[i];                              // param.add_(buf, alpha=-lr)
    } else {
      p[i] = p[i] + neg_lr * g / avg;  // param.addcdiv_(grad, avg, value=-lr)
    }
  }
}

}  // namespace

RMSprop::RMSprop(std::vector<Tensor> params, RMSpropOptions options)
    : RMSprop({ParamGroup{std::move(params)}}, options) {}

RMSprop::RMSprop(std::vector<ParamGroup> groups, RMSpropOptions defaults)
    : TypedOptimizer("RMSprop", groups, defaults, {visit_options, check_options, kept_state}) {}

void RMSprop::step() {
  update_each([&](std::size_t group, std::size_t i, const Tensor& p, const Tensor& grad) {
    const RMSpropOptions& o = options_[group];
    nn::NamedTensors& state = state_[i];
    if (state.empty())
      for (const std::string& name : kept_state(o))
        state.emplace_back(name, name == "step" ? scalar_tensor(0.0, kFloat32) : zeros_like(p));
    *state[0].second.data_ptr<float>() += 1.0f;
    auto buffer = [&](const char* name) -> Tensor {
      for (const auto& [key, t] : state)
        if (key == name) return t;
      return Tensor();
    };
    Tensor square_avg = buffer("square_avg"), momentum_buffer = buffer("momentum_buffer"), grad_avg = buffer("grad_avg");
    dispatch_floating(p.dtype(), [&]<class T>() {
      Buffers<T> s{square_avg.data_ptr<T>(), momentum_buffer.defined() ? momentum_buffer.data_ptr<T>() : nullptr,
                   grad_avg.defined() ? grad_avg.data_ptr<T>() : nullptr};
      rmsprop_loop<T>(p.numel(), p.data_ptr<T>(), grad.data_ptr<T>(), s, o);
    });
  });
}

}  // namespace tg::optim
