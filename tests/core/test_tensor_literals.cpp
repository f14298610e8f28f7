// tg::tensor from vectors and (nested) braced lists, with torch::tensor's dtypes and shapes, and
// Shape's operator<<. Core only (linked without autograd). Tags [core] [errors].
#include <catch2/catch.hpp>

#include <cstdint>
#include <sstream>
#include <vector>

#include "tapegrad/core/tensor.h"

using Catch::Contains;
using tg::Shape;
using tg::Tensor;

TEST_CASE("tg::tensor takes braced lists nested as deep as four", "[core]") {
  Tensor m = tg::tensor({{1, 2}, {3, 4}});
  CHECK(m.dtype() == tg::kInt64);  // ints give int64, as torch::tensor
  CHECK(m.sizes() == Shape{2, 2});
  CHECK(m.to_vector<std::int64_t>() == std::vector<std::int64_t>{1, 2, 3, 4});

  Tensor v = tg::tensor({0.5, -1.25, 3.0});
  CHECK(v.dtype() == tg::kFloat32);  // floating literals give PyTorch's default dtype
  CHECK(v.sizes() == Shape{3});
  CHECK(v.to_vector<double>() == std::vector<double>{0.5, -1.25, 3.0});
  CHECK(tg::tensor({1.5f, 2.5f}).dtype() == tg::kFloat32);

  Tensor d = tg::tensor({{0.1, 0.2, 0.3}}, tg::kFloat64);  // the dtype chosen: no float32 rounding
  CHECK(d.dtype() == tg::kFloat64);
  CHECK(d.sizes() == Shape{1, 3});
  CHECK(d.to_vector<double>() == std::vector<double>{0.1, 0.2, 0.3});
  CHECK(tg::tensor({1, 2}, tg::kFloat32).to_vector<float>() == std::vector<float>{1.0f, 2.0f});

  Tensor c = tg::tensor({{{1, 2}, {3, 4}, {5, 6}}, {{7, 8}, {9, 10}, {11, 12}}});
  CHECK(c.sizes() == Shape{2, 3, 2});
  CHECK(c.to_vector<std::int64_t>()[7] == 8);
  Tensor q = tg::tensor({{{{1.0}, {2.0}}}});
  CHECK(q.sizes() == Shape{1, 1, 2, 1});
  CHECK(q.to_vector<float>() == std::vector<float>{1.0f, 2.0f});
  CHECK(tg::tensor({std::int64_t{1} << 40}).item<std::int64_t>() == std::int64_t{1} << 40);
  CHECK(tg::tensor({7LL, 8LL}).dtype() == tg::kInt64);
}

TEST_CASE("tg::tensor takes vectors of int, widened to int64", "[core]") {
  Tensor t = tg::tensor(std::vector<int>{3, -1, 4, 1, -5, 9}, {2, 3});
  CHECK(t.dtype() == tg::kInt64);
  CHECK(t.sizes() == Shape{2, 3});
  CHECK(t.to_vector<std::int64_t>() == std::vector<std::int64_t>{3, -1, 4, 1, -5, 9});
  CHECK(tg::tensor(std::vector<int>{2, 7}).sizes() == Shape{2});
  // The typed forms keep their element type (the contract's exact float64 values).
  CHECK(tg::tensor(std::vector<double>{0.1}, {1}).dtype() == tg::kFloat64);
  CHECK(tg::tensor(std::vector<float>{0.1f}, {}).dtype() == tg::kFloat32);
}

TEST_CASE("tg::tensor rejects ragged lists and a shape its values do not fill", "[core][errors]") {
  CHECK_THROWS_WITH(tg::tensor({{1, 2}, {3}}), Contains("[tensor] expected sequence of length 2 at dim 1 (got 1)"));
  CHECK_THROWS_WITH(tg::tensor({{{1}, {2}}, {{3}}}), Contains("[tensor] expected sequence of length 2 at dim 1 (got 1)"));
  CHECK_THROWS_WITH(tg::tensor({{{1, 2}, {3}}}), Contains("[tensor] expected sequence of length 2 at dim 2 (got 1)"));
  CHECK_THROWS_WITH(tg::tensor(std::vector<int>{1, 2, 3}, {2, 2}), Contains("[tensor] shape [2, 2] needs 4 values, got 3"));
}

namespace user_code {  // a namespace of the user's, declaring no operator<< of its own
std::string show(const Shape& s) {
  std::ostringstream os;
  os << s;
  return os.str();
}
}  // namespace user_code

TEST_CASE("a Shape prints as the error messages print it", "[core]") {
  std::ostringstream os;
  os << Shape{3, 2} << " " << Shape{} << " " << tg::tensor({{1, 2, 3}}).sizes();
  CHECK(os.str() == "[3, 2] [] [1, 3]");
  CHECK(user_code::show({4}) == "[4]");
}
