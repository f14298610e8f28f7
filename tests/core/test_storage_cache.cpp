// The size-bucketed caching allocator behind Storage: size classes, reuse of freed blocks, the
// cache limit and empty_cache, read through cache_stats(). Each test empties the cache, sets the
// limit it needs and restores the previous one, so a sanitizer build (limit 0) runs them too.
// Tag [core].
#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#include "tapegrad/core/storage.h"
#include "tapegrad/core/native.h"

namespace {

constexpr std::size_t kKiB = 1024;

class CacheLimitGuard {
 public:
  explicit CacheLimitGuard(std::size_t limit) : saved_(tg::cache_limit()) {
    tg::empty_cache();
    tg::set_cache_limit(limit);
  }
  ~CacheLimitGuard() { tg::set_cache_limit(saved_); }
  CacheLimitGuard(const CacheLimitGuard&) = delete;
  CacheLimitGuard& operator=(const CacheLimitGuard&) = delete;

 private:
  std::size_t saved_;
};

tg::Tensor floats(std::int64_t n) { return tg::Tensor::empty({n}, tg::kFloat32); }

// allocated_bytes gained by holding a float32 tensor of n elements.
std::size_t class_of_floats(std::int64_t n) {
  const std::size_t before = tg::cache_stats().allocated_bytes;
  tg::Tensor t = floats(n);
  return tg::cache_stats().allocated_bytes - before;
}

}  // namespace

TEST_CASE("a storage holds its size class: 64-byte steps to 4 KiB, 8 classes per power of two, huge pages from 512 KiB", "[core]") {
  CacheLimitGuard guard(std::size_t{64} << 20);
  auto [elements, bytes] = GENERATE(table<std::int64_t, std::size_t>({
      {0, 64},  // an empty tensor still holds one block
      {1, 64},
      {16, 64},
      {17, 128},
      {1000, 4032},
      {1024, 4096},
      {1025, 4608},  // 4100 B: steps of 512 between 4 and 8 KiB
      {1152, 4608},
      {1153, 5120},
      {2048, 8192},
      {16384, 65536},
      {16385, 73728},  // steps of 8 KiB between 64 and 128 KiB
      {131071, 524288},  // steps of 32 KiB up to 512 KiB
      {131072, 2097152},  // from 512 KiB whole 2 MiB huge pages
      {550000, 4194304},
      {1048576, 4194304},
      {1048577, 6291456},
  }));
  CAPTURE(elements);
  CHECK(class_of_floats(elements) == bytes);
  CHECK(tg::storage_block_bytes(static_cast<std::size_t>(elements) * 4) == bytes);
}

TEST_CASE("a freed block waits in the cache and the next request of its class reuses it", "[core]") {
  CacheLimitGuard guard(std::size_t{64} << 20);
  const tg::CacheStats start = tg::cache_stats();
  REQUIRE(start.cached_bytes == 0);

  tg::Tensor a = floats(1100);  // 4400 B, class 4608
  float* block = a.data_ptr<float>();
  CHECK(tg::cache_stats().allocated_bytes == start.allocated_bytes + 4608);
  CHECK(tg::cache_stats().cached_bytes == 0);
  CHECK(reinterpret_cast<std::uintptr_t>(block) % 64 == 0);

  a = tg::Tensor();
  CHECK(tg::cache_stats().allocated_bytes == start.allocated_bytes);
  CHECK(tg::cache_stats().cached_bytes == 4608);

  tg::Tensor b = floats(1025);  // 4100 B, the same class
  CHECK(b.data_ptr<float>() == block);
  CHECK(tg::cache_stats().allocated_bytes == start.allocated_bytes + 4608);
  CHECK(tg::cache_stats().cached_bytes == 0);

  tg::Tensor c = floats(1025);  // the free list is empty again: a fresh block
  CHECK(c.data_ptr<float>() != block);
  CHECK(tg::cache_stats().allocated_bytes == start.allocated_bytes + 2 * 4608);

  tg::Tensor other = floats(1153);  // class 5120 does not take a 4608 block
  b = tg::Tensor();
  CHECK(tg::cache_stats().cached_bytes == 4608);
  tg::Tensor d = floats(1153);
  CHECK(d.data_ptr<float>() != block);
  CHECK(tg::cache_stats().cached_bytes == 4608);
  CHECK(tg::cache_stats().allocated_bytes == start.allocated_bytes + 4608 + 2 * 5120);
}

TEST_CASE("a block of 512 KiB or more starts on a 2 MiB boundary, for huge pages", "[core]") {
  CacheLimitGuard guard(0);  // fresh blocks from the system
  for (std::int64_t elements : {131072, 1000000}) {
    CAPTURE(elements);
    tg::Tensor t = floats(elements);
    CHECK(reinterpret_cast<std::uintptr_t>(t.data_ptr<float>()) % (std::uintptr_t{2} << 20) == 0);
  }
}

TEST_CASE("free lists are last in, first out", "[core]") {
  CacheLimitGuard guard(std::size_t{64} << 20);
  tg::Tensor a = floats(256), b = floats(256), c = floats(256);
  float* pa = a.data_ptr<float>();
  float* pb = b.data_ptr<float>();
  float* pc = c.data_ptr<float>();
  a = tg::Tensor();
  c = tg::Tensor();
  b = tg::Tensor();
  CHECK(tg::cache_stats().cached_bytes == 3 * 1024);
  CHECK(floats(256).data_ptr<float>() == pb);
  tg::Tensor x = floats(256), y = floats(256), z = floats(256);
  CHECK(x.data_ptr<float>() == pb);
  CHECK(y.data_ptr<float>() == pc);
  CHECK(z.data_ptr<float>() == pa);
  CHECK(tg::cache_stats().cached_bytes == 0);
}

TEST_CASE("empty_cache returns every idle block and leaves live storages alone", "[core]") {
  CacheLimitGuard guard(std::size_t{64} << 20);
  const std::size_t allocated0 = tg::cache_stats().allocated_bytes;
  tg::Tensor live = tg::full({100}, 3.0f);
  {
    std::vector<tg::Tensor> idle;
    for (std::int64_t n : {10, 1000, 1025, 16384, 16384, 550000}) idle.push_back(floats(n));
  }
  const std::size_t idle_bytes = 64 + 4032 + 4608 + 2 * 65536 + 4194304;
  CHECK(tg::cache_stats().cached_bytes == idle_bytes);
  CHECK(tg::cache_stats().allocated_bytes == allocated0 + 448);

  tg::empty_cache();
  CHECK(tg::cache_stats().cached_bytes == 0);
  CHECK(tg::cache_stats().allocated_bytes == allocated0 + 448);
  CHECK(live.to_vector<double>() == std::vector<double>(100, 3.0));
  tg::empty_cache();
  CHECK(tg::cache_stats().cached_bytes == 0);
}

TEST_CASE("the cache limit bounds the idle bytes; lowering it releases the excess at once", "[core]") {
  CacheLimitGuard guard(std::size_t{64} << 20);
  constexpr std::size_t kBlock = 64 * kKiB;  // 16384 floats
  {
    std::vector<tg::Tensor> blocks;
    for (int i = 0; i < 4; ++i) blocks.push_back(floats(16384));
  }
  REQUIRE(tg::cache_stats().cached_bytes == 4 * kBlock);

  tg::set_cache_limit(100000);
  CHECK(tg::cache_limit() == 100000);
  CHECK(tg::cache_stats().cached_bytes == kBlock);  // whole blocks go until at most 100000 stay

  const std::size_t allocated0 = tg::cache_stats().allocated_bytes;
  {
    tg::Tensor a = floats(16384), b = floats(16384);
    CHECK(tg::cache_stats().cached_bytes == 0);
    CHECK(tg::cache_stats().allocated_bytes == allocated0 + 2 * kBlock);
  }
  CHECK(tg::cache_stats().cached_bytes == kBlock);  // the second freed block did not fit
  CHECK(tg::cache_stats().allocated_bytes == allocated0);

  tg::set_cache_limit(2 * kBlock);  // a block that fits exactly is kept
  {
    tg::Tensor a = floats(16384), b = floats(16384);
  }
  CHECK(tg::cache_stats().cached_bytes == 2 * kBlock);

  tg::set_cache_limit(kBlock - 1);
  CHECK(tg::cache_limit() == kBlock - 1);
  CHECK(tg::cache_stats().cached_bytes == 0);
  {
    tg::Tensor small = floats(100);
  }
  CHECK(tg::cache_stats().cached_bytes == 448);
}

TEST_CASE("with the cache limit 0 a freed block goes straight back to the system", "[core]") {
  CacheLimitGuard guard(std::size_t{64} << 20);
  { tg::Tensor warm = floats(4096); }
  REQUIRE(tg::cache_stats().cached_bytes == 16384);

  tg::set_cache_limit(0);
  CHECK(tg::cache_limit() == 0);
  CHECK(tg::cache_stats().cached_bytes == 0);
  const std::size_t allocated0 = tg::cache_stats().allocated_bytes;
  for (std::int64_t n : {0, 1, 4096, 550000}) {
    tg::Tensor t = floats(n);
    CHECK(tg::cache_stats().allocated_bytes > allocated0);
    t = tg::Tensor();
    CHECK(tg::cache_stats().cached_bytes == 0);
    CHECK(tg::cache_stats().allocated_bytes == allocated0);
  }
}

TEST_CASE("a storage shared by views is released once, when the last view goes", "[core]") {
  CacheLimitGuard guard(std::size_t{64} << 20);
  const std::size_t allocated0 = tg::cache_stats().allocated_bytes;
  tg::Tensor base = floats(1000);
  tg::Tensor row = tg::native::select(tg::native::view(base, {10, 100}), 0, 3);
  base = tg::Tensor();
  CHECK(tg::cache_stats().allocated_bytes == allocated0 + 4032);
  CHECK(tg::cache_stats().cached_bytes == 0);
  row = tg::Tensor();
  CHECK(tg::cache_stats().allocated_bytes == allocated0);
  CHECK(tg::cache_stats().cached_bytes == 4032);
}

TEST_CASE("the cache keeps its counts under allocation from several threads", "[core]") {
  CacheLimitGuard guard(std::size_t{64} << 20);
  const std::size_t allocated0 = tg::cache_stats().allocated_bytes;
  std::vector<std::thread> threads;
  std::vector<double> sums(4, 0.0);
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([w, &sums] {
      for (int i = 0; i < 500; ++i) {
        tg::Tensor t = tg::full({64 + 64 * (i % 5)}, static_cast<float>(w));
        sums[w] += t.data_ptr<float>()[i % 64];
      }
    });
  }
  for (std::thread& t : threads) t.join();
  CHECK(sums == std::vector<double>{0, 500, 1000, 1500});
  CHECK(tg::cache_stats().allocated_bytes == allocated0);
  const std::size_t cached = tg::cache_stats().cached_bytes;
  CHECK(cached >= 256 + 512 + 768 + 1024 + 1280);  // every class was freed at least once
  CHECK(cached <= 4 * (256 + 512 + 768 + 1024 + 1280));
  CHECK(cached % 256 == 0);
}

TEST_CASE("sizes too large for a storage are refused, not wrapped around", "[core][errors]") {
  using Catch::Contains;
  // 2^62 float32 elements are 2^64 bytes: the byte count would wrap to 0.
  CHECK_THROWS_WITH(tg::Tensor::empty({std::int64_t{1} << 62}, tg::kFloat32),
                    Contains("[empty] shape [4611686018427387904] of float32 needs") &&
                        Contains("more than a storage can hold"));
  // 2^64 elements: the element count itself would wrap to 0.
  CHECK_THROWS_WITH(tg::Tensor::empty({std::int64_t{1} << 32, std::int64_t{1} << 32}, tg::kFloat32),
                    Contains("[numel] shape [4294967296, 4294967296] has more elements than an int64 counts"));
  CHECK_THROWS_AS(tg::Storage(SIZE_MAX - 100), std::bad_alloc);
  CHECK_THROWS_AS(tg::Storage(tg::kMaxStorageBytes + 1), std::bad_alloc);
  CHECK_THROWS_AS(tg::storage_block_bytes(tg::kMaxStorageBytes + 1), tg::OutOfMemoryError);
  CHECK_THROWS_AS(tg::storage_block_bytes(SIZE_MAX), tg::OutOfMemoryError);
  CHECK(tg::storage_block_bytes(tg::kMaxStorageBytes) == tg::kMaxStorageBytes);
  // A zero anywhere makes an empty tensor, however large the other sizes, as long as the strides
  // of its other dims fit in an int64.
  tg::Tensor none = tg::Tensor::empty({0, std::int64_t{1} << 30, std::int64_t{1} << 30}, tg::kFloat64);
  CHECK(none.numel() == 0);
  CHECK(none.strides() == tg::Shape({std::int64_t{1} << 60, std::int64_t{1} << 30, 1}));
  CHECK_THROWS_WITH(tg::Tensor::empty({0, std::int64_t{1} << 40, std::int64_t{1} << 40}, tg::kFloat64),
                    Contains("[strides] shape [0, 1099511627776, 1099511627776] has strides larger than an int64"));
}
