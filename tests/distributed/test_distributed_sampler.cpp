// DistributedSampler against PyTorch 1.13's (sampler_refs.inc, from scripts/gen_sampler_refs.py):
// every rank's indices for each case; the ranks of this job split one epoch disjointly; a
// DataLoader over a share; bad options. Tags [distributed] [errors].
#include <catch2/catch.hpp>

#include <cstdint>
#include <set>
#include <vector>

#include "tapegrad.h"

using Catch::Contains;
namespace dist = tg::dist;
using tg::data::DistributedSampler;

namespace {

struct SamplerRef {
  std::int64_t size, num_replicas;
  bool shuffle;
  std::uint64_t seed;
  std::int64_t epoch;
  bool drop_last;
  std::int64_t per_rank;
  std::vector<std::int64_t> first;  // the first values of every rank's indices in rank order
  std::uint64_t hash;               // FNV-1a of all of them
};

const std::vector<SamplerRef> kRefs = {
#define TG_SAMPLER_REFS_ROWS
#include "sampler_refs.inc"
#undef TG_SAMPLER_REFS_ROWS
};

std::uint64_t fnv1a(const std::vector<std::int64_t>& values) {
  std::uint64_t h = 14695981039346656037ull;
  for (std::int64_t v : values) h = (h ^ static_cast<std::uint64_t>(v)) * 1099511628211ull;
  return h;
}

}  // namespace

TEST_CASE("DistributedSampler gives every rank PyTorch's indices", "[distributed]") {
  for (const SamplerRef& ref : kRefs) {
    INFO("size " << ref.size << ", " << ref.num_replicas << " replicas, shuffle " << ref.shuffle << ", seed "
                 << ref.seed << ", epoch " << ref.epoch << ", drop_last " << ref.drop_last);
    std::vector<std::int64_t> all;
    tg::manual_seed(99);
    const std::string state = tg::get_rng_state();
    for (std::int64_t r = 0; r < ref.num_replicas; ++r) {
      DistributedSampler sampler(ref.size, {.num_replicas = ref.num_replicas, .rank = r, .shuffle = ref.shuffle,
                                            .seed = ref.seed, .drop_last = ref.drop_last});
      sampler.set_epoch(ref.epoch);
      std::vector<std::int64_t> share = sampler.indices();
      CHECK(sampler.size() == ref.per_rank);
      CHECK(static_cast<std::int64_t>(share.size()) == ref.per_rank);
      all.insert(all.end(), share.begin(), share.end());
    }
    CHECK(tg::get_rng_state() == state);  // the global stream is where it was
    CHECK(std::vector<std::int64_t>(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(ref.first.size())) ==
          ref.first);
    CHECK(fnv1a(all) == ref.hash);
  }
}

TEST_CASE("the ranks of a job split each epoch of DistributedSampler, and a DataLoader batches a share",
          "[distributed]") {
  const int W = dist::world_size(), r = dist::rank();
  DistributedSampler sampler(23);  // num_replicas and rank from the job
  CHECK(sampler.num_replicas() == W);
  CHECK(sampler.rank() == r);
  tg::data::TensorDataset data(tg::arange(23), tg::arange(23));  // a batch's targets are its indices
  tg::data::DataLoader loader(data, sampler, {.batch_size = 4});
  for (std::int64_t epoch = 0; epoch < 2; ++epoch) {
    sampler.set_epoch(epoch);
    std::vector<std::int64_t> mine;
    for (const auto& [x, y] : loader)
      for (std::int64_t i : y.to_vector<std::int64_t>()) mine.push_back(i);
    CHECK(mine == sampler.indices());
    tg::Tensor shares = dist::all_gather(tg::tensor(mine));
    std::vector<std::int64_t> seen = shares.reshape({-1}).to_vector<std::int64_t>();
    CHECK(std::set<std::int64_t>(seen.begin(), seen.end()).size() == 23);  // every sample, padding aside
    CHECK(static_cast<std::int64_t>(seen.size()) == sampler.total_size());
  }
}

TEST_CASE("DistributedSampler rejects bad options", "[distributed][errors]") {
  CHECK_THROWS_WITH(DistributedSampler(10, {.num_replicas = 2, .rank = 2}),
                    Contains("[DistributedSampler] Invalid rank 2, rank should be in the interval [0, 1]"));
  CHECK_THROWS_WITH(DistributedSampler(10, {.num_replicas = 2, .rank = -1}), Contains("Invalid rank -1"));
  CHECK_THROWS_WITH(DistributedSampler(10, {.num_replicas = 0, .rank = 0}),
                    Contains("[DistributedSampler] expected num_replicas >= 1, got 0"));
  CHECK_THROWS_WITH(DistributedSampler(-1, {.num_replicas = 1, .rank = 0}), Contains("expected a dataset size >= 0"));
}
