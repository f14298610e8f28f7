// Gradient flow of a training run (lenet_bn --stats): every K steps, for each parameter the norm
// of its gradient and the update-to-weight ratio ‖Δw‖/‖w‖ of the optimizer's step, and for each
// layer (child of the Sequential) the mean and standard deviation of its output, read by forward
// hooks. As CSV, and as an SVG of the weights' gradient norms, update ratios and the
// activations' spread over training. Layer: apps.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <tapegrad.h>

namespace lenet {

// One number: `stat` is grad_norm or update_ratio (name: a parameter, "4.weight"; no ratio while
// ‖w‖ = 0, as for a bias still at its zero init) or act_mean or act_std (name: a layer, "6 (Sigmoid)").
struct FlowRow {
  std::int64_t step = 0;  // 1-based, counted over the whole run
  std::int64_t epoch = 0;
  std::string stat;
  std::string name;
  double value = 0;
};

class GradientFlow {
 public:
  explicit GradientFlow(std::int64_t every);  // records steps 1, 1 + every, 1 + 2·every, ...
  ~GradientFlow() { detach(); }
  GradientFlow(const GradientFlow&) = delete;
  GradientFlow& operator=(const GradientFlow&) = delete;

  // Hooks the net's children (until detach); the trainer calls the three step methods around
  // each step: forward, backward, optimizer update.
  void attach(tg::nn::Sequential& net);
  void detach();
  void begin_step(std::int64_t step, std::int64_t epoch);
  void after_backward(const tg::nn::Module& net);
  void after_update(const tg::nn::Module& net);

  const std::vector<FlowRow>& rows() const { return rows_; }

 private:
  void add(const std::string& stat, const std::string& name, double value);

  std::int64_t every_;
  std::int64_t step_ = 0, epoch_ = 0;
  bool recording_ = false;
  std::vector<tg::RemovableHandle> hooks_;
  std::vector<std::pair<std::string, tg::Tensor>> before_update_;  // weights before the step
  std::vector<FlowRow> rows_;
};

// "step,epoch,stat,name,value" and one row per number.
std::string flow_csv(const std::vector<FlowRow>& rows);
// Three panels over steps, one line per layer: the gradient norm of each weight (log scale), its
// update-to-weight ratio (log scale), and the standard deviation of each activation's output.
std::string flow_svg(const std::vector<FlowRow>& rows, const std::string& title);

}  // namespace lenet
