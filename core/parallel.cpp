// The kernel thread pool. A parallel_for bumps a generation counter; each worker runs its chunk
// and counts down; the caller runs chunk 0 and waits for the count to reach zero. Waiting spins
// for a few microseconds (the gap between two kernels of a training step) and then sleeps on the
// atomic (a futex), so idle threads cost nothing. Layer: core.
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

// Waits until done(), which depends only on a's value.
template <class T, class Pred>
void spin_then_wait(const std::atomic<T>& a, Pred done) {
  for (int i = 0; i < kSpins; ++i) {
    if (done()) return;
    _mm_pause();
  }
  for (T current = a.load(std::memory_order_acquire); !done(); current = a.load(std::memory_order_acquire))
    a.wait(current, std::memory_order_acquire);
}

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
    job_ = &fn;
    begin_ = begin;
    end_ = end;
    chunks_ = static_cast<int>(std::min<std::int64_t>(threads_, end - begin));
    error_ = nullptr;
    remaining_.store(threads_ - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    inside = true;
    run_chunk(0);
    inside = false;
    spin_then_wait(remaining_, [&] { return remaining_.load(std::memory_order_acquire) == 0; });
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void start(int threads) {
    threads_ = threads;
    stopping_.store(false);
    std::uint64_t now = generation_.load();
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i, now] { work(i, now); });
  }

  void stop() {
    stopping_.store(true);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    for (std::thread& t : workers_) t.join();
    workers_.clear();
  }

  void run_chunk(int c) {
    if (c >= chunks_) return;
    std::int64_t n = end_ - begin_;
    std::int64_t lo = begin_ + n * c / chunks_, hi = begin_ + n * (c + 1) / chunks_;
    try {
      (*job_)(lo, hi);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex_);
      if (!error_) error_ = std::current_exception();
    }
  }

  void work(int index, std::uint64_t seen) {
    inside = true;
    for (;;) {
      spin_then_wait(generation_, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      seen = generation_.load(std::memory_order_acquire);
      if (stopping_.load()) return;
      run_chunk(index);
      if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) remaining_.notify_one();
    }
  }

  int threads_ = 1;
  std::vector<std::thread> workers_;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<int> remaining_{0};
  std::atomic<bool> stopping_{false};
  std::mutex run_mutex_, error_mutex_;
  const std::function<void(std::int64_t, std::int64_t)>* job_ = nullptr;
  std::int64_t begin_ = 0, end_ = 0;
  int chunks_ = 1;
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
