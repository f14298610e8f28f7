// Batch norm folded into the preceding Conv2d or Linear (layers/fusion.h): the fused layers by
// hand, a folded LeNet-BN (with a nested Sequential) against the unfolded model in float32 and
// float64, what folding leaves alone, and the errors; batch norm fused with the following activation
// (fuse_batchnorm_activation) training LeNet-BN as the plain model does. Tag [layers].
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "tapegrad/core/native.h"
#include "tapegrad.h"

using tg::Tensor;
namespace nn = tg::nn;

namespace {

// Overwrites a tensor's values in place (no recording).
void set_values(const Tensor& t, const std::vector<double>& values) {
  tg::NoGradGuard no_grad;
  tg::native::copy_(t, tg::native::to(tg::tensor(values, t.sizes()), t.dtype()));
}

// Every floating tensor of the module as float64, in its own TensorImpl (what Module::to does).
void to_float64(nn::Module& m) {
  tg::NoGradGuard no_grad;
  for (const auto& [_, t] : m.state_dict()) {
    if (!tg::is_floating(t.dtype())) continue;
    Tensor d = tg::native::to(t, tg::kFloat64);
    tg::TensorImpl& impl = *t.impl();
    impl.storage = d.storage();
    impl.strides = d.strides();
    impl.offset = d.storage_offset();
    impl.dtype = tg::kFloat64;
  }
}

// d2l's LeNet-BN, its first block nested in a Sequential of its own.
nn::Sequential lenet_bn() {
  return nn::Sequential{nn::Sequential{nn::Conv2d(1, 6, 5), nn::BatchNorm2d(6), nn::Sigmoid(), nn::AvgPool2d(2, 2)},
                        nn::Conv2d(6, 16, 5),
                        nn::BatchNorm2d(16),
                        nn::Sigmoid(),
                        nn::AvgPool2d(2, 2),
                        nn::Flatten(),
                        nn::Linear(256, 120),
                        nn::BatchNorm1d(120),
                        nn::Sigmoid(),
                        nn::Linear(120, 84),
                        nn::BatchNorm1d(84),
                        nn::Sigmoid(),
                        nn::Linear(84, 10)};
}

// Batch norms with running statistics from a few training batches and affine parameters away from
// (1, 0), so that folding has something to fold.
void train_statistics(nn::Sequential& net, tg::DType dtype) {
  net.train();
  tg::NoGradGuard no_grad;
  for (int i = 0; i < 3; ++i) net(tg::rand({16, 1, 28, 28}, dtype).mul(2.0).sub(0.5));
  for (const auto& [name, t] : net.named_parameters())
    if (t.dim() == 1) set_values(t, tg::rand(t.sizes(), tg::kFloat64).mul(1.5).add(0.25).to_vector<double>());
  net.eval();
}

double max_rel_diff(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  REQUIRE(x.size() == y.size());
  double worst = 0;
  for (std::size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::fabs(x[i] - y[i]) / (1 + std::fabs(y[i])));
  return worst;
}

}  // namespace

TEST_CASE("fuse_conv_bn_eval and fuse_linear_bn_eval by hand", "[layers]") {
  // s = bn.weight / √(running_var + eps) = 3 / √4 = 1.5;  weight' = weight · s,  bias' = (bias − mean) · s + bn.bias.
  nn::Conv2d conv(1, 2, 1);
  set_values(conv.weight, {2.0, -1.0});
  set_values(conv.bias, {1.0, 0.0});
  nn::BatchNorm2d bn(2);
  set_values(bn.running_mean, {3.0, 1.0});
  set_values(bn.running_var, {4.0 - 1e-5, 1.0 - 1e-5});
  set_values(bn.weight, {3.0, 2.0});
  set_values(bn.bias, {0.5, 0.0});
  conv.eval();
  bn.eval();
  nn::Conv2d fused = nn::utils::fuse_conv_bn_eval(conv, bn);
  CHECK(fused.weight.to_vector<double>() == std::vector<double>{3.0, -2.0});
  CHECK(fused.bias.to_vector<double>() == std::vector<double>{-2.5, -2.0});
  CHECK(fused.to_string() == "Conv2d(1, 2, kernel_size=(1, 1), stride=(1, 1))");
  CHECK_FALSE(fused.is_training());
  CHECK(fused.weight.requires_grad());
  CHECK(conv.weight.to_vector<double>() == std::vector<double>{2.0, -1.0});  // the inputs stay as they were

  // No conv bias counts as 0; no batch norm affine as weight 1, bias 0.
  nn::Conv2d no_bias(1, 1, 1, 1, 0, false);
  set_values(no_bias.weight, {4.0});
  nn::BatchNorm2d plain(1, {.affine = false});
  set_values(plain.running_mean, {2.0});
  set_values(plain.running_var, {0.25 - 1e-5});
  no_bias.eval();
  plain.eval();
  nn::Conv2d f2 = nn::utils::fuse_conv_bn_eval(no_bias, plain);
  CHECK(f2.weight.to_vector<double>()[0] == Approx(8.0).epsilon(1e-6));
  CHECK(f2.bias.to_vector<double>()[0] == Approx(-4.0).epsilon(1e-6));
  CHECK_FALSE(f2.bias.requires_grad());

  nn::Linear lin(2, 2);
  set_values(lin.weight, {1.0, 2.0, 3.0, 4.0});
  set_values(lin.bias, {1.0, -1.0});
  nn::BatchNorm1d bn1(2);
  set_values(bn1.running_mean, {3.0, 1.0});
  set_values(bn1.running_var, {4.0 - 1e-5, 1.0 - 1e-5});
  set_values(bn1.weight, {3.0, 2.0});
  set_values(bn1.bias, {0.5, 0.0});
  lin.eval();
  bn1.eval();
  nn::Linear fl = nn::utils::fuse_linear_bn_eval(lin, bn1);
  CHECK(fl.weight.to_vector<double>() == std::vector<double>{1.5, 3.0, 6.0, 8.0});
  CHECK(fl.bias.to_vector<double>() == std::vector<double>{-2.5, -4.0});
  CHECK(fl.to_string() == "Linear(in_features=2, out_features=2, bias=True)");
}

TEST_CASE("fold_batchnorm: a folded LeNet-BN gives the unfolded outputs (1e-5 float32, 1e-12 float64)", "[layers]") {
  const tg::DType dtype = GENERATE(tg::kFloat32, tg::kFloat64);
  tg::manual_seed(3);
  nn::Sequential net = lenet_bn();
  if (dtype == tg::kFloat64) to_float64(net);
  train_statistics(net, dtype);
  const nn::NamedTensors before = net.state_dict();
  std::vector<std::vector<double>> before_values;
  for (const auto& [_, t] : before) before_values.push_back(t.to_vector<double>());

  const std::string rng = tg::get_rng_state();
  nn::Sequential folded = nn::utils::fold_batchnorm(net);
  CHECK(tg::get_rng_state() == rng);  // folding draws no random numbers

  // 4 + 13 children become 3 + 10: each Conv2d/Linear + BatchNorm pair is one layer, in the nested block too.
  REQUIRE(folded.size() == 10);
  auto* block = dynamic_cast<nn::Sequential*>(folded[0].get());
  REQUIRE(block != nullptr);
  CHECK(block->size() == 3);
  CHECK(dynamic_cast<nn::Conv2d*>((*block)[0].get()) != nullptr);
  CHECK(dynamic_cast<nn::Conv2d*>(folded[1].get()) != nullptr);
  CHECK(dynamic_cast<nn::Sigmoid*>(folded[2].get()) != nullptr);
  CHECK(dynamic_cast<nn::Linear*>(folded[5].get()) != nullptr);
  CHECK(dynamic_cast<nn::Linear*>(folded[7].get()) != nullptr);
  CHECK(dynamic_cast<nn::Linear*>(folded[9].get()) != nullptr);
  CHECK(folded.named_buffers().empty());
  CHECK_FALSE(folded.is_training());
  CHECK(folded.parameters().size() == 10);
  for (const Tensor& p : folded.parameters()) CHECK(p.dtype() == dtype);

  tg::NoGradGuard no_grad;
  const Tensor x = tg::native::to(tg::randn({5, 1, 28, 28}), dtype);
  const double diff = max_rel_diff(folded(x), net(x));
  CHECK(diff <= (dtype == tg::kFloat32 ? 1e-5 : 1e-12));

  // The source is unchanged: same tensors, same values, still in evaluation mode.
  const nn::NamedTensors after = net.state_dict();
  REQUIRE(after.size() == before.size());
  for (std::size_t i = 0; i < after.size(); ++i) {
    CHECK(after[i].second.is_same(before[i].second));
    CHECK(after[i].second.to_vector<double>() == before_values[i]);
  }
  CHECK_FALSE(net.is_training());
}

TEST_CASE("fold_batchnorm leaves lone batch norms, batch norms without running statistics and split pairs", "[layers]") {
  nn::Sequential net{nn::BatchNorm1d(4), nn::Linear(4, 4), nn::BatchNorm1d(4, {.track_running_stats = false}),
                     nn::Sequential{nn::Linear(4, 3)}, nn::BatchNorm1d(3), nn::Linear(3, 3), nn::Sigmoid(),
                     nn::BatchNorm1d(3)};
  net.eval();
  nn::Sequential folded = nn::utils::fold_batchnorm(net);
  REQUIRE(folded.size() == net.size());
  CHECK(folded.to_string() == net.to_string());
  tg::NoGradGuard no_grad;
  const Tensor x = tg::randn({6, 4});
  CHECK(max_rel_diff(folded(x), net(x)) == 0.0);
}

TEST_CASE("fold_batchnorm leaves the fused BatchNormAct modules: they are no affine map", "[layers]") {
  tg::manual_seed(9);
  nn::Sequential net = lenet_bn();
  train_statistics(net, tg::kFloat32);
  nn::Sequential fused = nn::utils::fuse_batchnorm_activation(net);
  fused.eval();
  nn::Sequential folded = nn::utils::fold_batchnorm(fused);
  CHECK(folded.to_string() == fused.to_string());
  tg::NoGradGuard no_grad;
  const Tensor x = tg::randn({3, 1, 28, 28});
  CHECK(max_rel_diff(folded(x), fused(x)) == 0.0);
}

TEST_CASE("folding a model in training mode, or mismatched layers, throws", "[layers][errors]") {
  nn::Sequential net = lenet_bn();
  CHECK_THROWS_WITH(nn::utils::fold_batchnorm(net),
                    Catch::StartsWith("[fold_batchnorm] expected a model in evaluation mode (call eval() first)"));
  net.eval();
  dynamic_cast<nn::Sequential&>(*net[0])[1]->train();  // one module deep inside
  CHECK_THROWS_WITH(nn::utils::fold_batchnorm(net), Catch::StartsWith("[fold_batchnorm] expected a model in evaluation"));

  nn::Conv2d conv(1, 2, 3);
  nn::BatchNorm2d bn(2);
  CHECK_THROWS_WITH(nn::utils::fuse_conv_bn_eval(conv, bn),
                    "[fuse_conv_bn_eval] fusion only for eval: expected Conv2d and BatchNorm2d in evaluation mode "
                    "(call eval()), got training and training");
  conv.eval();
  bn.eval();
  nn::BatchNorm2d three(3);
  three.eval();
  CHECK_THROWS_WITH(nn::utils::fuse_conv_bn_eval(conv, three),
                    "[fuse_conv_bn_eval] expected a BatchNorm2d of 2 features for Conv2d(1, 2, kernel_size=(3, 3), "
                    "stride=(1, 1)), got 3");
  nn::BatchNorm2d untracked(2, {.track_running_stats = false});
  untracked.eval();
  CHECK_THROWS_WITH(nn::utils::fuse_conv_bn_eval(conv, untracked),
                    "[fuse_conv_bn_eval] expected a BatchNorm2d with running statistics (track_running_stats=True)");
  nn::Linear lin(3, 4);
  nn::BatchNorm1d bn1(4);
  bn1.eval();
  CHECK_THROWS_WITH(nn::utils::fuse_linear_bn_eval(lin, bn1),
                    Catch::StartsWith("[fuse_linear_bn_eval] fusion only for eval"));
}

namespace {

// lenet_bn() from seed 8, in dtype: two calls give the same weights.
nn::Sequential seeded_lenet_bn(tg::DType dtype) {
  tg::manual_seed(8);
  nn::Sequential net = lenet_bn();
  if (dtype == tg::kFloat64) to_float64(net);
  return net;
}

// Three SGD steps through `fused` (the optimizer over the parameters of `net`, its source) and through
// `twin` (the same weights, unfused): the losses and then every trained tensor agree within 1e-5
// (float32) or 1e-12, and so do both models' outputs in evaluation mode (switched to it here).
void train_alongside(nn::Sequential& net, nn::Sequential& fused, nn::Sequential& twin, tg::DType dtype) {
  const double tol = dtype == tg::kFloat32 ? 1e-5 : 1e-12;
  tg::optim::SGD opt(net.parameters(), {.lr = 0.5}), twin_opt(twin.parameters(), {.lr = 0.5});
  nn::CrossEntropyLoss loss_fn;
  for (int step = 0; step < 3; ++step) {
    const Tensor x = tg::native::to(tg::randn({8, 1, 28, 28}), dtype), y = tg::randint(0, 10, {8});
    Tensor l1 = loss_fn(fused(x), y), l2 = loss_fn(twin(x), y);
    CHECK(std::fabs(l1.item<double>() - l2.item<double>()) <= tol);
    opt.zero_grad();
    twin_opt.zero_grad();
    l1.backward();
    l2.backward();
    opt.step();
    twin_opt.step();
  }
  const nn::NamedTensors trained = net.state_dict(), expected = twin.state_dict();
  for (std::size_t i = 0; i < trained.size(); ++i) {
    INFO(trained[i].first);
    CHECK(max_rel_diff(trained[i].second, expected[i].second) <= 10 * tol);
  }
  fused.eval();
  twin.eval();
  tg::NoGradGuard no_grad;
  const Tensor x = tg::native::to(tg::randn({4, 1, 28, 28}), dtype);
  CHECK(max_rel_diff(fused(x), twin(x)) <= tol);
}

}  // namespace

TEST_CASE("fuse_batchnorm_activation: LeNet-BN trains as before, sharing the source's tensors", "[layers]") {
  const tg::DType dtype = GENERATE(tg::kFloat32, tg::kFloat64);
  nn::Sequential net = seeded_lenet_bn(dtype), twin = seeded_lenet_bn(dtype);  // twin: trained unfused alongside
  nn::Sequential fused = nn::utils::fuse_batchnorm_activation(net);

  // Each BatchNorm + Sigmoid pair is one module and an Identity, and so is a BatchNorm2d + Sigmoid +
  // AvgPool2d(2) triple, with an Identity for each: the same children, names and keys.
  REQUIRE(fused.size() == net.size());
  auto* block = dynamic_cast<nn::Sequential*>(fused[0].get());
  REQUIRE(block != nullptr);
  CHECK(block->to_string().find("(1): BatchNormAct2d(6, eps=1e-05, momentum=0.1, affine=True, "
                                "track_running_stats=True, activation=Sigmoid, avg_pool2d=2)\n  (2): Identity()\n"
                                "  (3): Identity()") != std::string::npos);
  CHECK(dynamic_cast<nn::BatchNormAct2d*>(fused[2].get()) != nullptr);
  CHECK(dynamic_cast<nn::Identity*>(fused[3].get()) != nullptr);
  CHECK(dynamic_cast<nn::Identity*>(fused[4].get()) != nullptr);
  CHECK(dynamic_cast<nn::BatchNormAct1d*>(fused[7].get()) != nullptr);
  CHECK(dynamic_cast<nn::BatchNormAct1d*>(fused[10].get()) != nullptr);
  CHECK(fused[1] == net[1]);  // the other modules are the source's own
  const nn::NamedTensors a = net.state_dict(), b = fused.state_dict();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].first == b[i].first);
    CHECK(a[i].second.is_same(b[i].second));
  }
  CHECK(fused.is_training());
  CHECK(net[2]->to_string() == "BatchNorm2d(16, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)");

  train_alongside(net, fused, twin, dtype);
  CHECK_FALSE(fused[2]->is_training());  // the fused modules are the fused model's own, switched through it
}

TEST_CASE("fuse_conv_batchnorm_activation: LeNet-BN trains as before, with PyTorch's keys for fused modules",
          "[layers]") {
  const tg::DType dtype = GENERATE(tg::kFloat32, tg::kFloat64);
  nn::Sequential net = seeded_lenet_bn(dtype), twin = seeded_lenet_bn(dtype);  // twin: trained unfused alongside
  nn::Sequential fused = nn::utils::fuse_conv_batchnorm_activation(net);

  // Conv2d + BatchNorm2d + Sigmoid + AvgPool2d(2) is one ConvBatchNormAct2d and three Identity, inside
  // the nested block too; the Linear + BatchNorm1d + Sigmoid triples fuse as fuse_batchnorm_activation.
  REQUIRE(fused.size() == net.size());
  auto* block = dynamic_cast<nn::Sequential*>(fused[0].get());
  REQUIRE(block != nullptr);
  CHECK(block->to_string() ==
        "Sequential(\n"
        "  (0): ConvBatchNormAct2d(\n"
        "    (0): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))\n"
        "    (1): BatchNormAct2d(6, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True, "
        "activation=Sigmoid, avg_pool2d=2)\n"
        "  )\n"
        "  (1): Identity()\n"
        "  (2): Identity()\n"
        "  (3): Identity()\n"
        ")");
  CHECK(dynamic_cast<nn::ConvBatchNormAct2d*>(fused[1].get()) != nullptr);
  for (int i : {2, 3, 4}) CHECK(dynamic_cast<nn::Identity*>(fused[i].get()) != nullptr);
  CHECK(dynamic_cast<nn::BatchNormAct1d*>(fused[7].get()) != nullptr);
  CHECK(fused[6] == net[6]);  // the other modules are the source's own
  // The same tensors in the same order, under the fused module's children's names.
  const nn::NamedTensors a = net.state_dict(), b = fused.state_dict();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i].second.is_same(b[i].second));
  CHECK(b[0].first == "0.0.0.weight");
  CHECK(b[3].first == "0.0.1.bias");
  CHECK(b[7].first == "1.0.weight");
  CHECK(b[11].first == "1.1.running_mean");
  CHECK(b[14].first == a[14].first);  // "6.weight", the first Linear's
  CHECK(fused.is_training());

  train_alongside(net, fused, twin, dtype);
  CHECK_FALSE(fused[1]->is_training());

  // A clone is a module of its own, with the same outputs.
  tg::NoGradGuard no_grad;
  std::shared_ptr<nn::Module> copy = fused[1]->clone();
  CHECK(copy->to_string() == fused[1]->to_string());
  CHECK_FALSE(copy->state_dict()[0].second.is_same(fused[1]->state_dict()[0].second));
  const Tensor block_input = tg::native::to(tg::randn({2, 6, 12, 12}), dtype);
  CHECK(max_rel_diff((*copy)(block_input), (*fused[1])(block_input)) == 0.0);
}

TEST_CASE("ConvBatchNormAct2d refuses a batch norm of other channels, and input of other channels", "[layers][errors]") {
  const nn::BatchNormAct2d bn(nn::BatchNorm2d(4), tg::BatchNormActivation::ReLU);
  CHECK_THROWS_WITH(nn::ConvBatchNormAct2d(nn::Conv2d(1, 6, 5), bn),
                    "[ConvBatchNormAct2d] expected a batch norm of the convolution's 6 channels, got 4");
  nn::ConvBatchNormAct2d fused(nn::Conv2d(1, 4, 3), bn);
  const Tensor tracked = fused.bn->num_batches_tracked.clone();
  CHECK_THROWS_WITH(fused(tg::rand({2, 3, 8, 8})),
                    "[ConvBatchNormAct2d] expected input of shape [N, 1, H, W] or [1, H, W], got [2, 3, 8, 8]");
  CHECK_THROWS_WITH(fused(tg::rand({1, 8, 8})),
                    "[ConvBatchNormAct2d] expected 4D input, as BatchNorm2d (got 3D input of shape [1, 8, 8])");
  CHECK(fused.bn->num_batches_tracked.item<std::int64_t>() == tracked.item<std::int64_t>());  // a refused batch counts not
}

TEST_CASE("fuse_batchnorm_activation leaves batch norms without a Sigmoid or ReLU after them", "[layers]") {
  nn::Sequential net{nn::BatchNorm1d(4), nn::Tanh(), nn::BatchNorm1d(4), nn::Sequential{nn::ReLU()},
                     nn::Linear(4, 4), nn::ReLU(), nn::BatchNorm1d(4)};
  net.eval();
  nn::Sequential fused = nn::utils::fuse_batchnorm_activation(net);
  CHECK(fused.to_string() == net.to_string());
  CHECK_FALSE(fused.is_training());
  tg::NoGradGuard no_grad;
  const Tensor x = tg::randn({6, 4});
  CHECK(max_rel_diff(fused(x), net(x)) == 0.0);
}

TEST_CASE("fuse_conv_activation: a folded LeNet-BN with fused conv epilogues gives the unfolded outputs", "[layers]") {
  const tg::DType dtype = GENERATE(tg::kFloat32, tg::kFloat64);
  tg::manual_seed(4);
  nn::Sequential net = lenet_bn();
  if (dtype == tg::kFloat64) to_float64(net);
  train_statistics(net, dtype);
  nn::Sequential folded = nn::utils::fold_batchnorm(net);
  const std::string folded_repr = folded.to_string();
  nn::Sequential fused = nn::utils::fuse_conv_activation(folded);

  // Conv2d, Sigmoid, AvgPool2d become ConvAct2d, Identity, Identity, in the nested block too: the same
  // children, names and state_dict keys, sharing the folded model's tensors.
  REQUIRE(fused.size() == folded.size());
  auto* block = dynamic_cast<nn::Sequential*>(fused[0].get());
  REQUIRE(block != nullptr);
  CHECK(block->to_string() ==
        "Sequential(\n  (0): ConvAct2d(1, 6, kernel_size=(5, 5), stride=(1, 1), activation=Sigmoid, avg_pool2d=2)\n"
        "  (1): Identity()\n  (2): Identity()\n)");
  CHECK(dynamic_cast<nn::ConvAct2d*>(fused[1].get()) != nullptr);
  CHECK(dynamic_cast<nn::Identity*>(fused[2].get()) != nullptr);
  CHECK(dynamic_cast<nn::Identity*>(fused[3].get()) != nullptr);
  CHECK(fused[5] == folded[5]);  // the other modules are the source's own
  const nn::NamedTensors a = folded.state_dict(), b = fused.state_dict();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].first == b[i].first);
    CHECK(a[i].second.is_same(b[i].second));
  }
  CHECK(folded.to_string() == folded_repr);  // the source is not changed
  CHECK_FALSE(fused.is_training());

  tg::NoGradGuard no_grad;
  const Tensor x = tg::native::to(tg::randn({5, 1, 28, 28}), dtype);
  const double tol = dtype == tg::kFloat32 ? 1e-5 : 1e-12;
  CHECK(max_rel_diff(fused(x), net(x)) <= tol);
  const Tensor one = x.select(0, 0);  // unbatched, through the first block
  CHECK(max_rel_diff((*fused[0])(one), (*folded[0])(one)) <= tol);
}

TEST_CASE("fuse_conv_activation trains as the plain model does, and leaves other patterns", "[layers]") {
  // d2l's LeNet (no batch norm, conv1 padded): both convolutions fuse with their sigmoid and pool.
  tg::manual_seed(9);
  nn::Sequential net{nn::Conv2d(1, 6, 5, 1, 2), nn::Sigmoid(),      nn::AvgPool2d(2, 2), nn::Conv2d(6, 16, 5),
                     nn::Sigmoid(),             nn::AvgPool2d(2, 2), nn::Flatten(),       nn::Linear(400, 120),
                     nn::Sigmoid(),             nn::Linear(120, 10)};
  nn::Sequential fused = nn::utils::fuse_conv_activation(net);
  CHECK(dynamic_cast<nn::ConvAct2d*>(fused[0].get()) != nullptr);
  CHECK(dynamic_cast<nn::ConvAct2d*>(fused[3].get()) != nullptr);
  CHECK(fused.is_training());
  nn::CrossEntropyLoss loss_fn;
  const Tensor x = tg::randn({6, 1, 28, 28}), y = tg::randint(0, 10, {6});
  Tensor l1 = loss_fn(fused(x), y);
  std::vector<Tensor> g1;
  l1.backward();
  for (const Tensor& p : net.parameters()) g1.push_back(p.grad().clone());
  net.zero_grad();
  Tensor l2 = loss_fn(net(x), y);
  l2.backward();
  CHECK(l1.item<double>() == l2.item<double>());
  const std::vector<Tensor> params = net.parameters();
  REQUIRE(g1.size() == params.size());
  for (std::size_t i = 0; i < params.size(); ++i) CHECK(max_rel_diff(g1[i], params[i].grad()) == 0.0);
  fused.eval();
  tg::NoGradGuard no_grad;
  CHECK(max_rel_diff(fused(x), net(x)) <= 1e-6);

  // Not fused: a Tanh, a pool of another size (the activation still fuses), a pattern split across a
  // nested Sequential, a Conv2d at the end; nor, fusing again, a ConvAct2d.
  nn::Sequential other{nn::Conv2d(1, 2, 3), nn::Tanh(), nn::Conv2d(2, 2, 3), nn::ReLU(), nn::AvgPool2d(3, 2),
                       nn::Conv2d(2, 2, 1), nn::Sequential{nn::Sigmoid()}, nn::Conv2d(2, 2, 1)};
  other.eval();
  nn::Sequential fused_other = nn::utils::fuse_conv_activation(other);
  CHECK(fused_other.to_string() ==
        "Sequential(\n  (0): Conv2d(1, 2, kernel_size=(3, 3), stride=(1, 1))\n  (1): Tanh()\n"
        "  (2): ConvAct2d(2, 2, kernel_size=(3, 3), stride=(1, 1), activation=ReLU)\n  (3): Identity()\n"
        "  (4): AvgPool2d(kernel_size=3, stride=2, padding=0)\n  (5): Conv2d(2, 2, kernel_size=(1, 1), stride=(1, 1))\n"
        "  (6): Sequential(\n    (0): Sigmoid()\n  )\n  (7): Conv2d(2, 2, kernel_size=(1, 1), stride=(1, 1))\n)");
  nn::Sequential twice = nn::utils::fuse_conv_activation(fused_other);
  CHECK(twice.to_string() == fused_other.to_string());
  const Tensor z = tg::randn({2, 1, 12, 12});
  CHECK(max_rel_diff(fused_other(z), other(z)) <= 1e-6);
}
