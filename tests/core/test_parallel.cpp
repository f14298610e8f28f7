// The kernel thread pool: every index runs exactly once, chunks are the same for the same thread
// count, exceptions reach the caller, nested calls run serially, the thread count can change.
// Tag [core].
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "tapegrad/core/native.h"
#include "tapegrad/core/parallel.h"

TEST_CASE("parallel_for covers every index once and splits deterministically", "[core]") {
  int before = tg::get_num_threads();
  for (int threads : {1, 2, 3}) {
    tg::set_num_threads(threads);
    CHECK(tg::get_num_threads() == threads);
    for (std::int64_t n : {1, 2, 7, 1000, 100003}) {
      std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
      std::vector<std::pair<std::int64_t, std::int64_t>> chunks1, chunks2;
      std::mutex m;
      auto body = [&](std::vector<std::pair<std::int64_t, std::int64_t>>& log) {
        return [&](std::int64_t lo, std::int64_t hi) {
          for (std::int64_t i = lo; i < hi; ++i) hits[static_cast<std::size_t>(i)]++;
          std::lock_guard<std::mutex> lock(m);
          log.emplace_back(lo, hi);
        };
      };
      tg::parallel_for(0, n, n, body(chunks1), 1);
      tg::parallel_for(0, n, n, body(chunks2), 1);
      for (auto& h : hits) REQUIRE(h.load() == 2);
      std::sort(chunks1.begin(), chunks1.end());
      std::sort(chunks2.begin(), chunks2.end());
      CHECK(chunks1 == chunks2);
      CHECK(chunks1.size() <= static_cast<std::size_t>(4 * threads));
    }
  }
  tg::set_num_threads(2);
  // Catch2 v2's assertions are not thread-safe: the bodies only count, the caller checks.
  std::atomic<int> bodies{0}, outside_region{0}, nested_serial{0}, nested_split{0};
  tg::parallel_for(0, 4, 1 << 20, [&](std::int64_t, std::int64_t) {
    ++bodies;
    if (!tg::in_parallel_region()) ++outside_region;
    int calls = 0;
    tg::parallel_for(0, 100, 1 << 20, [&](std::int64_t lo, std::int64_t hi) {
      ++calls;
      if (lo != 0 || hi != 100) ++nested_split;
    });
    if (calls == 1) nested_serial++;
  });
  CHECK(bodies.load() >= 1);
  CHECK(outside_region.load() == 0);
  CHECK(nested_split.load() == 0);
  CHECK(nested_serial.load() == bodies.load());
  CHECK(!tg::in_parallel_region());
  CHECK_THROWS_WITH(tg::parallel_for(0, 64, 1 << 20,
                                     [](std::int64_t lo, std::int64_t) {
                                       if (lo == 0) throw tg::Error("[test] boom");
                                     }),
                    "[test] boom");
  CHECK_THROWS_WITH(tg::set_num_threads(0), Catch::Contains("[set_num_threads]"));
  tg::set_num_threads(before);
}

TEST_CASE("parallel_for: a thread that finishes its own share takes the chunks of a slow one", "[core]") {
  // Each thread claims from its own share first (the caller's is the first half). Here the worker,
  // in the first chunk it runs, waits until every other index is done: the caller must run the rest
  // of the worker's share itself (or the wait ends after 10 s and the test fails).
  const int before = tg::get_num_threads();
  tg::set_num_threads(2);
  const std::thread::id caller = std::this_thread::get_id();
  constexpr std::int64_t n = 8;  // 2 threads × 4 chunks of one index each
  std::vector<std::atomic<int>> hits(n);
  std::vector<std::thread::id> ran_on(n);
  std::atomic<int> done{0};
  tg::parallel_for(0, n, n, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i) {
      hits[static_cast<std::size_t>(i)]++;
      ran_on[static_cast<std::size_t>(i)] = std::this_thread::get_id();
    }
    if (std::this_thread::get_id() != caller) {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (done.load() < n - (hi - lo) && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    }
    done += static_cast<int>(hi - lo);
  }, 1);
  tg::set_num_threads(before);
  for (const auto& h : hits) CHECK(h == 1);
  // The worker ran one chunk of its own share, or none if it woke after the caller had taken all.
  CHECK(std::count(ran_on.begin(), ran_on.end(), caller) >= n - 1);
  CHECK(std::count(ran_on.begin(), ran_on.begin() + n / 2, caller) == n / 2);
}
