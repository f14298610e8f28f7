// Storage: one allocation of raw bytes shared by a tensor and all of its views, with the version
// counter that in-place writes bump (autograd uses it to detect a saved tensor modified before
// backward). Layer: core.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tg {

class Storage {
 public:
  explicit Storage(std::size_t nbytes);  // uninitialized, 64-byte aligned
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  std::size_t nbytes() const { return nbytes_; }
  std::uint64_t version() const { return version_; }
  void bump_version() { ++version_; }

 private:
  void* data_ = nullptr;
  std::size_t nbytes_ = 0;
  std::uint64_t version_ = 0;
};

}  // namespace tg
