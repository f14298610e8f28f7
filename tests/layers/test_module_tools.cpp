// Tests of the module tools: clone() (a deep copy: values equal, nothing shared, tied tensors
// stay tied, members rebound), ModuleList and Sequential from shared_ptrs, load with
// {.strict = false} (PyTorch 1.13's missing and unexpected keys), a user module printed under
// its own class name, and PyTorch's layout for an extra_repr next to children (module_refs.inc).
// Tags [layers] [errors].
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tapegrad.h"

#include "module_refs.inc"
#include "tests/support/files.h"

using Catch::Contains;
using tg::Shape;
using tg::Tensor;
namespace nn = tg::nn;

namespace {

using tg_test::temp_path;

// The script's ResBlock: a one-line extra_repr next to two children.
class ResBlock : public nn::Module {
 public:
  explicit ResBlock(std::int64_t c) : channels(c) {
    conv = register_module("conv", std::make_shared<nn::Conv2d>(c, c, 3, 1, 1));
    bn = register_module("bn", std::make_shared<nn::BatchNorm2d>(c));
  }
  Tensor forward(const Tensor& x) override { return ((*bn)((*conv)(x)) + x).relu(); }
  std::string extra_repr() const override { return fmt::format("channels={}", channels); }
  std::shared_ptr<Module> clone() const override {
    return clone_as(*this, [](ResBlock& m, const Rebind& r) {
      r(m.conv);
      r(m.bn);
    });
  }
  std::int64_t channels;
  std::shared_ptr<nn::Conv2d> conv;
  std::shared_ptr<nn::BatchNorm2d> bn;
};

// The script's Note: a two-line extra_repr and no children; no name(), no clone().
class Note : public nn::Module {
 public:
  std::string extra_repr() const override { return "a=1\nb=2"; }
};

struct Empty : nn::Module {};

// Weight tying: one tensor registered by two modules, and a member pointing at it.
class Tied : public nn::Module {
 public:
  Tied() {
    embed = register_module("embed", std::make_shared<nn::Embedding>(5, 3));
    out = register_module("out", std::make_shared<nn::Linear>(3, 5, false));
    out->weight = embed->weight;
    shared = register_buffer("shared", embed->weight);
  }
  std::shared_ptr<Module> clone() const override {
    return clone_as(*this, [](Tied& m, const Rebind& r) {
      r(m.embed);
      r(m.out);
      r(m.shared);
    });
  }
  std::shared_ptr<nn::Embedding> embed;
  std::shared_ptr<nn::Linear> out;
  Tensor shared;
};

std::string python_repr(const std::string& expr) {
  for (const module_refs::ReprRef& r : module_refs::kRepr)
    if (r.expr == expr) return r.text;
  FAIL("no reference for " << expr);
  return "";
}

}  // namespace

TEST_CASE("a user module prints under its own class name, extra_repr lines before its children", "[layers]") {
  CHECK(ResBlock(2).name() == "ResBlock");
  CHECK(ResBlock(2).to_string() == python_repr("ResBlock(2)"));
  CHECK(Note().to_string() == python_repr("Note()"));
  CHECK(Empty().to_string() == "Empty()");
  nn::Sequential net{ResBlock(2), Note()};
  CHECK(net.to_string() == python_repr("nn.Sequential(ResBlock(2), Note())"));
}

TEST_CASE("clone() copies a model deeply: equal values, nothing shared", "[layers]") {
  tg::manual_seed(1);
  nn::Sequential net{nn::Conv2d(1, 2, 3), nn::BatchNorm2d(2), nn::ReLU(), nn::Flatten(), nn::Linear(8, 3),
                     nn::LayerNorm(3), nn::Dropout(0.2)};
  net(tg::randn({4, 1, 4, 4})).sum().backward();  // running statistics move; gradients appear
  net.eval();
  std::shared_ptr<nn::Module> copy = net.clone();
  auto* seq = dynamic_cast<nn::Sequential*>(copy.get());
  REQUIRE(seq != nullptr);
  CHECK(copy->to_string() == net.to_string());
  CHECK_FALSE(copy->is_training());
  CHECK_FALSE((*seq)[1]->is_training());
  auto a = net.state_dict(), b = copy->state_dict();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO(a[i].first);
    CHECK(a[i].first == b[i].first);
    CHECK(a[i].second.to_vector<double>() == b[i].second.to_vector<double>());
    CHECK(a[i].second.requires_grad() == b[i].second.requires_grad());
    CHECK_FALSE(a[i].second.shares_storage(b[i].second));
    CHECK_FALSE(b[i].second.grad().defined());
  }
  // the members point at the copy's own tensors
  auto* conv = dynamic_cast<nn::Conv2d*>((*seq)[0].get());
  REQUIRE(conv != nullptr);
  CHECK(conv->weight.is_same(b[0].second));
  CHECK(dynamic_cast<nn::BatchNorm2d&>(*(*seq)[1]).running_mean.is_same(b[4].second));
  // training the copy leaves the original alone
  Tensor x = tg::randn({2, 1, 4, 4});
  Tensor before = net(x);
  tg::optim::SGD opt(copy->parameters(), {.lr = 0.5});
  (*copy)(x).sum().backward();
  opt.step();
  CHECK(net(x).to_vector<double>() == before.to_vector<double>());
  CHECK((*copy)(x).to_vector<double>() != before.to_vector<double>());
}

TEST_CASE("clone() keeps tied tensors tied and rebinds a user module's members", "[layers]") {
  Tied tied;
  std::shared_ptr<nn::Module> copy = tied.clone();
  auto& t = dynamic_cast<Tied&>(*copy);
  CHECK(t.embed->weight.is_same(t.out->weight));
  CHECK(t.shared.is_same(t.embed->weight));
  CHECK_FALSE(t.embed->weight.is_same(tied.embed->weight));
  CHECK(t.embed.get() == copy->named_children()[0].second.get());
  CHECK(t.embed->weight.to_vector<double>() == tied.embed->weight.to_vector<double>());

  ResBlock block(2);
  auto block_copy = std::dynamic_pointer_cast<ResBlock>(block.clone());
  REQUIRE(block_copy);
  CHECK(block_copy->channels == 2);
  CHECK(block_copy->conv.get() != block.conv.get());
  CHECK(block_copy->conv.get() == block_copy->named_children()[0].second.get());
  Tensor x = tg::randn({1, 2, 3, 3});
  CHECK((*block_copy)(x).to_vector<double>() == block(x).to_vector<double>());

  for (const auto& loss : std::vector<std::shared_ptr<nn::Module>>{
           std::make_shared<nn::CrossEntropyLoss>(tg::CrossEntropyLossOptions{.weight = tg::ones({3})}),
           std::make_shared<nn::BCEWithLogitsLoss>(tg::BCEWithLogitsLossOptions{.pos_weight = tg::ones({3})})}) {
    std::shared_ptr<nn::Module> c = loss->clone();
    CHECK(c->to_string() == loss->to_string());
    CHECK_FALSE(c->state_dict()[0].second.is_same(loss->state_dict()[0].second));
  }
  auto ce = std::dynamic_pointer_cast<nn::CrossEntropyLoss>(
      nn::CrossEntropyLoss({.weight = tg::ones({3})}).clone());
  REQUIRE(ce);
  CHECK(ce->options.weight.is_same(ce->state_dict()[0].second));
}

TEST_CASE("clone() refuses a module type that does not implement it", "[layers][errors]") {
  CHECK_THROWS_WITH(Note().clone(),
                    "[clone] Note does not implement clone(); override it with clone_as (see nn::Module::clone)");
  struct Wider : nn::Linear {
    Wider() : nn::Linear(2, 2) {}
  };
  CHECK_THROWS_WITH(Wider().clone(), Contains("[clone] Wider does not implement clone() (it inherits Linear's)"));
  nn::Sequential holds_note{Note()};
  CHECK_THROWS_WITH(holds_note.clone(), Contains("[clone] Note"));
}

TEST_CASE("ModuleList holds modules by index; Sequential takes shared_ptrs", "[layers]") {
  auto shared = std::make_shared<nn::Linear>(2, 3);
  nn::ModuleList list{shared, nn::ReLU(), nn::ModuleList{nn::Tanh()}};
  CHECK(list.size() == 3);
  CHECK(list[0].get() == shared.get());
  list.push_back(std::make_shared<nn::Sigmoid>());
  CHECK(list.size() == 4);
  CHECK(list.to_string() == python_repr("nn.ModuleList([nn.Linear(2, 3), nn.ReLU(), nn.ModuleList([nn.Tanh()]), "
                                        "nn.Sigmoid()])"));
  CHECK(list.named_parameters()[0].first == "0.weight");
  CHECK_THROWS_WITH(list[4], "[ModuleList] index 4 is out of range for 4 modules");
  CHECK_THROWS_WITH(list(tg::ones({2})), Contains("[ModuleList] forward(input) is not defined"));
  Tensor x = tg::randn({5, 2});
  Tensor y = x;
  for (const std::shared_ptr<nn::Module>& m : list.children())
    if (m->name() != "ModuleList") y = (*m)(y);
  CHECK(y.sizes() == Shape{5, 3});

  nn::Sequential seq(shared, std::make_shared<nn::ReLU>(), nn::Linear(3, 1));
  CHECK(seq.size() == 3);
  CHECK(seq[0].get() == shared.get());
  CHECK(seq(x).sizes() == Shape{5, 1});
  nn::Sequential from_vector(std::vector<std::shared_ptr<nn::Module>>{shared, std::make_shared<nn::Tanh>()});
  CHECK(from_vector.to_string() == "Sequential(\n  (0): Linear(in_features=2, out_features=3, bias=True)\n  (1): "
                                   "Tanh()\n)");
  CHECK_THROWS_WITH(nn::ModuleList(std::vector<std::shared_ptr<nn::Module>>{nullptr}), Contains("is null"));
  auto list_copy = std::dynamic_pointer_cast<nn::ModuleList>(list.clone());
  REQUIRE(list_copy);
  CHECK(list_copy->size() == 4);
  CHECK((*list_copy)[0].get() != shared.get());
}

TEST_CASE("load with strict = false fills what matches and returns PyTorch's missing and unexpected keys",
          "[layers]") {
  tg::manual_seed(3);
  // the script's source and target models
  nn::Sequential source{nn::Linear(4, 3), nn::BatchNorm1d(3), nn::Linear(3, 2)};
  nn::Sequential target{nn::Linear(4, 3), nn::ReLU(), nn::Linear(3, 2), nn::Linear(2, 1)};
  const std::string path = temp_path("nonstrict.safetensors");
  tg::save(source, path);
  Tensor untouched = target.state_dict()[4].second.clone();  // 3.weight
  CHECK_THROWS_WITH(tg::load(target, path), Contains("missing keys: 3.weight, 3.bias"));
  tg::IncompatibleKeys keys = tg::load(target, path, {.strict = false});
  std::vector<std::string> missing(module_refs::kNonStrictMissing.begin(), module_refs::kNonStrictMissing.end());
  std::vector<std::string> unexpected(module_refs::kNonStrictUnexpected.begin(),
                                      module_refs::kNonStrictUnexpected.end());
  CHECK(keys.missing_keys == missing);
  CHECK(keys.unexpected_keys == unexpected);
  CHECK(target.state_dict()[0].second.to_vector<double>() == source.state_dict()[0].second.to_vector<double>());
  CHECK(target.state_dict()[2].second.to_vector<double>() == source.state_dict()[7].second.to_vector<double>());
  CHECK(target.state_dict()[4].second.to_vector<double>() == untouched.to_vector<double>());
  // a strict load of a matching file reports nothing
  tg::IncompatibleKeys none = tg::load(source, path);
  CHECK(none.missing_keys.empty());
  CHECK(none.unexpected_keys.empty());
  // a shape mismatch is an error even when not strict, as in PyTorch, and changes nothing
  nn::Sequential wrong{nn::Linear(4, 5)};
  Tensor w = wrong.state_dict()[0].second.clone();
  CHECK_THROWS_WITH(tg::load(wrong, path, {.strict = false}), Contains("0.weight: checkpoint [3, 4], model [5, 4]"));
  CHECK(wrong.state_dict()[0].second.to_vector<double>() == w.to_vector<double>());
  std::filesystem::remove(path);
}
