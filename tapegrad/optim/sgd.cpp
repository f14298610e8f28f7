// SGD's update as one fused pass per parameter over raw memory. Layer: optim.
#include "tapegrad/optim/sgd.h"

#include <cmath>


namespace tg::optim {

namespace {

void check_options(const SGDOptions& o) {
  TG_CHECK(!std::isnan(o.lr), "[SGD] a learning rate is required: SGDOptions{{.lr = ...}}");
  detail::check_non_negative("SGD", "lr", o.lr);
  detail::check_non_negative("SGD", "momentum", o.momentum);
  detail::check_non_negative("SGD", "weight_decay", o.weight_decay);
  TG_CHECK(!o.nesterov || (o.momentum > 0.0 && o.dampening == 0.0),
           "[SGD] Nesterov momentum requires a momentum and zero dampening (got momentum={}, dampening={})",
           o.momentum, o.dampening);
}

void visit_options(SGDOptions& o, OptionVisitor& v) {
  v("lr", o.lr);
  v("momentum", o.momentum);
  v("dampening", o.dampening);
  v("weight_decay", o.weight_decay);
  v("nesterov", o.nesterov);
  v("maximize", o.maximize);
}

std::vector<std::string> kept_state(const SGDOptions& o) {
  if (o.momentum == 0.0) return {};
  return {"momentum_buffer"};
}

// PyTorch's update, per element: d = ±g + wd·p; with momentum, buf = d on the first step, else
// mom·buf + (1 − dampening)·d, and d = d + mom·buf (Nesterov) or buf; then p −= lr·d. One loop per
// combination of weight decay and momentum, with no branch left inside, so that each vectorizes (the
// loop with the branches ran scalar: 0.2 ms of a 4 ms LeNet step on 2 threads). maximize multiplies
// the gradient by −1, which is exact.
template <class T, bool kDecay, bool kMomentum>
void sgd_loop(std::int64_t n, T* p, const T* g, T* buf, bool first, const SGDOptions& o) {
  const T lr = static_cast<T>(o.lr), wd = static_cast<T>(o.weight_decay), mom = static_cast<T>(o.momentum);
  const T keep = static_cast<T>(1.0 - o.dampening), sign = o.maximize ? T(-1) : T(1);
  const bool nesterov = o.nesterov;
  for (std::int64_t i = 0; i < n; ++i) {
    T d = sign * g[i];
    if constexpr (kDecay) d += wd * p[i];
    if constexpr (kMomentum) {
      buf[i] = first ? d : mom * buf[i] + keep * d;
      d = nesterov ? d + mom * buf[i] : buf[i];
    }
    p[i] -= lr * d;
  }
}

template <class T>
void sgd_update(std::int64_t n, T* p, const T* g, T* buf, bool first, const SGDOptions& o) {
  const bool decay = static_cast<T>(o.weight_decay) != T(0);  // as the loop sees it
  if (buf) (decay ? sgd_loop<T, true, true> : sgd_loop<T, false, true>)(n, p, g, buf, first, o);
  else (decay ? sgd_loop<T, true, false> : sgd_loop<T, false, false>)(n, p, g, buf, first, o);
}

}  // namespace

SGD::SGD(std::vector<Tensor> params, SGDOptions options) : SGD({ParamGroup{std::move(params)}}, options) {}

SGD::SGD(std::vector<ParamGroup> groups, SGDOptions defaults)
    : TypedOptimizer("SGD", groups, defaults, {visit_options, check_options, kept_state}) {}

void SGD::step() {
  update_each([&](std::size_t group, std::size_t i, const Tensor& p, const Tensor& g) {
    const SGDOptions& o = options_[group];
    bool first = false;
    if (o.momentum != 0.0 && state_[i].empty()) {
      state_[i].emplace_back("momentum_buffer", empty(p.sizes(), p.dtype()));
      first = true;
    }
    Tensor buf = o.momentum != 0.0 ? state_[i][0].second : Tensor();
    dispatch_floating(p.dtype(), [&]<class T>() {
      sgd_update<T>(p.numel(), p.data_ptr<T>(), g.data_ptr<T>(), buf.defined() ? buf.data_ptr<T>() : nullptr, first, o);
    });
  });
}

}  // namespace tg::optim
