// Tests of data::TensorDataset: rows of X and y by index, through a DataLoader, and its errors.
// Tags [data] [errors].
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "tapegrad.h"

using Catch::Contains;
using tg::Shape;
using tg::Tensor;

TEST_CASE("TensorDataset gives the rows of X and y at the indices, as torch's TensorDataset", "[data]") {
  Tensor X = tg::arange(0.0, 12.0).reshape({6, 2});  // row i holds 2i, 2i + 1
  Tensor y = tg::arange(6) * 10;
  tg::data::TensorDataset data(X, y);
  CHECK(data.size() == 6);
  CHECK(data.inputs().is_same(X));
  auto [xb, yb] = data.get_batch({4, 0, 4});
  CHECK(xb.sizes() == Shape{3, 2});
  CHECK(xb.to_vector<double>() == std::vector<double>{8, 9, 0, 1, 8, 9});
  CHECK(yb.dtype() == tg::kInt64);
  CHECK(yb.to_vector<std::int64_t>() == std::vector<std::int64_t>{40, 0, 40});
  CHECK(data.get_batch({}).first.sizes() == Shape{0, 2});

  // through a DataLoader, in order, the last batch partial
  tg::data::DataLoader loader(data, {.batch_size = 4});
  std::vector<std::int64_t> seen;
  std::vector<Shape> shapes;
  for (const auto& [xs, ys] : loader) {
    shapes.push_back(xs.sizes());
    for (std::int64_t v : ys.to_vector<std::int64_t>()) seen.push_back(v);
  }
  CHECK(shapes == std::vector<Shape>{{4, 2}, {2, 2}});
  CHECK(seen == std::vector<std::int64_t>{0, 10, 20, 30, 40, 50});

  // image-shaped inputs keep their trailing dims; batches are copies, outside the tape
  Tensor images = tg::randn({5, 1, 3, 3}).requires_grad_();
  tg::data::TensorDataset pictures(images, tg::zeros({5}));
  Tensor first = pictures.get_batch({2}).first;
  CHECK(first.sizes() == Shape{1, 1, 3, 3});
  CHECK(first.to_vector<double>() == images.select(0, 2).to_vector<double>());
  CHECK_FALSE(first.requires_grad());
}

TEST_CASE("TensorDataset rejects mismatched tensors and bad indices", "[data][errors]") {
  CHECK_THROWS_WITH(tg::data::TensorDataset(tg::zeros({4, 2}), tg::zeros({3})),
                    "[TensorDataset] size mismatch between tensors: expected as many targets as inputs (dim 0), got "
                    "shapes [4, 2] and [3]");
  CHECK_THROWS_WITH(tg::data::TensorDataset(tg::scalar_tensor(1.0), tg::zeros({1})),
                    Contains("[TensorDataset]") && Contains("first (sample) dim") && Contains("[]"));
  CHECK_THROWS_WITH(tg::data::TensorDataset(Tensor(), tg::zeros({1})), Contains("[TensorDataset]"));
  tg::data::TensorDataset data(tg::zeros({3, 2}), tg::zeros({3}));
  CHECK_THROWS_WITH(data.get_batch({0, 3}), "[TensorDataset] expected sample indices in [0, 3), got 3");
  CHECK_THROWS_WITH(data.get_batch({-1}), Contains("got -1"));
}
