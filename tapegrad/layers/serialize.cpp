// safetensors reading and writing (nlohmann-json for the header). Layer: layers.
#include "tapegrad/layers/serialize.h"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tapegrad/autograd/tape.h"
#include "tapegrad/core/native.h"

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace tg {

namespace {

const char* st_dtype(DType d) { return d == kFloat32 ? "F32" : d == kFloat64 ? "F64" : "I64"; }

// A stored element type: the dtype it loads as, its size in the file, and whether it is F16 or
// BF16 (loaded converted to float32, exactly: every half and bfloat16 value is a float).
struct StoredType {
  DType dtype;
  std::size_t bytes;
  enum { Same, Half, BFloat16 } convert;
};

bool parse_dtype(const std::string& s, StoredType& t) {
  if (s == "F32") t = {kFloat32, 4, StoredType::Same};
  else if (s == "F64") t = {kFloat64, 8, StoredType::Same};
  else if (s == "I64") t = {kInt64, 8, StoredType::Same};
  else if (s == "F16") t = {kFloat32, 2, StoredType::Half};
  else if (s == "BF16") t = {kFloat32, 2, StoredType::BFloat16};
  else return false;
  return true;
}

// IEEE half (1 sign, 5 exponent, 10 mantissa bits) to float: rebias the exponent (15 -> 127);
// subnormals are mantissa · 2^-24; infinities and NaNs keep their payload.
float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
  if (exponent == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  if (exponent == 0) {
    const float v = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -v : v;
  }
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

// bfloat16 is a float's upper 16 bits.
float bfloat16_to_float(std::uint16_t b) { return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16); }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  TG_CHECK(in.good(), "[load] cannot open '{}': {}", path, std::strerror(errno));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  TG_CHECK(!in.bad(), "[load] cannot read '{}'", path);
  return bytes;
}

}  // namespace

void save_tensors(const nn::NamedTensors& tensors, const std::string& path, const Metadata& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<Tensor> data;
  std::size_t offset = 0;
  for (const auto& [name, t] : tensors) {
    TG_CHECK(!name.empty() && name != "__metadata__" && !header.contains(name),
             "[save] invalid or repeated tensor name \"{}\"", name);
    Tensor c = native::contiguous(t);
    std::size_t n = static_cast<std::size_t>(c.numel()) * itemsize(c.dtype());
    header[name] = {{"dtype", st_dtype(c.dtype())}, {"shape", c.sizes()}, {"data_offsets", {offset, offset + n}}};
    offset += n;
    data.push_back(c);
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // data starts 8-byte aligned
  std::uint64_t hlen = h.size();

  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  TG_CHECK(f != nullptr, "[save] cannot write '{}': {}", tmp, std::strerror(errno));
  bool ok = std::fwrite(&hlen, 8, 1, f) == 1 && std::fwrite(h.data(), 1, h.size(), f) == h.size();
  for (const Tensor& c : data) {
    std::size_t n = static_cast<std::size_t>(c.numel()) * itemsize(c.dtype());
    ok = ok && (n == 0 || std::fwrite(c.raw_data(), 1, n, f) == n);
  }
  ok = ok && std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) {
    std::remove(tmp.c_str());
    TG_CHECK(false, "[save] writing '{}' failed: {}", path, std::strerror(errno));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    TG_CHECK(false, "[save] cannot move the checkpoint into place at '{}': {}", path, ec.message());
  }
}

nn::NamedTensors load_tensors(const std::string& path, Metadata* metadata) {
  std::string bytes = read_file(path);
  TG_CHECK(bytes.size() >= 8, "[load] '{}' is truncated: {} bytes, not even a safetensors header length", path,
           bytes.size());
  std::uint64_t hlen = 0;
  std::memcpy(&hlen, bytes.data(), 8);
  TG_CHECK(hlen <= bytes.size() - 8, "[load] '{}' is truncated or not a safetensors file: header of {} bytes, file "
           "of {} bytes", path, hlen, bytes.size());
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(hlen));
  } catch (const nlohmann::json::exception& e) {
    TG_CHECK(false, "[load] '{}' has a malformed safetensors header: {}", path, e.what());
  }
  TG_CHECK(header.is_object(), "[load] '{}' has a malformed safetensors header: not a JSON object", path);
  std::size_t data_size = bytes.size() - 8 - hlen;
  const char* data = bytes.data() + 8 + hlen;

  struct Entry {
    std::string name;
    StoredType type;
    Shape shape;
    std::size_t begin, end;
  };
  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (metadata && it->is_object())
        for (auto m = it->begin(); m != it->end(); ++m)
          if (m->is_string()) (*metadata)[m.key()] = m->get<std::string>();
      continue;
    }
    const nlohmann::json& e = *it;
    Entry entry{it.key(), {}, {}, 0, 0};
    const bool has_dtype = e.is_object() && e.contains("dtype") && e["dtype"].is_string();
    TG_CHECK(!has_dtype || parse_dtype(e["dtype"].get<std::string>(), entry.type),
             "[load] '{}': unsupported dtype {} for \"{}\" (tapegrad reads F32, F64, I64, and F16 and BF16 as "
             "float32)", path, has_dtype ? e["dtype"].get<std::string>() : "", entry.name);
    bool ok = has_dtype && e.contains("shape") &&
              e["shape"].is_array() && e.contains("data_offsets") && e["data_offsets"].is_array() &&
              e["data_offsets"].size() == 2 && e["data_offsets"][0].is_number_unsigned() &&
              e["data_offsets"][1].is_number_unsigned();
    if (ok) {
      for (const auto& s : e["shape"]) {
        ok = ok && s.is_number_unsigned();
        if (ok) entry.shape.push_back(s.get<std::int64_t>());
      }
      entry.begin = e["data_offsets"][0].get<std::size_t>();
      entry.end = e["data_offsets"][1].get<std::size_t>();
    }
    TG_CHECK(ok, "[load] '{}' has a malformed entry for \"{}\" (needs dtype, shape, data_offsets)", path,
             entry.name);
    std::size_t need = static_cast<std::size_t>(numel_of(entry.shape)) * entry.type.bytes;
    TG_CHECK(entry.begin <= entry.end && entry.end <= data_size && entry.end - entry.begin == need,
             "[load] '{}' is truncated or corrupt: \"{}\" needs bytes [{}, {}) of {} data bytes ({} expected)", path,
             entry.name, entry.begin, entry.end, data_size, need);
    entries.push_back(std::move(entry));
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  nn::NamedTensors out;
  for (const Entry& e : entries) {
    Tensor t = empty(e.shape, e.type.dtype);
    if (e.type.convert == StoredType::Same) {
      if (e.end > e.begin) std::memcpy(t.raw_data(), data + e.begin, e.end - e.begin);
    } else {
      float* out_values = t.data_ptr<float>();
      for (std::int64_t i = 0; i < t.numel(); ++i) {
        std::uint16_t bits;
        std::memcpy(&bits, data + e.begin + 2 * static_cast<std::size_t>(i), 2);
        out_values[i] = e.type.convert == StoredType::Half ? half_to_float(bits) : bfloat16_to_float(bits);
      }
    }
    out.emplace_back(e.name, t);
  }
  return out;
}

IncompatibleKeys load_into(const nn::NamedTensors& targets, const nn::NamedTensors& checkpoint,
                           const std::string& path, LoadOptions options) {
  std::vector<std::string> problems, missing, unexpected;
  std::vector<std::pair<Tensor, Tensor>> copies;
  for (const auto& [name, target] : targets) {
    auto it = std::find_if(checkpoint.begin(), checkpoint.end(), [&](const auto& e) { return e.first == name; });
    if (it == checkpoint.end()) {
      missing.push_back(name);
      continue;
    }
    const Tensor& src = it->second;
    if (src.sizes() != target.sizes())
      problems.push_back(fmt::format("{}: checkpoint {}, model {}", name, src.sizes(), target.sizes()));
    else if (src.dtype() != target.dtype())
      problems.push_back(fmt::format("{}: checkpoint {} {}, model {} {}", name, src.sizes(), dtype_name(src.dtype()),
                                     target.sizes(), dtype_name(target.dtype())));
    else copies.emplace_back(target, src);
  }
  for (const auto& [name, _] : checkpoint)
    if (std::none_of(targets.begin(), targets.end(), [&](const auto& e) { return e.first == name; }))
      unexpected.push_back(name);
  if (options.strict && !missing.empty())
    problems.push_back(fmt::format("missing keys: {}", fmt::join(missing, ", ")));
  if (options.strict && !unexpected.empty())
    problems.push_back(fmt::format("unexpected keys: {}", fmt::join(unexpected, ", ")));
  TG_CHECK(problems.empty(), "[load] '{}' does not fit the model: {}", path, fmt::join(problems, "; "));
  NoGradGuard no_grad;
  for (auto& [target, src] : copies) native::copy_(target, src);
  if (options.strict) return {};
  return {std::move(missing), std::move(unexpected)};
}

void save(const nn::Module& module, const std::string& path) { save_tensors(module.state_dict(), path); }

IncompatibleKeys load(nn::Module& module, const std::string& path, LoadOptions options) {
  return load_into(module.state_dict(), load_tensors(path), path, options);
}

}  // namespace tg
