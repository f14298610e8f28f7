// The tape engine: gradients add where a node is used twice, accumulate in leaves until zeroed,
// stop at detach() and under NoGradGuard; errors name the entry; consumed entries release what
// they saved; user-defined ops via record(); printed grad_fn text as PyTorch 1.13 prints it.
// Reference numbers come from /usr/bin/python3 (python3-torch 1.13); the snippet sits by each test.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "tapegrad/core/native.h"
#include "tapegrad.h"

namespace {

using Catch::Contains;
using tg::Shape;
using tg::Tensor;
using Inputs = std::vector<Tensor>;

Tensor f64(std::vector<double> v, Shape s) { return tg::tensor(v, s); }
Tensor f64(std::vector<double> v) { return tg::tensor(v); }

// |a - b| <= tol · (1 + |b|) element by element, same number of elements.
bool close(const Tensor& a, const std::vector<double>& b, double tol = 1e-12) {
  std::vector<double> va = a.to(tg::kFloat64).to_vector<double>();
  if (va.size() != b.size()) return false;
  for (std::size_t i = 0; i < b.size(); ++i)
    if (!(std::fabs(va[i] - b[i]) <= tol * (1.0 + std::fabs(b[i])))) return false;
  return true;
}

std::vector<double> vals(const Tensor& t) { return t.to(tg::kFloat64).to_vector<double>(); }

// The contract's user-defined op: forward without recording, one entry with a hand-derived
// backward (slope 3 is right; anything else is a bug gradcheck must catch).
Tensor cube(const Tensor& x, double slope) {
  Tensor y;
  {
    tg::NoGradGuard no_grad;
    y = x * x * x;
  }
  return tg::autograd::record("CubeBackward", y, {x}, [x, slope](const Tensor& gy) {
    return std::vector<Tensor>{gy * slope * x * x};
  });
}

}  // namespace

// torch: x, w as below (float64); y = ((x @ w).sigmoid() * 3 + x.sum(1, keepdim=True)).pow(2).mean()
TEST_CASE("backward through a small graph gives PyTorch's numbers", "[autograd]") {
  Tensor x = f64({0.5, -1.0, 2.0, 1.5, 0.25, -0.75}, {2, 3}).requires_grad_();
  Tensor w = f64({0.2, -0.4, 1.0, 0.3, -0.5, 0.8}, {3, 2}).requires_grad_();
  Tensor y = (x.matmul(w).sigmoid() * 3.0 + x.sum({1}, true)).pow(2).mean();
  CHECK(y.requires_grad());
  CHECK(y.dim() == 0);
  CHECK(y.grad_fn_name() == "MeanBackward0");
  CHECK(y.item<double>() == Approx(7.640956664870733).epsilon(1e-13));
  y.backward();
  CHECK(close(x.grad(), {2.46306717268, 3.457726617423, 3.50343213623, 2.441109413389, 3.54631460564,
                         2.346920496014}, 1e-9));
  CHECK(close(w.grad(), {1.600645268207, 1.249458994547, -0.080890511029, -0.933779625511, -0.078249749126,
                         1.747163992284}, 1e-9));
  CHECK(x.grad().sizes() == Shape({2, 3}));
  CHECK(x.grad().dtype() == tg::kFloat64);

  SECTION("gradients accumulate until zeroed") {
    Tensor g1 = x.grad().clone();
    (x.matmul(w).sigmoid() * 3.0 + x.sum({1}, true)).pow(2).mean().backward();
    CHECK(close(x.grad(), vals(g1 * 2.0)));
    x.grad().zero_();
    CHECK(vals(x.grad()) == std::vector<double>(6, 0.0));
  }
}

TEST_CASE("a node used twice: gradients add", "[autograd]") {
  Tensor x = f64({2.0, 3.0}).requires_grad_();
  SECTION("x * x") {
    (x * x).sum().backward();
    CHECK(vals(x.grad()) == std::vector<double>{4, 6});
  }
  SECTION("y = x + x, then y * y") {  // torch: [16., 24.]
    Tensor y = x + x;
    (y * y).sum().backward();
    CHECK(vals(x.grad()) == std::vector<double>{16, 24});
  }
  SECTION("an intermediate used twice: h * h + h") {
    Tensor h = x.exp();
    (h * h + h).sum().backward();
    CHECK(close(x.grad(), {2 * std::exp(4.0) + std::exp(2.0), 2 * std::exp(6.0) + std::exp(3.0)}));
  }
  SECTION("a diamond: a = 2x, b = exp(a), c = tanh(a), sum(b * c)") {
    Tensor a = x * 2.0;
    (a.exp() * a.tanh()).sum().backward();
    std::vector<double> want;
    for (double xi : {2.0, 3.0}) {
      double ai = 2 * xi, t = std::tanh(ai);
      want.push_back(2 * (std::exp(ai) * t + std::exp(ai) * (1 - t * t)));
    }
    CHECK(close(x.grad(), want));
  }
  SECTION("broadcast: x [2] against a [3, 2] gets summed gradients") {
    Tensor m = f64({1, 2, 3, 4, 5, 6}, {3, 2}).requires_grad_();
    (m * x).sum().backward();
    CHECK(vals(x.grad()) == std::vector<double>{9, 12});
    CHECK(vals(m.grad()) == std::vector<double>{2, 3, 2, 3, 2, 3});
  }
}

TEST_CASE("an entry not on the path to the root is left alone", "[autograd]") {
  Tensor x = f64({0.5, -1.0}).requires_grad_();
  Tensor unused = x.exp();
  (x * 2.0).sum().backward();
  CHECK(vals(x.grad()) == std::vector<double>{2, 2});
  unused.sum().backward();  // not consumed by the first backward
  CHECK(close(x.grad(), {2 + std::exp(0.5), 2 + std::exp(-1.0)}));
}

TEST_CASE("leaf gradients accumulate across backward calls until zeroed", "[autograd]") {
  Tensor x = f64({1, 2, 3}).requires_grad_();
  CHECK_FALSE(x.grad().defined());
  (x * x).sum().backward();
  CHECK(vals(x.grad()) == std::vector<double>{2, 4, 6});
  Tensor held = x.grad();
  (x * x).sum().backward();
  CHECK(vals(x.grad()) == std::vector<double>{4, 8, 12});
  CHECK(held.is_same(x.grad()));  // accumulated in place, as PyTorch
  x.grad().zero_();
  CHECK(vals(x.grad()) == std::vector<double>{0, 0, 0});
  (x * 3.0).sum().backward();
  CHECK(vals(x.grad()) == std::vector<double>{3, 3, 3});
  x.set_grad(Tensor());
  CHECK_FALSE(x.grad().defined());
  CHECK_THROWS_WITH(x.set_grad(f64({1, 2})), Contains("[set_grad]") && Contains("[3]") && Contains("[2]"));
  CHECK_THROWS_WITH(x.set_grad(tg::ones({3})), Contains("[set_grad]") && Contains("float32"));
  CHECK_FALSE(x.grad().defined());
  (x * x).sum().backward();
  CHECK(vals(x.grad()) == std::vector<double>{2, 4, 6});
  // The leaf's gradient owns its memory: not an alias of the gradient it was given.
  Tensor y = f64({1, 2, 3}).requires_grad_();
  Tensor gy = f64({1, 1, 1});
  y.backward(gy);
  gy.fill_(5.0);
  CHECK(vals(y.grad()) == std::vector<double>{1, 1, 1});
}

TEST_CASE("backward of a leaf and of non-leaf gradients", "[autograd]") {
  Tensor s = tg::scalar_tensor(4.0, tg::kFloat64).requires_grad_();
  s.backward();
  CHECK(s.grad().item<double>() == 1.0);
  Tensor x = f64({1, 2}).requires_grad_();
  Tensor h = x * 2.0;
  (h * h).sum().backward();
  CHECK(vals(x.grad()) == std::vector<double>{8, 16});
  CHECK_FALSE(h.grad().defined());  // only leaves keep .grad
  CHECK(x.is_leaf());
  CHECK_FALSE(h.is_leaf());
  CHECK(h.grad_fn_name() == "MulBackward0");
  CHECK(x.grad_fn_name().empty());
}

TEST_CASE("detach stops the gradient and shares storage", "[autograd]") {
  Tensor x = f64({0.5, -1.0, 2.0}).requires_grad_();
  Tensor d = x.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.is_leaf());
  CHECK(d.shares_storage(x));
  Tensor z = (x * 2.0).detach() * x;  // the detached factor is a constant
  CHECK(z.grad_fn_name() == "MulBackward0");
  z.sum().backward();
  CHECK(vals(x.grad()) == std::vector<double>{1, -2, 4});
  // A graph entirely through a detached tensor does not reach x.
  Tensor w = d.exp();
  CHECK_FALSE(w.requires_grad());
  CHECK_THROWS_WITH(w.sum().backward(), Contains("[backward]") && Contains("does not require grad"));
}

TEST_CASE("conv2d, conv2d_act, the pools and batch_norm record exactly when an input requires grad", "[autograd]") {
  tg::manual_seed(3);
  const Tensor x = tg::randn({1, 2, 6, 6}), w = tg::randn({2, 2, 3, 3}), b = tg::randn({2});
  const Tensor rm = tg::zeros({2}), rv = tg::ones({2});
  // Each layer's output with the given weight: values, whether it requires grad, its grad_fn.
  auto run = [&](const Tensor& weight) {
    return std::vector<Tensor>{tg::conv2d(x, weight, b),
                               tg::conv2d_act(x, weight, b, 1, 0, 1, tg::ConvActivation::Sigmoid, true),
                               tg::avg_pool2d(tg::conv2d(x, weight, b), 2),
                               tg::max_pool2d(tg::conv2d(x, weight, b), 2),
                               tg::batch_norm(tg::conv2d(x, weight, b), rm, rv, Tensor(), Tensor(), false)};
  };
  const std::vector<Tensor> plain = run(w);
  const Tensor w_grad = tg::native::clone(w).requires_grad_();
  const std::vector<Tensor> recorded = run(w_grad);
  std::vector<Tensor> unrecorded;
  {
    tg::NoGradGuard no_grad;
    unrecorded = run(w_grad);
  }
  const char* names[] = {"ConvolutionBackward0", "AvgPool2DBackward0", "AvgPool2DBackward0",
                         "MaxPool2DWithIndicesBackward0", "NativeBatchNormBackward0"};
  for (std::size_t i = 0; i < plain.size(); ++i) {
    INFO(names[i]);
    CHECK_FALSE(plain[i].requires_grad());
    CHECK_FALSE(unrecorded[i].requires_grad());
    CHECK(recorded[i].grad_fn_name() == names[i]);
    CHECK(close(recorded[i], vals(plain[i]), 1e-6));  // recorded, conv2d_act runs conv2d, sigmoid, pool apart
    CHECK(vals(unrecorded[i]) == vals(plain[i]));
  }
}

TEST_CASE("NoGradGuard nests, restores the mode, and records nothing", "[autograd]") {
  Tensor x = f64({1, 2}).requires_grad_();
  std::size_t base = tg::autograd::tape_size();
  CHECK(tg::is_grad_enabled());
  {
    tg::NoGradGuard outer;
    CHECK_FALSE(tg::is_grad_enabled());
    Tensor y = x * 2.0 + x.exp();
    CHECK_FALSE(y.requires_grad());
    CHECK(y.grad_fn_name().empty());
    CHECK_FALSE(tg::autograd::needs_grad({x}));
    CHECK_FALSE(tg::autograd::needs_grad(x));
    // Layers and views record nothing either.
    CHECK_FALSE(tg::linear(x.reshape({1, 2}), x.reshape({1, 2}), Tensor()).requires_grad());
    CHECK(x.reshape({2, 1}).grad_fn_name().empty());
    CHECK_FALSE(x.sigmoid().requires_grad());
    CHECK(tg::autograd::tape_size() == base);
    CHECK(vals(y) == vals(f64({2 + std::exp(1.0), 4 + std::exp(2.0)})));
    {
      tg::NoGradGuard inner;
      CHECK_FALSE(tg::is_grad_enabled());
    }
    CHECK_FALSE(tg::is_grad_enabled());  // the inner guard restored "off", not "on"
    x.mul_(3.0);  // in place on a leaf that requires grad is allowed here
    CHECK(vals(x) == std::vector<double>{3, 6});
  }
  CHECK(tg::is_grad_enabled());
  CHECK(tg::autograd::needs_grad({x}));
  CHECK((x * 2.0).requires_grad());
  // needs_grad over tensors one by one agrees with the vector's: any defined one that requires grad.
  const Tensor plain = f64({1, 2}), undefined;
  CHECK(tg::autograd::needs_grad(plain, undefined, x));
  CHECK(tg::autograd::needs_grad(x));
  CHECK_FALSE(tg::autograd::needs_grad(plain, undefined));
  CHECK(tg::linear(plain.reshape({1, 2}), x.reshape({1, 2}), Tensor()).grad_fn_name() == "MmBackward0");
  CHECK(x.sigmoid().grad_fn_name() == "SigmoidBackward0");

  SECTION("set_grad_enabled, and a guard inside it") {
    tg::set_grad_enabled(false);
    CHECK_FALSE(tg::is_grad_enabled());
    {
      tg::NoGradGuard g;
      CHECK_FALSE(tg::is_grad_enabled());
    }
    CHECK_FALSE(tg::is_grad_enabled());
    CHECK_FALSE((x * 2.0).requires_grad());
    tg::set_grad_enabled(true);
    CHECK(tg::is_grad_enabled());
  }
  SECTION("an exception leaving the guard's scope restores the mode") {
    try {
      tg::NoGradGuard g;
      throw std::runtime_error("boom");
    } catch (const std::runtime_error&) {
    }
    CHECK(tg::is_grad_enabled());
  }
}

TEST_CASE("requires_grad_ rules", "[autograd][errors]") {
  Tensor x = f64({1, 2}).requires_grad_();
  CHECK(x.requires_grad());
  Tensor y = x * 2.0;
  CHECK_THROWS_WITH(y.requires_grad_(), Contains("[requires_grad_]") && Contains("leaf") && Contains("MulBackward0"));
  CHECK_THROWS_WITH(y.requires_grad_(false), Contains("leaf"));
  CHECK(y.requires_grad());  // left as it was
  Tensor i = tg::arange(3);
  CHECK(i.dtype() == tg::kInt64);
  CHECK_THROWS_WITH(i.requires_grad_(), Contains("[requires_grad_]") && Contains("floating point") &&
                                            Contains("int64"));
  CHECK_FALSE(i.requires_grad());
  CHECK_NOTHROW(i.requires_grad_(false));
  x.requires_grad_(false);
  CHECK_FALSE(x.requires_grad());
  CHECK_FALSE((x * 2.0).requires_grad());
  Tensor f = tg::ones({2});
  CHECK(f.requires_grad_().requires_grad());  // float32 is fine, and it returns the tensor
}

TEST_CASE("backward argument errors", "[autograd][errors]") {
  Tensor v = f64({1, 2}).requires_grad_();
  CHECK_THROWS_WITH((v * 3.0).backward(), Contains("[backward]") && Contains("scalar") && Contains("[2]"));
  CHECK_FALSE(v.grad().defined());
  CHECK_THROWS_WITH((v * 3.0).backward(f64({1, 2, 3})),
                    Contains("[backward]") && Contains("[2]") && Contains("[3]"));
  CHECK_THROWS_WITH(tg::ones({1}).backward(), Contains("does not require grad"));
  CHECK_FALSE(v.grad().defined());

  SECTION("an explicit output gradient") {
    (v * 3.0).backward(f64({1, 0.5}));
    CHECK(vals(v.grad()) == std::vector<double>{3, 1.5});
  }
  SECTION("an explicit gradient in another dtype is converted") {
    (v * 3.0).backward(tg::tensor(std::vector<float>{2.0f, 1.0f}));
    CHECK(v.grad().dtype() == tg::kFloat64);
    CHECK(vals(v.grad()) == std::vector<double>{6, 3});
  }
  SECTION("a [1]-shaped output needs no explicit gradient") {
    (v.sum({0}, true) * 2.0).backward();
    CHECK(vals(v.grad()) == std::vector<double>{2, 2});
  }
}

TEST_CASE("a second backward through consumed entries throws", "[autograd][errors]") {
  Tensor v = f64({1, 2}).requires_grad_();
  Tensor once = (v * v).sum();
  once.backward();
  CHECK(vals(v.grad()) == std::vector<double>{2, 4});
  CHECK_THROWS_WITH(once.backward(), Contains("second time") && Contains("SumBackward0"));
  CHECK(vals(v.grad()) == std::vector<double>{2, 4});  // nothing accumulated by the failed call

  SECTION("through a shared intermediate the first backward consumed") {
    Tensor h = v.exp();
    Tensor z1 = (h * 3.0).sum(), z2 = (h * 4.0).sum();
    z1.backward();
    CHECK_THROWS_WITH(z2.backward(), Contains("second time") && Contains("ExpBackward0"));
  }
}

TEST_CASE("in-place modification of a saved tensor is detected at backward", "[autograd][errors]") {
  Tensor x = f64({0.5, -1.0, 2.0}).requires_grad_();
  SECTION("sigmoid's saved output, changed through a detached alias") {
    Tensor y = x.sigmoid();
    Tensor z = (y * 2.0).sum();
    y.detach().mul_(2.0);
    CHECK_THROWS_WITH(z.backward(), Contains("SigmoidBackward0") && Contains("in-place") &&
                                        Contains("version 0") && Contains("version 1"));
  }
  SECTION("exp's saved output, changed through a view of a detached alias") {
    Tensor y = x.exp();
    Tensor z = y.sum();
    y.detach().slice(0, 1, 2).fill_(0.0);
    CHECK_THROWS_WITH(z.backward(), Contains("ExpBackward0") && Contains("in-place"));
  }
  SECTION("a constant input mul saved") {
    Tensor c = f64({1, 2, 3});
    Tensor z = (x * c).sum();
    c.mul_(2.0);  // c does not require grad: allowed, but MulBackward0 read it
    CHECK_THROWS_WITH(z.backward(), Contains("MulBackward0") && Contains("in-place"));
  }
  SECTION("index_select's index (torch 1.13 raises here too)") {
    Tensor idx = tg::tensor(std::vector<std::int64_t>{0, 1});
    Tensor z = (x.index_select(0, idx) * f64({1, 10})).sum();
    idx.fill_(2);
    CHECK_THROWS_WITH(z.backward(), Contains("IndexSelectBackward0") && Contains("in-place"));
  }
  SECTION("add saves nothing: changing its constant input is harmless") {
    Tensor c = f64({1, 2, 3});
    Tensor z = (x + c).sum();
    c.mul_(2.0);
    z.backward();
    CHECK(vals(x.grad()) == std::vector<double>{1, 1, 1});
  }
  SECTION("changes made before the op are fine") {
    Tensor c = f64({1, 2, 3});
    c.mul_(2.0);
    (x * c).sum().backward();
    CHECK(vals(x.grad()) == std::vector<double>{2, 4, 6});
  }
}

TEST_CASE("in-place ops refuse tensors on the tape under grad mode", "[autograd][errors]") {
  Tensor x = f64({1, 2}).requires_grad_();
  CHECK_THROWS_WITH(x.mul_(2.0), Contains("[mul_]") && Contains("in-place") && Contains("leaf"));
  CHECK_THROWS_WITH(x.add_(1.0), Contains("[add_]") && Contains("in-place"));
  CHECK_THROWS_WITH(x.zero_(), Contains("in-place"));
  CHECK_THROWS_WITH(x.copy_(f64({5, 6})), Contains("[copy_]"));
  CHECK_THROWS_WITH(x.sub_(f64({5, 6})), Contains("[sub_]"));
  CHECK_THROWS_WITH(x.div_(2.0), Contains("[div_]"));
  CHECK(vals(x) == std::vector<double>{1, 2});  // left as it was
  Tensor h = x * 2.0;
  CHECK_THROWS_WITH(h.add_(1.0), Contains("[add_]") && Contains("MulBackward0"));
  Tensor plain = f64({0, 0});
  CHECK_THROWS_WITH(plain.add_(x), Contains("[add_]") && Contains("source requires grad"));
  CHECK_THROWS_WITH(plain.copy_(x), Contains("[copy_]"));
  CHECK(vals(plain) == std::vector<double>{0, 0});
  {
    tg::NoGradGuard no_grad;
    x.sub_(f64({1, 1}));
    plain.add_(x, 2.0);
  }
  CHECK(vals(x) == std::vector<double>{0, 1});
  CHECK(vals(plain) == std::vector<double>{0, 2});
}

TEST_CASE("backward releases what consumed entries saved", "[autograd]") {
  Tensor x = f64({0.5, -1.0, 2.0}).requires_grad_();
  std::size_t base = tg::autograd::tape_size();
  std::weak_ptr<tg::TensorImpl> a_impl, b_impl;
  std::weak_ptr<tg::Storage> a_storage;
  Tensor loss;
  {
    Tensor a = x.exp(), b = x.tanh();  // both saved by MulBackward0, held only by the tape
    a_impl = a.impl_ptr();
    b_impl = b.impl_ptr();
    a_storage = a.storage();
    loss = (a * b).sum();
  }
  CHECK(tg::autograd::tape_size() == base + 4);
  CHECK_FALSE(a_impl.expired());
  CHECK_FALSE(b_impl.expired());
  loss.backward();
  CHECK(a_impl.expired());
  CHECK(b_impl.expired());
  CHECK(a_storage.expired());
  CHECK(tg::autograd::tape_size() == base + 1);  // only the root's own entry, owned by `loss`
  std::vector<double> want;
  for (double xi : {0.5, -1.0, 2.0}) {
    double t = std::tanh(xi);
    want.push_back(std::exp(xi) * t + std::exp(xi) * (1 - t * t));
  }
  CHECK(close(x.grad(), want));
  loss = Tensor();
  CHECK(tg::autograd::tape_size() == base);
}

TEST_CASE("entries live as long as their outputs", "[autograd]") {
  Tensor x = f64({1, 2}).requires_grad_();
  std::size_t base = tg::autograd::tape_size();
  {
    Tensor y = (x * 2.0).exp();
    CHECK(tg::autograd::tape_size() == base + 2);
  }
  CHECK(tg::autograd::tape_size() == base);
}

TEST_CASE("long chains, with dead entries compacted away in between", "[autograd]") {
  Tensor x = f64({1.0, -2.0}).requires_grad_();
  std::size_t base = tg::autograd::tape_size();
  Tensor y = x;
  const int n = 3000;
  for (int i = 0; i < n; ++i) {
    Tensor garbage = y * 5.0;  // dies at once: its entry expires and is compacted away
    y = y * 1.0001;
  }
  CHECK(tg::autograd::tape_size() == base + n);
  y.sum().backward();
  double want = std::pow(1.0001, n);
  CHECK(close(x.grad(), {want, want}, 1e-9));
  CHECK(tg::autograd::tape_size() == base + 1);
}

TEST_CASE("dropping a long graph without backward frees it without recursing", "[autograd]") {
  // 100 000 entries deep: freed node by node from nested destructors, this overflowed an 8 MB stack.
  Tensor x = f64({1.0, -2.0}).requires_grad_();
  std::size_t base = tg::autograd::tape_size();
  std::weak_ptr<tg::TensorImpl> first;
  {
    Tensor y = x * 1.0;
    first = y.impl_ptr();
    for (int i = 0; i < 50000; ++i) y = y * 1.0 + x;
    CHECK(tg::autograd::tape_size() == base + 100001);
    CHECK(vals(y) == std::vector<double>{50001, -100002});
  }
  CHECK(first.expired());
  CHECK(tg::autograd::tape_size() == base);
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("gradients follow PyTorch at kinks and ties", "[autograd]") {
  // torch 1.13: x = [1, 3, 3, -2]: x.max() and x.amax(0) share among ties: [0, .5, .5, 0]
  Tensor x = f64({1, 3, 3, -2}).requires_grad_();
  x.max().backward();
  CHECK(vals(x.grad()) == std::vector<double>{0, 0.5, 0.5, 0});
  x.set_grad(Tensor());
  x.max({0}).backward();
  CHECK(vals(x.grad()) == std::vector<double>{0, 0.5, 0.5, 0});
  x.set_grad(Tensor());
  x.min().backward();
  CHECK(vals(x.grad()) == std::vector<double>{0, 0, 0, 1});

  // maximum/minimum: a tie splits the gradient in halves.
  Tensor a = f64({1, 2, 3}).requires_grad_(), b = f64({1, 5, 0}).requires_grad_();
  a.maximum(b).sum().backward();
  CHECK(vals(a.grad()) == std::vector<double>{0.5, 0, 1});
  CHECK(vals(b.grad()) == std::vector<double>{0.5, 1, 0});
  a.set_grad(Tensor());
  b.set_grad(Tensor());
  a.minimum(b).sum().backward();
  CHECK(vals(a.grad()) == std::vector<double>{0.5, 1, 0});
  CHECK(vals(b.grad()) == std::vector<double>{0.5, 0, 1});

  // pow with a tensor exponent at a zero base: 0 for both (torch: [0, 2, .3536], [0, 0, .9803]).
  Tensor base = f64({0, 1, 2}).requires_grad_(), e = f64({2, 2, 0.5}).requires_grad_();
  base.pow(e).sum().backward();
  CHECK(close(base.grad(), {0, 2, 0.5 / std::sqrt(2.0)}));
  CHECK(close(e.grad(), {0, 0, std::sqrt(2.0) * std::log(2.0)}));

  // torch: x = [0, 2, 0, 0], e = [0, 0, -1, 2]: x.grad [0, 0, -inf, 0], e.grad [0, log 2, -inf, 0]
  // (0 where e == 0, not 0 · 0^-1 = nan; 0 where x == 0 and e >= 0).
  Tensor zb = f64({0, 2, 0, 0}).requires_grad_(), ze = f64({0, 0, -1, 2}).requires_grad_();
  zb.pow(ze).sum().backward();
  std::vector<double> gb = vals(zb.grad()), ge = vals(ze.grad());
  CHECK(gb[0] == 0.0);
  CHECK(gb[1] == 0.0);
  CHECK((std::isinf(gb[2]) && gb[2] < 0));
  CHECK(gb[3] == 0.0);
  CHECK(ge[0] == 0.0);
  CHECK(ge[1] == Approx(std::log(2.0)));
  CHECK((std::isinf(ge[2]) && ge[2] < 0));
  CHECK(ge[3] == 0.0);

  // std where the spread is 0: gradient 0, not nan (torch: [[0, 0], [-0.7071, 0.7071]]).
  Tensor sd = f64({1, 1, 1, 3}, {2, 2}).requires_grad_();
  sd.std({1}).sum().backward();
  CHECK(close(sd.grad(), {0, 0, -std::sqrt(0.5), std::sqrt(0.5)}));

  // clamp passes the gradient on its bounds; abs and relu give 0 at 0.
  Tensor k = f64({-1, 0, 0.5, 1, 2}).requires_grad_();
  k.clamp(0.0, 1.0).sum().backward();
  CHECK(vals(k.grad()) == std::vector<double>{0, 1, 1, 1, 0});
  k.set_grad(Tensor());
  k.abs().sum().backward();
  CHECK(vals(k.grad()) == std::vector<double>{-1, 0, 1, 1, 1});
  k.set_grad(Tensor());
  k.relu().sum().backward();
  CHECK(vals(k.grad()) == std::vector<double>{0, 0, 1, 1, 1});
}

TEST_CASE("to() between float dtypes sends the gradient back in the input's dtype", "[autograd]") {
  // torch: x = [1., 2., 3.] float32; y = x.to(float64); (y * y).sum().backward() -> [2., 4., 6.] float32
  Tensor x = tg::tensor(std::vector<float>{1, 2, 3}).requires_grad_();
  Tensor y = x.to(tg::kFloat64);
  CHECK(y.grad_fn_name() == "ToCopyBackward0");
  (y * y).sum().backward();
  CHECK(x.grad().dtype() == tg::kFloat32);
  CHECK(vals(x.grad()) == std::vector<double>{2, 4, 6});
  // To an integer dtype: not recorded.
  Tensor i = x.to(tg::kInt64);
  CHECK_FALSE(i.requires_grad());
  // Mixed dtypes in one op: each input gets its own dtype back.
  Tensor d = f64({1, 1, 1}).requires_grad_();
  Tensor xs = tg::tensor(std::vector<float>{1, 2, 3}).requires_grad_();
  (xs * d).sum().backward();
  CHECK(xs.grad().dtype() == tg::kFloat32);
  CHECK(d.grad().dtype() == tg::kFloat64);
  CHECK(vals(d.grad()) == std::vector<double>{1, 2, 3});
}

TEST_CASE("a user-defined op with a hand-derived backward", "[autograd][gradcheck]") {
  using tg::autograd::gradcheck;
  tg::manual_seed(3);
  Tensor c = tg::randn({4}, tg::kFloat64).requires_grad_();
  Tensor y = cube(c, 3.0);
  CHECK(y.grad_fn_name() == "CubeBackward");
  CHECK(gradcheck([](const Inputs& in) { return cube(in[0], 3.0); }, {c}));
  tg::autograd::GradcheckResult wrong = gradcheck([](const Inputs& in) { return cube(in[0], 2.0); }, {c});
  CHECK_FALSE(wrong.ok);
  CHECK_FALSE(static_cast<bool>(wrong));
  CHECK_THAT(wrong.message, Contains("input 0") && Contains("element 0") && Contains("shape [4]"));
  Tensor fresh = c.detach().requires_grad_();
  cube(fresh, 3.0).sum().backward();
  CHECK(close(fresh.grad(), vals(c.detach() * c.detach() * 3.0)));

  SECTION("a wrong gradient for the second input names input 1") {
    auto scaled_mul = [](const Inputs& in) {
      Tensor a = in[0], b = in[1], out;
      {
        tg::NoGradGuard no_grad;
        out = a * b;
      }
      return tg::autograd::record("BadMulBackward", out, {a, b},
                                  [a, b](const Tensor& g) { return Inputs{g * b, g * a * 1.5}; });
    };
    Tensor b = tg::randn({2, 3}, tg::kFloat64).requires_grad_();
    Tensor a = tg::randn({2, 3}, tg::kFloat64).requires_grad_();
    tg::autograd::GradcheckResult r = gradcheck(scaled_mul, {a, b});
    CHECK_FALSE(r.ok);
    CHECK_THAT(r.message, Contains("input 1") && Contains("shape [2, 3]") && Contains("element 0"));
  }
  SECTION("a backward that ignores strides fails only the non-contiguous check") {
    // Reads x's storage as if it were contiguous: right for contiguous x, wrong for a strided one.
    auto raw_square = [](const Inputs& in) {
      Tensor x = in[0], out;
      {
        tg::NoGradGuard no_grad;
        out = x * x;
      }
      return tg::autograd::record("RawSquareBackward", out, {x}, [x](const Tensor& g) {
        Tensor flat = tg::native::as_strided(x, x.sizes(), tg::contiguous_strides(x.sizes()), x.storage_offset());
        return Inputs{g * flat * 2.0};
      });
    };
    tg::autograd::GradcheckResult r = gradcheck(raw_square, {tg::randn({3, 4}, tg::kFloat64).requires_grad_()});
    CHECK_FALSE(r.ok);
    CHECK_THAT(r.message, Contains("non-contiguous"));
  }
}

TEST_CASE("record: what it records and what it rejects", "[autograd][errors]") {
  using tg::autograd::record;
  auto identity = [](const Tensor& g) { return Inputs{g}; };
  Tensor x = f64({1, 2}).requires_grad_();
  Tensor c = f64({1, 2});
  std::size_t base = tg::autograd::tape_size();

  Tensor out = tg::native::clone(c);
  CHECK(record("NoGradNeeded", out, {c}, identity).is_same(out));  // no input requires grad
  CHECK_FALSE(out.requires_grad());
  {
    tg::NoGradGuard no_grad;
    Tensor o = tg::native::clone(x);
    record("UnderNoGrad", o, {x}, identity);
    CHECK_FALSE(o.requires_grad());
  }
  CHECK(tg::autograd::tape_size() == base);

  CHECK_THROWS_WITH(record("IntOut", tg::arange(2), {x}, identity),
                    Contains("[record]") && Contains("IntOut") && Contains("floating point"));
  CHECK_THROWS_WITH(record("LeafOut", f64({1, 2}).requires_grad_(), {x}, identity),
                    Contains("[record]") && Contains("LeafOut"));
  CHECK_THROWS_WITH(record("SelfOut", x, {x}, identity), Contains("[record]") && Contains("SelfOut"));
  CHECK_THROWS_WITH(record("EmptyFn", tg::native::clone(x), {x}, tg::autograd::BackwardFn()),
                    Contains("[record]") && Contains("empty"));
  CHECK(tg::autograd::tape_size() == base);

  SECTION("an undefined gradient means none") {
    Tensor o = record("NoneBackward", tg::native::clone(x), {x, c},
                      [](const Tensor&) { return Inputs{Tensor(), Tensor()}; });
    o.sum().backward();
    CHECK_FALSE(x.grad().defined());
  }
  SECTION("only inputs that require grad receive one") {
    Tensor o = record("PairBackward", tg::native::binary(tg::native::BinaryOp::Add, x, c), {c, x},
                      [](const Tensor& g) { return Inputs{g * 10.0, g * 2.0}; });
    o.sum().backward();
    CHECK(vals(x.grad()) == std::vector<double>{2, 2});
    CHECK_FALSE(c.grad().defined());
  }
}

TEST_CASE("a user backward returning bad gradients throws naming the entry", "[autograd][errors]") {
  using tg::autograd::record;
  Tensor x = f64({1, 2, 3}).requires_grad_();
  SECTION("wrong shape") {
    Tensor o = record("BadShapeBackward", tg::native::clone(x), {x},
                      [](const Tensor&) { return Inputs{tg::ones({2}, tg::kFloat64)}; });
    CHECK_THROWS_WITH(o.sum().backward(), Contains("[BadShapeBackward]") && Contains("shape [2]") &&
                                              Contains("input 0 of shape [3]"));
    CHECK_FALSE(x.grad().defined());
  }
  SECTION("wrong dtype") {
    Tensor o = record("BadDtypeBackward", tg::native::clone(x), {x},
                      [](const Tensor&) { return Inputs{tg::ones({3}, tg::kFloat32)}; });
    CHECK_THROWS_WITH(o.sum().backward(), Contains("[BadDtypeBackward]") && Contains("float32") &&
                                              Contains("float64"));
  }
  SECTION("wrong count") {
    Tensor o = record("BadCountBackward", tg::native::clone(x), {x},
                      [](const Tensor& g) { return Inputs{g, g}; });
    CHECK_THROWS_WITH(o.sum().backward(), Contains("[BadCountBackward]") && Contains("2 gradients for 1 inputs"));
  }
}

// Generated with /usr/bin/python3 (torch 1.13), replacing "dtype=torch." by "dtype=" (tapegrad's
// one deliberate difference, see core/print.h):
//   x = torch.tensor([1., 2., 3.], requires_grad=True)
//   for e in ["x", "x*2", "x.exp()", "x.sum()", "x.mean()", "x.detach()", "x.view(3,1)", "2.0 - x"]: print(str(eval(e)))
//   w = torch.tensor([[0.5, -1.0], [2.0, 0.25]], dtype=torch.float64, requires_grad=True)
//   print(w @ w, w.sigmoid(), w.std())
TEST_CASE("printing a tensor on the tape shows PyTorch's grad_fn", "[autograd]") {
  Tensor x = tg::tensor(std::vector<float>{1, 2, 3}).requires_grad_();
  CHECK(tg::to_string(x) == "tensor([1., 2., 3.], requires_grad=True)");
  CHECK(tg::to_string(x * 2.0) == "tensor([2., 4., 6.], grad_fn=<MulBackward0>)");
  CHECK(tg::to_string(x.exp()) == "tensor([ 2.7183,  7.3891, 20.0855], grad_fn=<ExpBackward0>)");
  CHECK(tg::to_string(x.sum()) == "tensor(6., grad_fn=<SumBackward0>)");
  CHECK(tg::to_string(x.mean()) == "tensor(2., grad_fn=<MeanBackward0>)");
  CHECK(tg::to_string(x.detach()) == "tensor([1., 2., 3.])");
  CHECK(tg::to_string(x.view({3, 1})) == "tensor([[1.],\n        [2.],\n        [3.]], grad_fn=<ViewBackward0>)");
  CHECK(tg::to_string(2.0 - x) == "tensor([ 1.,  0., -1.], grad_fn=<RsubBackward1>)");
  Tensor w = f64({0.5, -1.0, 2.0, 0.25}, {2, 2}).requires_grad_();
  CHECK(tg::to_string(w.matmul(w)) ==
        "tensor([[-1.7500, -0.7500],\n        [ 1.5000, -1.9375]], dtype=float64, grad_fn=<MmBackward0>)");
  CHECK(tg::to_string(w.sigmoid()) ==
        "tensor([[0.6225, 0.2689],\n        [0.8808, 0.5622]], dtype=float64, grad_fn=<SigmoidBackward0>)");
  CHECK(tg::to_string(w.std()) == "tensor(1.2311, dtype=float64, grad_fn=<StdBackward0>)");
  // Under NoGradGuard nothing is recorded, so nothing is shown.
  tg::NoGradGuard no_grad;
  CHECK(tg::to_string(x * 2.0) == "tensor([2., 4., 6.])");
}
