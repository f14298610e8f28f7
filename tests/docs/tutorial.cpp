// docs/TUTORIAL.md's program: every ```cpp block of the tutorial is here verbatim, and what this
// prints is the tutorial's ```text blocks (CTest docs.tutorial, scripts/check-doc-code). Change
// both together. Layer: tests (docs).
#include <tapegrad.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <vector>

namespace nn = tg::nn;
namespace optim = tg::optim;

// A model of your own: a Module that registers its children and composes them in forward().
class MLP : public nn::Module {
 public:
  MLP(std::int64_t in, std::int64_t hidden, std::int64_t out)
      : fc1(register_module("fc1", std::make_shared<nn::Linear>(in, hidden))),
        fc2(register_module("fc2", std::make_shared<nn::Linear>(hidden, out))) {}

  tg::Tensor forward(const tg::Tensor& x) override { return (*fc2)((*fc1)(x).relu()); }

  std::shared_ptr<nn::Linear> fc1, fc2;
};

// No weight decay on biases: two parameter groups, PyTorch's [{"params": ...}, {"params": ..., ...}].
std::vector<optim::ParamGroup> decay_groups(const nn::Module& model) {
  std::vector<tg::Tensor> weights, biases;
  for (const auto& [name, p] : model.named_parameters()) (name.ends_with("bias") ? biases : weights).push_back(p);
  return {{weights}, {biases, {.weight_decay = 0.0}}};
}

int main() {
  // --- 1. Tensors
  tg::Tensor a = tg::tensor({{1.0, 2.0}, {3.0, 4.0}});  // float32, as torch.tensor
  std::cout << a << "\n";
  std::cout << a.sizes() << " " << tg::dtype_name(a.dtype()) << "\n";
  std::cout << (a * 10 + tg::tensor({1.0, 2.0})) << "\n";  // broadcasting
  std::cout << a.matmul(a).sum({1}) << "\n";
  std::cout << a.t().contiguous().view({4}) << "\n";

  tg::Tensor labels = tg::tensor({2, 0, 1});  // int64
  std::cout << tg::one_hot(labels, 3) << "\n";

  tg::manual_seed(0);
  std::cout << tg::randn({2, 3}) << "\n";

  // --- 2. Autograd
  tg::Tensor x = tg::tensor({1.0, 2.0, 3.0}).requires_grad_();
  tg::Tensor y = (x * x).sum();  // y = x₁² + x₂² + x₃²
  y.backward();                  // dy/dx = 2x
  std::cout << y << "\n" << x.grad() << "\n";

  tg::Tensor w = x.detach() * 2;  // cut from the tape: a constant
  {
    tg::NoGradGuard no_grad;  // nothing is recorded in this scope
    std::cout << std::boolalpha << (x * 3).requires_grad() << " " << w.requires_grad() << "\n";
  }

  tg::Tensor z = (x * x * x).sum();
  std::vector<tg::Tensor> dz = tg::autograd::grad({z}, {x});  // 3x², not added to x.grad()
  std::cout << dz[0] << "\n";

  // --- 3. A module
  tg::manual_seed(0);
  MLP model(2, 16, 3);
  std::cout << model << "\n";
  for (const auto& [name, p] : model.named_parameters()) std::cout << name << " " << p.sizes() << "\n";

  // --- 4. A loss
  nn::CrossEntropyLoss loss_fn;
  tg::Tensor logits = tg::tensor({{2.0, 0.5, -1.0}, {0.1, 0.2, 3.0}});
  std::cout << loss_fn(logits, tg::tensor({0, 2})) << "\n";

  // --- 5. Data
  // Three blobs of 2-D points around three centres, 100 points each.
  tg::Tensor centres = tg::tensor({{0.0, 1.0}, {-1.0, -0.5}, {1.0, -0.5}});
  tg::Tensor targets = tg::arange(300).div(100).to(tg::kInt64);  // 0 ... 0 1 ... 1 2 ... 2
  tg::Tensor inputs = centres.index_select(0, targets) + tg::randn({300, 2}) * 0.8;

  tg::data::TensorDataset train_set(inputs, targets);
  tg::data::DataLoader loader(train_set, {.batch_size = 30, .shuffle = true});
  std::cout << train_set.size() << " samples in " << loader.num_batches() << " batches\n";

  // --- 6. An optimizer and a schedule
  optim::AdamW opt(decay_groups(model), {.lr = 0.05});
  optim::CosineAnnealingLR schedule(opt, /*T_max=*/20, /*eta_min=*/0.001);

  // --- 7. Training
  for (int epoch = 1; epoch <= 20; ++epoch) {
    model.train();
    double loss_sum = 0;
    for (const auto& [X, y_true] : loader) {
      tg::Tensor loss = loss_fn(model(X), y_true);
      opt.zero_grad();
      loss.backward();
      nn::utils::clip_grad_norm_(model.parameters(), /*max_norm=*/5.0);
      opt.step();
      loss_sum += loss.item<double>() * static_cast<double>(y_true.size(0));
    }
    schedule.step();  // once per epoch
    if (epoch % 5 == 0)
      std::printf("epoch %2d  loss %.3f  lr %.4f\n", epoch, loss_sum / 300, schedule.get_last_lr()[0]);
  }

  model.eval();
  tg::NoGradGuard no_grad;
  tg::Tensor predicted = model(inputs).argmax(1);
  std::printf("accuracy %.2f\n", predicted.eq(targets).to(tg::kFloat64).mean().item<double>());

  // --- 8. Saving and loading
  tg::save(model, "mlp.safetensors");
  tg::save(opt, "adamw.safetensors");
  tg::save(schedule, "schedule.safetensors");

  MLP restored(2, 16, 3);
  tg::load(restored, "mlp.safetensors");
  std::cout << restored(inputs).argmax(1).eq(predicted).sum().item<std::int64_t>() << " of 300 agree\n";

  optim::AdamW resumed_opt(decay_groups(restored));
  optim::CosineAnnealingLR resumed_schedule(resumed_opt, 20, 0.001);
  tg::load(resumed_opt, "adamw.safetensors");
  tg::load(resumed_schedule, "schedule.safetensors");
  std::cout << "epoch " << resumed_schedule.last_epoch() << ", lr " << resumed_opt.lr() << "\n";
}
