// The LeNet-BN app's training code on small data the test makes itself: metrics and plot
// output, bit-identical reruns and resumes, NaN handling, the from-scratch batch norm following
// the built-in one, and the command line's errors. Tag [apps].
#include <catch2/catch.hpp>

#include "run_program.h"
#include "tests/support/files.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "apps/lenet/checkpoint.h"
#include "apps/lenet/trainer.h"
#include "tapegrad.h"
#include "tests/support/blocks.h"
#include "tests/support/lenet_runs.h"
#include "tests/support/files.h"

using Catch::Contains;
using tg::Tensor;

namespace {

using tg_test::temp_path;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<std::vector<float>> weights(const tg::nn::Module& net) {
  std::vector<std::vector<float>> out;
  for (const auto& [_, t] : net.state_dict())
    if (t.dtype() == tg::kFloat32) out.push_back(t.to_vector<float>());
  return out;
}

lenet::TrainOptions small(std::int64_t epochs) { return tg_test::small_lenet_run(epochs, 3); }

}  // namespace

TEST_CASE("LeNet-BN learns the block task and reports d2l's metrics", "[apps]") {
  const tg::data::TensorDataset train = tg_test::blocks(256, 1), test = tg_test::blocks(128, 2);
  std::vector<lenet::EpochMetrics> seen;
  lenet::TrainCallbacks cb;
  std::int64_t batches = 0;
  cb.on_batch = [&](std::int64_t done, std::int64_t total, double loss, double rate) {
    CHECK(done <= total);
    CHECK(total == 8);
    CHECK(std::isfinite(loss));
    CHECK(rate > 0);
    ++batches;
  };
  cb.on_epoch = [&](const lenet::EpochMetrics& m) { seen.push_back(m); };
  std::vector<lenet::EpochMetrics> metrics = lenet::train(train, test, small(3), cb);
  REQUIRE(metrics.size() == 3);
  CHECK(batches == 24);
  CHECK(seen.size() == 3);
  CHECK(metrics[2].epoch == 3);
  CHECK(metrics[2].train_loss < metrics[0].train_loss);
  CHECK(metrics[2].train_acc > 0.9);
  CHECK(metrics[2].test_acc > 0.75);  // 128 held-out images after 3 short epochs
  CHECK(metrics[0].examples_per_sec > 0);

  std::string csv = lenet::metrics_csv(metrics);
  CHECK(csv.rfind("epoch,train_loss,train_acc,test_acc,seconds,examples_per_sec\n", 0) == 0);
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 4);
  CHECK_THAT(csv, Contains(fmt::format("\n3,{:.6f},{:.6f},{:.6f},", metrics[2].train_loss, metrics[2].train_acc,
                                       metrics[2].test_acc)));
  std::string svg = lenet::metrics_svg(metrics);
  CHECK(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0) == 0);
  CHECK(svg.find("</svg>") != std::string::npos);
  std::size_t polylines = 0;
  for (std::size_t at = svg.find("<polyline"); at != std::string::npos; at = svg.find("<polyline", at + 1)) ++polylines;
  CHECK(polylines == 3);
  CHECK_THAT(svg, Contains(">train loss<") && Contains(">train acc<") && Contains(">test acc<"));

  std::string path = temp_path("metrics.csv");
  lenet::write_text_file(path, csv);
  CHECK(slurp(path) == csv);
  std::filesystem::remove(path);
  CHECK_THROWS_WITH(lenet::write_text_file("/nonexistent-dir/m.csv", csv), Contains("/nonexistent-dir/m.csv"));
}

TEST_CASE("the same seed gives bit-identical runs, and a resumed run ends where an uninterrupted one does",
          "[apps]") {
  const tg::data::TensorDataset train = tg_test::blocks(128, 1), test = tg_test::blocks(64, 2);
  tg::nn::Sequential a, b, c;
  std::vector<lenet::EpochMetrics> ma = lenet::train(train, test, small(3), {}, &a);
  std::vector<lenet::EpochMetrics> mb = lenet::train(train, test, small(3), {}, &b);
  for (std::size_t e = 0; e < 3; ++e) {
    CHECK(ma[e].train_loss == mb[e].train_loss);
    CHECK(ma[e].train_acc == mb[e].train_acc);
    CHECK(ma[e].test_acc == mb[e].test_acc);
  }
  CHECK(weights(a) == weights(b));

  std::string ckpt = temp_path("resume.safetensors");
  lenet::TrainOptions first = small(2);
  first.save_path = ckpt;
  first.momentum = 0.9;  // the optimizer's state must come back too
  lenet::train(train, test, first);
  lenet::TrainOptions rest = small(3);
  rest.momentum = 0.9;
  rest.resume_path = ckpt;
  std::vector<lenet::EpochMetrics> mc = lenet::train(train, test, rest, {}, &c);
  lenet::TrainOptions whole = small(3);
  whole.momentum = 0.9;
  tg::nn::Sequential d;
  std::vector<lenet::EpochMetrics> md = lenet::train(train, test, whole, {}, &d);
  REQUIRE(mc.size() == 3);
  CHECK(weights(c) == weights(d));  // bit-identical
  CHECK(mc[2].train_loss == md[2].train_loss);
  CHECK(mc[0].train_loss == Approx(md[0].train_loss).epsilon(1e-6));  // restored from the CSV text

  lenet::TrainOptions other = small(3);
  other.resume_path = ckpt;
  other.bn = lenet::BatchNormKind::Scratch;
  CHECK_THROWS_WITH(lenet::train(train, test, other), Contains(ckpt) && Contains("bn=builtin"));
  std::filesystem::remove(ckpt);
}

TEST_CASE("training refuses images of the wrong size and a bad learning rate before its first batch",
          "[apps][errors]") {
  const tg::data::TensorDataset train_set = tg_test::blocks(16, 1);
  tg::data::TensorDataset small_images(tg::rand({4, 1, 20, 20}), tg::zeros({4}, tg::kInt64));
  bool trained = false;
  lenet::TrainCallbacks cb;
  cb.on_batch = [&](std::int64_t, std::int64_t, double, double) { trained = true; };
  CHECK_THROWS_WITH(lenet::train(train_set, small_images, small(1), cb),
                    Contains("[lenet_bn] the test images are [1, 20, 20]; LeNet-BN takes [1, 28, 28]"));
  CHECK_THROWS_WITH(lenet::train(small_images, train_set, small(1), cb),
                    Contains("[lenet_bn] the training images are [1, 20, 20]"));
  for (double lr : {std::nan(""), -0.5, 0.0}) {
    lenet::TrainOptions o = small(1);
    o.lr = lr;
    CHECK_THROWS_WITH(lenet::train(train_set, train_set, o, cb),
                      Contains("[lenet_bn] the learning rate must be a positive finite number"));
  }
  CHECK(!trained);
}

TEST_CASE("a NaN loss stops training with a clear error and leaves the checkpoint intact", "[apps][errors]") {
  const tg::data::TensorDataset train = tg_test::blocks(64, 1), test = tg_test::blocks(32, 2);
  std::string ckpt = temp_path("nan.safetensors");
  lenet::TrainOptions ok = small(1);
  ok.save_path = ckpt;
  lenet::train(train, test, ok);
  std::string before = slurp(ckpt);
  lenet::TrainOptions boom = small(3);
  boom.lr = 1e38;
  boom.resume_path = ckpt;
  boom.save_path = ckpt;
  CHECK_THROWS_WITH(lenet::train(train, test, boom), Contains("loss became") && Contains(ckpt) &&
                                                        Contains("the first layer output with nan or inf: 1 (BatchNorm2d)") &&
                                                        Contains("[backward]") && Contains("recorded in module"));
  CHECK(slurp(ckpt) == before);
  std::filesystem::remove(ckpt);
}

TEST_CASE("the from-scratch batch norm follows the built-in one", "[apps]") {
  const tg::data::TensorDataset train = tg_test::blocks(128, 1), test = tg_test::blocks(64, 2);
  lenet::TrainOptions builtin = small(2), scratch = small(2);
  scratch.bn = lenet::BatchNormKind::Scratch;
  std::vector<lenet::EpochMetrics> mb = lenet::train(train, test, builtin);
  std::vector<lenet::EpochMetrics> ms = lenet::train(train, test, scratch);
  for (std::size_t e = 0; e < 2; ++e) {
    CHECK(ms[e].train_loss == Approx(mb[e].train_loss).margin(1e-3));
    CHECK(ms[e].test_acc == Approx(mb[e].test_acc).margin(0.02));
  }
}

TEST_CASE("lenet_bn --fuse trains the plain model's curve and weights; not with gradient-flow statistics", "[apps]") {
  const tg::data::TensorDataset train = tg_test::blocks(128, 1), test = tg_test::blocks(64, 2);
  lenet::TrainOptions plain = small(2), fused = small(2);
  fused.fuse = true;
  tg::nn::Sequential net_plain, net_fused;
  std::vector<lenet::EpochMetrics> mp = lenet::train(train, test, plain, {}, &net_plain);
  std::vector<lenet::EpochMetrics> mf = lenet::train(train, test, fused, {}, &net_fused);
  for (std::size_t e = 0; e < 2; ++e) {
    CHECK(mf[e].train_loss == Approx(mp[e].train_loss).margin(1e-5));
    CHECK(mf[e].train_acc == mp[e].train_acc);
    CHECK(mf[e].test_acc == mp[e].test_acc);
  }
  const auto wp = weights(net_plain), wf = weights(net_fused);
  REQUIRE(wp.size() == wf.size());
  double worst = 0;
  for (std::size_t i = 0; i < wp.size(); ++i)
    for (std::size_t j = 0; j < wp[i].size(); ++j) worst = std::max(worst, double(std::fabs(wf[i][j] - wp[i][j])));
  CHECK(worst <= 1e-5);
  lenet::GradientFlow flow(10);
  fused.flow = &flow;
  CHECK_THROWS_WITH(lenet::train(train, test, fused),
                    "[lenet_bn] --fuse runs fused batch norms: not with --stats (its hooks watch the plain layers)");
}

TEST_CASE("a folded export classifies as the trained model does, and every saved form loads for inference",
          "[apps]") {
  const tg::data::TensorDataset train = tg_test::blocks(128, 1), test = tg_test::blocks(64, 2);
  tg::nn::Sequential trained;
  std::string ckpt = temp_path("infer_ckpt.safetensors"), folded = temp_path("infer_folded.safetensors"),
              plain = temp_path("infer_plain.safetensors");
  lenet::TrainOptions o = small(1);
  o.save_path = ckpt;
  lenet::train(train, test, o, {}, &trained);
  lenet::export_folded(folded, trained);
  tg::save(trained, plain);
  CHECK_FALSE(trained.is_training());

  tg::NoGradGuard no_grad;
  const Tensor X = test.get_batch({0, 1, 2, 3, 4, 5, 6, 7}).first;
  const std::vector<float> want = trained(X).to_vector<float>();
  for (const auto& [path, is_folded] : {std::pair{folded, true}, {ckpt, false}, {plain, false}}) {
    CAPTURE(path);
    lenet::InferenceModel m = lenet::load_for_inference(path);
    CHECK(m.folded == is_folded);
    CHECK_FALSE(m.net.is_training());
    CHECK(m.net.named_buffers().size() == (is_folded ? 0u : 12u));
    const std::vector<float> got = m.net(X).to_vector<float>();
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want[i]).margin(1e-5));
  }
  lenet::InferenceModel from_file = lenet::load_for_inference(folded);
  CHECK(lenet::evaluate_accuracy(from_file.net, test, 32) == lenet::evaluate_accuracy(trained, test, 32));
  CHECK_THROWS_WITH(lenet::load_for_inference(temp_path("infer_missing.safetensors")), Contains("infer_missing"));
  for (const std::string& p : {ckpt, folded, plain}) std::filesystem::remove(p);
}

TEST_CASE("lenet_bn --bn none: the same LeNet without its batch-norm layers", "[apps]") {
  tg::nn::Sequential plain = lenet::make_lenet_bn(lenet::BatchNormKind::None);
  CHECK(plain.size() == 12);
  CHECK(plain.named_buffers().empty());
  CHECK(plain.named_parameters().size() == 10);
  CHECK(plain[1]->name() == "Sigmoid");
  CHECK(std::string(lenet::batch_norm_name(lenet::BatchNormKind::None)) == "none");
  CHECK(plain(tg::zeros({2, 1, 28, 28})).sizes() == tg::Shape({2, 10}));
}

TEST_CASE("gradient-flow statistics: what is recorded, when, and its values", "[apps]") {
  const tg::data::TensorDataset train = tg_test::blocks(128, 1), test = tg_test::blocks(32, 2);
  lenet::TrainOptions o = small(2);  // 4 steps per epoch, 8 in all: steps 1, 4 and 7 are recorded
  lenet::GradientFlow flow(3);
  o.flow = &flow;
  lenet::train(train, test, o);
  std::map<std::int64_t, std::map<std::string, int>> per_step;  // step -> stat -> rows
  for (const lenet::FlowRow& r : flow.rows()) {
    ++per_step[r.step][r.stat];
    CHECK(r.epoch == (r.step <= 4 ? 1 : 2));
    CHECK(std::isfinite(r.value));
  }
  REQUIRE(per_step.size() == 3);
  // 16 layers, 18 parameters; at step 1 the 4 batch-norm biases are still 0: no ratio to ‖w‖.
  for (std::int64_t step : {1, 4, 7})
    CHECK(per_step[step] == std::map<std::string, int>{{"act_mean", 16}, {"act_std", 16}, {"grad_norm", 18},
                                                        {"update_ratio", step == 1 ? 14 : 18}});
  auto value = [&](std::int64_t step, const std::string& stat, const std::string& name) {
    for (const lenet::FlowRow& r : flow.rows())
      if (r.step == step && r.stat == stat && r.name == name) return r.value;
    FAIL("no row " << step << " " << stat << " " << name);
    return 0.0;
  };
  // At step 1 batch norm has weight 1 and bias 0: its output has mean 0 and (biased) variance 1
  // per channel, so over the batch mean 0 and standard deviation 1.
  CHECK(value(1, "act_mean", "1 (BatchNorm2d)") == Approx(0.0).margin(1e-5));
  CHECK(value(1, "act_std", "1 (BatchNorm2d)") == Approx(1.0).margin(1e-3));
  CHECK(value(1, "act_std", "2 (Sigmoid)") < 0.5);
  // Plain SGD moves w by lr·g: the ratio is lr·‖g‖/‖w‖, with w the initial weights at step 1.
  tg::manual_seed(o.seed);
  tg::nn::Sequential init = lenet::make_lenet_bn();
  for (const auto& [name, w] : init.named_parameters()) {
    if (name != "15.weight" && name != "0.weight") continue;
    double wn = std::sqrt((w * w).sum().item<double>());
    CHECK(value(1, "update_ratio", name) == Approx(o.lr * value(1, "grad_norm", name) / wn).epsilon(1e-4));
  }
  std::string csv = lenet::flow_csv(flow.rows());
  CHECK(csv.rfind("step,epoch,stat,name,value\n1,1,act_mean,0 (Conv2d),", 0) == 0);
  CHECK(static_cast<std::size_t>(std::count(csv.begin(), csv.end(), '\n')) == flow.rows().size() + 1);
  std::string svg = lenet::flow_svg(flow.rows(), "test run");
  std::size_t polylines = 0;
  for (std::size_t at = svg.find("<polyline"); at != std::string::npos; at = svg.find("<polyline", at + 1)) ++polylines;
  CHECK(polylines == 5 + 5 + 4);  // 5 layer weights twice, 4 sigmoids
  CHECK_THAT(svg, Contains(">4.weight<") && Contains(">14 (Sigmoid)<") && Contains(">test run<"));
  CHECK_THROWS_WITH(lenet::GradientFlow(0), Contains("--stats-every"));
}

TEST_CASE("the first step's graph, as DOT and rendered by Graphviz", "[apps]") {
  const tg::data::TensorDataset train = tg_test::blocks(32, 1), test = tg_test::blocks(32, 2);
  lenet::TrainOptions o = small(1);
  o.graph_path = temp_path("graph.dot");
  lenet::train(train, test, o);
  std::string dot = slurp(o.graph_path);
  std::filesystem::remove(o.graph_path);
  auto count = [](const std::string& text, const std::string& needle) {
    std::size_t n = 0;
    for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
    return n;
  };
  CHECK(count(dot, "AccumulateGrad") == 18);  // one per parameter
  CHECK_THAT(dot, Contains("\"0.weight\\n (6, 1, 5, 5)\" fillcolor=lightblue") &&
                      Contains("ConvolutionBackward0") && Contains("NativeBatchNormBackward0"));
  if (std::system("dot -V > /dev/null 2>&1") != 0) {
    WARN("dot (Debian package graphviz, in scripts/install-deps) is not installed: not rendered");
    return;
  }
  o.graph_path = temp_path("graph.svg");
  lenet::train(train, test, o);
  std::string svg = slurp(o.graph_path);
  std::filesystem::remove(o.graph_path);
  CHECK(count(svg, "class=\"node\"") == count(dot, "[label="));
  CHECK(count(svg, "class=\"edge\"") == count(dot, " -> "));
  CHECK_THROWS_WITH(lenet::write_graph(temp_path("graph.png"), dot), Contains(".dot or .svg"));
}

#ifdef TG_LENET_BN_APP
namespace {
// Runs the installed-to-be app, returning its exit code and what it printed on both streams.
std::pair<int, std::string> run_app(const std::string& args) {
  return run_program(TG_LENET_BN_APP, args);
}
}  // namespace

// A Fashion-MNIST directory of 8 training and 4 test images, the test images test_side pixels wide.
void write_tiny_fashion_mnist(const tg_test::TempDir& dir, std::uint32_t test_side) {
  auto pixels = [](std::size_t n) { return std::vector<std::uint8_t>(n, 100); };
  const std::vector<std::uint8_t> labels{0, 1, 2, 3, 4, 5, 6, 7};
  REQUIRE(tg_test::write_raw(dir.file("train-images-idx3-ubyte"), tg_test::idx_bytes(0x803, {8, 28, 28}, pixels(8 * 784))));
  REQUIRE(tg_test::write_raw(dir.file("train-labels-idx1-ubyte"), tg_test::idx_bytes(0x801, {8}, labels)));
  REQUIRE(tg_test::write_raw(dir.file("t10k-images-idx3-ubyte"),
                             tg_test::idx_bytes(0x803, {4, test_side, test_side}, pixels(4 * test_side * test_side))));
  REQUIRE(tg_test::write_raw(dir.file("t10k-labels-idx1-ubyte"),
                             tg_test::idx_bytes(0x801, {4}, {labels.begin(), labels.begin() + 4})));
}

TEST_CASE("lenet_bn refuses bad numbers in one readable line (issue 14, finding 13)", "[apps][errors]") {
  struct Case {
    std::string args, message;
  };
  for (const Case& c : std::vector<Case>{
           {"--batch-size 0", "--batch-size: expected an integer >= 1, got 0"},
           {"--batch-size -3", "--batch-size: expected an integer >= 1, got -3"},
           {"--epochs -1", "--epochs: expected an integer >= 0, got -1"},
           {"--lr nan", "--lr: the learning rate must be a positive finite number, got nan"},
           {"--lr -0.5", "--lr: the learning rate must be a positive finite number, got -0.5"},
           {"--lr 0", "--lr: the learning rate must be a positive finite number, got 0"},
           {"--lr inf", "--lr: the learning rate must be a positive finite number, got inf"},
           {"--momentum -1", "--momentum: the momentum must be a non-negative finite number, got -1"},
           {"--weight-decay nan", "--weight-decay: the weight decay must be a non-negative finite number, got nan"},
           {"--threads 0", "--threads: expected an integer >= 1, got 0"},
           {"--stats-every 0", "--stats-every: expected an integer >= 1, got 0"},
       }) {
    INFO(c.args);
    auto [code, out] = run_app(c.args);
    CHECK(code == 2);
    CHECK_THAT(out, Contains(c.message));
    CHECK(out.size() < 200);  // no 309-digit bounds
    CHECK(std::count(out.begin(), out.end(), '\n') == 1);
  }
  // An absurd batch is refused before any data is read, saying how much memory it would take.
  auto [code, out] = run_app("--batch-size 1000000000 --data-dir /nonexistent/fashion");
  CHECK(code == 1);
  CHECK_THAT(out, Contains("[lenet_bn] --batch-size 1000000000 would need about 80000 GB of memory for one batch"));
  CHECK(std::count(out.begin(), out.end(), '\n') <= 2);
}

TEST_CASE("lenet_bn refuses a missing --save directory and test images of the wrong size before training",
          "[apps][errors]") {
  tg_test::TempDir good, wrong_size;
  write_tiny_fashion_mnist(good, 28);
  write_tiny_fashion_mnist(wrong_size, 20);
  const std::string missing = good.file("no/such/dir/ckpt.safetensors");
  auto [code1, out1] = run_app("--data-dir " + good.str() + " --epochs 1 --batch-size 4 --save " + missing);
  CHECK(code1 == 1);
  CHECK_THAT(out1, Contains("[lenet_bn] --save " + missing + ": the directory '" + good.file("no/such/dir") +
                            "' does not exist"));
  CHECK_THAT(out1, !Contains("epoch"));
  auto [code2, out2] = run_app("--data-dir " + wrong_size.str() + " --epochs 1 --batch-size 4");
  CHECK(code2 == 1);
  CHECK_THAT(out2, Contains("[lenet_bn] the test images are [1, 20, 20]; LeNet-BN takes [1, 28, 28]"));
  CHECK_THAT(out2, !Contains("epoch 1/1"));
  // The same directory with images of the right size trains.
  auto [code3, out3] = run_app("--data-dir " + good.str() + " --epochs 1 --batch-size 4 --quiet --save " +
                               good.file("ckpt.safetensors"));
  CHECK(code3 == 0);
  CHECK_THAT(out3, Contains("final: loss"));
}

TEST_CASE("lenet_bn's command line errors are one line and a non-zero exit", "[apps][errors]") {
  auto [code1, out1] = run_app("--epochz 3");
  CHECK(code1 != 0);
  CHECK_THAT(out1, Contains("--epochz"));
  CHECK(std::count(out1.begin(), out1.end(), '\n') == 1);
  auto [code2, out2] = run_app("--epochs many");
  CHECK(code2 != 0);
  CHECK_THAT(out2, Contains("--epochs"));
  auto [code3, out3] = run_app("--bn fancy");
  CHECK(code3 != 0);
  CHECK_THAT(out3, Contains("--bn"));
  auto [code4, out4] = run_app("--data-dir /nonexistent/fashion --quiet");
  CHECK(code4 == 1);
  CHECK_THAT(out4, Contains("/nonexistent/fashion") && Contains("dataset-fashion-mnist") && Contains("--data-dir"));
  CHECK(std::count(out4.begin(), out4.end(), '\n') <= 2);
  auto [code5, out5] = run_app("--resume /nonexistent/ckpt.safetensors");
  CHECK(code5 != 0);
  CHECK_THAT(out5, Contains("/nonexistent/ckpt.safetensors"));
  auto [code6, out6] = run_app("--help");
  CHECK(code6 == 0);
  CHECK_THAT(out6, Contains("--batch-size") && Contains("--resume") && Contains("--graph") && Contains("--stats") &&
                      Contains("--stats-every") && Contains("--stats-plot") && Contains("none"));
  auto [code7, out7] = run_app("--stats-every 0");
  CHECK(code7 != 0);
  CHECK_THAT(out7, Contains("--stats-every"));
}
#endif

TEST_CASE("a steady-state LeNet-BN step takes no tensor memory from the system (training and folded inference)",
          "[apps]") {
  // From the third step on, every tensor a step allocates finds an idle block of its size class in
  // the caching allocator (core/storage.h). One thread: on two, which thread's scratch is alive when
  // can differ from step to step. The limit is set because sanitizer builds run with caching off.
  const std::size_t saved_limit = tg::cache_limit();
  tg::set_cache_limit(std::size_t{256} << 20);
  const int saved_threads = tg::get_num_threads();
  tg::set_num_threads(1);
  tg_test::FixedBatchLeNet model;
  for (int i = 0; i < 2; ++i) model.step();
  std::uint64_t before = tg::cache_stats().system_allocations;
  for (int i = 0; i < 3; ++i) model.step();
  CHECK(tg::cache_stats().system_allocations == before);

  model.net.eval();
  tg::nn::Sequential folded = tg::nn::utils::fold_batchnorm(model.net);
  const Tensor& X = model.X;
  tg::NoGradGuard no_grad;
  for (std::int64_t batch : {1, 16}) {
    const Tensor Xb = X.slice(0, 0, batch);
    for (int i = 0; i < 2; ++i) folded(Xb);
    before = tg::cache_stats().system_allocations;
    for (int i = 0; i < 3; ++i) CHECK(folded(Xb).sizes() == tg::Shape{batch, 10});
    CHECK(tg::cache_stats().system_allocations == before);
  }
  tg::set_num_threads(saved_threads);
  tg::set_cache_limit(saved_limit);
}

TEST_CASE("a checkpoint holds the generator state as a uint8 tensor of 5056 bytes, and a bad one is refused by name",
          "[apps][errors]") {
  const std::string ckpt = temp_path("rng_state.safetensors"), bad = temp_path("rng_state_bad.safetensors");
  tg::manual_seed(11);
  tg::nn::Sequential net = lenet::make_lenet_bn();
  tg::optim::SGD opt(net.parameters(), {.lr = 0.1});
  tg::randn({7});  // a state away from the seed's, with a cached normal
  const std::string state = tg::get_rng_state();
  lenet::save_checkpoint(ckpt, net, opt, {}, "signature");

  tg::Metadata meta;
  const tg::nn::NamedTensors saved = tg::load_tensors(ckpt, &meta);
  CHECK(meta["format"] == "tapegrad lenet_bn checkpoint 2");
  CHECK(meta.count("rng_state") == 0);  // no longer hex text in the metadata
  REQUIRE(saved.back().first == "rng_state");
  const Tensor rng = saved.back().second;
  CHECK(rng.dtype() == tg::kUInt8);
  CHECK(rng.sizes() == tg::Shape{5056});
  CHECK(rng.to_vector<std::uint8_t>() == std::vector<std::uint8_t>(state.begin(), state.end()));

  tg::randn({3});
  REQUIRE(tg::get_rng_state() != state);
  lenet::load_checkpoint(ckpt, net, opt, "signature");
  CHECK(tg::get_rng_state() == state);

  // Each tampered copy is refused by name, and the model and the generator stay as they were.
  tg::randn({3});
  const std::string before = tg::get_rng_state();
  const std::vector<std::vector<float>> weights_before = weights(net);
  auto refused = [&](const std::string& entry, const Tensor& replacement, const std::string& format) {
    tg::nn::NamedTensors tensors = saved;
    for (auto& [name, t] : tensors)
      if (name == entry) t = replacement;
    tg::Metadata m = meta;
    m["format"] = format;
    tg::save_tensors(tensors, bad, m);
    try {
      lenet::load_checkpoint(bad, net, opt, "signature");
    } catch (const tg::Error& e) {
      CHECK(tg::get_rng_state() == before);
      CHECK(weights(net) == weights_before);
      return std::string(e.what());
    }
    return std::string("loaded");
  };
  const std::string v2 = "tapegrad lenet_bn checkpoint 2";
  CHECK(refused("rng_state", rng.to(tg::kInt64), v2) ==
        "[lenet_bn] checkpoint '" + bad +
            "': expected rng_state as a uint8 tensor of shape [5056] (the bytes of get_rng_state), got int64 [5056]");
  CHECK_THAT(refused("rng_state", rng.slice(0, 0, 5000), v2), Contains(bad) && Contains("got uint8 [5000]"));
  CHECK_THAT(refused("rng_state", tg::zeros({5056}, tg::kUInt8), v2),
             Contains("checkpoint '" + bad + "' has an invalid rng_state: [set_rng_state] expected the seeded flag"));
  CHECK_THAT(refused("model.0.weight", tg::zeros({2, 2}), v2), Contains(bad) && Contains("0.weight"));
  CHECK(refused("rng_state", rng, "tapegrad lenet_bn checkpoint 1") ==
        "[lenet_bn] '" + bad +
            "' is a lenet_bn checkpoint of format 1 (its generator state in hex text), which this build no longer "
            "resumes: it reads format 2 (rng_state as a uint8 tensor); start the run again");
  tg::nn::NamedTensors without = saved;
  without.pop_back();
  tg::save_tensors(without, bad, meta);
  CHECK_THROWS_WITH(lenet::load_checkpoint(bad, net, opt, "signature"),
                    "[lenet_bn] checkpoint '" + bad + "' has no rng_state tensor");
  for (const std::string& p : {ckpt, bad}) std::filesystem::remove(p);
}
