// A checkpoint's round trip through PyTorch 1.13 with scripts/safetensors_io.py (Debian has no
// safetensors package for Python): tg::save -> PyTorch loads it strictly, evaluates and trains
// one SGD step -> tg::load reads PyTorch's state (strict) and its float16/bfloat16 tensors.
// Built only where /usr/bin/python3 has torch (TG_TORCH_PYTHON). Tags [layers] [python].
#include <catch2/catch.hpp>

#ifdef TG_TORCH_PYTHON
#include <cstdlib>
#include <filesystem>
#include <string>

#include "tapegrad.h"

#include "ref_helpers.h"
#include "tests/support/files.h"

TEST_CASE("a checkpoint goes through PyTorch and back with scripts/safetensors_io.py", "[layers][python]") {
  const std::string src = tg_test::temp_path("roundtrip_in.safetensors");
  const std::string state = tg_test::temp_path("roundtrip_state.safetensors");
  const std::string extra = tg_test::temp_path("roundtrip_extra.safetensors");
  tg::manual_seed(5);
  auto make = [] { return nn::Sequential{nn::Linear(4, 3), nn::BatchNorm1d(3), nn::ReLU(), nn::Linear(3, 2)}; };
  nn::Sequential net = make();
  net(tg::randn({6, 4}));  // running statistics away from their initial values
  tg::save(net, src);

  const std::string command = std::string(TG_TORCH_PYTHON) + " " + TG_SOURCE_DIR +
                              "/tests/layers/torch_roundtrip.py " + src + " " + state + " " + extra;
  REQUIRE(std::system(command.c_str()) == 0);

  // PyTorch's evaluation of the loaded model is ours
  Tensor x = tg::arange(8).reshape({2, 4}).to(tg::kFloat32) / 7.0;
  net.eval();
  Tensor ours = net(x);
  tg::nn::NamedTensors from_torch = tg::load_tensors(extra);
  REQUIRE(from_torch.size() == 3);
  CHECK(from_torch[0].first == "eval_output");
  CHECK(ref::mismatch(from_torch[0].second, ours.to_vector<double>(), 1e-6) == "");

  // PyTorch's state after one SGD step loads strictly and equals our own step
  net.train();
  tg::optim::SGD opt(net.parameters(), {.lr = 0.1});
  opt.zero_grad();
  net(x).pow(2).sum().backward();
  opt.step();
  nn::Sequential loaded = make();
  tg::IncompatibleKeys keys = tg::load(loaded, state);
  CHECK(keys.missing_keys.empty());
  const auto ours_state = net.state_dict(), theirs = loaded.state_dict();
  for (std::size_t i = 0; i < ours_state.size(); ++i) {
    INFO(ours_state[i].first);
    CHECK(ref::mismatch(theirs[i].second, ours_state[i].second.to_vector<double>(), 1e-6) == "");
  }

  // float16 and bfloat16 written by PyTorch load as float32 within their rounding
  const std::vector<double> weight = net.state_dict()[0].second.to_vector<double>();
  CHECK(from_torch[1].first == "weight_f16");
  CHECK(from_torch[1].second.dtype() == tg::kFloat32);
  CHECK(ref::mismatch(from_torch[1].second, weight, 1.0 / 2048) == "");
  CHECK(from_torch[2].first == "weight_bf16");
  CHECK(ref::mismatch(from_torch[2].second, weight, 1.0 / 256) == "");
  CHECK(ref::mismatch(from_torch[2].second, weight, 1.0 / 100000) != "");  // it was rounded
  for (const std::string& p : {src, state, extra}) std::filesystem::remove(p);
}
#endif
