// LeNet-BN training: d2l's train_ch6 loop, metrics, checkpoints with the model, the optimizer's
// state, the epoch, the metrics so far and the generator state, so that a resumed run continues
// with exactly the numbers an uninterrupted one would have drawn. Layer: apps.
#include "apps/lenet/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "apps/lenet/scratch_batchnorm.h"
#include "tapegrad/data/dataloader.h"

namespace lenet {

namespace nn = tg::nn;
using tg::Tensor;

tg::nn::Sequential make_lenet_bn(BatchNormKind bn) {
  auto norm = [bn](std::int64_t features, int dims) -> std::shared_ptr<nn::Module> {
    if (bn == BatchNormKind::Scratch) return std::make_shared<ScratchBatchNorm>(features, dims);
    if (dims == 4) return std::make_shared<nn::BatchNorm2d>(features);
    return std::make_shared<nn::BatchNorm1d>(features);
  };
  nn::Sequential net;
  net.push_back(nn::Conv2d(1, 6, 5));
  net.push_back(norm(6, 4));
  net.push_back(nn::Sigmoid());
  net.push_back(nn::AvgPool2d(2, 2));
  net.push_back(nn::Conv2d(6, 16, 5));
  net.push_back(norm(16, 4));
  net.push_back(nn::Sigmoid());
  net.push_back(nn::AvgPool2d(2, 2));
  net.push_back(nn::Flatten());
  net.push_back(nn::Linear(16 * 4 * 4, 120));
  net.push_back(norm(120, 2));
  net.push_back(nn::Sigmoid());
  net.push_back(nn::Linear(120, 84));
  net.push_back(norm(84, 2));
  net.push_back(nn::Sigmoid());
  net.push_back(nn::Linear(84, 10));
  for (const auto& [name, p] : net.named_parameters())  // d2l's init_weights: Linear and Conv2d weights
    if (name.ends_with(".weight") && p.dim() >= 2) nn::init::xavier_uniform_(p);
  return net;
}

double evaluate_accuracy(nn::Module& net, const tg::data::Dataset& data, std::int64_t batch_size) {
  bool was_training = net.is_training();
  net.eval();
  tg::NoGradGuard no_grad;
  std::int64_t correct = 0, total = 0;
  for (const auto& [X, y] : tg::data::DataLoader(data, {.batch_size = batch_size})) {
    correct += net(X).argmax(1).eq(y).sum().item<std::int64_t>();
    total += y.numel();
  }
  net.train(was_training);
  return total ? static_cast<double>(correct) / static_cast<double>(total) : 0.0;
}

namespace {

std::string to_hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string from_hex(const std::string& hex, const std::string& path) {
  TG_CHECK(hex.size() % 2 == 0, "[lenet_bn] checkpoint '{}' has a malformed rng_state", path);
  std::string out(hex.size() / 2, '\0');
  for (std::size_t i = 0; i < out.size(); ++i) {
    int v = 0;
    for (int k = 0; k < 2; ++k) {
      char c = hex[2 * i + static_cast<std::size_t>(k)];
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      TG_CHECK(d >= 0, "[lenet_bn] checkpoint '{}' has a malformed rng_state", path);
      v = v * 16 + d;
    }
    out[i] = static_cast<char>(v);
  }
  return out;
}

std::vector<EpochMetrics> parse_metrics(const std::string& csv, const std::string& path) {
  std::vector<EpochMetrics> out;
  std::istringstream in(csv);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    EpochMetrics m;
    long long epoch = 0;
    int got = std::sscanf(line.c_str(), "%lld,%lf,%lf,%lf,%lf,%lf", &epoch, &m.train_loss, &m.train_acc, &m.test_acc,
                          &m.seconds, &m.examples_per_sec);
    TG_CHECK(got == 6, "[lenet_bn] checkpoint '{}' has malformed metrics: \"{}\"", path, line);
    m.epoch = epoch;
    out.push_back(m);
  }
  return out;
}

std::string options_signature(const TrainOptions& o) {
  return fmt::format("bn={} batch_size={}", o.bn == BatchNormKind::Builtin ? "builtin" : "scratch", o.batch_size);
}

void save_checkpoint(const std::string& path, const nn::Module& net, const tg::optim::SGD& opt,
                     const std::vector<EpochMetrics>& metrics, const TrainOptions& options) {
  nn::NamedTensors tensors;
  for (const auto& [name, t] : net.state_dict()) tensors.emplace_back("model." + name, t);
  for (const auto& [name, t] : opt.state_dict()) tensors.emplace_back("optimizer." + name, t);
  tg::Metadata meta{{"format", "tapegrad lenet_bn checkpoint 1"},
                    {"epoch", std::to_string(metrics.size())},
                    {"metrics", metrics_csv(metrics)},
                    {"options", options_signature(options)},
                    {"rng_state", to_hex(tg::get_rng_state())}};
  tg::save_tensors(tensors, path, meta);
}

// Restores model, optimizer and generator; returns the metrics so far. Checks everything before
// changing anything.
std::vector<EpochMetrics> load_checkpoint(const std::string& path, nn::Module& net, tg::optim::SGD& opt,
                                          const TrainOptions& options) {
  tg::Metadata meta;
  nn::NamedTensors all = tg::load_tensors(path, &meta);
  TG_CHECK(meta["format"] == "tapegrad lenet_bn checkpoint 1", "[lenet_bn] '{}' is not a lenet_bn checkpoint", path);
  TG_CHECK(meta["options"] == options_signature(options),
           "[lenet_bn] checkpoint '{}' was trained with {}, this run asks for {}", path, meta["options"],
           options_signature(options));
  std::vector<EpochMetrics> metrics = parse_metrics(meta["metrics"], path);
  std::string rng = from_hex(meta["rng_state"], path);
  nn::NamedTensors model, optim;
  for (auto& [name, t] : all) {
    if (name.starts_with("model.")) model.emplace_back(name.substr(6), t);
    else if (name.starts_with("optimizer.")) optim.emplace_back(name.substr(10), t);
    else TG_CHECK(false, "[lenet_bn] checkpoint '{}' has an unexpected tensor \"{}\"", path, name);
  }
  tg::optim::SGD probe(opt.params(), opt.options());
  probe.load_state_dict(optim);  // validates before anything changes
  tg::load_into(net.state_dict(), model, path);
  opt.load_state_dict(optim);
  tg::set_rng_state(rng);
  return metrics;
}

}  // namespace

std::vector<EpochMetrics> train(const tg::data::Dataset& train_set, const tg::data::Dataset& test_set,
                                const TrainOptions& options, const TrainCallbacks& callbacks,
                                tg::nn::Sequential* trained) {
  TG_CHECK(options.epochs >= 0, "[lenet_bn] expected a non-negative number of epochs, got {}", options.epochs);
  TG_CHECK(options.batch_size >= 1, "[lenet_bn] expected a positive batch size, got {}", options.batch_size);
  tg::manual_seed(options.seed);
  nn::Sequential net = make_lenet_bn(options.bn);
  tg::optim::SGD opt(net.parameters(), {.lr = options.lr, .momentum = options.momentum,
                                        .weight_decay = options.weight_decay});
  std::vector<EpochMetrics> metrics;
  if (!options.resume_path.empty()) metrics = load_checkpoint(options.resume_path, net, opt, options);

  nn::CrossEntropyLoss loss_fn;
  tg::data::DataLoader loader(train_set, {.batch_size = options.batch_size, .shuffle = true});
  std::int64_t batches = loader.num_batches();
  for (std::int64_t epoch = static_cast<std::int64_t>(metrics.size()) + 1; epoch <= options.epochs; ++epoch) {
    net.train();
    double loss_sum = 0;
    std::int64_t correct = 0, seen = 0, batch = 0;
    auto start = std::chrono::steady_clock::now();
    double seconds = 0;
    for (const auto& [X, y] : loader) {
      Tensor y_hat = net(X);
      Tensor loss = loss_fn(y_hat, y);
      double l = loss.item<double>();
      TG_CHECK(std::isfinite(l),
               "[lenet_bn] the loss became {} at epoch {}, batch {}: stopping (lower --lr?); {}", l, epoch, batch + 1,
               options.save_path.empty() ? std::string("no checkpoint was written")
                                         : fmt::format("the checkpoint '{}' keeps the last finished epoch",
                                                       options.save_path));
      opt.zero_grad();
      loss.backward();
      opt.step();
      {
        tg::NoGradGuard no_grad;
        loss_sum += l * static_cast<double>(y.numel());
        correct += y_hat.argmax(1).eq(y).sum().item<std::int64_t>();
      }
      seen += y.numel();
      ++batch;
      seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (callbacks.on_batch)
        callbacks.on_batch(batch, batches, loss_sum / static_cast<double>(seen),
                           seconds > 0 ? static_cast<double>(seen) / seconds : 0.0);
    }
    EpochMetrics m;
    m.epoch = epoch;
    m.train_loss = seen ? loss_sum / static_cast<double>(seen) : 0.0;
    m.train_acc = seen ? static_cast<double>(correct) / static_cast<double>(seen) : 0.0;
    m.seconds = seconds;
    m.examples_per_sec = seconds > 0 ? static_cast<double>(seen) / seconds : 0.0;
    m.test_acc = evaluate_accuracy(net, test_set, options.batch_size);
    metrics.push_back(m);
    if (!options.save_path.empty()) save_checkpoint(options.save_path, net, opt, metrics, options);
    if (callbacks.on_epoch) callbacks.on_epoch(m);
  }
  if (trained) *trained = net;
  return metrics;
}

std::string metrics_csv(const std::vector<EpochMetrics>& metrics) {
  std::string out = "epoch,train_loss,train_acc,test_acc,seconds,examples_per_sec\n";
  for (const EpochMetrics& m : metrics)
    out += fmt::format("{},{:.6f},{:.6f},{:.6f},{:.3f},{:.1f}\n", m.epoch, m.train_loss, m.train_acc, m.test_acc,
                       m.seconds, m.examples_per_sec);
  return out;
}

std::string metrics_svg(const std::vector<EpochMetrics>& metrics) {
  const double W = 480, H = 320, left = 50, right = 130, top = 20, bottom = 45;
  const double pw = W - left - right, ph = H - top - bottom;
  double x_max = std::max<double>(1.0, static_cast<double>(metrics.size()));
  double y_max = 1.0;
  for (const EpochMetrics& m : metrics) y_max = std::max(y_max, m.train_loss);
  y_max = std::ceil(y_max * 10.0) / 10.0;
  auto px = [&](double e) { return left + (e - 1.0) / std::max(1.0, x_max - 1.0) * pw; };
  auto py = [&](double v) { return top + (1.0 - v / y_max) * ph; };
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      W, H, W, H);
  s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#333\"/>\n", left, top,
                   pw, ph);
  for (int k = 0; k <= 5; ++k) {  // y grid
    double v = y_max * k / 5.0;
    s += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>\n", left, py(v),
                     left + pw, py(v));
    s += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{:.1f}</text>\n", left - 6, py(v) + 4, v);
  }
  for (std::size_t e = 1; e <= metrics.size(); ++e)  // x ticks
    s += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", px(static_cast<double>(e)),
                     top + ph + 16, e);
  s += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">epoch</text>\n", left + pw / 2, H - 8);
  struct Curve {
    const char* label;
    const char* color;
    const char* dash;
    double EpochMetrics::*field;
  };
  const Curve curves[] = {{"train loss", "#1f77b4", "", &EpochMetrics::train_loss},
                          {"train acc", "#d62728", "6,3", &EpochMetrics::train_acc},
                          {"test acc", "#2ca02c", "2,3", &EpochMetrics::test_acc}};
  for (std::size_t c = 0; c < 3; ++c) {
    const Curve& cv = curves[c];
    std::string points;
    for (const EpochMetrics& m : metrics)
      points += fmt::format("{:.1f},{:.1f} ", px(static_cast<double>(m.epoch)), py(m.*cv.field));
    s += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" stroke-dasharray=\"{}\" "
                     "points=\"{}\"/>\n", cv.color, cv.dash, points);
    double ly = top + 14 + 18 * static_cast<double>(c);
    s += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"2\" "
                     "stroke-dasharray=\"{}\"/>\n", left + pw + 10, ly, left + pw + 34, ly, cv.color, cv.dash);
    s += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", left + pw + 40, ly + 4, cv.label);
  }
  return s + "</svg>\n";
}

void write_text_file(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    TG_CHECK(out.good(), "[lenet_bn] cannot write '{}'", path);
    out << text;
    out.flush();
    TG_CHECK(out.good(), "[lenet_bn] writing '{}' failed", path);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  TG_CHECK(!ec, "[lenet_bn] cannot write '{}': {}", path, ec.message());
}

}  // namespace lenet
