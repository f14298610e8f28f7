// The one threading policy: a small pool of our own runs every parallel kernel (parallel_for),
// OpenBLAS stays single-threaded (large GEMMs are split across the pool instead), so two
// pools never spin against each other on two cores. Idle workers spin briefly, then sleep, so a
// busy shared machine is not made busier. Nested parallel_for calls run serially. Layer: core.
#pragma once

#include <cstdint>
#include <functional>

namespace tg {

// Sets the number of threads for kernels (the caller plus n − 1 workers), n in [1, kMaxThreads].
// The default is the number of cores. Throws tg::Error, leaving the count as it was, when n is out
// of range or the system cannot start the threads.
inline constexpr int kMaxThreads = 1024;
void set_num_threads(int n);
int get_num_threads();
// True inside a parallel_for body.
bool in_parallel_region();

// Below this many elements an elementwise kernel runs on one thread.
inline constexpr std::int64_t kParallelGrain = 32768;

namespace detail {
void parallel_run(std::int64_t begin, std::int64_t end, const std::function<void(std::int64_t, std::int64_t)>& fn);
}

// Calls fn(lo, hi) on disjoint chunks that cover [begin, end) (a few per thread; each runs once,
// on whichever thread claims it first), when
// `work` (an estimate of the elements touched) reaches `grain`; otherwise fn(begin, end) once on
// the calling thread. Chunks are split the same way for the same thread count, so results are
// reproducible run to run.
template <class F>
void parallel_for(std::int64_t begin, std::int64_t end, std::int64_t work, F&& fn,
                  std::int64_t grain = kParallelGrain) {
  if (end <= begin) return;
  if (work < grain || end - begin == 1 || get_num_threads() == 1 || in_parallel_region()) {
    fn(begin, end);
    return;
  }
  detail::parallel_run(begin, end, std::function<void(std::int64_t, std::int64_t)>(std::ref(fn)));
}

}  // namespace tg
