// The LeNet-BN app's training code on small data the test makes itself: metrics and plot
// output, bit-identical reruns and resumes, NaN handling, the from-scratch batch norm following
// the built-in one, and the command line's errors. Tag [apps].
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "apps/lenet/checkpoint.h"
#include "apps/lenet/trainer.h"
#include "tapegrad.h"

using Catch::Contains;
using tg::Tensor;

namespace {

// Class k is a bright 8x4 block at its own place in a noisy 28x28 image (as the contract's
// train_tour), generated from a fixed seed.
class Blocks : public tg::data::Dataset {
 public:
  Blocks(std::int64_t n, std::uint64_t seed) {
    tg::manual_seed(seed);
    y_ = tg::randint(0, 10, {n});
    X_ = tg::rand({n, 1, 28, 28}) * 0.3;
    std::vector<std::int64_t> labels = y_.to_vector<std::int64_t>();
    for (std::int64_t i = 0; i < n; ++i) {
      std::int64_t r0 = (labels[i] / 5) * 12 + 2, c0 = (labels[i] % 5) * 5 + 1;
      X_.select(0, i).select(0, 0).slice(0, r0, r0 + 8).slice(1, c0, c0 + 4).add_(0.7);
    }
  }
  std::int64_t size() const override { return y_.numel(); }
  std::pair<Tensor, Tensor> get_batch(const std::vector<std::int64_t>& indices) const override {
    Tensor idx = tg::tensor(indices, {static_cast<std::int64_t>(indices.size())});
    return {X_.index_select(0, idx), y_.index_select(0, idx)};
  }

 private:
  Tensor X_, y_;
};

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("tapegrad_apps_" + name)).string();
}

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

lenet::TrainOptions small(std::int64_t epochs) {
  lenet::TrainOptions o;
  o.epochs = epochs;
  o.batch_size = 32;
  o.lr = 0.5;
  o.seed = 3;
  return o;
}

}  // namespace

TEST_CASE("LeNet-BN learns the block task and reports d2l's metrics", "[apps]") {
  Blocks train(256, 1), test(128, 2);
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
  Blocks train(128, 1), test(64, 2);
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

TEST_CASE("a NaN loss stops training with a clear error and leaves the checkpoint intact", "[apps][errors]") {
  Blocks train(64, 1), test(32, 2);
  std::string ckpt = temp_path("nan.safetensors");
  lenet::TrainOptions ok = small(1);
  ok.save_path = ckpt;
  lenet::train(train, test, ok);
  std::string before = slurp(ckpt);
  lenet::TrainOptions boom = small(3);
  boom.lr = 1e38;
  boom.resume_path = ckpt;
  boom.save_path = ckpt;
  CHECK_THROWS_WITH(lenet::train(train, test, boom), Contains("loss became") && Contains(ckpt));
  CHECK(slurp(ckpt) == before);
  std::filesystem::remove(ckpt);
}

TEST_CASE("the from-scratch batch norm follows the built-in one", "[apps]") {
  Blocks train(128, 1), test(64, 2);
  lenet::TrainOptions builtin = small(2), scratch = small(2);
  scratch.bn = lenet::BatchNormKind::Scratch;
  std::vector<lenet::EpochMetrics> mb = lenet::train(train, test, builtin);
  std::vector<lenet::EpochMetrics> ms = lenet::train(train, test, scratch);
  for (std::size_t e = 0; e < 2; ++e) {
    CHECK(ms[e].train_loss == Approx(mb[e].train_loss).margin(1e-3));
    CHECK(ms[e].test_acc == Approx(mb[e].test_acc).margin(0.02));
  }
}

TEST_CASE("a folded export classifies as the trained model does, and every saved form loads for inference",
          "[apps]") {
  Blocks train(128, 1), test(64, 2);
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

#ifdef TG_LENET_BN_APP
namespace {
// Runs the installed-to-be app, returning its exit code and what it printed on both streams.
std::pair<int, std::string> run_app(const std::string& args) {
  std::string cmd = std::string(TG_LENET_BN_APP) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}
}  // namespace

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
  CHECK_THAT(out4, Contains("/nonexistent/fashion") && Contains("dataset-fashion-mnist"));
  CHECK(std::count(out4.begin(), out4.end(), '\n') <= 2);
  auto [code5, out5] = run_app("--resume /nonexistent/ckpt.safetensors");
  CHECK(code5 != 0);
  CHECK_THAT(out5, Contains("/nonexistent/ckpt.safetensors"));
  auto [code6, out6] = run_app("--help");
  CHECK(code6 == 0);
  CHECK_THAT(out6, Contains("--batch-size") && Contains("--resume"));
}
#endif
