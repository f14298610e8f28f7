// SGD against PyTorch's trajectories (values from torch 1.13, scripts/gen_sgd_refs.py), its
// option checks, state round trip, and StepLR. Tag [optim].
#include <catch2/catch.hpp>

#include <filesystem>

#include "tapegrad.h"
#include "tests/support/files.h"

using Catch::Contains;
using tg::Tensor;

namespace {

// Five steps on sum(k ⊙ (p − c)²) from p = [1, −2, 3], as PyTorch runs them.
std::vector<double> run(tg::optim::SGDOptions options, int steps = 5) {
  Tensor p = tg::tensor(std::vector<double>{1.0, -2.0, 3.0}, {3}).requires_grad_();
  Tensor c = tg::tensor(std::vector<double>{0.5, 0.5, -1.0}, {3});
  Tensor k = tg::tensor(std::vector<double>{1.0, 2.0, 0.5}, {3});
  tg::optim::SGD opt({p}, options);
  for (int s = 0; s < steps; ++s) {
    opt.zero_grad();
    ((p - c).pow(2) * k).sum().backward();
    opt.step();
  }
  return p.to_vector<double>();
}

void check_close(const std::vector<double>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want[i]).margin(1e-10));
}

}  // namespace

TEST_CASE("SGD follows PyTorch's update rule step for step", "[optim]") {
#include "sgd_refs.inc"
}

TEST_CASE("SGD rejects bad options and leaves nothing changed", "[optim][errors]") {
  Tensor p = tg::ones({2}).requires_grad_();
  CHECK_THROWS_WITH(tg::optim::SGD({p}, {}), Contains("[SGD]") && Contains("learning rate"));
  CHECK_THROWS_WITH(tg::optim::SGD({p}, {.lr = -1}), Contains("[SGD]") && Contains("-1"));
  CHECK_THROWS_WITH(tg::optim::SGD({p}, {.lr = 0.1, .momentum = -0.5}), Contains("momentum"));
  CHECK_THROWS_WITH(tg::optim::SGD({p}, {.lr = 0.1, .weight_decay = -0.5}), Contains("weight_decay"));
  CHECK_THROWS_WITH(tg::optim::SGD({p}, {.lr = 0.1, .nesterov = true}), Contains("Nesterov"));
  CHECK_THROWS_WITH(tg::optim::SGD({p}, {.lr = 0.1, .momentum = 0.9, .dampening = 0.5, .nesterov = true}),
                    Contains("Nesterov"));
  CHECK_THROWS_WITH(tg::optim::SGD({p, p}, {.lr = 0.1}), Contains("twice"));
  CHECK_THROWS_WITH(tg::optim::SGD({tg::ones({2})}, {.lr = 0.1}), Contains("requires grad"));
  tg::optim::SGD opt({p}, {.lr = 0.1});
  CHECK_THROWS_WITH(opt.set_lr(-2), Contains("[SGD]"));
  CHECK(opt.lr() == 0.1);
}

TEST_CASE("SGD skips parameters without gradients and zero_grad zeroes in place", "[optim]") {
  Tensor a = tg::ones({2}).requires_grad_(), b = tg::ones({2}).requires_grad_();
  tg::optim::SGD opt({a, b}, {.lr = 0.5});
  (a * 3.0).sum().backward();
  opt.step();
  CHECK(a.to_vector<double>() == std::vector<double>{-0.5, -0.5});
  CHECK(b.to_vector<double>() == std::vector<double>{1, 1});
  Tensor g = a.grad();
  opt.zero_grad();
  CHECK(a.grad().is_same(g));
  CHECK(g.to_vector<double>() == std::vector<double>{0, 0});
}

TEST_CASE("SGD momentum state round-trips and StepLR decays the rate", "[optim]") {
  Tensor p = tg::tensor(std::vector<double>{1.0, 2.0}, {2}).requires_grad_();
  tg::optim::SGD opt({p}, {.lr = 0.1, .momentum = 0.9});
  (p * p).sum().backward();
  opt.step();
  tg::nn::NamedTensors state = opt.state_dict();
  REQUIRE(state.size() == 8);  // the buffer, six options and the group's parameter indices
  CHECK(state[0].first == "state.0.momentum_buffer");
  CHECK(state[0].second.to_vector<double>() == std::vector<double>{2.0, 4.0});
  CHECK(state[1].first == "param_groups.0.lr");
  CHECK(state[1].second.item<double>() == 0.1);
  CHECK(state[7].first == "param_groups.0.params");
  CHECK(state[7].second.to_vector<std::int64_t>() == std::vector<std::int64_t>{0});
  tg::optim::SGD fresh({p}, {.lr = 0.1, .momentum = 0.9});
  fresh.load_state_dict(state);
  CHECK(fresh.state(0)[0].second.to_vector<double>() == std::vector<double>{2.0, 4.0});
  CHECK_FALSE(fresh.state(0)[0].second.is_same(state[0].second));  // a copy
  tg::nn::NamedTensors wrong = state;
  wrong[0].second = tg::zeros({3}, tg::kFloat64);
  CHECK_THROWS_WITH(fresh.load_state_dict(wrong), Contains("[SGD]") && Contains("[3]"));
  wrong = state;
  wrong.emplace_back("bogus", tg::zeros({2}, tg::kFloat64));
  CHECK_THROWS_WITH(fresh.load_state_dict(wrong), Contains("bogus"));
  CHECK(fresh.state(0)[0].second.to_vector<double>() == std::vector<double>{2.0, 4.0});

  tg::optim::StepLR sched(opt, 2, 0.5);
  std::vector<double> lrs;
  for (int e = 0; e < 5; ++e) {
    sched.step();
    lrs.push_back(opt.lr());
  }
  check_close(lrs, {0.1, 0.05, 0.05, 0.025, 0.025});
}

TEST_CASE("optimizer state saves and loads as safetensors", "[optim]") {
  Tensor p = tg::tensor(std::vector<double>{1.0, 2.0}, {2}).requires_grad_();
  tg::optim::SGD opt({p}, {.lr = 0.1, .momentum = 0.9});
  (p * p).sum().backward();
  opt.step();
  std::string path = tg_test::temp_path("sgd.safetensors");
  tg::save(opt, path);
  tg::optim::SGD other({p}, {.lr = 0.1, .momentum = 0.9});
  tg::load(other, path);
  REQUIRE(other.state(0).size() == 1);
  CHECK(other.state(0)[0].second.to_vector<double>() == std::vector<double>{2.0, 4.0});
  Tensor q = tg::zeros({3}, tg::kFloat64).requires_grad_();
  tg::optim::SGD wrong({q}, {.lr = 0.1, .momentum = 0.9});
  CHECK_THROWS_WITH(tg::load(wrong, path), Contains("[SGD]") && Contains("[2]") && Contains("[3]"));
  CHECK(wrong.state(0).empty());
  std::filesystem::remove(path);
}
