// The kernel thread pool. A parallel_for publishes a job (the range cut into a fixed number of
// chunks) and every thread, the caller included, claims chunks until none is left; the caller
// then waits only for chunks others have claimed. A worker that wakes late, as on a busy shared
// machine, finds nothing left to claim, so a call is never slower than running it alone.
// Each thread owns a contiguous share of the chunks (the caller the first) and claims from its own
// share before it takes from the others': consecutive kernels over the same batch then find their
// thread's samples in that core's caches (reading what the other core wrote was measured 2-3x
// slower than reading one's own writes, at 256 KB to 4 MB).
// Idle workers spin for a few microseconds (the gap between two kernels of a step), then sleep on
// a futex. Chunk boundaries depend only on the range and the thread count, so results do not
// depend on which thread ran which chunk. Layer: core.
#include "tapegrad/core/parallel.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "tapegrad/core/error.h"

namespace tg {

namespace {

thread_local bool inside = false;

constexpr int kSpins = 4096;
constexpr std::int64_t kChunksPerThread = 4;

// The job word: generation in the high 32 bits. A thread's share word: the generation, then the end
// of its share and its next unclaimed chunk in 16 bits each. One compare-and-swap claims a chunk of
// the current job and nothing else, and the bound it checks travels in the same word.
constexpr std::uint64_t kChunkMask = 0xffff;
constexpr std::int64_t kMaxChunks = 0xffff;

struct alignas(64) Share {  // a cache line each: the threads claim from their own without contention
  std::atomic<std::uint64_t> word{0};
};

class Pool {
 public:
  explicit Pool(int threads) { start(threads); }
  ~Pool() { stop(); }

  int threads() const { return threads_; }

  // Throws tg::Error, with the pool as it was, when the system cannot start that many threads.
  void resize(int threads) {
    std::lock_guard<std::mutex> lock(run_mutex_);
    const int before = threads_;
    stop();
    try {
      start(threads);
    } catch (const std::system_error& e) {
      stop();  // the workers that did start
      try {
        start(before);
      } catch (const std::system_error&) {
        stop();
        start(1);  // starts no thread: cannot fail
      }
      TG_CHECK(false, "[set_num_threads] cannot start {} threads ({}); still running {}", threads, e.what(),
               threads_);
    }
  }

  void run(std::int64_t begin, std::int64_t end, const std::function<void(std::int64_t, std::int64_t)>& fn) {
    std::lock_guard<std::mutex> lock(run_mutex_);
    const int chunks =
        static_cast<int>(std::min({end - begin, threads_ * kChunksPerThread, kMaxChunks}));
    job_.store(&fn, std::memory_order_relaxed);
    begin_.store(begin, std::memory_order_relaxed);
    end_.store(end, std::memory_order_relaxed);
    chunks_.store(chunks, std::memory_order_relaxed);
    error_ = nullptr;
    done_.store(0, std::memory_order_relaxed);
    std::uint64_t gen = (word_.load(std::memory_order_relaxed) >> 32) + 1;
    for (int t = 0; t < threads_; ++t) {
      const std::uint64_t share = static_cast<std::uint64_t>(first_chunk(t + 1, chunks) << 16 | first_chunk(t, chunks));
      shares_[t].word.store(gen << 32 | share, std::memory_order_release);
    }
    word_.store(gen << 32, std::memory_order_release);
    word_.notify_all();
    inside = true;
    work_on(gen, 0);
    inside = false;
    for (int i = 0; i < kSpins && done_.load(std::memory_order_acquire) != chunks; ++i) _mm_pause();
    for (int d = done_.load(std::memory_order_acquire); d != chunks; d = done_.load(std::memory_order_acquire))
      done_.wait(d, std::memory_order_acquire);
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void start(int threads) {
    threads_ = threads;
    shares_ = std::make_unique<Share[]>(static_cast<std::size_t>(threads));
    stopping_.store(false);
    const std::uint64_t now = word_.load() >> 32;  // a worker must not miss a job published before it runs
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this, now, i] { work(now, i); });
  }

  // Thread t's share of a job's chunks: [first_chunk(t), first_chunk(t + 1)).
  std::int64_t first_chunk(int t, int chunks) const { return std::int64_t{chunks} * t / threads_; }

  void stop() {
    stopping_.store(true);
    word_.fetch_add(std::uint64_t{1} << 32, std::memory_order_release);  // wakes everyone
    word_.notify_all();
    for (std::thread& t : workers_) t.join();
    workers_.clear();
  }

  // Claims and runs chunks of job `gen`, its own share first (thread `self`), then the others' in
  // turn, until none is left (or another job has started).
  void work_on(std::uint64_t gen, int self) {
    for (int i = 0; i < threads_; ++i) {
      const int t = (self + i) % threads_;
      if (!work_share(gen, t)) return;
    }
  }

  // Claims and runs the unclaimed chunks of share t of job `gen`; false when that job is over.
  bool work_share(std::uint64_t gen, int t) {
    std::atomic<std::uint64_t>& word = shares_[t].word;
    for (;;) {
      std::uint64_t w = word.load(std::memory_order_acquire);
      if ((w >> 32) != gen) return false;
      const std::int64_t c = static_cast<std::int64_t>(w & kChunkMask);
      if (c >= static_cast<std::int64_t>(w >> 16 & kChunkMask)) return true;
      if (!word.compare_exchange_weak(w, w + 1, std::memory_order_acq_rel)) continue;
      // Claimed: job `gen` cannot end before this chunk is done, so its fields stay put.
      const std::int64_t b = begin_.load(std::memory_order_relaxed), n = end_.load(std::memory_order_relaxed) - b;
      const int chunks = chunks_.load(std::memory_order_relaxed);
      try {
        (*job_.load(std::memory_order_relaxed))(b + n * c / chunks, b + n * (c + 1) / chunks);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex_);
        if (!error_) error_ = std::current_exception();
      }
      if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == chunks) done_.notify_one();
    }
  }

  void work(std::uint64_t seen, int self) {
    inside = true;
    for (;;) {
      std::uint64_t w = word_.load(std::memory_order_acquire);
      for (int i = 0; i < kSpins && (w >> 32) == seen; ++i) {
        _mm_pause();
        w = word_.load(std::memory_order_acquire);
      }
      while ((w >> 32) == seen) {
        word_.wait(w, std::memory_order_acquire);
        w = word_.load(std::memory_order_acquire);
      }
      seen = w >> 32;
      if (stopping_.load()) return;
      work_on(seen, self);
    }
  }

  int threads_ = 1;
  std::vector<std::thread> workers_;
  std::unique_ptr<Share[]> shares_;  // one per thread, the caller's first
  std::atomic<std::uint64_t> word_{0};
  std::atomic<int> done_{0};
  std::atomic<bool> stopping_{false};
  std::mutex run_mutex_, error_mutex_;
  // The current job; published by the release store of word_, read after acquiring it.
  std::atomic<const std::function<void(std::int64_t, std::int64_t)>*> job_{nullptr};
  std::atomic<std::int64_t> begin_{0}, end_{0};
  std::atomic<int> chunks_{1};
  std::exception_ptr error_;
};

Pool& pool() {
  static Pool p(std::max(1, static_cast<int>(std::thread::hardware_concurrency())));
  return p;
}

}  // namespace

void set_num_threads(int n) {
  TG_CHECK(n >= 1 && n <= kMaxThreads, "[set_num_threads] expected a number of threads in [1, {}], got {}",
           kMaxThreads, n);
  if (n != pool().threads()) pool().resize(n);
}

int get_num_threads() { return pool().threads(); }

bool in_parallel_region() { return inside; }

namespace detail {

void parallel_run(std::int64_t begin, std::int64_t end, const std::function<void(std::int64_t, std::int64_t)>& fn) {
  pool().run(begin, end, fn);
}

}  // namespace detail
}  // namespace tg
