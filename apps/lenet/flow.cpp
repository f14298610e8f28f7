// Gradient-flow statistics and their chart. Layer: apps.
#include "apps/lenet/flow.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>

namespace lenet {

GradientFlow::GradientFlow(std::int64_t every) : every_(every) {
  TG_CHECK(every >= 1, "[lenet_bn] expected --stats-every >= 1, got {}", every);
}

void GradientFlow::attach(tg::nn::Sequential& net) {
  detach();
  for (const auto& [name, child] : net.named_children()) {
    std::string layer = name + " (" + child->name() + ")";
    hooks_.push_back(child->register_forward_hook([this, layer](tg::nn::Module&, const tg::Tensor&, const tg::Tensor& out) {
      if (!recording_) return;
      tg::NoGradGuard no_grad;
      add("act_mean", layer, out.mean().item<double>());
      add("act_std", layer, out.std().item<double>());
    }));
  }
}

void GradientFlow::detach() {
  for (tg::RemovableHandle& h : hooks_) h.remove();
  hooks_.clear();
}

void GradientFlow::begin_step(std::int64_t step, std::int64_t epoch) {
  step_ = step;
  epoch_ = epoch;
  recording_ = (step - 1) % every_ == 0;
}

void GradientFlow::after_backward(const tg::nn::Module& net) {
  if (!recording_) return;
  tg::NoGradGuard no_grad;
  before_update_.clear();
  for (const auto& [name, p] : net.named_parameters()) {
    if (p.grad().defined()) add("grad_norm", name, p.grad().norm().item<double>());
    before_update_.emplace_back(name, p.clone());
  }
}

void GradientFlow::after_update(const tg::nn::Module& net) {
  if (!recording_) return;
  tg::NoGradGuard no_grad;
  std::map<std::string, tg::Tensor> params;
  for (const auto& [name, p] : net.named_parameters()) params.emplace(name, p);
  for (const auto& [name, before] : before_update_) {
    double w = before.norm().item<double>();
    if (w > 0) add("update_ratio", name, (params.at(name) - before).norm().item<double>() / w);
  }
  before_update_.clear();
  recording_ = false;  // evaluation's forward passes are not part of the step
}

void GradientFlow::add(const std::string& stat, const std::string& name, double value) {
  rows_.push_back({step_, epoch_, stat, name, value});
}

std::string flow_csv(const std::vector<FlowRow>& rows) {
  std::string out = "step,epoch,stat,name,value\n";
  for (const FlowRow& r : rows) out += fmt::format("{},{},{},{},{:.6g}\n", r.step, r.epoch, r.stat, r.name, r.value);
  return out;
}

namespace {

using Series = std::vector<std::pair<std::string, std::vector<std::pair<double, double>>>>;

// One line per name of `stat`'s rows that pass `keep`, in first-seen order.
Series series_of(const std::vector<FlowRow>& rows, const std::string& stat,
                 const std::function<bool(const std::string&)>& keep) {
  Series out;
  for (const FlowRow& r : rows) {
    if (r.stat != stat || !keep(r.name) || !std::isfinite(r.value)) continue;
    auto it = std::find_if(out.begin(), out.end(), [&](const auto& s) { return s.first == r.name; });
    if (it == out.end()) it = out.insert(out.end(), {r.name, {}});
    it->second.emplace_back(static_cast<double>(r.step), r.value);
  }
  return out;
}

// A panel like metrics_svg's chart: frame, grid, labelled y ticks (decades on a log scale),
// one polyline per series and a legend on the right.
std::string panel(double top, const std::string& title, const Series& series, bool log_y, double x_max) {
  const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};
  const double left = 60, pw = 420, ph = 170;
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& [_, pts] : series)
    for (const auto& [x, v] : pts) {
      if (log_y && v <= 0) continue;
      lo = std::min(lo, log_y ? std::log10(v) : v);
      hi = std::max(hi, log_y ? std::log10(v) : v);
    }
  if (!(lo <= hi)) lo = 0, hi = 1;
  if (log_y) lo = std::floor(lo), hi = std::max(std::ceil(hi), lo + 1);
  else lo = 0, hi = hi > 0 ? std::ceil(hi * 10) / 10 : 1;
  auto px = [&](double x) { return left + (x - 1) / std::max(1.0, x_max - 1) * pw; };
  auto py = [&](double v) { return top + (1 - ((log_y ? std::log10(v) : v) - lo) / (hi - lo)) * ph; };
  std::string s = fmt::format("<text x=\"{}\" y=\"{}\" font-weight=\"bold\">{}</text>\n", left, top - 6, title);
  s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#333\"/>\n", left, top,
                   pw, ph);
  int ticks = log_y ? static_cast<int>(hi - lo) : 5;
  for (int k = 0; k <= ticks; ++k) {
    double u = lo + (hi - lo) * k / ticks, v = log_y ? std::pow(10.0, u) : u;
    s += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>\n", left, py(v),
                     left + pw, py(v));
    s += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", left - 6, py(v) + 4,
                     log_y ? fmt::format("1e{}", static_cast<int>(u)) : fmt::format("{:.2f}", v));
  }
  for (std::size_t i = 0; i < series.size(); ++i) {
    const char* color = colors[i % std::size(colors)];
    std::string points;
    for (const auto& [x, v] : series[i].second)
      if (!log_y || v > 0) points += fmt::format("{:.1f},{:.1f} ", px(x), py(v));
    s += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>\n", color, points);
    double ly = top + 10 + 16 * static_cast<double>(i);
    s += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"2\"/>\n", left + pw + 10,
                     ly, left + pw + 30, ly, color);
    s += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", left + pw + 36, ly + 4, series[i].first);
  }
  return s;
}

}  // namespace

std::string flow_svg(const std::vector<FlowRow>& rows, const std::string& title) {
  const double W = 640, panel_h = 215, head = 30;
  double x_max = 1;
  for (const FlowRow& r : rows) x_max = std::max(x_max, static_cast<double>(r.step));
  // The weights of convolutions and linear layers ("4.weight" where layer "4 (Conv2d)" ran), and
  // the outputs of the sigmoids.
  std::set<std::string> layer_weights;
  for (const FlowRow& r : rows)
    if (r.stat == "act_std" && (r.name.ends_with(" (Conv2d)") || r.name.ends_with(" (Linear)")))
      layer_weights.insert(r.name.substr(0, r.name.find(' ')) + ".weight");
  auto is_layer_weight = [&](const std::string& n) { return layer_weights.contains(n); };
  auto is_sigmoid = [](const std::string& n) { return n.ends_with(" (Sigmoid)"); };
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      W, head + 3 * panel_h + 20, W, head + 3 * panel_h + 20);
  s += fmt::format("<text x=\"{}\" y=\"18\" font-size=\"14\" font-weight=\"bold\">{}</text>\n", 60, title);
  s += panel(head + 20, "gradient norm ‖∇w‖ (log)", series_of(rows, "grad_norm", is_layer_weight), true, x_max);
  s += panel(head + 20 + panel_h, "update / weight ‖Δw‖/‖w‖ (log)", series_of(rows, "update_ratio", is_layer_weight),
             true, x_max);
  s += panel(head + 20 + 2 * panel_h, "activation std (Sigmoid outputs)", series_of(rows, "act_std", is_sigmoid), false,
             x_max);
  s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">step</text>\n", 60 + 420 / 2,
                   head + 3 * panel_h + 12);
  return s + "</svg>\n";
}

}  // namespace lenet
