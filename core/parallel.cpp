// The kernel thread pool. A parallel_for publishes a job (the range cut into a fixed number of
// chunks) and every thread, the caller included, claims chunks until none is left; the caller
// then waits only for chunks others have claimed. A worker that wakes late, as on a busy shared
// machine, finds nothing left to claim, so a call is never slower than running it alone.
// Idle workers spin for a few microseconds (the gap between two kernels of a step), then sleep on
// a futex. Chunk boundaries depend only on the range and the thread count, so results do not
// depend on which thread ran which chunk. Layer: core.
#include "core/parallel.h"

#include <immintrin.h>

#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "core/error.h"

namespace tg {

namespace {

thread_local bool inside = false;

constexpr int kSpins = 4096;
constexpr std::int64_t kChunksPerThread = 4;

// The job word: generation in the high 32 bits, next unclaimed chunk in the low 32 bits. One
// compare-and-swap claims a chunk of the current job and nothing else.
constexpr std::uint64_t kChunkMask = 0xffffffffu;

class Pool {
 public:
  explicit Pool(int threads) { start(threads); }
  ~Pool() { stop(); }

  int threads() const { return threads_; }

  void resize(int threads) {
    std::lock_guard<std::mutex> lock(run_mutex_);
    stop();
    start(threads);
  }

  void run(std::int64_t begin, std::int64_t end, const std::function<void(std::int64_t, std::int64_t)>& fn) {
    std::lock_guard<std::mutex> lock(run_mutex_);
    const int chunks = static_cast<int>(std::min<std::int64_t>(end - begin, threads_ * kChunksPerThread));
    job_.store(&fn, std::memory_order_relaxed);
    begin_.store(begin, std::memory_order_relaxed);
    end_.store(end, std::memory_order_relaxed);
    chunks_.store(chunks, std::memory_order_relaxed);
    error_ = nullptr;
    done_.store(0, std::memory_order_relaxed);
    std::uint64_t gen = (word_.load(std::memory_order_relaxed) >> 32) + 1;
    word_.store(gen << 32, std::memory_order_release);
    word_.notify_all();
    inside = true;
    work_on(gen);
    inside = false;
    for (int i = 0; i < kSpins && done_.load(std::memory_order_acquire) != chunks; ++i) _mm_pause();
    for (int d = done_.load(std::memory_order_acquire); d != chunks; d = done_.load(std::memory_order_acquire))
      done_.wait(d, std::memory_order_acquire);
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void start(int threads) {
    threads_ = threads;
    stopping_.store(false);
    const std::uint64_t now = word_.load() >> 32;  // a worker must not miss a job published before it runs
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this, now] { work(now); });
  }

  void stop() {
    stopping_.store(true);
    word_.fetch_add(std::uint64_t{1} << 32, std::memory_order_release);  // wakes everyone
    word_.notify_all();
    for (std::thread& t : workers_) t.join();
    workers_.clear();
  }

  // Claims and runs chunks of job `gen` until none is left (or another job has started).
  void work_on(std::uint64_t gen) {
    for (;;) {
      std::uint64_t w = word_.load(std::memory_order_acquire);
      const std::int64_t c = static_cast<std::int64_t>(w & kChunkMask);
      if ((w >> 32) != gen || c >= chunks_.load(std::memory_order_relaxed)) return;
      if (!word_.compare_exchange_weak(w, w + 1, std::memory_order_acq_rel)) continue;
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

  void work(std::uint64_t seen) {
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
      work_on(seen);
    }
  }

  int threads_ = 1;
  std::vector<std::thread> workers_;
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
  TG_CHECK(n >= 1, "[set_num_threads] expected a positive number of threads, got {}", n);
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
