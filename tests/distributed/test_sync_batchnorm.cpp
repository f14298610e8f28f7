// SyncBatchNorm on shares of a global batch against BatchNorm on the whole batch (float64,
// 1e-10): outputs, input gradients, the ranks' summed weight and bias gradients, running
// statistics, evaluation; a gradcheck of the whole W-rank computation; convert_sync_batchnorm;
// bad input. Shares are uneven (rank r holds r + 2 samples). Tags [distributed] [gradcheck] [errors].
#include <catch2/catch.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tapegrad/core/native.h"
#include "tapegrad.h"

using Catch::Contains;
using tg::Shape;
using tg::Tensor;
namespace dist = tg::dist;
namespace nn = tg::nn;

namespace {

// Rank r's rows [lo, hi) of the global batch: r + 2 samples each.
std::pair<std::int64_t, std::int64_t> share(int r) { return {r * (r + 3) / 2, (r + 1) * (r + 4) / 2}; }
std::int64_t global_batch() { return share(dist::world_size() - 1).second; }

// Every element of a within tol·(1 + |b|) of b.
bool close(const Tensor& a, const Tensor& b, double tol) {
  if (a.sizes() != b.sizes()) return false;
  std::vector<double> va = a.to_vector<double>(), vb = b.to_vector<double>();
  for (std::size_t i = 0; i < va.size(); ++i)
    if (!(std::abs(va[i] - vb[i]) <= tol * (1 + std::abs(vb[i])))) return false;
  return true;
}

Tensor summed(const Tensor& t) {
  Tensor s = t.clone();
  dist::all_reduce(s);
  return s;
}

void set_affine(nn::BatchNormBase& bn, std::int64_t C) {
  tg::NoGradGuard no_grad;
  if (!bn.weight.defined()) return;
  bn.weight.copy_(tg::arange(1, C + 1).to(bn.weight.dtype()) * 0.5);
  bn.bias.copy_(tg::arange(0, C).to(bn.bias.dtype()) - 1.0);
}

}  // namespace

TEST_CASE("SyncBatchNorm on shares equals BatchNorm on the whole batch (float64)", "[distributed]") {
  const int r = dist::rank();
  const auto [lo, hi] = share(r);
  const std::int64_t N = global_batch(), C = 3;
  struct Case {
    const char* name;
    Shape per_sample;
    nn::BatchNormOptions options;
  };
  const Case c = GENERATE(Case{"[N, C, H, W]", {C, 4, 5}, {}}, Case{"[N, C]", {C}, {}}, Case{"[N, C, L]", {C, 6}, {}},
                          Case{"no affine", {C, 4, 5}, {.affine = false}},
                          Case{"cumulative average", {C, 2, 2}, {.momentum = std::nullopt}});
  INFO(c.name);
  Shape shape = c.per_sample;
  shape.insert(shape.begin(), N);
  std::shared_ptr<nn::BatchNormBase> whole;
  if (c.per_sample.size() == 3) whole = std::make_shared<nn::BatchNorm2d>(C, c.options);
  else whole = std::make_shared<nn::BatchNorm1d>(C, c.options);
  nn::SyncBatchNorm sync(C, c.options);
  whole->to(tg::kFloat64);
  sync.to(tg::kFloat64);
  set_affine(*whole, C);
  set_affine(sync, C);
  tg::manual_seed(11);
  for (int step = 0; step < 2; ++step) {  // two steps: the running statistics build on the first
    // Values far from 0 (mean 100, std 0.01): the variance survives only if the ranks' moments are
    // merged centred, not as Σx² − (Σx)²/n.
    Tensor X = tg::randn(shape, tg::kFloat64) * 0.01 + 100, GY = tg::randn(shape, tg::kFloat64);
    Tensor x_all = X.clone().requires_grad_();
    Tensor y_all = (*whole)(x_all);
    (y_all * GY).sum().backward();
    Tensor x_mine = X.slice(0, lo, hi).clone().requires_grad_();
    Tensor y_mine = sync(x_mine);
    CHECK(y_mine.grad_fn_name() == (dist::world_size() > 1 ? "SyncBatchNormBackward" : "NativeBatchNormBackward0"));
    CHECK(close(y_mine, y_all.detach().slice(0, lo, hi), 1e-10));
    (y_mine * GY.slice(0, lo, hi)).sum().backward();
    CHECK(close(x_mine.grad(), x_all.grad().slice(0, lo, hi), 1e-10));
    if (sync.weight.defined()) {
      CHECK(close(summed(sync.weight.grad()), whole->weight.grad(), 1e-10));
      CHECK(close(summed(sync.bias.grad()), whole->bias.grad(), 1e-10));
      sync.zero_grad();
      whole->zero_grad();
    }
    CHECK(close(sync.running_mean, whole->running_mean, 1e-12));
    CHECK(close(sync.running_var, whole->running_var, 1e-12));
    CHECK(sync.num_batches_tracked.item<std::int64_t>() == step + 1);
  }
  sync.eval();
  whole->eval();
  tg::NoGradGuard no_grad;
  Tensor X = tg::randn(shape, tg::kFloat64) * 0.01 + 100;
  Tensor want = (*whole)(X);
  // Evaluation uses the running statistics alone: rank 0 by itself runs it (a collective would hang).
  if (r == 0) CHECK(close(sync(X), want, 1e-10));
  dist::barrier();
}

TEST_CASE("SyncBatchNorm in float32 follows BatchNorm to float32 rounding", "[distributed]") {
  const auto [lo, hi] = share(dist::rank());
  tg::manual_seed(5);
  Tensor X = tg::randn({global_batch(), 4, 3, 3}) * 2 + 1, GY = tg::randn({global_batch(), 4, 3, 3});
  nn::BatchNorm2d whole(4);
  nn::SyncBatchNorm sync(4);
  Tensor x_all = X.clone().requires_grad_();
  Tensor y_all = whole(x_all);
  (y_all * GY).sum().backward();
  Tensor x_mine = X.slice(0, lo, hi).clone().requires_grad_();
  Tensor y_mine = sync(x_mine);
  (y_mine * GY.slice(0, lo, hi)).sum().backward();
  CHECK(y_mine.dtype() == tg::kFloat32);
  CHECK(close(y_mine, y_all.detach().slice(0, lo, hi), 1e-5));
  CHECK(close(x_mine.grad(), x_all.grad().slice(0, lo, hi), 1e-5));
  CHECK(close(sync.running_var, whole.running_var, 1e-6));
}

namespace {

// Two ops that make "every rank computes the same global objective" differentiable, as Megatron's
// copy-to and reduce-from regions: to_ranks is the identity forward and sums the ranks'
// gradients backward (each rank differentiates through its own share only); from_ranks sums the
// ranks' values forward and passes the gradient through backward (each rank already holds the
// whole objective's gradient).
Tensor to_ranks(const Tensor& x) {
  return tg::autograd::record("ToRanks", tg::native::clone(x), {x}, [](const Tensor& g) {
    Tensor sum = tg::native::clone(g);
    dist::all_reduce(sum);
    return std::vector<Tensor>{sum};
  });
}

Tensor from_ranks(const Tensor& y) {
  Tensor sum = tg::native::clone(y);
  dist::all_reduce(sum);
  return tg::autograd::record("FromRanks", sum, {y}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

}  // namespace

TEST_CASE("gradcheck through SyncBatchNorm across the ranks", "[distributed][gradcheck]") {
  // The global batch and the parameters are the same on every rank; each rank normalizes its
  // share, and the objective sums every rank's weighted output. gradcheck's perturbations then
  // move the same element on every rank at once, and its numerical derivative is the whole
  // W-rank computation's, which the analytic backward (its all-reduces included) must match.
  const int r = dist::rank();
  const std::int64_t per_rank = 2;  // gradcheck weights the output: equal shares, equal shapes
  const std::int64_t N = per_rank * dist::world_size();
  tg::manual_seed(8);
  Tensor X = tg::randn({N, 2, 3}, tg::kFloat64).requires_grad_();
  Tensor weight = (tg::rand({2}, tg::kFloat64) + 0.5).requires_grad_();
  Tensor bias = tg::randn({2}, tg::kFloat64).requires_grad_();
  auto fn = [&](const std::vector<Tensor>& in) {
    Tensor x = to_ranks(in[0]).slice(0, r * per_rank, (r + 1) * per_rank);
    return from_ranks(tg::sync_batch_norm(x, {}, {}, to_ranks(in[1]), to_ranks(in[2])));
  };
  tg::autograd::GradcheckResult result = tg::autograd::gradcheck(fn, {X, weight, bias});
  CHECK(result.message == "");
  CHECK(result.ok);
}

TEST_CASE("convert_sync_batchnorm refuses fused batch norms, changing nothing", "[distributed][errors]") {
  nn::Sequential net{nn::Linear(4, 3), nn::BatchNorm1d(3),
                     nn::Sequential{nn::Conv2d(1, 2, 3), nn::BatchNorm2d(2), nn::ReLU()}};
  nn::Sequential fused = nn::utils::fuse_conv_batchnorm_activation(net);
  CHECK_THROWS_WITH(nn::convert_sync_batchnorm(fused),
                    "[convert_sync_batchnorm] expected batch norms that can synchronize, got BatchNormAct2d at "
                    "'2.0.1', which runs fused with its activation: convert the model before fusing it");
  CHECK(fused[1]->name() == "BatchNorm1d");  // not converted: the refusal came first
  nn::Sequential pair = nn::utils::fuse_batchnorm_activation(nn::Sequential{nn::BatchNorm1d(3), nn::Sigmoid()});
  CHECK_THROWS_WITH(nn::convert_sync_batchnorm(pair),
                    Catch::StartsWith("[convert_sync_batchnorm] expected batch norms that can synchronize, got "
                                      "BatchNormAct1d at '0'"));
}

TEST_CASE("convert_sync_batchnorm swaps BatchNorm1d/2d children for SyncBatchNorm over the same tensors",
          "[distributed]") {
  nn::Sequential inner{nn::Linear(4, 3), nn::BatchNorm1d(3)};
  nn::Sequential net{nn::Conv2d(1, 2, 3), nn::BatchNorm2d(2), nn::Flatten(), std::move(inner)};
  auto* bn2d = dynamic_cast<nn::BatchNorm2d*>(net[1].get());
  REQUIRE(bn2d != nullptr);
  Tensor weight = bn2d->weight, running_var = bn2d->running_var;
  auto before = net.state_dict();
  net.eval();
  nn::convert_sync_batchnorm(net);
  CHECK(net[1]->name() == "SyncBatchNorm");
  auto* nested = dynamic_cast<nn::Sequential*>(net[3].get());
  REQUIRE(nested != nullptr);
  CHECK((*nested)[1]->name() == "SyncBatchNorm");
  CHECK((*nested)[0]->name() == "Linear");
  auto* sync = dynamic_cast<nn::SyncBatchNorm*>(net[1].get());
  REQUIRE(sync != nullptr);
  CHECK(sync->weight.is_same(weight));
  CHECK(sync->running_var.is_same(running_var));
  CHECK(!sync->is_training());  // the mode carries over
  auto after = net.state_dict();
  REQUIRE(after.size() == before.size());
  for (std::size_t i = 0; i < after.size(); ++i) {
    CHECK(after[i].first == before[i].first);
    CHECK(after[i].second.is_same(before[i].second));
  }
  CHECK(sync->to_string() == "SyncBatchNorm(2, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)");
  nn::BatchNorm2d alone(2);
  nn::convert_sync_batchnorm(alone);  // the module itself stays a BatchNorm2d
  CHECK(alone.name() == "BatchNorm2d");

  // A clone of the converted model keeps its SyncBatchNorms, over copies of their tensors.
  sync->running_var.fill_(3.0);
  auto copy = std::dynamic_pointer_cast<nn::Sequential>(net.clone());
  REQUIRE(copy != nullptr);
  auto* sync_copy = dynamic_cast<nn::SyncBatchNorm*>((*copy)[1].get());
  REQUIRE(sync_copy != nullptr);
  CHECK_FALSE(sync_copy->running_var.is_same(sync->running_var));
  CHECK(sync_copy->running_var.to_vector<float>() == std::vector<float>{3.0f, 3.0f});
  CHECK_FALSE(sync_copy->weight.is_same(sync->weight));
  CHECK(sync_copy->to_string() == sync->to_string());
  CHECK(!sync_copy->is_training());
  sync->running_var.fill_(1.0);  // the copy's stay as they were
  CHECK(sync_copy->running_var.to_vector<float>() == std::vector<float>{3.0f, 3.0f});
  auto* nested_copy = dynamic_cast<nn::Sequential*>((*copy)[3].get());
  REQUIRE(nested_copy != nullptr);
  CHECK((*nested_copy)[1]->name() == "SyncBatchNorm");
}

TEST_CASE("SyncBatchNorm rejects bad input, and inputs that disagree across ranks, on every rank",
          "[distributed][errors]") {
  const int W = dist::world_size(), r = dist::rank();
  nn::SyncBatchNorm bn(3);
  CHECK_THROWS_WITH(bn(tg::randn({4})), Contains("[SyncBatchNorm] expected at least 2D input (got 1D input"));
  CHECK_THROWS_WITH(bn(tg::randn({4, 2})), Contains("expected 3 channels"));
  CHECK_THROWS_WITH(tg::sync_batch_norm(tg::randn({4, 3}), {}, {}, tg::ones({2}), {}),
                    Contains("[sync_batch_norm] expected weight of shape [3]"));
  if (W > 1) {
    // One value per channel over all ranks: the count is global.
    CHECK_THROWS_WITH(tg::sync_batch_norm(tg::randn({r == 0 ? 1 : 0, 3}), {}, {}, {}, {}),
                      Contains("Expected more than 1 value per channel when training"));
    // The last rank's samples are larger: every rank throws instead of summing mismatched channels.
    CHECK_THROWS_WITH(tg::sync_batch_norm(tg::randn({2, 3, r == W - 1 ? 5 : 4}), {}, {}, {}, {}),
                      Contains("[sync_batch_norm] expected every rank's input to match rank 0's (C = 3, 12 values "
                               "per sample, float32), got rank " + std::to_string(W - 1) +
                               "'s with C = 3, 15 values per sample, float32"));
  } else {
    CHECK_THROWS_WITH(bn(tg::randn({1, 3})), Contains("Expected more than 1 value per channel when training"));
  }
  CHECK(bn.running_mean.to_vector<float>() == std::vector<float>(3, 0.0f));  // nothing moved
}
