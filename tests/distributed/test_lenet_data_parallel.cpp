// LeNet-BN trained data-parallel (apps/lenet/trainer.h) on the ranks of this job follows the
// single-process run: with SyncBatchNorm the same global batches give the same loss curve to
// float32 rounding; a checkpoint written by the W-rank run resumes in one process. Tag [apps].
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>

#include "apps/lenet/trainer.h"
#include "tapegrad.h"
#include "tests/support/blocks.h"
#include "tests/support/lenet_runs.h"

using tg::Tensor;
namespace dist = tg::dist;

namespace {

lenet::TrainOptions options(std::int64_t epochs) { return tg_test::small_lenet_run(epochs, 9); }

}  // namespace

TEST_CASE("LeNet-BN on W ranks with SyncBatchNorm follows the single-process run; its checkpoint resumes in one",
          "[apps][distributed]") {
  const tg::data::TensorDataset train_set = tg_test::blocks(96, 1), test_set = tg_test::blocks(40, 2);
  const std::vector<lenet::EpochMetrics> single = lenet::train(train_set, test_set, options(2));
  lenet::TrainOptions parallel = options(2);
  parallel.data_parallel = parallel.sync_bn = true;
  const std::vector<lenet::EpochMetrics> ranks = lenet::train(train_set, test_set, parallel);
  REQUIRE(ranks.size() == 2);
  for (std::size_t e = 0; e < 2; ++e) {
    INFO("epoch " << e + 1 << ": " << ranks[e].train_loss << " vs " << single[e].train_loss);
    CHECK(std::abs(ranks[e].train_loss - single[e].train_loss) <= 1e-5 * single[e].train_loss);
    CHECK(std::abs(ranks[e].train_acc - single[e].train_acc) <= 1.0 / 96);  // a tie may break either way
    CHECK(std::abs(ranks[e].test_acc - single[e].test_acc) <= 1.0 / 40);
  }
  CHECK(single[1].train_loss < single[0].train_loss);  // it learns

  // Epoch 1 on W ranks writes the checkpoint (rank 0); one process resumes it for epoch 2.
  // Named after rank 0's process, so that jobs of several build trees running at once never meet.
  tg::Tensor job = tg::tensor(std::vector<std::int64_t>{::getpid()});
  dist::broadcast(job, 0);
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("tapegrad_dist_lenet_" + std::to_string(job.item<std::int64_t>()) + ".safetensors")).string();
  lenet::TrainOptions first = options(1);
  first.data_parallel = first.sync_bn = true;
  first.save_path = path;
  lenet::train(train_set, test_set, first);
  dist::barrier();  // rank 0 has written it
  lenet::TrainOptions resumed = options(2);
  resumed.resume_path = path;
  const std::vector<lenet::EpochMetrics> continued = lenet::train(train_set, test_set, resumed);
  REQUIRE(continued.size() == 2);
  CHECK(std::abs(continued[1].train_loss - single[1].train_loss) <= 1e-5 * single[1].train_loss);
  dist::barrier();
  if (dist::rank() == 0) std::filesystem::remove(path);
}
