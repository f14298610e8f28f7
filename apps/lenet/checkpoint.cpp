// LeNet-BN checkpoints. Layer: apps.
#include "apps/lenet/checkpoint.h"

#include "apps/lenet/trainer.h"

namespace lenet {

namespace nn = tg::nn;

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

}  // namespace

void save_checkpoint(const std::string& path, const nn::Module& net, const tg::optim::SGD& opt,
                     const std::vector<EpochMetrics>& metrics, const std::string& signature) {
  nn::NamedTensors tensors;
  for (const auto& [name, t] : net.state_dict()) tensors.emplace_back("model." + name, t);
  for (const auto& [name, t] : opt.state_dict()) tensors.emplace_back("optimizer." + name, t);
  tg::Metadata meta{{"format", "tapegrad lenet_bn checkpoint 1"},
                    {"epoch", std::to_string(metrics.size())},
                    {"metrics", metrics_csv(metrics)},
                    {"options", signature},
                    {"rng_state", to_hex(tg::get_rng_state())}};
  tg::save_tensors(tensors, path, meta);
}

std::vector<EpochMetrics> load_checkpoint(const std::string& path, nn::Module& net, tg::optim::SGD& opt,
                                          const std::string& signature) {
  tg::Metadata meta;
  nn::NamedTensors all = tg::load_tensors(path, &meta);
  TG_CHECK(meta["format"] == "tapegrad lenet_bn checkpoint 1", "[lenet_bn] '{}' is not a lenet_bn checkpoint", path);
  TG_CHECK(meta["options"] == signature, "[lenet_bn] checkpoint '{}' was trained with {}, this run asks for {}", path,
           meta["options"], signature);
  std::vector<EpochMetrics> metrics = parse_metrics_csv(meta["metrics"], path);
  std::string rng = from_hex(meta["rng_state"], path);
  nn::NamedTensors model, optim;
  for (auto& [name, t] : all) {
    if (name.starts_with("model.")) model.emplace_back(name.substr(6), t);
    else if (name.starts_with("optimizer.")) optim.emplace_back(name.substr(10), t);
    else TG_CHECK(false, "[lenet_bn] checkpoint '{}' has an unexpected tensor \"{}\"", path, name);
  }
  // The checkpoint brings the momentum buffers; the options stay this run's (its --lr, --momentum
  // and --weight-decay apply to the epochs it trains).
  for (const auto& [name, mine] : opt.state_dict())
    if (name.starts_with("param_groups."))
      for (auto& [saved_name, saved] : optim)
        if (saved_name == name) saved = mine;
  opt.check_state_dict(optim);  // before anything changes
  tg::load_into(net.state_dict(), model, path);
  opt.load_state_dict(optim);
  tg::set_rng_state(rng);
  return metrics;
}

namespace {
constexpr const char* kFoldedFormat = "tapegrad lenet_bn folded 1";
}

void export_folded(const std::string& path, nn::Sequential& net) {
  net.eval();
  const nn::Sequential folded = nn::utils::fold_batchnorm(net);
  TG_CHECK(folded.named_buffers().empty(), "[lenet_bn] --export-folded needs the built-in batch norm (--bn builtin)");
  tg::save_tensors(folded.state_dict(), path, {{"format", kFoldedFormat}});
}

InferenceModel load_for_inference(const std::string& path) {
  tg::Metadata meta;
  nn::NamedTensors all = tg::load_tensors(path, &meta);
  nn::Sequential unfolded = make_lenet_bn();
  unfolded.eval();
  if (meta["format"] == kFoldedFormat) {
    InferenceModel m{nn::utils::fold_batchnorm(unfolded), true};
    tg::load_into(m.net.state_dict(), all, path);
    return m;
  }
  if (meta["format"] == "tapegrad lenet_bn checkpoint 1") {
    nn::NamedTensors model;
    for (auto& [name, t] : all)
      if (name.starts_with("model.")) model.emplace_back(name.substr(6), t);
    all = std::move(model);
  }
  tg::load_into(unfolded.state_dict(), all, path);
  return {unfolded, false};
}

}  // namespace lenet
