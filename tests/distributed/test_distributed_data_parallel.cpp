// DistributedDataParallel: gradients averaged across ranks equal the single-process gradients of
// the whole batch (float64, one bucket or one per parameter), no_sync accumulation, rank 0's
// values broadcast at construction, models that differ across ranks refused, a parameter left out
// of the loss reported. Tags [distributed] [errors].
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "tapegrad.h"

using Catch::Contains;
using tg::Tensor;
namespace dist = tg::dist;
namespace nn = tg::nn;

namespace {

bool close(const Tensor& a, const Tensor& b, double tol) {
  if (!a.defined() || !b.defined() || a.sizes() != b.sizes()) return false;
  std::vector<double> va = a.to_vector<double>(), vb = b.to_vector<double>();
  for (std::size_t i = 0; i < va.size(); ++i)
    if (!(std::abs(va[i] - vb[i]) <= tol * (1 + std::abs(vb[i])))) return false;
  return true;
}

// A small float64 model with a SyncBatchNorm, so that W ranks on shares compute what one process
// computes on the whole batch.
nn::Sequential small_model() {
  nn::Sequential net{nn::Linear(5, 8), nn::BatchNorm1d(8), nn::Tanh(), nn::Linear(8, 3)};
  net.to(tg::kFloat64);
  return net;
}

}  // namespace

TEST_CASE("DistributedDataParallel averages gradients to the whole batch's, whatever the buckets",
          "[distributed]") {
  const int W = dist::world_size(), r = dist::rank();
  const double cap = GENERATE(25.0, 1e-6);  // one bucket for all, or one per parameter
  INFO("bucket_cap_mb " << cap);
  tg::manual_seed(4);
  nn::Sequential reference = small_model();
  nn::Sequential net = small_model();  // other initial values: the broadcast brings rank 0's
  {
    tg::NoGradGuard no_grad;
    auto want = reference.state_dict();
    for (std::size_t i = 0; i < want.size(); ++i) net.state_dict()[i].second.copy_(want[i].second);
    if (r > 0) net.parameters()[0].add_(0.5);  // rank 0's values must win
  }
  nn::convert_sync_batchnorm(net);
  nn::DistributedDataParallel ddp(net, {.bucket_cap_mb = cap});
  CHECK(ddp.bucket_sizes() == (cap > 1 ? std::vector<std::int64_t>{6} : std::vector<std::int64_t>(6, 1)));
  CHECK(ddp.named_parameters()[0].first == "module.0.weight");
  CHECK(ddp.state_dict().size() == reference.state_dict().size());
  for (std::size_t i = 0; i < net.parameters().size(); ++i)
    CHECK(close(net.parameters()[i], reference.parameters()[i], 0));

  const std::int64_t per_rank = 3, N = per_rank * W;
  for (int step = 0; step < 2; ++step) {
    Tensor X = tg::randn({N, 5}, tg::kFloat64), y = tg::randint(0, 3, {N});
    nn::CrossEntropyLoss loss_fn;
    reference.zero_grad();
    loss_fn(reference(X), y).backward();
    ddp.zero_grad();
    Tensor loss = loss_fn(ddp(X.slice(0, r * per_rank, (r + 1) * per_rank)), y.slice(0, r * per_rank, (r + 1) * per_rank));
    loss.backward();
    auto mine = ddp.named_parameters(), want = reference.named_parameters();
    for (std::size_t i = 0; i < mine.size(); ++i) {
      INFO(mine[i].first << " step " << step);
      CHECK(close(mine[i].second.grad(), want[i].second.grad(), 1e-12));
    }
  }
}

TEST_CASE("DistributedDataParallel::no_sync accumulates locally, the next backward averages the sum",
          "[distributed]") {
  const int W = dist::world_size(), r = dist::rank();
  tg::manual_seed(6);
  nn::Linear lin(4, 2);
  lin.to(tg::kFloat64);
  nn::DistributedDataParallel ddp(lin, {.bucket_cap_mb = 1e-6});
  Tensor x1 = tg::full({2, 4}, double(r + 1), tg::kFloat64), x2 = tg::full({2, 4}, double(2 * r + 3), tg::kFloat64);
  {
    auto guard = ddp.no_sync();
    ddp(x1).sum().backward();
  }
  Tensor local = lin.weight.grad().clone();  // this rank's own gradient: 2·(r + 1) in every column
  CHECK(close(local, tg::full({2, 4}, 2.0 * (r + 1), tg::kFloat64), 0));
  ddp(x2).sum().backward();
  // mean over ranks of 2(r + 1) + 2(2r + 3) = 6r + 8
  CHECK(close(lin.weight.grad(), tg::full({2, 4}, 6.0 * (W - 1) / 2.0 + 8, tg::kFloat64), 1e-15));
  CHECK(close(lin.bias.grad(), tg::full({2}, 4.0, tg::kFloat64), 1e-15));
}

TEST_CASE("DistributedDataParallel refuses models that differ across ranks, and reports unused parameters",
          "[distributed][errors]") {
  const int W = dist::world_size(), r = dist::rank();
  if (W > 1) {
    nn::Sequential net{nn::Linear(4, r == W - 1 ? 3 : 2)};
    CHECK_THROWS_WITH(nn::DistributedDataParallel(net),
                      Contains("[DistributedDataParallel] expected every rank's model to have rank 0's parameters and "
                               "buffers (names, shapes, dtypes), got ranks " + std::to_string(W - 1) + " differing"));
    if (r == W - 1)
      CHECK_THROWS_WITH(nn::DistributedDataParallel(net),
                        Contains("has parameter 0.weight [3, 4] float32 where rank 0 has parameter 0.weight [2, 4] "
                                 "float32"));
    else
      CHECK_THROWS_WITH(nn::DistributedDataParallel(net), Contains("this rank has the same model as rank 0"));
  }
  // A two-branch module whose second branch never reaches the loss.
  struct TwoHeads : nn::Module {
    TwoHeads() {
      used = register_module("used", std::make_shared<nn::Linear>(3, 1));
      unused = register_module("unused", std::make_shared<nn::Linear>(3, 1));
    }
    Tensor forward(const Tensor& x) override { return (*used)(x); }
    std::shared_ptr<nn::Linear> used, unused;
  };
  nn::DistributedDataParallel ddp(std::make_shared<TwoHeads>(), {.bucket_cap_mb = 1e-6});
  ddp(tg::ones({2, 3})).sum().backward();
  CHECK_THROWS_WITH(ddp(tg::ones({2, 3})), Contains("got none for unused.weight, unused.bias"));
  ddp(tg::ones({2, 3}));  // reported once: the next step starts clean
  CHECK_THROWS_WITH(nn::DistributedDataParallel(std::shared_ptr<nn::Module>()), Contains("expected a module"));
}
