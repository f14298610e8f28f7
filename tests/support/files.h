// Files for tests: a temporary directory removed at scope exit, whole-file reads and writes, and
// IDX files. Header-only, shared by every test binary and the fuzz harnesses.
#pragma once

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace tg_test {

// A fresh directory under the system's temp dir, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("tapegrad_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

// A path for `name` in a directory of this process's own, removed when the process exits: test
// binaries of several build trees (or CTest -j) running at once never share a file.
inline std::string temp_path(const std::string& name) {
  static const TempDir dir;
  return dir.file(name);
}

// Returns false when the file cannot be written.
inline bool write_raw(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return out.good();
}

inline std::string read_raw(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// An IDX file: magic, sizes (big-endian), payload.
inline std::string idx_bytes(std::uint32_t magic, const std::vector<std::uint32_t>& dims,
                             const std::vector<std::uint8_t>& data) {
  std::string out;
  auto put_u32 = [&out](std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xFF));
  };
  put_u32(magic);
  for (std::uint32_t d : dims) put_u32(d);
  out.append(data.begin(), data.end());
  return out;
}

}  // namespace tg_test
