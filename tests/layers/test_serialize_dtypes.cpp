// safetensors element types beyond tapegrad's own: F16 and BF16 entries load converted to
// float32 (exactly, hand-checked bit patterns, subnormals, infinities and NaN included), and
// any other dtype is refused by name, not as a malformed file. Tags [layers] [errors].
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "tapegrad.h"
#include "tests/support/files.h"

using Catch::Contains;
namespace nn = tg::nn;

namespace {

using tg_test::temp_path;

// A safetensors file of one entry: `dtype`, `shape`, and the raw 16-bit words as its data.
void write_u16_file(const std::string& path, const std::string& dtype, const std::string& shape,
                    const std::vector<std::uint16_t>& words) {
  const std::string header = "{\"x\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[0," +
                             std::to_string(2 * words.size()) + "]}}";
  const std::uint64_t n = header.size();
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(&n), 8);
  out.write(header.data(), static_cast<std::streamsize>(n));
  out.write(reinterpret_cast<const char*>(words.data()), static_cast<std::streamsize>(2 * words.size()));
}

}  // namespace

TEST_CASE("F16 and BF16 safetensors entries load as float32", "[layers]") {
  const std::string path = temp_path("half.safetensors");
  // 1, -2, 65504 (the largest half), 2^-24 (the smallest subnormal), 0x03ff (the largest
  // subnormal), 2^-14 (the smallest normal), +inf, -0, 0.333251953125 (nearest half to 1/3)
  write_u16_file(path, "F16", "[3,3]", {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x03FF, 0x0400, 0x7C00, 0x8000, 0x3555});
  tg::nn::NamedTensors t = tg::load_tensors(path);
  REQUIRE(t.size() == 1);
  CHECK(t[0].second.dtype() == tg::kFloat32);
  CHECK(t[0].second.sizes() == tg::Shape{3, 3});
  const std::vector<double> half = t[0].second.to_vector<double>();
  CHECK(half == std::vector<double>{1, -2, 65504, std::ldexp(1.0, -24), 1023 * std::ldexp(1.0, -24),
                                     std::ldexp(1.0, -14), std::numeric_limits<double>::infinity(), 0.0,
                                     0.333251953125});
  CHECK(std::signbit(half[7]));
  write_u16_file(path, "F16", "[1]", {0x7E00});
  CHECK(std::isnan(tg::load_tensors(path)[0].second.item<double>()));

  // bfloat16: a float's upper half. 1, 3.140625, -123.5, 2^-133 (a subnormal), -inf
  write_u16_file(path, "BF16", "[5]", {0x3F80, 0x4049, 0xC2F7, 0x0001, 0xFF80});
  const std::vector<double> bf = tg::load_tensors(path)[0].second.to_vector<double>();
  CHECK(bf == std::vector<double>{1, 3.140625, -123.5, std::ldexp(1.0, -133),
                                   -std::numeric_limits<double>::infinity()});

  // into a module: a float32 model takes a float16 checkpoint
  write_u16_file(path, "F16", "[2]", {0x3800, 0xB400});  // 0.5, -0.25
  struct Holder : nn::Module {
    Holder() { x = register_parameter("x", tg::zeros({2})); }
    tg::Tensor x;
  } holder;
  tg::load(holder, path);
  CHECK(holder.x.to_vector<double>() == std::vector<double>{0.5, -0.25});
  std::filesystem::remove(path);
}

TEST_CASE("uint8 tensors are safetensors U8 entries, both ways", "[layers]") {
  const std::string path = temp_path("u8.safetensors");
  write_u16_file(path, "U8", "[2, 2]", {0xc801, 0x00ff});  // the bytes 1, 200, 255, 0
  const tg::nn::NamedTensors loaded = tg::load_tensors(path);
  REQUIRE(loaded.size() == 1);
  CHECK(loaded[0].second.dtype() == tg::kUInt8);
  CHECK(loaded[0].second.sizes() == tg::Shape{2, 2});
  CHECK(loaded[0].second.to_vector<std::uint8_t>() == std::vector<std::uint8_t>{1, 200, 255, 0});

  const tg::Tensor bytes = tg::tensor(std::vector<std::uint8_t>{9, 0, 255, 128, 7, 1}, {2, 3}).t();  // not contiguous
  tg::save_tensors({{"bytes", bytes}}, path);
  std::ifstream in(path, std::ios::binary);
  const std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK_THAT(file, Contains("\"bytes\":{\"dtype\":\"U8\",\"shape\":[3,2],\"data_offsets\":[0,6]}"));
  CHECK(file.substr(file.size() - 6) == std::string("\x09\x80\x00\x07\xff\x01", 6));
  const tg::Tensor back = tg::load_tensors(path)[0].second;
  CHECK(back.dtype() == tg::kUInt8);
  CHECK(back.to_vector<std::uint8_t>() == bytes.to_vector<std::uint8_t>());
  std::filesystem::remove(path);
}

TEST_CASE("other safetensors dtypes are refused by name", "[layers][errors]") {
  const std::string path = temp_path("other.safetensors");
  for (const std::string dtype : {"I32", "I8", "BOOL", "F8_E4M3"}) {
    INFO(dtype);
    write_u16_file(path, dtype, "[2]", {1, 2});
    CHECK_THROWS_WITH(tg::load_tensors(path), "[load] '" + path + "': unsupported dtype " + dtype +
                                                  " for \"x\" (tapegrad reads F32, F64, I64, U8, and F16 and BF16 "
                                                  "as float32)");
  }
  // a known dtype with a malformed shape is still a malformed entry
  write_u16_file(path, "F16", "\"two\"", {1, 2});
  CHECK_THROWS_WITH(tg::load_tensors(path), Contains("malformed entry for \"x\""));
  std::filesystem::remove(path);
}
