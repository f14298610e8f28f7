// safetensors reading and writing (nlohmann-json for the header). Layer: layers.
#include "tapegrad/layers/serialize.h"

#include <sys/stat.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>

#include "tapegrad/autograd/tape.h"
#include "tapegrad/core/atomic_file.h"
#include "tapegrad/core/native.h"

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace tg {

namespace {

const char* st_dtype(DType d) { return d == kFloat32 ? "F32" : d == kFloat64 ? "F64" : d == kInt64 ? "I64" : "U8"; }

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
  else if (s == "U8") t = {kUInt8, 1, StoredType::Same};
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

// The whole file. Through stdio, not streams: an ifstream on a directory opens, then throws
// std::ios_base::failure from its first read.
std::string read_file(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  TG_CHECK(f != nullptr, "[load] cannot open '{}': {}", path, std::strerror(errno));
  struct stat st {};
  TG_CHECK(::fstat(fileno(f.get()), &st) == 0 && !S_ISDIR(st.st_mode), "[load] cannot read '{}': {}", path,
           S_ISDIR(st.st_mode) ? "it is a directory" : std::strerror(errno));
  std::string bytes;
  if (S_ISREG(st.st_mode)) bytes.reserve(static_cast<std::size_t>(st.st_size));
  char buffer[1 << 16];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, f.get())) > 0;) bytes.append(buffer, n);
  TG_CHECK(!std::ferror(f.get()), "[load] cannot read '{}': {}", path, std::strerror(errno));
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
  std::string h;
  try {
    h = header.dump();
  } catch (const nlohmann::json::exception& e) {  // a name or metadata that is not UTF-8
    TG_CHECK(false, "[save] cannot write '{}': the names and metadata must be UTF-8 text ({})", path, e.what());
  }
  h.append((8 - h.size() % 8) % 8, ' ');  // data starts 8-byte aligned
  std::uint64_t hlen = h.size();

  std::vector<std::string_view> pieces = {std::string_view(reinterpret_cast<const char*>(&hlen), 8), h};
  for (const Tensor& c : data)
    pieces.emplace_back(static_cast<const char*>(c.raw_data()),
                        static_cast<std::size_t>(c.numel()) * itemsize(c.dtype()));
  write_file_atomically(path, pieces, "save");
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
             "[load] '{}': unsupported dtype {} for \"{}\" (tapegrad reads F32, F64, I64, U8, and F16 and BF16 "
             "as float32)", path, has_dtype ? e["dtype"].get<std::string>() : "", entry.name);
    bool ok = has_dtype && e.contains("shape") &&
              e["shape"].is_array() && e.contains("data_offsets") && e["data_offsets"].is_array() &&
              e["data_offsets"].size() == 2 && e["data_offsets"][0].is_number_unsigned() &&
              e["data_offsets"][1].is_number_unsigned();
    // Sizes and byte counts in uint64 as the file has them: a size above int64's range or a
    // product that overflows is refused quoting the file's numbers, never wrapped around.
    std::vector<std::uint64_t> dims;
    std::uint64_t need = entry.type.bytes;
    bool fits = true;
    if (ok) {
      for (const auto& s : e["shape"]) {
        ok = ok && s.is_number_unsigned();
        if (ok) dims.push_back(s.get<std::uint64_t>());
      }
      entry.begin = e["data_offsets"][0].get<std::size_t>();
      entry.end = e["data_offsets"][1].get<std::size_t>();
    }
    TG_CHECK(ok, "[load] '{}' has a malformed entry for \"{}\" (needs dtype, shape, data_offsets)", path,
             entry.name);
    const bool is_empty = std::find(dims.begin(), dims.end(), 0) != dims.end();
    for (std::uint64_t d : dims) {
      fits = fits && d <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
      if (!is_empty) fits = fits && !__builtin_mul_overflow(need, d, &need);
      entry.shape.push_back(static_cast<std::int64_t>(d));
    }
    if (is_empty) need = 0;
    TG_CHECK(fits && need <= kMaxStorageBytes,
             "[load] '{}' is corrupt: \"{}\" has shape [{}] of {}, more bytes than a tensor can hold", path,
             entry.name, fmt::join(dims, ", "), e["dtype"].get<std::string>());
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
  for (const auto& entry : targets) {  // not a structured binding: clang 14 cannot capture one in a lambda
    const auto& [name, target] = entry;
    auto it = std::find_if(checkpoint.begin(), checkpoint.end(), [&](const auto& e) { return e.first == entry.first; });
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
  for (const auto& entry : checkpoint)
    if (std::none_of(targets.begin(), targets.end(), [&](const auto& e) { return e.first == entry.first; }))
      unexpected.push_back(entry.first);
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
