// libFuzzer harness: lenet_bn's resume from a checkpoint file (apps/lenet/checkpoint.h), first
// into a model and optimizer directly, then through the whole training loop on a tiny dataset.
// Promises: tg::Error or a resumed run; a refused checkpoint leaves the model, the optimizer's
// state and the random generator exactly as they were.
#include <cstdint>
#include <string>

#include "apps/lenet/checkpoint.h"
#include "apps/lenet/trainer.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

// Four 28x28 images for training, two for testing; image i is a ramp of brightness i, label i.
class Tiny : public tg::data::Dataset {
 public:
  explicit Tiny(std::int64_t n) : n_(n) {}
  std::int64_t size() const override { return n_; }
  std::pair<tg::Tensor, tg::Tensor> get_batch(const std::vector<std::int64_t>& indices) const override {
    const auto b = static_cast<std::int64_t>(indices.size());
    tg::Tensor x = tg::arange(0, 28 * 28).to(tg::kFloat32).div(28.0 * 28.0).reshape({1, 1, 28, 28});
    tg::Tensor scale = tg::tensor(std::vector<std::int64_t>(indices)).to(tg::kFloat32).add(1.0).reshape({b, 1, 1, 1});
    return {x * scale, tg::tensor(std::vector<std::int64_t>(indices))};
  }

 private:
  std::int64_t n_;
};

const lenet::TrainOptions kOptions{.epochs = 2, .lr = 0.1, .batch_size = 2, .momentum = 0.9, .seed = 1};
const std::string kSignature = "bn=builtin batch_size=2";

// The seed: the checkpoint after one epoch of kOptions.
void write_seeds(const std::string& dir) {
  lenet::TrainOptions o = kOptions;
  o.epochs = 1;
  o.save_path = dir + "after_one_epoch";  // no .safetensors: .gitignore would hide it
  lenet::train(Tiny(4), Tiny(2), o);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  tg_fuzz::write_seeds_if_asked(write_seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const tg_fuzz::MemFile file("checkpoint");
  file.write(data, size);

  tg::manual_seed(7);
  tg::nn::Sequential net = lenet::make_lenet_bn();
  tg::optim::SGD opt(net.parameters(), {.lr = kOptions.lr, .momentum = kOptions.momentum});
  const std::string model = tg_fuzz::fingerprint(net.state_dict()), state = tg_fuzz::fingerprint(opt.state_dict());
  const std::string rng = tg::get_rng_state();
  try {
    lenet::load_checkpoint(file.path(), net, opt, kSignature);
  } catch (const tg::Error&) {
    TG_FUZZ_EXPECT(tg_fuzz::fingerprint(net.state_dict()) == model);
    TG_FUZZ_EXPECT(tg_fuzz::fingerprint(opt.state_dict()) == state);
    TG_FUZZ_EXPECT(tg::get_rng_state() == rng);
    return 0;
  }
  try {
    lenet::TrainOptions o = kOptions;
    o.resume_path = file.path();
    lenet::train(Tiny(4), Tiny(2), o);
  } catch (const tg::Error&) {  // a loss that is not finite, from the checkpoint's weights
  }
  return 0;
}
