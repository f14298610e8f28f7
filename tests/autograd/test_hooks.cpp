// The engine's hooks and walks: gradient hooks (order, replacement, removal), the post-accumulate
// hook a data-parallel wrapper reduces from, retain_graph, autograd::grad, and anomaly mode.
// Values are hand-derived (each test says how); PyTorch 1.13 gives the same numbers.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "tapegrad.h"

namespace {

using Catch::Contains;
using tg::Shape;
using tg::Tensor;

Tensor f64(std::vector<double> v) { return tg::tensor(v); }
std::vector<double> vals(const Tensor& t) { return t.to(tg::kFloat64).to_vector<double>(); }

}  // namespace

TEST_CASE("gradient hooks run in registration order, each seeing the previous result", "[autograd][hooks]") {
  Tensor x = f64({1, 2}).requires_grad_();
  Tensor h = x * 3.0;  // d(sum(h * h))/dh = 2h = [6, 12]
  std::vector<std::string> order;
  std::vector<std::vector<double>> seen;
  h.register_hook([&](const Tensor& g) {
    order.push_back("first");
    seen.push_back(vals(g));
  });
  h.register_hook([&](const Tensor& g) {
    order.push_back("second");
    seen.push_back(vals(g));
    return g * 10.0;  // replaced: flows on to x
  });
  h.register_hook([&](const Tensor& g) {
    order.push_back("third");
    seen.push_back(vals(g));
    return Tensor();  // keeps it
  });
  (h * h).sum().backward();
  CHECK(order == std::vector<std::string>{"first", "second", "third"});
  CHECK(seen == std::vector<std::vector<double>>{{6, 12}, {6, 12}, {60, 120}});
  CHECK(vals(x.grad()) == std::vector<double>{180, 360});  // 3 · 10 · 2h
}

TEST_CASE("a hook on a tensor used twice sees the summed gradient once", "[autograd][hooks]") {
  Tensor x = f64({1, 2}).requires_grad_();
  Tensor h = x * 2.0;
  int calls = 0;
  std::vector<double> seen;
  h.register_hook([&](const Tensor& g) {
    ++calls;
    seen = vals(g);
  });
  (h * 3.0 + h * h).sum().backward();  // dh = 3 + 2h = [7, 11]
  CHECK(calls == 1);
  CHECK(seen == std::vector<double>{7, 11});
  CHECK(vals(x.grad()) == std::vector<double>{14, 22});
}

TEST_CASE("leaf hooks run on the whole gradient before it is accumulated", "[autograd][hooks]") {
  Tensor w = f64({1, 2}).requires_grad_();
  std::vector<double> seen;
  int calls = 0;
  std::vector<std::vector<double>> grad_at_call;  // .grad when the hook ran
  w.register_hook([&](const Tensor& g) {
    ++calls;
    seen = vals(g);
    grad_at_call.push_back(w.grad().defined() ? vals(w.grad()) : std::vector<double>{});
    return g * 0.5;
  });
  (w * 4.0 + w * w).sum().backward();  // dw = 4 + 2w = [6, 8]
  CHECK(calls == 1);
  CHECK(grad_at_call == std::vector<std::vector<double>>{{}});  // not accumulated yet
  CHECK(seen == std::vector<double>{6, 8});
  CHECK(vals(w.grad()) == std::vector<double>{3, 4});
  SECTION("and again on the next backward, accumulating the replaced value") {
    (w * 2.0).sum().backward();
    CHECK(calls == 2);
    CHECK(grad_at_call == std::vector<std::vector<double>>{{}, {3, 4}});
    CHECK(vals(w.grad()) == std::vector<double>{4, 5});
  }
  SECTION("a hook on the root itself") {
    Tensor s = tg::scalar_tensor(2.0, tg::kFloat64).requires_grad_();
    s.register_hook([](const Tensor& g) { return g * 7.0; });
    s.backward();
    CHECK(s.grad().item<double>() == 7.0);
  }
}

TEST_CASE("a removed hook stays silent; remove() is idempotent and outlives the tensor", "[autograd][hooks]") {
  Tensor x = f64({1, 2}).requires_grad_();
  int a = 0, b = 0;
  tg::RemovableHandle ha = x.register_hook([&](const Tensor&) { ++a; });
  x.register_hook([&](const Tensor& g) {
    ++b;
    return g * 2.0;
  });
  tg::RemovableHandle hc = x.register_hook([](const Tensor& g) { return g * 100.0; });
  hc.remove();
  (x * 1.0).sum().backward();
  CHECK(a == 1);
  CHECK(b == 1);
  CHECK(vals(x.grad()) == std::vector<double>{2, 2});
  ha.remove();
  ha.remove();
  (x * 1.0).sum().backward();
  CHECK(a == 1);
  CHECK(b == 2);
  CHECK(vals(x.grad()) == std::vector<double>{4, 4});
  tg::RemovableHandle late;
  {
    Tensor y = f64({1}).requires_grad_();
    late = y.register_hook([](const Tensor& g) { return g; });
  }
  late.remove();  // y is gone: nothing to do, nothing to crash
  SECTION("a hook that removes itself while running") {
    int runs = 0;
    tg::RemovableHandle self;
    self = x.register_hook([&](const Tensor&) {
      ++runs;
      self.remove();
    });
    (x * 1.0).sum().backward();
    (x * 1.0).sum().backward();
    CHECK(runs == 1);
  }
}

TEST_CASE("hook errors", "[autograd][hooks][errors]") {
  Tensor plain = f64({1, 2});
  CHECK_THROWS_WITH(plain.register_hook([](const Tensor& g) { return g; }),
                    Contains("[register_hook]") && Contains("doesn't require gradient"));
  Tensor x = f64({1, 2}).requires_grad_();
  x.register_hook([](const Tensor&) { return f64({1, 2, 3}); });
  CHECK_THROWS_WITH((x * 2.0).sum().backward(),
                    Contains("[register_hook]") && Contains("[3]") && Contains("[2]"));
  CHECK_FALSE(x.grad().defined());
  Tensor h = x * 2.0;
  CHECK_THROWS_WITH(h.register_post_accumulate_grad_hook([](const Tensor&) {}),
                    Contains("[register_post_accumulate_grad_hook]") && Contains("leaf") &&
                        Contains("MulBackward0"));
}

TEST_CASE("post-accumulate hooks fire once per leaf, after its last accumulation", "[autograd][hooks]") {
  // y = w2 · sigmoid(w1 · x) summed, with w1 used three times: its hook must wait for all three.
  Tensor x = f64({0.5, -1.0});
  Tensor w1 = f64({2.0, 3.0}).requires_grad_();
  Tensor w2 = f64({-1.0, 4.0}).requires_grad_();
  std::vector<std::string> fired;
  std::vector<double> w1_grad_when_fired;
  bool w1_done_when_w2_fired = true;
  w1.register_post_accumulate_grad_hook([&](const Tensor& leaf) {
    fired.push_back("w1");
    CHECK(leaf.is_same(w1));
    w1_grad_when_fired = vals(leaf.grad());
  });
  w2.register_post_accumulate_grad_hook([&](const Tensor&) {
    fired.push_back("w2");
    w1_done_when_w2_fired = w1.grad().defined();
  });
  Tensor a = (w1 * x + w1 * w1).sigmoid() * w1;  // w1 used by three entries
  (a * w2).sum().backward();
  CHECK(fired == std::vector<std::string>{"w2", "w1"});
  CHECK_FALSE(w1_done_when_w2_fired);  // w2's hook fired mid-walk, before w1's gradient existed
  CHECK(w1_grad_when_fired == vals(w1.grad()));
  // By hand: z = w1·x + w1², s = σ(z), a = s·w1, da/dw1 = s + w1·s(1-s)(x + 2 w1), times w2.
  std::vector<double> want;
  for (int i = 0; i < 2; ++i) {
    double xi = vals(x)[i], wi = vals(w1)[i], vi = vals(w2)[i];
    double s = 1 / (1 + std::exp(-(wi * xi + wi * wi)));
    want.push_back(vi * (s + wi * s * (1 - s) * (xi + 2 * wi)));
  }
  for (int i = 0; i < 2; ++i) CHECK(vals(w1.grad())[i] == Approx(want[i]).epsilon(1e-12));
  CHECK(vals(w2.grad()) == vals(a.detach()));
  SECTION("once per backward, and not for autograd::grad") {
    (w2 * 2.0).sum().backward();
    CHECK(fired == std::vector<std::string>{"w2", "w1", "w2"});
    tg::autograd::grad({(w1 * w2).sum()}, {w1, w2});
    CHECK(fired.size() == 3);
  }
}

TEST_CASE("retain_graph: two losses share a trunk", "[autograd]") {
  Tensor x = f64({1, 2}).requires_grad_();
  Tensor trunk = x.exp();
  Tensor loss1 = (trunk * 2.0).sum();
  Tensor loss2 = (trunk * trunk).sum();
  loss1.backward(Tensor(), true);
  std::vector<double> e = {std::exp(1.0), std::exp(2.0)};
  CHECK(vals(x.grad()) == std::vector<double>{2 * e[0], 2 * e[1]});
  loss2.backward();  // d(e^2x)/dx = 2 e^2x, added
  CHECK(vals(x.grad())[0] == Approx(2 * e[0] + 2 * e[0] * e[0]).epsilon(1e-14));
  CHECK(vals(x.grad())[1] == Approx(2 * e[1] + 2 * e[1] * e[1]).epsilon(1e-14));
  SECTION("without it, the second backward says what to pass") {
    Tensor y = f64({1, 2}).requires_grad_();
    Tensor t = y.exp();
    (t * 2.0).sum().backward();
    CHECK_THROWS_WITH((t * t).sum().backward(), Contains("second time") && Contains("ExpBackward0") &&
                                                    Contains("retain_graph=true"));
  }
  SECTION("the same loss twice") {
    Tensor y = f64({3}).requires_grad_();
    Tensor l = (y * y).sum();
    l.backward(Tensor(), true);
    l.backward();
    CHECK(vals(y.grad()) == std::vector<double>{12});
    CHECK_THROWS_WITH(l.backward(), Contains("retain_graph"));
  }
}

TEST_CASE("autograd::grad returns gradients and leaves .grad alone", "[autograd]") {
  Tensor x = f64({0.5, -1.0, 2.0}).requires_grad_();
  Tensor w = f64({2, 3, 4}).requires_grad_();
  auto loss_of = [&] { return ((x * w).tanh() * x).sum(); };
  loss_of().backward();
  std::vector<double> dx = vals(x.grad()), dw = vals(w.grad());
  x.set_grad(Tensor());
  w.set_grad(Tensor());
  std::vector<Tensor> g = tg::autograd::grad({loss_of()}, {x, w});
  REQUIRE(g.size() == 2);
  CHECK(vals(g[0]) == dx);
  CHECK(vals(g[1]) == dw);
  CHECK_FALSE(x.grad().defined());
  CHECK_FALSE(w.grad().defined());

  SECTION("of an intermediate, with an explicit output gradient") {
    Tensor h = x * w;  // d(sum(gy · h²))/dh = 2 gy h
    Tensor y = h * h;
    std::vector<Tensor> gh = tg::autograd::grad({y}, {h}, {f64({1, 2, 3})});
    CHECK(vals(gh[0]) == std::vector<double>{2, -12, 48});
    CHECK_FALSE(x.grad().defined());
  }
  SECTION("several outputs add; the same input twice gets the gradient twice") {
    std::vector<Tensor> gx = tg::autograd::grad({(x * 2.0).sum(), (x * x).sum()}, {x, x});
    CHECK(vals(gx[0]) == std::vector<double>{3, 0, 6});
    CHECK(vals(gx[1]) == std::vector<double>{3, 0, 6});
  }
  SECTION("an unused input throws unless allow_unused") {
    Tensor other = f64({1}).requires_grad_();
    CHECK_THROWS_WITH(tg::autograd::grad({(x * 2.0).sum()}, {other}),
                      Contains("[autograd::grad]") && Contains("allow_unused"));
    std::vector<Tensor> gu = tg::autograd::grad({(x * 2.0).sum()}, {x, other}, {}, false, true);
    CHECK(vals(gu[0]) == std::vector<double>{2, 2, 2});
    CHECK_FALSE(gu[1].defined());
    CHECK_THROWS_WITH(tg::autograd::grad({(x * 2.0).sum()}, {f64({1})}), Contains("does not require grad"));
  }
  SECTION("it consumes the graph unless retain_graph") {
    Tensor l = (x * x).sum();
    tg::autograd::grad({l}, {x}, {}, true);
    CHECK(vals(tg::autograd::grad({l}, {x})[0]) == std::vector<double>{1, -2, 4});
    CHECK_THROWS_WITH(tg::autograd::grad({l}, {x}), Contains("retain_graph"));
  }
}

TEST_CASE("anomaly mode names the entry that made a nan or inf, and where it was recorded", "[autograd][errors]") {
  Tensor x = f64({0.0, 1.0}).requires_grad_();
  CHECK_FALSE(tg::autograd::is_anomaly_enabled());
  SECTION("off: the nan flows into .grad silently, as PyTorch") {
    (x.sqrt() * 0.0).sum().backward();  // 0 · 1/(2·sqrt(0)) = nan
    CHECK(std::isnan(vals(x.grad())[0]));
  }
  SECTION("on: SqrtBackward0 returned nan, recorded in the innermost location") {
    tg::autograd::DetectAnomalyGuard anomaly;
    CHECK(tg::autograd::is_anomaly_enabled());
    Tensor y;
    {
      tg::autograd::RecordingLocationGuard outer("0 (Net)");
      tg::autograd::RecordingLocationGuard where("3 (Sqrt)");
      CHECK(tg::autograd::recording_location() == "3 (Sqrt)");
      y = x.sqrt();
    }
    CHECK(tg::autograd::recording_location().empty());
    CHECK_THROWS_WITH((y * 0.0).sum().backward(),
                      "[backward] SqrtBackward0 returned nan values in its 0th output; it was recorded in module "
                      "3 (Sqrt)");
    CHECK_FALSE(x.grad().defined());
  }
  SECTION("on: an infinite gradient outside any module") {
    tg::autograd::DetectAnomalyGuard anomaly;
    CHECK_THROWS_WITH(x.log().sum().backward(),
                      "[backward] LogBackward0 returned inf values in its 0th output; it was recorded outside any "
                      "module");
  }
  CHECK_FALSE(tg::autograd::is_anomaly_enabled());
}
