// to_dot: the DOT text of small graphs counted by hand (torchviz make_dot's content with
// show_saved=True), a shared entry drawn once, parameter names, and Graphviz accepting the text.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tapegrad.h"
#include "tests/support/files.h"

namespace {

using Catch::Contains;
using tg::Tensor;
namespace nn = tg::nn;

std::vector<std::string> lines_with(const std::string& dot, const std::string& needle) {
  std::vector<std::string> out;
  std::istringstream in(dot);
  for (std::string line; std::getline(in, line);)
    if (line.find(needle) != std::string::npos) out.push_back(line);
  return out;
}

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("to_dot of (x * w).sum(): every box and edge, as make_dot draws them", "[autograd][graph]") {
  Tensor x = tg::tensor(std::vector<double>{1, 2, 3});  // a constant: saved by MulBackward0, not a leaf box
  Tensor w = tg::tensor(std::vector<double>{4, 5, 6}).requires_grad_();
  Tensor y = (x * w).sum();
  std::string dot = tg::autograd::to_dot(y, {{"w", w}});
  // Boxes: the root, SumBackward0, MulBackward0, AccumulateGrad, the leaf w, the saved x.
  // Edges: root -> Sum -> Mul -> AccumulateGrad -> w, and Mul's two saved tensors (x, and w's own box).
  CHECK(lines_with(dot, "[label=").size() == 6);
  CHECK(lines_with(dot, "->").size() == 6);
  CHECK(lines_with(dot, "dir=none").size() == 2);
  CHECK(dot ==
        "digraph {\n"
        "\tgraph [size=\"12.00,12.00\"]\n"
        "\tnode [align=left fontname=monospace fontsize=10 height=0.2 ranksep=0.1 shape=box style=filled]\n"
        "\tn0 [label=\"\\n ()\" fillcolor=darkolivegreen1]\n"
        "\tn1 [label=\"SumBackward0\\n ()\"]\n"
        "\tn4 [label=\"w\\n (3)\" fillcolor=lightblue]\n"
        "\tn3 -> n4\n"
        "\tn3 [label=AccumulateGrad]\n"
        "\tn5 [label=\"saved\\n (3)\" fillcolor=orange]\n"
        "\tn2 -> n5 [dir=none style=dashed]\n"
        "\tn2 -> n4 [dir=none style=dashed]\n"
        "\tn2 [label=\"MulBackward0\\n (3)\"]\n"
        "\tn2 -> n3\n"
        "\tn1 -> n2\n"
        "\tn0 -> n1\n"
        "}\n");
}

TEST_CASE("to_dot draws an entry used twice once, and names parameters", "[autograd][graph]") {
  SECTION("a shared entry") {
    Tensor w = tg::tensor(std::vector<double>{1, 2}).requires_grad_();
    Tensor h = w.exp();
    Tensor y = (h * h + h).sum();
    std::string dot = tg::autograd::to_dot(y);
    CHECK(count_of(dot, "ExpBackward0") == 1);
    CHECK(count_of(dot, "AccumulateGrad") == 1);
    CHECK(count_of(dot, "MulBackward0") == 1);
    CHECK(count_of(dot, "AddBackward0") == 1);
    // Edges into Exp's box: from Mul twice (both of its inputs are h) and from Add once.
    std::string exp_line = lines_with(dot, "ExpBackward0").at(0);
    std::string exp_id = exp_line.substr(1, exp_line.find(' ') - 1);
    std::size_t into_exp = 0;
    for (const std::string& line : lines_with(dot, " -> " + exp_id))
      if (line.ends_with(" -> " + exp_id)) ++into_exp;
    CHECK(into_exp == 3);
  }
  SECTION("a module's parameter names") {
    tg::manual_seed(0);
    nn::Sequential net{nn::Linear(3, 2), nn::Sigmoid()};
    Tensor loss = net(tg::randn({4, 3})).sum();
    std::string dot = tg::autograd::to_dot(loss, net.named_parameters());
    CHECK_THAT(dot, Contains("\"0.weight\\n (2, 3)\" fillcolor=lightblue") &&
                        Contains("\"0.bias\\n (2)\" fillcolor=lightblue") && Contains("SigmoidBackward0\\n (4, 2)"));
    CHECK(count_of(dot, "AccumulateGrad") == 2);
  }
  SECTION("a leaf root, and a consumed graph shows only the root's entry") {
    Tensor w = tg::tensor(std::vector<double>{1, 2}).requires_grad_();
    std::string leaf = tg::autograd::to_dot(w, {{"w", w}});
    CHECK(lines_with(leaf, "[label=").size() == 3);  // root, AccumulateGrad, the leaf
    Tensor y = (w * w).sum();
    y.backward();
    CHECK(lines_with(tg::autograd::to_dot(y), "[label=").size() == 2);
  }
  CHECK_THROWS_WITH(tg::autograd::to_dot(Tensor()), Contains("[to_dot]"));
}

TEST_CASE("Graphviz's dot accepts to_dot's text", "[autograd][graph]") {
  if (std::system("dot -V > /dev/null 2>&1") != 0) {
    WARN("dot (Debian package graphviz, in scripts/install-deps) is not installed: not rendered");
    return;
  }
  Tensor w = tg::tensor(std::vector<double>{1, 2}).requires_grad_();
  Tensor y = (w.exp() * w).sum();
  std::string in = tg_test::temp_path("graph.dot"), out = tg_test::temp_path("graph.svg");
  std::ofstream(in) << tg::autograd::to_dot(y, {{"w", w}});
  REQUIRE(std::system(("dot -Tsvg " + in + " -o " + out).c_str()) == 0);
  std::ifstream svg(out);
  std::string text((std::istreambuf_iterator<char>(svg)), std::istreambuf_iterator<char>());
  // Boxes: root, Sum, Mul, Exp, AccumulateGrad, w, and exp's output (saved by Mul and by Exp).
  // Edges: root->Sum->Mul, Mul->Exp, Mul->AccumulateGrad, Exp->AccumulateGrad, AccumulateGrad->w,
  // and the saved ones: Mul-w, Mul-output, Exp-output.
  CHECK(count_of(text, "class=\"node\"") == 7);
  CHECK(count_of(text, "class=\"edge\"") == 9);
  std::filesystem::remove(in);
  std::filesystem::remove(out);
}
