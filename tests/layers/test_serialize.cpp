// save and load: a state dict's round trip through a safetensors file, its header, and the
// checkpoints load refuses (shapes, keys, truncated or malformed files) leaving the model as it
// was. Tags [layers] [errors].
#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tapegrad.h"

#include "two_layer.h"
#include "tests/support/files.h"

using Catch::Contains;
namespace nn = tg::nn;

namespace {

using tg_test::temp_path;

}  // namespace

TEST_CASE("save and load round-trip a state dict through safetensors", "[layers]") {
  std::string path = temp_path("roundtrip.safetensors");
  tg::manual_seed(1);
  TwoLayer a;
  a(tg::randn({5, 4}));  // moves the running statistics
  tg::save(a, path);
  tg::manual_seed(2);
  TwoLayer b;
  tg::load(b, path);
  auto sa = a.state_dict(), sb = b.state_dict();
  for (std::size_t i = 0; i < sa.size(); ++i) {
    INFO(sa[i].first);
    CHECK(sb[i].second.to_vector<double>() == sa[i].second.to_vector<double>());
    CHECK(sb[i].second.dtype() == sa[i].second.dtype());
  }
  CHECK(b.fc1->weight.requires_grad());  // loaded in place: still the module's parameter
  // the file is a safetensors file: 8-byte length, JSON header with dtype, shape, offsets
  std::ifstream in(path, std::ios::binary);
  std::uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  std::string header(n, ' ');
  in.read(header.data(), static_cast<std::streamsize>(n));
  CHECK(n % 8 == 0);
  CHECK_THAT(header, Contains("\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[12,60]}"));
  CHECK_THAT(header, Contains("\"bn.num_batches_tracked\":{\"dtype\":\"I64\",\"shape\":[]"));
  std::filesystem::remove(path);
}

TEST_CASE("load refuses a checkpoint that does not fit and changes nothing", "[layers][errors]") {
  std::string path = temp_path("mismatch.safetensors");
  nn::Sequential small(nn::Linear(4, 3), nn::ReLU(), nn::Linear(3, 2));
  tg::save(small, path);
  nn::Sequential other(nn::Linear(4, 5), nn::ReLU(), nn::Linear(5, 2), nn::Linear(2, 2));
  std::vector<double> before = other.parameters()[0].to_vector<double>();
  try {
    tg::load(other, path);
    FAIL("load did not throw");
  } catch (const tg::Error& e) {
    std::string msg = e.what();
    CHECK_THAT(msg, Contains(path));
    CHECK_THAT(msg, Contains("0.weight: checkpoint [3, 4], model [5, 4]"));
    CHECK_THAT(msg, Contains("2.weight: checkpoint [2, 3], model [2, 5]"));
    CHECK_THAT(msg, Contains("missing keys: 3.weight, 3.bias"));
  }
  CHECK(other.parameters()[0].to_vector<double>() == before);
  nn::Sequential fewer(nn::Linear(4, 3));
  CHECK_THROWS_WITH(tg::load(fewer, path), Contains("unexpected keys: 2.weight, 2.bias"));
  CHECK_THROWS_WITH(tg::load(small, path + ".absent"), Contains(".absent") && Contains("cannot open"));

  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  auto write = [&](const std::string& content) { std::ofstream(path, std::ios::binary | std::ios::trunc) << content; };
  std::vector<double> kept = small.parameters()[0].to_vector<double>();
  write(bytes.substr(0, bytes.size() - 4));
  CHECK_THROWS_WITH(tg::load(small, path), Contains(path) && Contains("truncated"));
  write(bytes.substr(0, 5));
  CHECK_THROWS_WITH(tg::load(small, path), Contains(path) && Contains("truncated"));
  std::string bad = bytes;
  bad[9] = '#';
  write(bad);
  CHECK_THROWS_WITH(tg::load(small, path), Contains(path) && Contains("malformed"));
  CHECK(small.parameters()[0].to_vector<double>() == kept);
  std::filesystem::remove(path);
  CHECK_THROWS_WITH(tg::save(small, "/nonexistent-dir/x.safetensors"), Contains("[save]"));
}
