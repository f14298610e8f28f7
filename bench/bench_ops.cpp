// bench_ops: Google Benchmark microbenchmarks of LeNet-BN's ops at its shapes (batch 256), on 1 and
// 2 threads (the `threads` argument), and raw single-threaded OpenBLAS sgemm at the sizes of the
// convolutions' im2col GEMMs, a yardstick for conv2d's FLOPS (float32 conv2d runs direct kernels
// now, not these GEMMs; the linear1 sgemm row is about the best rate a core reaches). Times are
// wall-clock (the kernels run on tapegrad's own pool). `_fwd` runs the forward only, without
// recording; `_fwdbwd` a forward that records, backward from a fixed random gradient, and clearing
// the leaves' .grad.
// Counters: FLOPS (multiply-adds ×2 of the GEMM-shaped ops), items_per_second (elements, or
// examples for the training step). Layer: bench.
#include <cblas.h>

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "apps/lenet/trainer.h"

namespace {

using tg::Tensor;

constexpr std::int64_t kBatch = 256;

void set_threads(const benchmark::State& state) { tg::set_num_threads(static_cast<int>(state.range(0))); }

Tensor leaf(const tg::Shape& sizes, bool requires_grad) {
  Tensor t = tg::randn(sizes);
  if (requires_grad) t.requires_grad_();
  return t;
}

void clear_grads(std::vector<Tensor> leaves) {
  for (Tensor& t : leaves)
    if (t.defined() && t.requires_grad()) t.set_grad(Tensor());
}

double numel(const tg::Shape& sizes) {
  double n = 1;
  for (std::int64_t s : sizes) n *= static_cast<double>(s);
  return n;
}

void set_flops(benchmark::State& state, double flops_per_iteration) {
  state.counters["FLOPS"] = benchmark::Counter(flops_per_iteration, benchmark::Counter::kIsIterationInvariantRate);
}

// Runs `forward` (and, when `backward`, y.backward(dy) and clears the leaves' gradients) per iteration.
template <class Forward>
void run(benchmark::State& state, bool backward, const Tensor& dy, const std::vector<Tensor>& leaves,
         Forward&& forward) {
  for (auto _ : state) {
    Tensor y = forward();
    if (backward) {
      y.backward(dy);
      clear_grads(leaves);
    }
    benchmark::DoNotOptimize(y.data_ptr<float>());
  }
}

// --- conv2d: LeNet's two convolutions, 5×5 kernels, no padding --------------------------------------

struct ConvCase {
  std::int64_t C, H, F;
  bool input_grad;  // conv1's input is the data: no dx
};
constexpr ConvCase kConv1{1, 28, 6, false}, kConv2{6, 12, 16, true};

void BM_conv2d(benchmark::State& state, ConvCase c, bool backward) {
  set_threads(state);
  tg::manual_seed(0);
  const std::int64_t OH = c.H - 4, P = OH * OH, R = c.C * 25;
  Tensor x = leaf({kBatch, c.C, c.H, c.H}, backward && c.input_grad);
  Tensor w = leaf({c.F, c.C, 5, 5}, backward), b = leaf({c.F}, backward);
  Tensor dy = tg::randn({kBatch, c.F, OH, OH});
  run(state, backward, dy, {x, w, b}, [&] { return tg::conv2d(x, w, b); });
  const double gemm = 2.0 * kBatch * static_cast<double>(c.F * P * R);  // one of y, dweight, dx
  set_flops(state, gemm * (backward ? (c.input_grad ? 3 : 2) : 1));
}

// The inference chain after a folded convolution: conv2d, sigmoid and avg_pool2d as three ops, or as
// one conv2d_act whose kernel applies the sigmoid and the pool in registers. Forward only, no grad.
void BM_conv2d_sigmoid_pool(benchmark::State& state, ConvCase c, bool fused) {
  set_threads(state);
  tg::manual_seed(0);
  const std::int64_t OH = c.H - 4, P = OH * OH, R = c.C * 25;
  Tensor x = leaf({kBatch, c.C, c.H, c.H}, false), w = leaf({c.F, c.C, 5, 5}, false), b = leaf({c.F}, false);
  run(state, false, Tensor(), {}, [&] {
    if (fused) return tg::conv2d_act(x, w, b, 1, 0, 1, tg::ConvActivation::Sigmoid, true);
    return tg::avg_pool2d(tg::conv2d(x, w, b).sigmoid(), 2, 2);
  });
  set_flops(state, 2.0 * kBatch * static_cast<double>(c.F * P * R));
}

// --- batch_norm (training: batch statistics, running-stat update) -----------------------------------

// batch_norm alone, or with the sigmoid after it: unfused (batch_norm then Tensor::sigmoid) or fused
// (batch_norm_act); or with the sigmoid and a 2×2 average pool: batch_norm_act then avg_pool2d, or
// batch_norm_act pooling too (avg_pool_2x2).
enum class Then { Nothing, Sigmoid, FusedSigmoid, FusedSigmoidThenPool, FusedSigmoidPool };

void BM_batch_norm(benchmark::State& state, tg::Shape shape, bool backward, Then then) {
  set_threads(state);
  tg::manual_seed(0);
  const std::int64_t C = shape[1];
  Tensor x = leaf(shape, backward), w = tg::ones({C}), b = tg::zeros({C});
  if (backward) w.requires_grad_(), b.requires_grad_();
  Tensor running_mean = tg::zeros({C}), running_var = tg::ones({C});
  const bool pools = then == Then::FusedSigmoidThenPool || then == Then::FusedSigmoidPool;
  Tensor dy = pools ? tg::randn({shape[0], C, shape[2] / 2, shape[3] / 2}) : tg::randn(shape);
  const auto sigmoid = tg::BatchNormActivation::Sigmoid;
  run(state, backward, dy, {x, w, b},
      [&] {
        if (then == Then::FusedSigmoid) return tg::batch_norm_act(x, sigmoid, running_mean, running_var, w, b, true);
        if (then == Then::FusedSigmoidThenPool)
          return tg::avg_pool2d(tg::batch_norm_act(x, sigmoid, running_mean, running_var, w, b, true), 2);
        if (then == Then::FusedSigmoidPool)
          return tg::batch_norm_act(x, sigmoid, running_mean, running_var, w, b, true, 0.1, 1e-5, true);
        Tensor y = tg::batch_norm(x, running_mean, running_var, w, b, /*training=*/true);
        return then == Then::Sigmoid ? y.sigmoid() : y;
      });
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * numel(shape)));
}

// --- elementwise and pooling ---------------------------------------------------------------------

void BM_sigmoid(benchmark::State& state, tg::Shape shape, bool backward) {
  set_threads(state);
  tg::manual_seed(0);
  Tensor x = leaf(shape, backward), dy = tg::randn(shape);
  run(state, backward, dy, {x}, [&] { return x.sigmoid(); });
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * numel(shape)));
}

void BM_avg_pool2d(benchmark::State& state, tg::Shape shape, bool backward) {
  set_threads(state);
  tg::manual_seed(0);
  Tensor x = leaf(shape, backward);
  Tensor dy = tg::randn({shape[0], shape[1], shape[2] / 2, shape[3] / 2});
  run(state, backward, dy, {x}, [&] { return tg::avg_pool2d(x, 2, 2); });
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * numel(shape)));
}

void BM_cross_entropy(benchmark::State& state, bool backward) {
  set_threads(state);
  tg::manual_seed(0);
  Tensor logits = leaf({kBatch, 10}, backward), target = tg::randint(0, 10, {kBatch});
  Tensor dy = tg::ones({});
  run(state, backward, dy, {logits}, [&] { return tg::cross_entropy(logits, target); });
  state.SetItemsProcessed(state.iterations() * kBatch * 10);
}

// --- linear: y [N, out] = x [N, in] · weightᵀ + bias --------------------------------------------

void BM_linear(benchmark::State& state, std::int64_t in, std::int64_t out, bool backward) {
  set_threads(state);
  tg::manual_seed(0);
  Tensor x = leaf({kBatch, in}, backward), w = leaf({out, in}, backward), b = leaf({out}, backward);
  Tensor dy = tg::randn({kBatch, out});
  run(state, backward, dy, {x, w, b}, [&] { return tg::linear(x, w, b); });
  set_flops(state, 2.0 * static_cast<double>(kBatch * in * out) * (backward ? 3 : 1));  // y; dx, dweight
}

// --- one training step of LeNet-BN (apps/lenet_bn's recipe) on a fixed random batch ----------------

void BM_train_step(benchmark::State& state) {
  set_threads(state);
  tg::manual_seed(0);
  tg::nn::Sequential net = lenet::make_lenet_bn();
  tg::optim::SGD opt(net.parameters(), {.lr = 1.0});
  tg::nn::CrossEntropyLoss loss_fn;
  Tensor X = tg::rand({kBatch, 1, 28, 28}), y = tg::randint(0, 10, {kBatch});
  for (auto _ : state) {
    Tensor loss = loss_fn(net(X), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    benchmark::DoNotOptimize(loss.item<double>());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

// --- raw OpenBLAS sgemm (single-threaded) at the convolutions' im2col GEMM sizes -------------------
//
// C[M, N] = op(A)[M, K] · op(B)[K, N], row-major. With `block` > 0 the product is split along its
// batch dimension (N, or K for dweight, whose reduction runs over the batch) into GEMMs of `block`
// columns on one cache-resident block, as conv2d.cpp's blocked im2col does; block = 0 is the
// whole batch in one GEMM.

struct GemmCase {
  std::int64_t M, N, K;
  bool trans_a, trans_b;
  bool split_k;        // the batch dimension is K (dweight), else N
  std::int64_t block;  // 0: one GEMM
};

void BM_sgemm(benchmark::State& state, GemmCase g) {
  const std::int64_t total = g.split_k ? g.K : g.N, per_call = g.block > 0 ? g.block : total;
  const std::int64_t calls = total / per_call;
  const std::int64_t n = g.split_k ? g.N : per_call, k = g.split_k ? per_call : g.K;
  std::vector<float> a(static_cast<std::size_t>(g.M * k)), b(static_cast<std::size_t>(k * n)),
      c(static_cast<std::size_t>(g.M * n));
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i % 7) * 0.25f - 0.5f;
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>(i % 5) * 0.5f - 1.0f;
  const int lda = static_cast<int>(g.trans_a ? g.M : k), ldb = static_cast<int>(g.trans_b ? k : n);
  for (auto _ : state) {
    for (std::int64_t i = 0; i < calls; ++i)
      cblas_sgemm(CblasRowMajor, g.trans_a ? CblasTrans : CblasNoTrans, g.trans_b ? CblasTrans : CblasNoTrans,
                  static_cast<int>(g.M), static_cast<int>(n), static_cast<int>(k), 1.0f, a.data(), lda, b.data(), ldb,
                  g.split_k ? 1.0f : 0.0f, c.data(), static_cast<int>(n));
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  set_flops(state, 2.0 * static_cast<double>(g.M * n * k * calls));
}

void register_all() {
  using benchmark::kMillisecond;
  auto threads = [](benchmark::internal::Benchmark* b) {
    b->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime()->Unit(kMillisecond);
  };
  for (bool bwd : {false, true}) {
    const std::string pass = bwd ? "_fwdbwd" : "_fwd";
    threads(benchmark::RegisterBenchmark(("conv2d" + pass + "/conv1_1x28x28_6x5x5").c_str(), BM_conv2d, kConv1, bwd));
    threads(benchmark::RegisterBenchmark(("conv2d" + pass + "/conv2_6x12x12_16x5x5").c_str(), BM_conv2d, kConv2, bwd));
    if (!bwd)
      for (bool fused : {false, true}) {
        const std::string op = fused ? "conv2d_act_fwd" : "conv2d_sigmoid_avg_pool2d_fwd";
        threads(benchmark::RegisterBenchmark((op + "/conv1_1x28x28_6x5x5").c_str(), BM_conv2d_sigmoid_pool, kConv1,
                                             fused));
        threads(benchmark::RegisterBenchmark((op + "/conv2_6x12x12_16x5x5").c_str(), BM_conv2d_sigmoid_pool, kConv2,
                                             fused));
      }
    threads(benchmark::RegisterBenchmark(("batch_norm2d" + pass + "/6x24x24").c_str(), BM_batch_norm,
                                         tg::Shape{kBatch, 6, 24, 24}, bwd, Then::Nothing));
    threads(benchmark::RegisterBenchmark(("batch_norm2d" + pass + "/16x8x8").c_str(), BM_batch_norm,
                                         tg::Shape{kBatch, 16, 8, 8}, bwd, Then::Nothing));
    for (const tg::Shape& shape : {tg::Shape{kBatch, 6, 24, 24}, tg::Shape{kBatch, 16, 8, 8}}) {
      const std::string dims = shape[1] == 6 ? "/6x24x24" : "/16x8x8";
      threads(benchmark::RegisterBenchmark(("batch_norm2d_sigmoid" + pass + dims).c_str(), BM_batch_norm, shape, bwd,
                                           Then::Sigmoid));
      threads(benchmark::RegisterBenchmark(("batch_norm2d_act" + pass + dims).c_str(), BM_batch_norm, shape, bwd,
                                           Then::FusedSigmoid));
      threads(benchmark::RegisterBenchmark(("batch_norm2d_act_then_pool" + pass + dims).c_str(), BM_batch_norm, shape,
                                           bwd, Then::FusedSigmoidThenPool));
      threads(benchmark::RegisterBenchmark(("batch_norm2d_act_pool" + pass + dims).c_str(), BM_batch_norm, shape, bwd,
                                           Then::FusedSigmoidPool));
    }
    threads(benchmark::RegisterBenchmark(("batch_norm1d" + pass + "/120").c_str(), BM_batch_norm,
                                         tg::Shape{kBatch, 120}, bwd, Then::Nothing));
    threads(benchmark::RegisterBenchmark(("batch_norm1d" + pass + "/84").c_str(), BM_batch_norm,
                                         tg::Shape{kBatch, 84}, bwd, Then::Nothing));
    threads(benchmark::RegisterBenchmark(("sigmoid" + pass + "/6x24x24").c_str(), BM_sigmoid,
                                         tg::Shape{kBatch, 6, 24, 24}, bwd));
    threads(benchmark::RegisterBenchmark(("sigmoid" + pass + "/16x8x8").c_str(), BM_sigmoid,
                                         tg::Shape{kBatch, 16, 8, 8}, bwd));
    threads(benchmark::RegisterBenchmark(("sigmoid" + pass + "/120").c_str(), BM_sigmoid, tg::Shape{kBatch, 120}, bwd));
    threads(benchmark::RegisterBenchmark(("avg_pool2d" + pass + "/6x24x24").c_str(), BM_avg_pool2d,
                                         tg::Shape{kBatch, 6, 24, 24}, bwd));
    threads(benchmark::RegisterBenchmark(("avg_pool2d" + pass + "/16x8x8").c_str(), BM_avg_pool2d,
                                         tg::Shape{kBatch, 16, 8, 8}, bwd));
    threads(benchmark::RegisterBenchmark(("cross_entropy" + pass + "/10").c_str(), BM_cross_entropy, bwd));
    threads(benchmark::RegisterBenchmark(("linear" + pass + "/256x120").c_str(), BM_linear, 256, 120, bwd));
    threads(benchmark::RegisterBenchmark(("linear" + pass + "/120x84").c_str(), BM_linear, 120, 84, bwd));
    threads(benchmark::RegisterBenchmark(("linear" + pass + "/84x10").c_str(), BM_linear, 84, 10, bwd));
  }
  threads(benchmark::RegisterBenchmark("train_step/lenet_bn", BM_train_step));

  // The GEMMs of conv2d over the whole batch (N·P = 256·576 = 147456 for conv1, 256·64 = 16384 for
  // conv2) and in the 256 KB blocks of im2col columns that conv2d.cpp used at the baseline (4 samples
  // of conv1, 6 of conv2).
  struct Named {
    const char* name;
    GemmCase g;
  };
  const Named gemms[] = {
      {"sgemm/conv1_y_6x147456x25", {6, 147456, 25, false, false, false, 0}},
      {"sgemm/conv1_y_6x147456x25/block4", {6, 147456, 25, false, false, false, 4 * 576}},
      {"sgemm/conv1_dw_25x6x147456", {25, 6, 147456, false, true, true, 0}},
      {"sgemm/conv1_dw_25x6x147456/block4", {25, 6, 147456, false, true, true, 4 * 576}},
      {"sgemm/conv2_y_16x16384x150", {16, 16384, 150, false, false, false, 0}},
      {"sgemm/conv2_y_16x16384x150/block6", {16, 16384, 150, false, false, false, 6 * 64}},
      {"sgemm/conv2_dw_150x16x16384", {150, 16, 16384, false, true, true, 0}},
      {"sgemm/conv2_dw_150x16x16384/block6", {150, 16, 16384, false, true, true, 6 * 64}},
      {"sgemm/conv2_dx_150x16384x16", {150, 16384, 16, true, false, false, 0}},
      {"sgemm/conv2_dx_150x16384x16/block6", {150, 16384, 16, true, false, false, 6 * 64}},
      {"sgemm/linear1_y_256x120x256", {256, 120, 256, false, true, false, 0}},
  };
  for (const Named& n : gemms)
    benchmark::RegisterBenchmark(n.name, BM_sgemm, n.g)->UseRealTime()->Unit(kMillisecond);
}

}  // namespace

int main(int argc, char** argv) {
  openblas_set_num_threads(1);  // tapegrad's policy (core/blas.cpp); the raw sgemm rows are one core
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
