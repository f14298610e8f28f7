// tg::Shape, the small vector of sizes and strides: up to Shape::kInline elements inside the object,
// longer ones on the heap, std::vector's behaviour for what shapes do, and conversions both ways.
// Tag [core].
#include <catch2/catch.hpp>

#include <cstdint>
#include <sstream>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "tapegrad/core/shape.h"
#include "tapegrad/core/tensor.h"

namespace {

using tg::Shape;
using Vec = std::vector<std::int64_t>;

// Whether the elements live inside the object itself: no heap block.
bool inline_storage(const Shape& s) {
  const auto* first = reinterpret_cast<const char*>(&s);
  const auto* data = reinterpret_cast<const char*>(s.data());
  return data >= first && data < first + sizeof(Shape);
}

Vec vec(const Shape& s) { return Vec(s.begin(), s.end()); }

}  // namespace

TEST_CASE("Shape keeps up to kInline elements in itself and grows onto the heap past them", "[core]") {
  Shape s;
  CHECK(s.empty());
  CHECK(inline_storage(s));
  for (std::int64_t i = 0; i < static_cast<std::int64_t>(Shape::kInline); ++i) s.push_back(i + 1);
  CHECK(inline_storage(s));
  CHECK(s.capacity() == Shape::kInline);
  s.push_back(7);
  CHECK_FALSE(inline_storage(s));
  CHECK(vec(s) == Vec{1, 2, 3, 4, 5, 6, 7});
  s.pop_back();
  s.pop_back();
  CHECK(vec(s) == Vec{1, 2, 3, 4, 5});

  // A tensor's sizes and strides are inline for every rank up to kInline.
  tg::Tensor t = tg::Tensor::empty({2, 3, 4, 5, 6, 7});
  CHECK(inline_storage(t.sizes()));
  CHECK(inline_storage(t.strides()));
  CHECK(vec(t.strides()) == Vec{2520, 840, 210, 42, 7, 1});
}

TEST_CASE("Shape constructs, copies and moves as std::vector does", "[core]") {
  CHECK(vec(Shape{3}) == Vec{3});          // a braced list is the elements
  CHECK(vec(Shape(3)) == Vec{0, 0, 0});    // a count is that many zeros
  CHECK(vec(Shape(2, -1)) == Vec{-1, -1});
  const Vec v{4, 5, 6, 7, 8, 9, 10, 11};
  CHECK(vec(Shape(v.begin() + 1, v.begin() + 3)) == Vec{5, 6});

  for (const Vec& elements : {Vec{1, 2}, v}) {  // inline and on the heap
    INFO(elements.size());
    Shape a(elements);
    Shape copy = a;
    CHECK(copy == a);
    copy[0] = 99;
    CHECK(a[0] == elements[0]);  // a copy owns its elements
    Shape moved = std::move(a);
    CHECK(vec(moved) == elements);
    CHECK(a.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty and usable
    a.push_back(1);
    CHECK(vec(a) == Vec{1});
    Shape assigned{9};
    assigned = moved;
    CHECK(vec(assigned) == elements);
    Shape small{1}, large(v);
    small.swap(large);
    CHECK(vec(small) == v);
    CHECK(vec(large) == Vec{1});
    Shape& self = assigned;
    assigned = self;
    CHECK(vec(assigned) == elements);
  }
}

TEST_CASE("Shape inserts, erases, resizes and compares as std::vector does", "[core]") {
  Shape s{1, 2, 3};
  s.insert(s.begin() + 1, 7);
  CHECK(vec(s) == Vec{1, 7, 2, 3});
  s.insert(s.end(), {8, 9, 10, 11});  // past kInline
  CHECK(vec(s) == Vec{1, 7, 2, 3, 8, 9, 10, 11});
  s.insert(s.begin(), s.begin() + 6, s.end());  // a range of its own, moved by the insert
  CHECK(vec(s) == Vec{10, 11, 1, 7, 2, 3, 8, 9, 10, 11});
  s.erase(s.begin(), s.begin() + 2);
  s.erase(s.begin() + 1);
  CHECK(vec(s) == Vec{1, 2, 3, 8, 9, 10, 11});
  s.resize(2);
  s.resize(4, 5);
  CHECK(vec(s) == Vec{1, 2, 5, 5});
  s.assign(3, 0);
  CHECK(vec(s) == Vec{0, 0, 0});
  s.clear();
  CHECK(s.empty());

  CHECK(Shape{1, 2} == Shape{1, 2});
  CHECK(Shape{1, 2} != Shape{1, 2, 0});
  CHECK(Shape{1, 2} < Shape{1, 3});
  CHECK(Shape{} < Shape{0});
  CHECK(vec(Shape(Vec{2, 3})) == Vec{2, 3});
  const Vec back = Shape{4, 5};  // converts to std::vector
  CHECK(back == Vec{4, 5});
}

TEST_CASE("Shape prints as the error messages print shapes", "[core]") {
  std::ostringstream os;
  os << Shape{3, 2};
  CHECK(os.str() == "[3, 2]");
  CHECK(fmt::format("{}", Shape{}) == "[]");
  CHECK(fmt::format("{}", Shape{1, 2, 3, 4, 5, 6, 7}) == "[1, 2, 3, 4, 5, 6, 7]");
}
