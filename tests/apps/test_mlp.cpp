// The mlp app (d2l's MLP with Adam, a cosine schedule and clipped gradients), run as a user runs
// it on a small Fashion-MNIST-shaped data set the test writes: the loss falls epoch after epoch,
// and bad input ends in one line and a non-zero exit. Tag [apps].
#include <catch2/catch.hpp>

#include "run_program.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>

#include <sys/wait.h>

#include "tapegrad.h"
#include "tests/support/files.h"

#ifdef TG_MLP_APP
using Catch::Contains;

namespace {

// Big-endian IDX: magic 0x0801 (labels) or 0x0803 (images), the dims, then the bytes.
void write_idx(const std::string& path, int kind, const std::vector<std::uint32_t>& dims,
               const std::vector<std::uint8_t>& data) {
  std::ofstream out(path, std::ios::binary);
  auto u32 = [&](std::uint32_t v) {
    char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
    out.write(b, 4);
  };
  u32(0x0800u | static_cast<std::uint32_t>(kind));
  for (std::uint32_t d : dims) u32(d);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

// Class k is a bright 8x4 block at its own place on faint noise (as test_lenet's Blocks).
void write_split(const std::string& dir, const std::string& prefix, std::uint32_t n, std::uint32_t seed) {
  std::vector<std::uint8_t> images(n * 784), labels(n);
  std::uint32_t state = seed;
  auto next = [&] { return state = state * 1664525u + 1013904223u; };
  for (std::uint32_t i = 0; i < n; ++i) {
    labels[i] = static_cast<std::uint8_t>((next() >> 16) % 10);
    for (std::uint32_t j = 0; j < 784; ++j) images[i * 784 + j] = static_cast<std::uint8_t>((next() >> 24) % 80);
    std::uint32_t r0 = (labels[i] / 5) * 12 + 2, c0 = (labels[i] % 5) * 5 + 1;
    for (std::uint32_t r = r0; r < r0 + 8; ++r)
      for (std::uint32_t c = c0; c < c0 + 4; ++c) images[i * 784 + r * 28 + c] = 250;
  }
  write_idx(dir + "/" + prefix + "-images-idx3-ubyte", 3, {n, 28, 28}, images);
  write_idx(dir + "/" + prefix + "-labels-idx1-ubyte", 1, {n}, labels);
}

std::pair<int, std::string> run_mlp(const std::string& args) {
  return run_program(TG_MLP_APP, args);
}

}  // namespace

TEST_CASE("the mlp app trains d2l's MLP with Adam, a cosine schedule and clipping: the loss falls", "[apps]") {
  std::string dir = tg_test::temp_path("mlp_data");
  std::filesystem::create_directories(dir);
  write_split(dir, "train", 512, 1);
  write_split(dir, "t10k", 128, 2);
  auto [code, out] = run_mlp("--data-dir " + dir + " --epochs 3 --batch-size 32 --lr 0.005 --max-norm 1 --threads 1");
  INFO(out);
  REQUIRE(code == 0);
  std::regex line(R"(epoch (\d)/3  loss ([0-9.]+)  train acc ([0-9.]+)  test acc ([0-9.]+)  grad norm ([0-9.]+)  lr (\S+))");
  std::vector<double> losses, test_acc, grad_norms;
  double last_lr = -1;
  for (std::sregex_iterator it(out.begin(), out.end(), line), end; it != end; ++it) {
    losses.push_back(std::stod((*it)[2]));
    test_acc.push_back(std::stod((*it)[4]));
    grad_norms.push_back(std::stod((*it)[5]));
    last_lr = std::stod((*it)[6]);
  }
  REQUIRE(losses.size() == 3);
  CHECK(losses[0] < 2.31);  // from about ln 10
  CHECK(losses[1] < losses[0]);
  CHECK(losses[2] < losses[1]);
  CHECK(losses[2] < 0.5 * losses[0]);
  CHECK(test_acc[2] > 0.9);
  CHECK(grad_norms[0] > 1.0);  // the first epoch's gradients were clipped (the norms are before clipping)
  CHECK(last_lr == 0.0);  // the cosine reaches eta_min = 0 at the last batch
  std::filesystem::remove_all(dir);
}

TEST_CASE("the mlp app turns bad input into one line and a non-zero exit", "[apps][errors]") {
  auto [code, out] = run_mlp("--data-dir /nonexistent/fashion --epochs 1");
  CHECK(code == 1);
  CHECK_THAT(out, Contains("mlp: [FashionMNIST]") && Contains("/nonexistent/fashion"));
  auto [bad_code, bad_out] = run_mlp("--epochs 0");
  CHECK(bad_code == 2);
  CHECK_THAT(bad_out, Contains("--epochs"));
}
#endif
