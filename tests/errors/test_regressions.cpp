// Regression tests for the findings of the hostile-input review (issue 14): each reproduces the
// finding and asserts the fixed behaviour. Tag [errors].
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "tapegrad.h"
#include "tests/support/files.h"

using Catch::Contains;
using tg::Tensor;

namespace {

constexpr std::int64_t kInt64Min = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();

// A safetensors file: the 8-byte little-endian header length, the JSON header, the data.
std::string safetensors_bytes(const std::string& header, const std::string& data = "") {
  std::string out(8, '\0');
  const std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

}  // namespace

TEST_CASE("in-place writes through an expanded view are refused, as in PyTorch", "[errors]") {
  // Finding 1: zeros({3}).expand({4, 3}).add_(ones({4, 3})) left [4, 4, 4].
  Tensor base = tg::zeros({3});
  Tensor view = base.expand({4, 3});
  const std::string overlap = "more than one element of the written-to tensor refers to a single memory location";
  CHECK_THROWS_WITH(view.add_(tg::ones({4, 3})), Contains("[add_]") && Contains(overlap));
  CHECK_THROWS_WITH(view.add_(1.0), Contains("[add_]") && Contains(overlap));
  CHECK_THROWS_WITH(view.mul_(tg::ones({4, 3})), Contains("[mul_]") && Contains(overlap));
  CHECK_THROWS_WITH(view.mul_(2.0), Contains("[mul_]") && Contains(overlap));
  CHECK_THROWS_WITH(view.sub_(tg::ones({3})), Contains("[sub_]") && Contains(overlap));
  CHECK_THROWS_WITH(view.div_(2.0), Contains("[div_]") && Contains(overlap));
  CHECK_THROWS_WITH(view.copy_(tg::ones({4, 3})), Contains("[copy_]") && Contains(overlap));
  CHECK(base.to_vector<float>() == std::vector<float>{0, 0, 0});
  // One value written everywhere is well defined: PyTorch allows fill_ and zero_.
  view.fill_(5.0);
  CHECK(base.to_vector<float>() == std::vector<float>{5, 5, 5});
  // Views without repeated elements still write, transposed or strided.
  Tensor m = tg::zeros({2, 3});
  m.t().add_(tg::ones({3, 2}));
  m.slice(1, 0, 3, 2).mul_(3.0);
  CHECK(m.to_vector<float>() == std::vector<float>{3, 1, 3, 3, 1, 3});
}

TEST_CASE("non-finite and huge doubles as scalars: no undefined conversion to an integer", "[errors]") {
  // Finding 2: every Scalar(double) was converted to int64, undefined for NaN, ±inf and |x| >= 2^63.
  CHECK(std::isnan(tg::full({1}, NAN).item<float>()));
  Tensor x = tg::tensor(std::vector<float>{1, -2});
  CHECK((x * INFINITY).to_vector<float>() == std::vector<float>{INFINITY, -INFINITY});
  CHECK((x * 1e19).to_vector<float>() == std::vector<float>{1e19f, -2e19f});
  CHECK(std::isnan(tg::cross_entropy(tg::zeros({0, 3}), tg::zeros({0}, tg::kInt64)).item<float>()));
  // Into an integer tensor a value must fit, as PyTorch's checked conversion.
  CHECK_THROWS_WITH(tg::full({1}, NAN, tg::kInt64),
                    Contains("[full] value nan cannot be converted to type int64 without overflow"));
  Tensor counts = tg::zeros({2}, tg::kInt64);
  CHECK_THROWS_WITH(counts.fill_(1e19), Contains("[fill_] value 1e+19 cannot be converted to type int64"));
  // clamp promotes an integer tensor with floating bounds (as PyTorch 1.13), so ±inf bounds are fine.
  CHECK(counts.clamp(-INFINITY, 1.0).dtype() == tg::kFloat32);
  CHECK(counts.to_vector<std::int64_t>() == std::vector<std::int64_t>{0, 0});
  CHECK(tg::full({1}, -9.2e18, tg::kInt64).item<std::int64_t>() == -9200000000000000000);
  // Float to int64 of what does not fit gives INT64_MIN, as PyTorch on x86.
  Tensor odd = tg::tensor(std::vector<double>{NAN, INFINITY, -INFINITY, 1e19, 2.5, -2.5});
  CHECK(odd.to(tg::kInt64).to_vector<std::int64_t>() ==
        std::vector<std::int64_t>{kInt64Min, kInt64Min, kInt64Min, kInt64Min, 2, -2});
  CHECK(tg::full({}, NAN).item<std::int64_t>() == kInt64Min);
  // int64 arithmetic wraps around, as PyTorch's.
  Tensor big = tg::tensor(std::vector<std::int64_t>{kInt64Max, kInt64Min});
  CHECK((big + 1).to_vector<std::int64_t>() == std::vector<std::int64_t>{kInt64Min, kInt64Min + 1});
  CHECK((big * 2).to_vector<std::int64_t>() == std::vector<std::int64_t>{-2, 0});
  CHECK((-big).to_vector<std::int64_t>() == std::vector<std::int64_t>{kInt64Min + 1, kInt64Min});
  CHECK(big.abs().to_vector<std::int64_t>() == std::vector<std::int64_t>{kInt64Max, kInt64Min});
  CHECK(big.sum().item<std::int64_t>() == -1);
  CHECK(tg::tensor(std::vector<std::int64_t>{kInt64Max, 1}).sum().item<std::int64_t>() == kInt64Min);
  CHECK(tg::tensor(std::vector<std::int64_t>{(std::int64_t{1} << 53) + 1, 2}).sum().item<std::int64_t>() ==
        (std::int64_t{1} << 53) + 3);  // exact: no trip through double
  CHECK(big.pow(3).to_vector<std::int64_t>() == std::vector<std::int64_t>{kInt64Max, 0});
  Tensor quotient = big.clone();
  quotient.div_(-1);
  CHECK(quotient.to_vector<std::int64_t>() == std::vector<std::int64_t>{kInt64Min + 1, kInt64Min});
  CHECK_THROWS_WITH(tg::arange(0.0, 1e30, 1.0), Contains("[arange]") && Contains("more elements than an int64"));
}

TEST_CASE("a safetensors size above int64's range is refused quoting the file's numbers", "[errors]") {
  // Finding 3: the size was read as negative and skipped the overflow check.
  tg_test::TempDir dir;
  const std::string path = dir.file("huge.safetensors");
  REQUIRE(tg_test::write_raw(
      path, safetensors_bytes(R"({"w":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,0]}})")));
  CHECK_THROWS_WITH(tg::load_tensors(path), Contains("[load]") && Contains("\"w\" has shape [18446744073709551615]"));
  REQUIRE(tg_test::write_raw(
      path, safetensors_bytes(R"({"w":{"dtype":"F64","shape":[4611686018427387904, 4],"data_offsets":[0,0]}})")));
  CHECK_THROWS_WITH(tg::load_tensors(path),
                    Contains("\"w\" has shape [4611686018427387904, 4] of F64, more bytes than a tensor can hold"));
  CHECK_THROWS_WITH(tg::numel_of({-2, 3}), Contains("[numel] expected non-negative sizes, got shape [-2, 3]"));
  CHECK_THROWS_WITH(tg::numel_of({kInt64Max / 2, 3}), Contains("[numel]") && Contains("more elements than an int64"));
}

TEST_CASE("DataLoader with a batch larger than any dataset gives one batch", "[errors]") {
  // Finding 4: batch size INT64_MAX overflowed (n + b - 1) / b to 0 batches.
  tg::data::TensorDataset five(tg::arange(5), tg::arange(5));  // sample i is i
  for (bool drop_last : {false, true}) {
    tg::data::DataLoader loader(five, {.batch_size = kInt64Max, .drop_last = drop_last});
    CHECK(loader.num_batches() == (drop_last ? 0 : 1));
    std::vector<std::int64_t> seen;
    for (const auto& [x, y] : loader) seen = y.to_vector<std::int64_t>();
    CHECK(seen == (drop_last ? std::vector<std::int64_t>{} : std::vector<std::int64_t>{0, 1, 2, 3, 4}));
  }
  CHECK(tg::data::DataLoader(five, {.batch_size = 2}).num_batches() == 3);
  CHECK_THROWS_WITH(tg::data::DataLoader(five, {.batch_size = 0}), Contains("[DataLoader] expected batch_size >= 1"));
}

TEST_CASE("loading a directory as a checkpoint throws tg::Error", "[errors]") {
  // Finding 5: std::ios_base::failure escaped.
  tg_test::TempDir dir;
  tg::nn::Linear net(2, 1);
  const std::vector<float> before = net.weight.to_vector<float>();
  CHECK_THROWS_AS(tg::load(net, dir.str()), tg::Error);
  CHECK_THROWS_WITH(tg::load(net, dir.str()), Contains("[load] cannot read '" + dir.str() + "': it is a directory"));
  CHECK_THROWS_WITH(tg::load(net, dir.file("missing")), Contains("[load] cannot open"));
  CHECK(net.weight.to_vector<float>() == before);
}

TEST_CASE("an optimizer needs parameters", "[errors]") {
  // Finding 6: SGD accepted an empty parameter list.
  CHECK_THROWS_WITH(tg::optim::SGD(std::vector<Tensor>{}, {.lr = 0.1}),
                    Contains("[SGD] optimizer got an empty parameter list"));
}

TEST_CASE("a refused BatchNorm training call leaves num_batches_tracked as it was", "[errors]") {
  // Finding 7: the counter was incremented before the check for one value per channel.
  for (bool cumulative : {false, true}) {
    tg::nn::BatchNormOptions options;
    if (cumulative) options.momentum.reset();
    tg::nn::BatchNorm2d bn(3, options);
    CHECK_THROWS_WITH(bn(tg::ones({1, 3, 1, 1})), Contains("[batch_norm] Expected more than 1 value per channel"));
    CHECK(bn.num_batches_tracked.item<std::int64_t>() == 0);
    CHECK(bn.running_mean.to_vector<float>() == std::vector<float>{0, 0, 0});
    // The next good batch counts as the first (with momentum None, it sets the average outright).
    bn(tg::full({2, 3, 1, 1}, 4.0));
    CHECK(bn.num_batches_tracked.item<std::int64_t>() == 1);
    CHECK(bn.running_mean.to_vector<float>()[0] == Approx(cumulative ? 4.0 : 0.4));
  }
}

TEST_CASE("set_num_threads refuses absurd counts and keeps the pool as it was", "[errors]") {
  // Finding 12: 100000 threw std::system_error and get_num_threads() said 100000 afterwards.
  const int before = tg::get_num_threads();
  CHECK_THROWS_WITH(tg::set_num_threads(100000), Contains("[set_num_threads] expected a number of threads in [1, "));
  CHECK_THROWS_WITH(tg::set_num_threads(-1), Contains("[set_num_threads]"));
  CHECK(tg::get_num_threads() == before);
  CHECK((tg::arange(100000) * 2).sum().item<std::int64_t>() == 9999900000);
}

TEST_CASE("messages name the shapes involved", "[errors]") {
  // Finding 14.
  Tensor x = tg::zeros({2, 3});
  CHECK_THROWS_WITH(x.view({4, 2}), Contains("[view] shape [4, 2] is invalid for input of shape [2, 3] (6 elements)"));
  CHECK_THROWS_WITH(x.t().reshape({-1, 4}), Contains("[reshape] shape [-1, 4] is invalid for input of shape [3, 2]"));
  CHECK_THROWS_WITH(tg::matmul(tg::zeros({2, 3, 4, 5}), tg::zeros({2, 5, 6})),
                    Contains("[matmul] shapes [2, 3, 4, 5] and [2, 5, 6] cannot be multiplied: their batch dimensions "
                             "[2, 3] and [2] do not broadcast"));
  CHECK_THROWS_WITH(tg::nn::Conv2d(-1, 6, 5), Contains("[Conv2d] expected non-negative channels, got in_channels=-1"));
  // A tensor larger than memory: std::bad_alloc that says how much was asked for.
  CHECK_THROWS_AS(tg::empty({std::int64_t{1} << 50}), std::bad_alloc);
  CHECK_THROWS_WITH(tg::empty({std::int64_t{1} << 50}), Contains("[allocate] not enough memory: tried to allocate "
                                                                 "4503599627370496 bytes"));
}
