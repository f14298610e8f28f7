// What the libFuzzer harnesses share: the input as a file that the readers open by path (an
// in-memory file, /proc/self/fd/N: no disk traffic), and the check that turns a broken promise
// into a finding. Layer: tests (fuzz).
#pragma once

#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tapegrad/layers/module.h"
#include "tests/support/files.h"

namespace tg_fuzz {

// One in-memory file, rewritten for every input.
class MemFile {
 public:
  explicit MemFile(const char* name) : fd_(::memfd_create(name, 0)) {
    if (fd_ < 0) std::abort();
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  const std::string& path() const { return path_; }
  // Replaces the contents.
  void write(const std::uint8_t* data, std::size_t size) const {
    if (::ftruncate(fd_, 0) != 0 || ::lseek(fd_, 0, SEEK_SET) != 0) std::abort();
    for (std::size_t done = 0; done < size;) {
      const ssize_t n = ::write(fd_, data + done, size - done);
      if (n <= 0) std::abort();
      done += static_cast<std::size_t>(n);
    }
  }
  void write(const std::string& bytes) const {
    write(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  }

 private:
  int fd_;
  std::string path_;
};

// Every tensor's name, dtype, shape and bytes, in name order: equal fingerprints, equal states.
inline std::string fingerprint(tg::nn::NamedTensors tensors) {
  std::sort(tensors.begin(), tensors.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string out;
  for (const auto& [name, t] : tensors) {
    out += fmt::format("{} {} {}:", name, tg::dtype_name(t.dtype()), t.sizes());
    const tg::Tensor c = t.contiguous();
    out.append(static_cast<const char*>(c.raw_data()), static_cast<std::size_t>(c.numel()) * tg::itemsize(c.dtype()));
  }
  return out;
}

// `bytes` as a gzip member (what gzip(1) writes).
inline std::string gzip(const std::string& bytes) {
  z_stream z{};
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) std::abort();
  std::string out(deflateBound(&z, bytes.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  z.avail_in = static_cast<uInt>(bytes.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) std::abort();
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// An IDX file of `payload` (tests/support/files.h's, from a string).
inline std::string idx(std::uint32_t magic, const std::vector<std::uint32_t>& dims, const std::string& payload) {
  return tg_test::idx_bytes(magic, dims, std::vector<std::uint8_t>(payload.begin(), payload.end()));
}

inline void write_file(const std::string& path, const std::string& bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size() || std::fclose(f) != 0) std::abort();
}

// Seeds come from the code they fuzz: started with TG_FUZZ_WRITE_SEEDS=<dir> in the environment, a
// harness's LLVMFuzzerInitialize calls its writer with that directory and exits (scripts/fuzz
// --seeds regenerates tests/fuzz/corpus/ so).
template <class Writer>
void write_seeds_if_asked(Writer writer) {
  const char* dir = std::getenv("TG_FUZZ_WRITE_SEEDS");
  if (dir == nullptr) return;
  writer(std::string(dir) + "/");
  std::exit(0);
}

// A property the library promises (a failed load changes nothing, a saved file loads back):
// when it does not hold, report it as libFuzzer reports a crash.
#define TG_FUZZ_EXPECT(cond)                                                                \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "tapegrad fuzz: expectation failed at %s:%d: %s\n", __FILE__,  \
                   __LINE__, #cond);                                                        \
      std::abort();                                                                         \
    }                                                                                       \
  } while (0)

}  // namespace tg_fuzz
