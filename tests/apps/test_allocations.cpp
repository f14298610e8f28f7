// Per-op overhead is mostly small heap allocations (docs/DESIGN.md): the counts of operator new
// calls in a steady LeNet-BN step, held under bounds a little above today's, so that a shape back
// on the heap or a record() that builds its closure for nothing shows up here, not only in a
// benchmark. Tensor data comes from the storage cache (aligned_alloc, not counted here; its system
// allocations are tested in test_lenet.cpp). The sanitizers replace operator new themselves, so
// these tests exist in plain builds only. Tag [apps].
#include <catch2/catch.hpp>

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TG_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TG_SANITIZED 1
#endif

#if !defined(TG_SANITIZED)

#include <cstdint>
#include <cstdlib>
#include <new>

#include "apps/lenet/trainer.h"
#include "tapegrad.h"
#include "tests/support/lenet_runs.h"

namespace {

// operator new calls on this thread while an AllocationCounter is alive.
thread_local std::int64_t* active_count = nullptr;

class AllocationCounter {
 public:
  AllocationCounter() { active_count = &count_; }
  ~AllocationCounter() { active_count = nullptr; }
  AllocationCounter(const AllocationCounter&) = delete;
  AllocationCounter& operator=(const AllocationCounter&) = delete;
  std::int64_t count() const { return count_; }

 private:
  std::int64_t count_ = 0;
};

}  // namespace

// The replacements the whole test program uses; the array and nothrow forms call these.
void* operator new(std::size_t n) {
  if (active_count) ++*active_count;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

using tg::Tensor;

TEST_CASE("a folded LeNet-BN inference step at batch 1 makes at most 24 heap allocations", "[apps]") {
  const int saved_threads = tg::get_num_threads();
  tg::set_num_threads(1);
  tg::manual_seed(5);
  tg::nn::Sequential net = lenet::make_lenet_bn();
  net.eval();
  tg::nn::Sequential folded = tg::nn::utils::fuse_conv_activation(tg::nn::utils::fold_batchnorm(net));
  const Tensor X = tg::rand({1, 1, 28, 28});
  tg::NoGradGuard no_grad;
  for (int i = 0; i < 3; ++i) folded(X);
  std::int64_t per_step = 0;
  {
    AllocationCounter counter;
    for (int i = 0; i < 10; ++i) folded(X);
    per_step = counter.count() / 10;
  }
  CAPTURE(per_step);
  CHECK(per_step <= 24);  // 21 at 2f39f7b, when Shape became a small vector
  tg::set_num_threads(saved_threads);
}

TEST_CASE("a LeNet-BN training step at batch 16 makes at most 480 heap allocations", "[apps]") {
  const int saved_threads = tg::get_num_threads();
  tg::set_num_threads(1);
  tg_test::FixedBatchLeNet model;
  for (int i = 0; i < 3; ++i) model.step();
  std::int64_t per_step = 0;
  {
    AllocationCounter counter;
    for (int i = 0; i < 5; ++i) model.step();
    per_step = counter.count() / 5;
  }
  CAPTURE(per_step);
  CHECK(per_step <= 480);  // 449 at 2f39f7b
  tg::set_num_threads(saved_threads);
}

#endif  // !TG_SANITIZED
