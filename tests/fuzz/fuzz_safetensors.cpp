// libFuzzer harness: safetensors files, read into a state dict (load_tensors) and into a model
// (load) with a batch-norm layer, so that an int64 buffer and float parameters are both at stake.
// Promises: tg::Error or a result; what loads saves and loads back the same; a failed load leaves
// the model exactly as it was, and the model still runs either way.
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>

#include "tapegrad.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/support/files.h"

namespace {

tg::nn::Sequential make_net() {
  tg::manual_seed(0);
  return tg::nn::Sequential(tg::nn::Linear(4, 3), tg::nn::BatchNorm1d(3), tg::nn::Linear(3, 2));
}

void write_seeds(const std::string& dir) {
  tg::nn::Sequential net = make_net();
  tg::save(net, dir + "model");
  tg::save_tensors({{"a", tg::arange(6).reshape({2, 3})}, {"b", tg::ones({0, 2}, tg::kFloat64)}}, dir + "with_metadata",
                   {{"format", "pt"}, {"note", "two tensors"}});
  // tapegrad reads F16 and BF16 but writes neither, so this seed is spelled out byte by byte: the
  // header's length (8 bytes, little-endian), the JSON header, then F16 1, -2 and BF16 1, 0.5.
  const std::string header =
      R"({"half":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
      R"("brain":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]}})";
  std::string bytes(8, '\0');
  for (std::size_t i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  bytes += header;
  for (std::uint16_t v : {0x3C00, 0xC000, 0x3F80, 0x3F00}) bytes += {static_cast<char>(v & 0xff), static_cast<char>(v >> 8)};
  std::ofstream(dir + "half_precision", std::ios::binary) << bytes;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  tg_fuzz::write_seeds_if_asked(write_seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const tg_fuzz::MemFile file("safetensors");
  static const tg_test::TempDir dir;
  file.write(data, size);

  try {
    tg::Metadata meta;
    const tg::nn::NamedTensors tensors = tg::load_tensors(file.path(), &meta);
    const std::string copy = dir.file("copy.safetensors");
    tg::save_tensors(tensors, copy, meta);
    tg::Metadata meta_again;
    TG_FUZZ_EXPECT(tg_fuzz::fingerprint(tg::load_tensors(copy, &meta_again)) == tg_fuzz::fingerprint(tensors));
    TG_FUZZ_EXPECT(meta_again == meta);
  } catch (const tg::Error&) {
  }

  tg::nn::Sequential net = make_net();
  const std::string before = tg_fuzz::fingerprint(net.state_dict());
  bool loaded = true;
  try {
    tg::load(net, file.path());
  } catch (const tg::Error&) {
    loaded = false;
  }
  if (!loaded) TG_FUZZ_EXPECT(tg_fuzz::fingerprint(net.state_dict()) == before);
  net.eval();
  TG_FUZZ_EXPECT(net(tg::ones({2, 4})).sizes() == tg::Shape({2, 2}));
  return 0;
}
