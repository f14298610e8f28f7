// Views share storage and have the strides PyTorch gives; writes through a view reach the base;
// reshape copies only when it must. Tag [core].
#include <catch2/catch.hpp>

#include "tapegrad/core/native.h"
#include "tapegrad.h"

using tg::Shape;
using tg::Tensor;

namespace {
Tensor grid(std::int64_t n, Shape shape) { return tg::arange(n).to(tg::kFloat32).reshape(shape); }
std::vector<double> vals(const Tensor& t) { return t.to_vector<double>(); }
}  // namespace

TEST_CASE("views share storage and compute strides like PyTorch", "[core]") {
  Tensor a = grid(24, {2, 3, 4});
  CHECK(a.strides() == Shape({12, 4, 1}));

  SECTION("transpose and permute") {
    Tensor t = a.transpose(0, 2);
    CHECK(t.sizes() == Shape({4, 3, 2}));
    CHECK(t.strides() == Shape({1, 4, 12}));
    CHECK(t.shares_storage(a));
    CHECK(vals(t.select(0, 1).select(0, 2)) == std::vector<double>{9, 21});
    Tensor p = a.permute({2, 0, 1});
    CHECK(p.sizes() == Shape({4, 2, 3}));
    CHECK(p.strides() == Shape({1, 12, 4}));
    CHECK(a.permute({-1, 0, 1}).strides() == p.strides());
  }
  SECTION("slice with steps, negative bounds, clamping") {
    Tensor s = a.slice(2, 1, 4, 2);
    CHECK(s.sizes() == Shape({2, 3, 2}));
    CHECK(s.strides() == Shape({12, 4, 2}));
    CHECK(s.storage_offset() == 1);
    CHECK(vals(s.select(0, 1).select(0, 2)) == std::vector<double>{21, 23});
    CHECK(a.slice(1, -2, 100).sizes() == Shape({2, 2, 4}));
    CHECK(a.slice(1, 2, 1).sizes() == Shape({2, 0, 4}));
  }
  SECTION("select, unsqueeze, squeeze, expand, flatten") {
    Tensor r = a.select(1, -1);
    CHECK(r.sizes() == Shape({2, 4}));
    CHECK(r.storage_offset() == 8);
    CHECK(a.unsqueeze(-1).sizes() == Shape({2, 3, 4, 1}));
    CHECK(a.unsqueeze(1).strides() == Shape({12, 12, 4, 1}));
    CHECK(tg::zeros({1, 3, 1}).squeeze().sizes() == Shape({3}));
    CHECK(tg::zeros({1, 3, 1}).squeeze(2).sizes() == Shape({1, 3}));
    CHECK(tg::zeros({1, 3, 1}).squeeze(1).sizes() == Shape({1, 3, 1}));
    Tensor e = tg::ones({3, 1}).expand({2, 3, 4});
    CHECK(e.strides() == Shape({0, 1, 0}));
    CHECK(tg::ones({3, 1}).expand({-1, 5}).sizes() == Shape({3, 5}));
    CHECK(a.flatten().sizes() == Shape({24}));
    CHECK(a.flatten(0, 1).sizes() == Shape({6, 4}));
    CHECK(a.flatten(1).shares_storage(a));
  }
  SECTION("writes through views reach the base") {
    a.transpose(0, 2).select(0, 3).fill_(-1);
    CHECK(a.select(2, 3).sum().item<float>() == -6.0f);
    a.slice(1, 0, 3, 2).mul_(0.0);
    CHECK(vals(a.select(0, 0).select(0, 0)) == std::vector<double>{0, 0, 0, 0});
    CHECK(vals(a.select(0, 0).select(0, 1)) == std::vector<double>{4, 5, 6, -1});
  }
  SECTION("view needs compatible strides, reshape copies only when it must") {
    Tensor v = a.view({6, -1});
    CHECK(v.sizes() == Shape({6, 4}));
    CHECK(v.shares_storage(a));
    Tensor t = a.transpose(1, 2);  // [2, 4, 3]
    CHECK(t.reshape({2, 12}).shares_storage(a) == false);
    CHECK(a.select(2, 0).reshape({6}).shares_storage(a));  // strides [12, 4] chain
    CHECK(a.select(1, 0).reshape({8}).shares_storage(a) == false);
    CHECK(a.slice(0, 0, 1).reshape({3, 4}).shares_storage(a));
    CHECK(vals(t.reshape({24})).at(1) == 4);
  }
}

TEST_CASE("view on incompatible strides throws", "[core][errors]") {
  Tensor t = grid(24, {2, 3, 4}).transpose(1, 2);
  CHECK_THROWS_WITH(t.view({2, 12}), Catch::Contains("[view]") && Catch::Contains("[2, 12]"));
  CHECK_THROWS_AS(t.view({2, 12}), tg::Error);
}

TEST_CASE("contiguous, clone, to and index_select copy", "[core]") {
  Tensor a = grid(6, {2, 3});
  CHECK(a.contiguous().is_same(a));
  Tensor t = a.t();
  Tensor c = t.contiguous();
  CHECK(c.is_contiguous());
  CHECK(!c.shares_storage(a));
  CHECK(vals(c) == std::vector<double>{0, 3, 1, 4, 2, 5});
  Tensor k = a.clone();
  k.fill_(7);
  CHECK(a.sum().item<float>() == 15.0f);
  Tensor d = a.to(tg::kFloat64);
  CHECK(d.dtype() == tg::kFloat64);
  CHECK(a.to(tg::kFloat32).is_same(a));
  CHECK(tg::tensor(std::vector<float>{1.7f, -1.7f}, {2}).to(tg::kInt64).to_vector<std::int64_t>() ==
        std::vector<std::int64_t>{1, -1});
  Tensor idx = tg::tensor(std::vector<std::int64_t>{2, 0, 2}, {3});
  CHECK(vals(a.index_select(1, idx)) == std::vector<double>{2, 0, 2, 5, 3, 5});
  CHECK_THROWS_WITH(a.index_select(1, tg::tensor(std::vector<std::int64_t>{-1}, {1})),  // PyTorch takes no -1 here
                    Catch::Contains("[index_select]") && Catch::Contains("-1"));
  CHECK_THROWS_WITH(a.index_select(1, tg::tensor(std::vector<std::int64_t>{3}, {1})),
                    Catch::Contains("[index_select]") && Catch::Contains("3"));
  CHECK_THROWS_WITH(a.index_select(0, tg::ones({1})), Catch::Contains("int64"));
}

TEST_CASE("non-contiguous inputs to every elementwise op", "[core]") {
  Tensor base = grid(12, {3, 4}) / 4.0 + 0.25;
  Tensor t = base.t();            // strides [1, 4]
  Tensor c = t.contiguous();
  auto same = [](const Tensor& x, const Tensor& y) { return x.to_vector<double>() == y.to_vector<double>(); };
  CHECK(same(t.exp(), c.exp()));
  CHECK(same(t.log(), c.log()));
  CHECK(same(t.sqrt(), c.sqrt()));
  CHECK(same(t.sigmoid(), c.sigmoid()));
  CHECK(same(t.tanh(), c.tanh()));
  CHECK(same((-t).abs(), c.abs()));
  CHECK(same((t - 1.0).relu(), (c - 1.0).relu()));
  CHECK(same(t.pow(3.0), c.pow(3.0)));
  CHECK(same(t * t.slice(0, 0, 4), c * c));
  CHECK(same(t / base.slice(0, 0, 1).t(), c / base.slice(0, 0, 1).t().contiguous()));
  CHECK(same(t.sum({0}), c.sum({0})));
  CHECK(same(t.var({1}), c.var({1})));
  CHECK(same(t.max({0}), c.max({0})));
  CHECK(same(t.argmax(1), c.argmax(1)));
  CHECK(same(tg::matmul(t, base), tg::matmul(c, base)));
}
