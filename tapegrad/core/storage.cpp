// Storage allocation through a size-bucketed cache (PyTorch's CUDA caching allocator, for host
// memory and without block splitting). Requests are rounded up to a size class; a freed block
// goes onto its class's free list, last in first out so the next request gets the warmest block.
// Without it every step of a training loop maps and unmaps its multi-megabyte buffers (glibc
// serves them with mmap) and the kernel zeroes every page again: ~15% of a LeNet step.
// Blocks of 512 KiB and more are whole 2 MiB pages, 2 MiB-aligned, which the kernel is asked to back
// with transparent huge pages (MADV_HUGEPAGE, which THP's common `madvise` mode waits for). A training
// step streams its activations through memory a dozen times, and with 4 KiB pages every 4 KiB of
// such a pass misses the TLB: LeNet-BN's training step ran 1-2% faster with huge pages (medians of
// 8-10 alternating pairs), its peak RSS 25 -> 32 MB.
// Layer: core.
#include "tapegrad/core/storage.h"

#include <bit>
#include <cstdlib>
#include <mutex>
#include <new>
#if defined(__linux__)
#include <sys/mman.h>
#endif
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

namespace tg {

namespace {

constexpr std::size_t kAlign = 64;
constexpr std::size_t kSmall = 4096;
constexpr std::size_t kHugePage = std::size_t{2} << 20;
constexpr std::size_t kHugeFrom = std::size_t{512} << 10;  // smaller blocks would waste most of a page

// Address sanitizer builds keep no cache by default: a reused block would hide use-after-free.
#if defined(__SANITIZE_ADDRESS__)
constexpr std::size_t kDefaultLimit = 0;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr std::size_t kDefaultLimit = 0;
#else
constexpr std::size_t kDefaultLimit = std::size_t{256} << 20;
#endif
#else
constexpr std::size_t kDefaultLimit = std::size_t{256} << 20;
#endif

// Multiples of 64 bytes up to 4 KiB, then 8 classes per power of two (a block at most 12.5% larger
// than asked, and sizes that differ by less than that share blocks), and from kHugeFrom whole huge
// pages.
std::size_t size_class(std::size_t n) {
  if (n <= kSmall) return n == 0 ? kAlign : (n + kAlign - 1) / kAlign * kAlign;
  if (n >= kHugeFrom) return (n + kHugePage - 1) / kHugePage * kHugePage;
  const int p = std::bit_width(n - 1);  // 2^(p-1) < n <= 2^p, p > 12
  const std::size_t step = std::size_t{1} << (p - 4);
  return (n + step - 1) / step * step;
}

struct Cache {
  std::mutex mu;
  std::unordered_map<std::size_t, std::vector<void*>> free_lists;  // by size class
  std::size_t cached = 0, allocated = 0, limit = kDefaultLimit;
  std::uint64_t system_allocations = 0;

  // Frees idle blocks until at most `keep` bytes stay cached. Called with mu held.
  void trim(std::size_t keep) {
    for (auto it = free_lists.begin(); it != free_lists.end() && cached > keep; ++it) {
      std::vector<void*>& blocks = it->second;
      while (!blocks.empty() && cached > keep) {
        std::free(blocks.back());
        blocks.pop_back();
        cached -= it->first;
      }
    }
  }
};

// Never destroyed: storages held by static tensors are released after static destructors run.
Cache& cache() {
  static Cache* c = new Cache();
  return *c;
}

// A block of size class cls from the system (null when there is no memory). Classes from kHugeFrom
// are whole huge pages; every class below is at most kHugeFrom, so one comparison tells them apart.
void* system_allocate(std::size_t cls) {
  if (cls < kHugePage) return std::aligned_alloc(kAlign, cls);
  void* p = std::aligned_alloc(kHugePage, cls);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (p) madvise(p, cls, MADV_HUGEPAGE);  // advice only: without THP the pages stay 4 KiB
#endif
  return p;
}

void* allocate(std::size_t nbytes) {
  if (nbytes > kMaxStorageBytes) throw OutOfMemoryError(nbytes);
  const std::size_t cls = size_class(nbytes);
  Cache& c = cache();
  {
    std::lock_guard lock(c.mu);
    auto it = c.free_lists.find(cls);
    if (it != c.free_lists.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.cached -= cls;
      c.allocated += cls;
      return p;
    }
  }
  void* p = system_allocate(cls);
  if (!p) {
    empty_cache();
    p = system_allocate(cls);
    if (!p) throw OutOfMemoryError(nbytes);
  }
  std::lock_guard lock(c.mu);
  c.allocated += cls;
  ++c.system_allocations;
  return p;
}

void release(void* p, std::size_t nbytes) {
  const std::size_t cls = size_class(nbytes);
  Cache& c = cache();
  {
    std::lock_guard lock(c.mu);
    c.allocated -= cls;
    if (c.cached + cls <= c.limit) {
      try {
        c.free_lists[cls].push_back(p);
        c.cached += cls;
        return;
      } catch (const std::bad_alloc&) {  // no room to list it: hand it back instead
      }
    }
  }
  std::free(p);
}

}  // namespace

OutOfMemoryError::OutOfMemoryError(std::size_t nbytes)
    : nbytes_(nbytes),
      message_(fmt::format("[allocate] not enough memory: tried to allocate {} bytes ({:.1f} GiB) for a tensor",
                           nbytes, static_cast<double>(nbytes) / (1 << 30))) {}

Storage::Storage(std::size_t nbytes) : data_(allocate(nbytes)), nbytes_(nbytes) {}

Storage::~Storage() { release(data_, nbytes_); }

std::size_t storage_block_bytes(std::size_t nbytes) {
  if (nbytes > kMaxStorageBytes) throw OutOfMemoryError(nbytes);  // no such storage; its class would wrap
  return size_class(nbytes);
}

CacheStats cache_stats() {
  Cache& c = cache();
  std::lock_guard lock(c.mu);
  return {c.cached, c.allocated, c.system_allocations};
}

void empty_cache() {
  Cache& c = cache();
  std::lock_guard lock(c.mu);
  c.trim(0);
}

void set_cache_limit(std::size_t bytes) {
  Cache& c = cache();
  std::lock_guard lock(c.mu);
  c.limit = bytes;
  c.trim(bytes);
}

std::size_t cache_limit() {
  Cache& c = cache();
  std::lock_guard lock(c.mu);
  return c.limit;
}

}  // namespace tg
