// Modules: registration and PyTorch's names, printing, train/eval, zero_grad, PyTorch's default
// initialization (same numbers for the same seed), and safetensors checkpoints. Tag [layers].
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tapegrad.h"

using Catch::Contains;
using tg::Shape;
using tg::Tensor;
namespace nn = tg::nn;

namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("tapegrad_test_" + name)).string();
}

void check_close(const Tensor& t, const std::vector<double>& want, double tol) {
  std::vector<double> got = t.to_vector<double>();
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want[i]).margin(tol));
}

class TwoLayer : public nn::Module {
 public:
  TwoLayer() {
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(4, 3));
    bn = register_module("bn", std::make_shared<nn::BatchNorm1d>(3));
    scale = register_parameter("scale", tg::ones({1}));
    steps = register_buffer("steps", tg::zeros({}, tg::kInt64));
  }
  Tensor forward(const Tensor& x) override { return bn->forward(fc1->forward(x)).sigmoid() * scale; }
  std::string name() const override { return "TwoLayer"; }
  std::shared_ptr<nn::Linear> fc1;
  std::shared_ptr<nn::BatchNorm1d> bn;
  Tensor scale, steps;
};

}  // namespace

TEST_CASE("modules register parameters, buffers and children under PyTorch's names", "[layers]") {
  TwoLayer m;
  auto params = m.named_parameters();
  REQUIRE(params.size() == 5);
  CHECK(params[0].first == "scale");
  CHECK(params[1].first == "fc1.weight");
  CHECK(params[2].first == "fc1.bias");
  CHECK(params[3].first == "bn.weight");
  CHECK(params[4].first == "bn.bias");
  CHECK(params[1].second.is_same(m.fc1->weight));
  for (const auto& [_, p] : params) CHECK(p.requires_grad());
  auto buffers = m.named_buffers();
  REQUIRE(buffers.size() == 4);
  CHECK(buffers[0].first == "steps");
  CHECK(buffers[1].first == "bn.running_mean");
  CHECK(buffers[3].first == "bn.num_batches_tracked");
  CHECK(!buffers[1].second.requires_grad());
  CHECK(m.named_parameters(false).size() == 1);
  CHECK(m.children().size() == 2);
  auto state = m.state_dict();
  REQUIRE(state.size() == 9);
  CHECK(state[2].first == "fc1.weight");
  CHECK(state[6].first == "bn.running_mean");
  CHECK_THROWS_WITH(m.register_parameter("scale", tg::ones({1})), Contains("already exists"));
  CHECK_THROWS_WITH(m.register_buffer("a.b", tg::ones({1})), Contains("\".\""));
  CHECK_THROWS_WITH(nn::CrossEntropyLoss().forward(tg::ones({2})), Contains("[CrossEntropyLoss]"));
}

TEST_CASE("train, eval and zero_grad reach every child", "[layers]") {
  TwoLayer m;
  CHECK(m.is_training());
  m.eval();
  CHECK(!m.is_training());
  CHECK(!m.bn->is_training());
  m.train();
  CHECK(m.bn->is_training());
  Tensor x = tg::randn({5, 4});
  m(x).sum().backward();
  CHECK(m.fc1->weight.grad().defined());
  CHECK(m.bn->num_batches_tracked.item<std::int64_t>() == 1);
  m.zero_grad();
  for (const Tensor& p : m.parameters()) CHECK(p.grad().abs().sum().item<float>() == 0.0f);
}

TEST_CASE("modules print like PyTorch", "[layers]") {
  nn::Sequential net(nn::Conv2d(1, 6, 5), nn::BatchNorm2d(6), nn::Sigmoid(), nn::AvgPool2d(2, 2),
                     nn::Conv2d(6, 16, 5, {1, 2}, 1, false), nn::BatchNorm2d(16, {.momentum = std::nullopt, .affine = false}),
                     nn::Sigmoid(), nn::MaxPool2d(2), nn::Flatten(), nn::Linear(256, 120), nn::BatchNorm1d(120),
                     nn::ReLU(), nn::Dropout(0.25), nn::Linear(84, 10, false), nn::Tanh(), nn::Sequential(nn::ReLU()));
  // repr(nn.Sequential(...)) of the same model in PyTorch 1.13
  std::string want =
      "Sequential(\n  (0): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))\n  (1): BatchNorm2d(6, eps=1e-05, "
      "momentum=0.1, affine=True, track_running_stats=True)\n  (2): Sigmoid()\n  (3): AvgPool2d(kernel_size=2, "
      "stride=2, padding=0)\n  (4): Conv2d(6, 16, kernel_size=(5, 5), stride=(1, 2), padding=(1, 1), bias=False)\n  "
      "(5): BatchNorm2d(16, eps=1e-05, momentum=None, affine=False, track_running_stats=True)\n  (6): Sigmoid()\n  "
      "(7): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)\n  (8): "
      "Flatten(start_dim=1, end_dim=-1)\n  (9): Linear(in_features=256, out_features=120, bias=True)\n  (10): "
      "BatchNorm1d(120, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n  (11): ReLU()\n  (12): "
      "Dropout(p=0.25, inplace=False)\n  (13): Linear(in_features=84, out_features=10, bias=False)\n  (14): "
      "Tanh()\n  (15): Sequential(\n    (0): ReLU()\n  )\n)";
  CHECK(net.to_string() == want);
  std::ostringstream os;
  os << net;
  CHECK(os.str() == want);
  CHECK(net.size() == 16);
  CHECK(net[3]->name() == "AvgPool2d");
  CHECK_THROWS_WITH(net[16], Contains("[Sequential]"));
}

TEST_CASE("default initialization draws PyTorch's numbers for the same seed", "[layers]") {
  // torch.manual_seed(0); nn.Linear(4, 3)  /  torch.manual_seed(0); nn.Conv2d(2, 3, 2)
  tg::manual_seed(0);
  nn::Linear l(4, 3);
  check_close(l.weight, {-0.003743410110473633, 0.26822179555892944, -0.4115225672721863, -0.3679695129394531,
                         -0.19257718324661255, 0.13407868146896362, -0.009906589984893799, 0.39644473791122437,
                         -0.04437202215194702, 0.1323062777519226, -0.15110653638839722, -0.09828269481658936},
              1e-7);
  check_close(l.bias, {-0.4776742458343506, -0.33114105463027954, -0.20611155033111572}, 1e-7);
  tg::manual_seed(0);
  nn::Conv2d c(2, 3, 2);
  check_close(c.weight.flatten().slice(0, 0, 5),
              {-0.0026469905860722065, 0.18966144323349, -0.2909903824329376, -0.26019373536109924,
               -0.13617262244224548}, 1e-7);
  check_close(c.bias, {-0.05698692053556442, 0.037410933524370193, 0.3201341927051544}, 1e-7);
  nn::BatchNorm2d bn(3);
  CHECK(bn.weight.to_vector<double>() == std::vector<double>{1, 1, 1});
  CHECK(bn.running_var.to_vector<double>() == std::vector<double>{1, 1, 1});
  // Xavier: U(±gain·√(6 / (fan_in + fan_out)))
  Tensor w = tg::empty({200, 300});
  nn::init::xavier_uniform_(w);
  double a = std::sqrt(6.0 / 500.0);
  CHECK(w.max().item<float>() <= a);
  CHECK(w.min().item<float>() >= -a);
  CHECK(w.var().item<float>() == Approx(a * a / 3).epsilon(0.03));
  CHECK_THROWS_WITH(nn::init::xavier_uniform_(tg::empty({3})), Contains("[init]"));
  CHECK_THROWS_WITH(nn::init::kaiming_uniform_(w, 0, "fan_avg"), Contains("fan_avg"));
}

TEST_CASE("layer shape checks name the layer", "[layers][errors]") {
  CHECK_THROWS_WITH(nn::Linear(4, 3)(tg::ones({2, 5})), Contains("[Linear]") && Contains("[2, 5]"));
  CHECK_THROWS_WITH(nn::Conv2d(3, 4, 3)(tg::ones({1, 2, 8, 8})), Contains("[Conv2d]") && Contains("[1, 2, 8, 8]"));
  CHECK_THROWS_WITH(nn::Conv2d(3, 4, 3, 1, 0, true, 2), Contains("[Conv2d]") && Contains("groups"));
  CHECK_THROWS_WITH(nn::BatchNorm2d(3)(tg::ones({2, 3, 4})), Contains("[BatchNorm2d]") && Contains("3D"));
  CHECK_THROWS_WITH(nn::BatchNorm2d(3)(tg::ones({2, 5, 4, 4})), Contains("[BatchNorm2d]") && Contains("5"));
  CHECK_THROWS_WITH(nn::BatchNorm1d(3)(tg::ones({2, 3, 4, 4})), Contains("[BatchNorm1d]"));
  CHECK_THROWS_WITH(nn::Dropout(1.5), Contains("[Dropout]"));
}

TEST_CASE("BatchNorm modules keep PyTorch's running statistics", "[layers]") {
  tg::manual_seed(5);
  Tensor x = tg::randn({6, 3, 2, 2}) * 2.0 + 1.0;
  nn::BatchNorm2d bn(3);
  bn(x);
  check_close(bn.running_mean, (x.mean({0, 2, 3}) * 0.1).to_vector<double>(), 1e-6);
  check_close(bn.running_var, (x.var({0, 2, 3}) * 0.1 + 0.9).to_vector<double>(), 1e-6);
  nn::BatchNorm2d cumulative(3, {.momentum = std::nullopt});
  cumulative(x);
  cumulative(x * 3.0);
  // momentum None: the running mean is the plain average of the batch means
  check_close(cumulative.running_mean, (x.mean({0, 2, 3}) * 2.0).to_vector<double>(), 1e-5);
  CHECK(cumulative.num_batches_tracked.item<std::int64_t>() == 2);
  bn.eval();
  Tensor y = bn(x);
  Tensor rm = bn.running_mean.reshape({1, 3, 1, 1}), rv = bn.running_var.reshape({1, 3, 1, 1});
  check_close(y, ((x - rm) / (rv + 1e-5).sqrt()).to_vector<double>(), 1e-5);
  CHECK(bn.num_batches_tracked.item<std::int64_t>() == 1);  // eval does not count
  nn::BatchNorm1d untracked(3, {.track_running_stats = false});
  untracked.eval();  // no running statistics: batch statistics even in eval
  Tensor h = tg::randn({8, 3});
  check_close(untracked(h).mean({0}), {0, 0, 0}, 1e-5);
  CHECK(untracked.named_buffers().empty());
}

TEST_CASE("save and load round-trip a state dict through safetensors", "[layers]") {
  std::string path = temp_path("roundtrip.safetensors");
  tg::manual_seed(1);
  TwoLayer a;
  a(tg::randn({5, 4}));  // moves the running statistics
  tg::save(a, path);
  tg::manual_seed(2);
  TwoLayer b;
  tg::load(b, path);
  auto sa = a.state_dict(), sb = b.state_dict();
  for (std::size_t i = 0; i < sa.size(); ++i) {
    INFO(sa[i].first);
    CHECK(sb[i].second.to_vector<double>() == sa[i].second.to_vector<double>());
    CHECK(sb[i].second.dtype() == sa[i].second.dtype());
  }
  CHECK(b.fc1->weight.requires_grad());  // loaded in place: still the module's parameter
  // the file is a safetensors file: 8-byte length, JSON header with dtype, shape, offsets
  std::ifstream in(path, std::ios::binary);
  std::uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  std::string header(n, ' ');
  in.read(header.data(), static_cast<std::streamsize>(n));
  CHECK(n % 8 == 0);
  CHECK_THAT(header, Contains("\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[12,60]}"));
  CHECK_THAT(header, Contains("\"bn.num_batches_tracked\":{\"dtype\":\"I64\",\"shape\":[]"));
  std::filesystem::remove(path);
}

TEST_CASE("load refuses a checkpoint that does not fit and changes nothing", "[layers][errors]") {
  std::string path = temp_path("mismatch.safetensors");
  nn::Sequential small(nn::Linear(4, 3), nn::ReLU(), nn::Linear(3, 2));
  tg::save(small, path);
  nn::Sequential other(nn::Linear(4, 5), nn::ReLU(), nn::Linear(5, 2), nn::Linear(2, 2));
  std::vector<double> before = other.parameters()[0].to_vector<double>();
  try {
    tg::load(other, path);
    FAIL("load did not throw");
  } catch (const tg::Error& e) {
    std::string msg = e.what();
    CHECK_THAT(msg, Contains(path));
    CHECK_THAT(msg, Contains("0.weight: checkpoint [3, 4], model [5, 4]"));
    CHECK_THAT(msg, Contains("2.weight: checkpoint [2, 3], model [2, 5]"));
    CHECK_THAT(msg, Contains("missing keys: 3.weight, 3.bias"));
  }
  CHECK(other.parameters()[0].to_vector<double>() == before);
  nn::Sequential fewer(nn::Linear(4, 3));
  CHECK_THROWS_WITH(tg::load(fewer, path), Contains("unexpected keys: 2.weight, 2.bias"));
  CHECK_THROWS_WITH(tg::load(small, path + ".absent"), Contains(".absent") && Contains("cannot open"));

  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  auto write = [&](const std::string& content) { std::ofstream(path, std::ios::binary | std::ios::trunc) << content; };
  std::vector<double> kept = small.parameters()[0].to_vector<double>();
  write(bytes.substr(0, bytes.size() - 4));
  CHECK_THROWS_WITH(tg::load(small, path), Contains(path) && Contains("truncated"));
  write(bytes.substr(0, 5));
  CHECK_THROWS_WITH(tg::load(small, path), Contains(path) && Contains("truncated"));
  std::string bad = bytes;
  bad[9] = '#';
  write(bad);
  CHECK_THROWS_WITH(tg::load(small, path), Contains(path) && Contains("malformed"));
  CHECK(small.parameters()[0].to_vector<double>() == kept);
  std::filesystem::remove(path);
  CHECK_THROWS_WITH(tg::save(small, "/nonexistent-dir/x.safetensors"), Contains("[save]"));
}
