// The catalogue of bad calls, distributed part: tg::dist's collectives with bad roots and
// tensors, DistributedSampler, SyncBatchNorm and DistributedDataParallel with bad options. Built
// into tapegrad_dist_tests, which runs as a world of one and of two (every rank makes every call;
// each is refused on every rank before any message is sent, so the ranks stay in step).
// Afterwards the tensors are unchanged and every collective still works. Tag [errors].
#include <catch2/catch.hpp>

#include <memory>
#include <vector>

#include "tapegrad.h"
#include "tests/errors/catalogue.h"

using tg::Shape;
using tg::Tensor;
using tg_test::expect_errors;
using tg_test::values;

TEST_CASE("catalogue: distributed calls with bad roots and tensors", "[errors]") {
  const int W = tg::dist::world_size();
  Tensor t = tg::arange(3).to(tg::kFloat32), ints = tg::arange(3);
  tg::nn::BatchNorm1d bn(2);
  tg::nn::SyncBatchNorm sync_bn(2);
  expect_errors({
      {"broadcast", [&] { tg::dist::broadcast(t, W); }},
      {"broadcast", [&] { tg::dist::broadcast(t, -1); }},
      {"broadcast", [&] { tg::dist::broadcast(Tensor(), 0); }},
      {"broadcast", [&] { tg::dist::broadcast(t.expand({2, 3}), 0); }},
      {"all_reduce", [&] { tg::dist::all_reduce(Tensor()); }},
      {"all_reduce", [&] { tg::dist::all_reduce(t.expand({2, 3})); }},
      {"all_gather", [&] { tg::dist::all_gather(Tensor()); }},
      {"DistributedSampler", [&] { tg::data::DistributedSampler(10, {.num_replicas = 0, .rank = 0}); }},
      {"DistributedSampler", [&] { tg::data::DistributedSampler(10, {.num_replicas = W, .rank = W}); }},
      {"DistributedSampler", [&] { tg::data::DistributedSampler(10, {.num_replicas = 2, .rank = -1}); }},
      {"DistributedSampler", [&] { tg::data::DistributedSampler(-1); }},
      {"BatchNorm", [&] { tg::nn::SyncBatchNorm(0); }},
      {"SyncBatchNorm", [&] { sync_bn(tg::ones({4, 3})); }},
      {"DistributedDataParallel", [&] { tg::nn::DistributedDataParallel(std::shared_ptr<tg::nn::Module>()); }},
      {"DistributedDataParallel", [&] { tg::nn::DistributedDataParallel(bn, {.bucket_cap_mb = -1.0}); }},
  });
  CHECK(values(t) == std::vector<double>{0, 1, 2});
  tg::dist::broadcast(t, W - 1);
  tg::dist::all_reduce(ints);
  CHECK(values(t) == std::vector<double>{0, 1, 2});
  CHECK(values(ints) == std::vector<double>{0.0, 1.0 * W, 2.0 * W});
  CHECK(tg::dist::all_gather(t).sizes() == Shape({W, 3}));
  CHECK(tg::data::DistributedSampler(10, {.num_replicas = 1, .rank = 0, .shuffle = false}).indices().size() == 10);
  CHECK(sync_bn(tg::ones({4, 2})).sizes() == Shape({4, 2}));
}
