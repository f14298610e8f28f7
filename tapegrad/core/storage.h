// Storage: one allocation of raw bytes shared by a tensor and all of its views, with the version
// counter that in-place writes bump (autograd uses it to detect a saved tensor modified before
// backward). Layer: core. Memory comes from a size-bucketed cache: a freed block waits on the
// free list of its size class for the next request of that class, so a training step that
// repeats the previous step's shapes neither calls the system allocator nor faults in pages.
// Blocks of 512 KiB and more are whole 2 MiB pages, 2 MiB-aligned, offered to the kernel for
// transparent huge pages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <string>

namespace tg {

// The largest storage: requests above it throw OutOfMemoryError (no machine has that much memory,
// and size arithmetic on larger counts could wrap around).
inline constexpr std::size_t kMaxStorageBytes = std::size_t{1} << 62;

// A storage the system could not allocate. A std::bad_alloc (code that catches that still does)
// whose what() says how many bytes were asked for.
class OutOfMemoryError : public std::bad_alloc {
 public:
  explicit OutOfMemoryError(std::size_t nbytes);
  const char* what() const noexcept override { return message_.c_str(); }
  std::size_t nbytes() const { return nbytes_; }

 private:
  std::size_t nbytes_;
  std::string message_;
};

class Storage {
 public:
  // Uninitialized, 64-byte aligned; throws OutOfMemoryError above kMaxStorageBytes or when the system
  // has no memory for it.
  explicit Storage(std::size_t nbytes);
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

// The cache behind Storage. Idle (freed, not yet reused) bytes are kept up to a limit; a block
// freed beyond it goes back to the system. Thread-safe.
struct CacheStats {
  std::size_t cached_bytes = 0;     // idle, on the free lists
  std::size_t allocated_bytes = 0;  // held by live storages (rounded to their size class)
  std::uint64_t system_allocations = 0;  // blocks taken from the system (no idle block fit), ever
};
CacheStats cache_stats();
// The bytes a storage of nbytes holds: its size class (allocated_bytes counts these). Throws
// OutOfMemoryError above kMaxStorageBytes, as a Storage of that size would.
std::size_t storage_block_bytes(std::size_t nbytes);
// Returns every idle block to the system (PyTorch's torch.cuda.empty_cache, for host memory).
void empty_cache();
// The most idle bytes kept (default 256 MiB); lowering it releases the excess now. 0 disables caching.
void set_cache_limit(std::size_t bytes);
std::size_t cache_limit();

}  // namespace tg
