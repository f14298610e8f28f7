// libFuzzer harness: an optimizer's saved state (SGD with momentum), loaded from arbitrary files.
// Promises: tg::Error or a loaded state; a failed load leaves the state as it was; either way
// the optimizer steps afterwards, and a loaded state is the file's.
#include <algorithm>
#include <cstdint>
#include <string>

#include "tapegrad.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

// A model, its optimizer after one step (momentum buffers for every parameter), and the step.
struct Setup {
  tg::nn::Sequential net;
  tg::optim::SGD opt;
  Setup() : net((tg::manual_seed(0), tg::nn::Sequential(tg::nn::Linear(4, 3), tg::nn::Linear(3, 2)))),
            opt(net.parameters(), {.lr = 0.1, .momentum = 0.9}) {
    step();
  }
  void step() {
    opt.zero_grad();
    net(tg::ones({2, 4})).sum().backward();
    opt.step();
  }
};

void write_seeds(const std::string& dir) {
  Setup s;
  tg::save(s.opt, dir + "sgd_momentum");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  tg_fuzz::write_seeds_if_asked(write_seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const tg_fuzz::MemFile file("optimizer");
  file.write(data, size);
  Setup setup;
  tg::optim::SGD& opt = setup.opt;
  auto step = [&] { setup.step(); };
  const std::string before = tg_fuzz::fingerprint(opt.state_dict());
  try {
    tg::load(opt, file.path());
    TG_FUZZ_EXPECT(tg_fuzz::fingerprint(opt.state_dict()) == tg_fuzz::fingerprint(tg::load_tensors(file.path())));
  } catch (const tg::Error&) {
    TG_FUZZ_EXPECT(tg_fuzz::fingerprint(opt.state_dict()) == before);
  }
  step();
  return 0;
}
