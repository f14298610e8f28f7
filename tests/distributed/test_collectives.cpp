// tg::dist's collectives on every dtype, contiguous and strided, against values each rank can
// compute for itself; calls that disagree across ranks throw on every rank and leave the process
// group usable. Runs on any world size. Tags [distributed] [errors].
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "tapegrad/core/native.h"
#include "tapegrad.h"

using Catch::Contains;
using tg::Shape;
using tg::Tensor;
namespace dist = tg::dist;

namespace {

// Rank r's tensor: element i holds (i + 1) · (r + 1), laid out contiguously or as a strided view
// (every other column of a wider tensor, transposed) over the same logical [2, 3] values.
Tensor rank_values(int r, tg::DType dtype, bool strided) {
  Tensor logical = tg::native::to(tg::native::reshape(tg::arange(1, 7), {2, 3}), dtype);
  logical = tg::native::binary(tg::native::BinaryOp::Mul, logical, r + 1);
  if (!strided) return tg::native::clone(logical);
  Tensor wide = tg::zeros({3, 4}, dtype);
  Tensor view = tg::native::transpose(tg::native::slice(wide, 1, 0, 4, 2), 0, 1);  // [2, 3], strides [2, 4]
  tg::native::copy_(view, logical);
  return view;
}

// Element i of the reduction over ranks r = 0..W-1 of (i + 1)(r + 1).
double reduced(dist::ReduceOp op, std::int64_t i, int W) {
  double v = op == dist::ReduceOp::Sum ? 0 : op == dist::ReduceOp::Product ? 1 : (i + 1);
  if (op == dist::ReduceOp::Max) return double(i + 1) * W;
  if (op == dist::ReduceOp::Min) return v;
  for (int r = 0; r < W; ++r) v = op == dist::ReduceOp::Sum ? v + double(i + 1) * (r + 1) : v * double(i + 1) * (r + 1);
  return v;
}

}  // namespace

TEST_CASE("the world: ranks 0..W-1, one each", "[distributed]") {
  const int W = dist::world_size(), r = dist::rank();
  REQUIRE(dist::is_initialized());
  CHECK(W >= 1);
  Tensor ranks = dist::all_gather(tg::full({1}, std::int64_t(r), tg::kInt64));
  std::vector<std::int64_t> want(static_cast<std::size_t>(W));
  for (int i = 0; i < W; ++i) want[static_cast<std::size_t>(i)] = i;
  CHECK(ranks.reshape({-1}).to_vector<std::int64_t>() == want);
  dist::barrier();
  dist::init();  // a second init changes nothing
  CHECK(dist::world_size() == W);
}

TEST_CASE("all_reduce: Sum, Max, Min and Product on float32, float64 and int64, any strides", "[distributed]") {
  const int W = dist::world_size(), r = dist::rank();
  const tg::DType dtype = GENERATE(tg::kFloat32, tg::kFloat64, tg::kInt64);
  const bool strided = GENERATE(false, true);
  const dist::ReduceOp op = GENERATE(dist::ReduceOp::Sum, dist::ReduceOp::Max, dist::ReduceOp::Min,
                                     dist::ReduceOp::Product);
  INFO(tg::dtype_name(dtype) << (strided ? " strided" : " contiguous") << " op " << int(op));
  Tensor t = rank_values(r, dtype, strided);
  const std::uint64_t version = t.storage()->version();
  dist::all_reduce(t, op);
  CHECK(t.sizes() == Shape{2, 3});
  CHECK(t.dtype() == dtype);
  CHECK(t.is_contiguous() == !strided);
  CHECK(t.storage()->version() > version);  // an in-place write, as autograd sees it
  std::vector<double> got = t.to_vector<double>();
  for (std::int64_t i = 0; i < 6; ++i) CHECK(got[static_cast<std::size_t>(i)] == reduced(op, i, W));
}

TEST_CASE("broadcast from every root, and all_gather, on any strides", "[distributed]") {
  const int W = dist::world_size(), r = dist::rank();
  const tg::DType dtype = GENERATE(tg::kFloat32, tg::kFloat64, tg::kInt64);
  const bool strided = GENERATE(false, true);
  for (int root = 0; root < W; ++root) {
    Tensor t = rank_values(r, dtype, strided);
    dist::broadcast(t, root);
    CHECK(t.to_vector<double>() == rank_values(root, dtype, false).to_vector<double>());
  }
  Tensor gathered = dist::all_gather(rank_values(r, dtype, strided));
  REQUIRE(gathered.sizes() == (Shape{W, 2, 3}));
  CHECK(gathered.dtype() == dtype);
  for (int i = 0; i < W; ++i)
    CHECK(gathered.select(0, i).to_vector<double>() == rank_values(i, dtype, false).to_vector<double>());
  Tensor scalar = dist::all_gather(tg::scalar_tensor(double(r), tg::kFloat64));  // 0-dim tensors gather to [W]
  CHECK(scalar.sizes() == Shape{W});
}

TEST_CASE("collectives throw on every rank when the ranks' calls disagree, and keep working", "[distributed][errors]") {
  const int W = dist::world_size(), r = dist::rank();
  Tensor b = tg::ones({2});
  CHECK_THROWS_WITH(dist::broadcast(b, W), Contains("[broadcast]") && Contains("root"));
  CHECK_THROWS_WITH(dist::broadcast(b, -1), Contains("[broadcast] expected a root rank in [0, "));
  CHECK_THROWS_WITH(dist::all_reduce(Tensor()), Contains("[all_reduce] expected a defined tensor"));
  CHECK(b.to_vector<float>() == std::vector<float>{1, 1});  // left as it was
  if (W > 1) {
    // The last rank brings another shape, dtype or operation: every rank throws, naming both calls.
    Tensor shape = tg::ones({r == W - 1 ? 4 : 3});
    CHECK_THROWS_WITH(dist::all_reduce(shape),
                      Contains("[all_reduce] expected every rank to make the same call, got rank 0 calling "
                               "all_reduce(Sum) on a float32 tensor of shape [3] and rank " + std::to_string(W - 1) +
                               " calling all_reduce(Sum) on a float32 tensor of shape [4]"));
    CHECK(shape.to_vector<float>() == std::vector<float>(static_cast<std::size_t>(shape.numel()), 1.0f));
    Tensor dtype = tg::ones({3}, r == W - 1 ? tg::kFloat64 : tg::kFloat32);
    CHECK_THROWS_WITH(dist::all_gather(dtype), Contains("all_gather on a float64 tensor of shape [3]"));
    CHECK_THROWS_WITH(dist::all_reduce(tg::ones({3}), r == W - 1 ? dist::ReduceOp::Max : dist::ReduceOp::Sum),
                      Contains("calling all_reduce(Max)"));
    CHECK_THROWS_WITH(dist::broadcast(tg::ones({3}), r == W - 1 ? 1 : 0), Contains("calling broadcast(root=1)"));
  }
  Tensor after = tg::full({3}, 1.0);
  dist::all_reduce(after);  // nobody was left waiting in a collective
  CHECK(after.to_vector<float>() == std::vector<float>(3, float(W)));
}
