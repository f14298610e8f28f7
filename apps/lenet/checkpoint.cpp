// LeNet-BN checkpoints. Layer: apps.
#include "apps/lenet/checkpoint.h"

#include "apps/lenet/trainer.h"

namespace lenet {

namespace nn = tg::nn;

namespace {

// Format 2 holds the generator state as the uint8 tensor "rng_state"; format 1 held it as hex
// text in the metadata.
constexpr const char* kCheckpointFormat = "tapegrad lenet_bn checkpoint 2";
constexpr const char* kCheckpointFormat1 = "tapegrad lenet_bn checkpoint 1";

// The generator state as torch.get_rng_state() holds it: a uint8 tensor of its bytes.
tg::Tensor rng_state_tensor() {
  const std::string state = tg::get_rng_state();
  return tg::tensor(std::vector<std::uint8_t>(state.begin(), state.end()));
}

// The bytes of a checkpoint's "rng_state" entry, checked to be what rng_state_tensor writes.
std::string rng_state_bytes(const tg::Tensor& t, const std::string& path) {
  const auto expected = static_cast<std::int64_t>(tg::get_rng_state().size());
  TG_CHECK(t.dtype() == tg::kUInt8 && t.sizes() == tg::Shape{expected},
           "[lenet_bn] checkpoint '{}': expected rng_state as a uint8 tensor of shape [{}] (the bytes of "
           "get_rng_state), got {} {}",
           path, expected, tg::dtype_name(t.dtype()), t.sizes());
  const std::vector<std::uint8_t> bytes = t.to_vector<std::uint8_t>();
  return std::string(bytes.begin(), bytes.end());
}

}  // namespace

void save_checkpoint(const std::string& path, const nn::Module& net, const tg::optim::SGD& opt,
                     const std::vector<EpochMetrics>& metrics, const std::string& signature) {
  nn::NamedTensors tensors;
  for (const auto& [name, t] : net.state_dict()) tensors.emplace_back("model." + name, t);
  for (const auto& [name, t] : opt.state_dict()) tensors.emplace_back("optimizer." + name, t);
  tensors.emplace_back("rng_state", rng_state_tensor());
  tg::Metadata meta{{"format", kCheckpointFormat},
                    {"epoch", std::to_string(metrics.size())},
                    {"metrics", metrics_csv(metrics)},
                    {"options", signature}};
  tg::save_tensors(tensors, path, meta);
}

std::vector<EpochMetrics> load_checkpoint(const std::string& path, nn::Module& net, tg::optim::SGD& opt,
                                          const std::string& signature) {
  tg::Metadata meta;
  nn::NamedTensors all = tg::load_tensors(path, &meta);
  TG_CHECK(meta["format"] != kCheckpointFormat1,
           "[lenet_bn] '{}' is a lenet_bn checkpoint of format 1 (its generator state in hex text), which this "
           "build no longer resumes: it reads format 2 (rng_state as a uint8 tensor); start the run again",
           path);
  TG_CHECK(meta["format"] == kCheckpointFormat, "[lenet_bn] '{}' is not a lenet_bn checkpoint", path);
  TG_CHECK(meta["options"] == signature, "[lenet_bn] checkpoint '{}' was trained with {}, this run asks for {}", path,
           meta["options"], signature);
  std::vector<EpochMetrics> metrics = parse_metrics_csv(meta["metrics"], path);
  nn::NamedTensors model, optim;
  tg::Tensor rng_state;
  for (auto& [name, t] : all) {
    if (name == "rng_state") rng_state = t;
    else if (name.starts_with("model.")) model.emplace_back(name.substr(6), t);
    else if (name.starts_with("optimizer.")) optim.emplace_back(name.substr(10), t);
    else TG_CHECK(false, "[lenet_bn] checkpoint '{}' has an unexpected tensor \"{}\"", path, name);
  }
  TG_CHECK(rng_state.defined(), "[lenet_bn] checkpoint '{}' has no rng_state tensor", path);
  const std::string rng = rng_state_bytes(rng_state, path);
  // The checkpoint brings the momentum buffers; the options stay this run's (its --lr, --momentum
  // and --weight-decay apply to the epochs it trains).
  for (const auto& [name, mine] : opt.state_dict())
    if (name.starts_with("param_groups."))
      for (auto& [saved_name, saved] : optim)
        if (saved_name == name) saved = mine;
  opt.check_state_dict(optim);  // before anything changes
  // set_rng_state checks the bytes themselves (throwing, the generator unchanged); when the model
  // then fails to load, the generator goes back to where it was.
  const std::string previous_rng = tg::get_rng_state();
  try {
    tg::set_rng_state(rng);
  } catch (const tg::Error& e) {
    TG_CHECK(false, "[lenet_bn] checkpoint '{}' has an invalid rng_state: {}", path, e.what());
  }
  try {
    tg::load_into(net.state_dict(), model, path);
  } catch (...) {
    tg::set_rng_state(previous_rng);
    throw;
  }
  opt.load_state_dict(optim);
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
  // Format 1's model entries are format 2's: either serves inference.
  if (meta["format"] == kCheckpointFormat || meta["format"] == kCheckpointFormat1) {
    nn::NamedTensors model;
    for (auto& [name, t] : all)
      if (name.starts_with("model.")) model.emplace_back(name.substr(6), t);
    all = std::move(model);
  }
  tg::load_into(unfolded.state_dict(), all, path);
  return {unfolded, false};
}

}  // namespace lenet
