// Shape and stride arithmetic as free functions: contiguous strides, element counts, dimension
// wrapping, broadcasting. All sizes and strides are in elements. Layer: core.
#pragma once

#include <algorithm>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <iterator>
#include <string_view>
#include <vector>

namespace tg {

// A tensor's sizes or strides: a vector of int64 that keeps up to kInline elements in itself and
// only longer ones on the heap (c10's SmallVector<int64_t, 5> for the same reason). Every tensor
// holds two, and every op builds a few more: as std::vector they were half of a LeNet-BN training
// step's 1,300 mallocs. It has std::vector's interface for what shapes need, and converts to and
// from std::vector<std::int64_t> implicitly.
class Shape {
 public:
  static constexpr std::size_t kInline = 6;

  using value_type = std::int64_t;
  using size_type = std::size_t;
  using difference_type = std::ptrdiff_t;
  using reference = std::int64_t&;
  using const_reference = const std::int64_t&;
  using pointer = std::int64_t*;
  using const_pointer = const std::int64_t*;
  using iterator = std::int64_t*;
  using const_iterator = const std::int64_t*;
  using reverse_iterator = std::reverse_iterator<iterator>;
  using const_reverse_iterator = std::reverse_iterator<const_iterator>;

  Shape() = default;
  explicit Shape(size_type n) { assign(n, 0); }
  Shape(size_type n, std::int64_t value) { assign(n, value); }
  Shape(std::initializer_list<std::int64_t> values) { assign(values.begin(), values.end()); }
  template <std::input_iterator It>
  Shape(It first, It last) {
    assign(first, last);
  }
  Shape(const std::vector<std::int64_t>& values) { assign(values.begin(), values.end()); }
  Shape(const Shape& other) { assign(other.begin(), other.end()); }
  Shape(Shape&& other) noexcept { take(other); }
  Shape& operator=(const Shape& other) {
    if (this != &other) assign(other.begin(), other.end());
    return *this;
  }
  Shape& operator=(Shape&& other) noexcept {
    if (this != &other) {
      release();
      take(other);
    }
    return *this;
  }
  Shape& operator=(std::initializer_list<std::int64_t> values) {
    assign(values.begin(), values.end());
    return *this;
  }
  ~Shape() { release(); }

  operator std::vector<std::int64_t>() const { return {begin(), end()}; }

  size_type size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_type capacity() const { return capacity_; }
  std::int64_t* data() { return data_; }
  const std::int64_t* data() const { return data_; }
  iterator begin() { return data_; }
  iterator end() { return data_ + size_; }
  const_iterator begin() const { return data_; }
  const_iterator end() const { return data_ + size_; }
  const_iterator cbegin() const { return begin(); }
  const_iterator cend() const { return end(); }
  reverse_iterator rbegin() { return reverse_iterator(end()); }
  reverse_iterator rend() { return reverse_iterator(begin()); }
  const_reverse_iterator rbegin() const { return const_reverse_iterator(end()); }
  const_reverse_iterator rend() const { return const_reverse_iterator(begin()); }
  std::int64_t& operator[](size_type i) { return data_[i]; }
  const std::int64_t& operator[](size_type i) const { return data_[i]; }
  std::int64_t& front() { return data_[0]; }
  const std::int64_t& front() const { return data_[0]; }
  std::int64_t& back() { return data_[size_ - 1]; }
  const std::int64_t& back() const { return data_[size_ - 1]; }

  void reserve(size_type n) {
    if (n > capacity_) grow_to(n);
  }
  void clear() { size_ = 0; }
  void resize(size_type n, std::int64_t value = 0) {
    if (n > capacity_) grow_to(std::max(n, 2 * capacity_));
    if (n > size_) std::fill(data_ + size_, data_ + n, value);
    size_ = n;
  }
  void assign(size_type n, std::int64_t value) {
    clear();
    resize(n, value);
  }
  template <std::input_iterator It>
  void assign(It first, It last) {
    clear();
    if constexpr (std::forward_iterator<It>) reserve(static_cast<size_type>(std::distance(first, last)));
    for (; first != last; ++first) push_back(*first);
  }
  void assign(std::initializer_list<std::int64_t> values) { assign(values.begin(), values.end()); }
  void push_back(std::int64_t value) {
    if (size_ == capacity_) grow_to(2 * capacity_);
    data_[size_++] = value;
  }
  std::int64_t& emplace_back(std::int64_t value) {
    push_back(value);
    return back();
  }
  void pop_back() { --size_; }
  iterator insert(const_iterator pos, std::int64_t value) { return insert(pos, size_type{1}, value); }
  iterator insert(const_iterator pos, size_type n, std::int64_t value) {
    const auto at = static_cast<size_type>(pos - data_);
    open_gap(at, n);
    std::fill(data_ + at, data_ + at + n, value);
    return data_ + at;
  }
  template <std::forward_iterator It>
  iterator insert(const_iterator pos, It first, It last) {
    const auto at = static_cast<size_type>(pos - data_);
    const auto n = static_cast<size_type>(std::distance(first, last));
    if (n == 0) return data_ + at;
    const Shape copy(first, last);  // the range may lie inside this shape, which open_gap moves
    open_gap(at, n);
    std::copy(copy.begin(), copy.end(), data_ + at);
    return data_ + at;
  }
  iterator insert(const_iterator pos, std::initializer_list<std::int64_t> values) {
    return insert(pos, values.begin(), values.end());
  }
  iterator erase(const_iterator pos) { return erase(pos, pos + 1); }
  iterator erase(const_iterator first, const_iterator last) {
    const auto at = static_cast<size_type>(first - data_), n = static_cast<size_type>(last - first);
    std::copy(data_ + at + n, data_ + size_, data_ + at);
    size_ -= n;
    return data_ + at;
  }
  void swap(Shape& other) noexcept {
    Shape t(std::move(other));
    other = std::move(*this);
    *this = std::move(t);
  }

  friend bool operator==(const Shape& a, const Shape& b) { return std::equal(a.begin(), a.end(), b.begin(), b.end()); }
  friend std::strong_ordering operator<=>(const Shape& a, const Shape& b) {
    return std::lexicographical_compare_three_way(a.begin(), a.end(), b.begin(), b.end());
  }
  // Prints as the error messages do: [3, 2].
  friend std::ostream& operator<<(std::ostream& os, const Shape& shape);

 private:
  bool on_heap() const { return data_ != inline_; }
  void release() {
    if (on_heap()) delete[] data_;
    data_ = inline_;
    size_ = 0;
    capacity_ = kInline;
  }
  // Moves other's elements here (this holds nothing) and leaves other empty.
  void take(Shape& other) {
    if (other.on_heap()) {
      data_ = other.data_;
      capacity_ = other.capacity_;
      other.data_ = other.inline_;
      other.capacity_ = kInline;
    } else {
      std::copy(other.begin(), other.end(), inline_);
    }
    size_ = other.size_;
    other.size_ = 0;
  }
  void grow_to(size_type n) {
    n = std::max(n, kInline);
    auto* bigger = new std::int64_t[n];
    std::copy(begin(), end(), bigger);
    if (on_heap()) delete[] data_;
    data_ = bigger;
    capacity_ = n;
  }
  // Makes room for n elements at position at, moving the ones after it up.
  void open_gap(size_type at, size_type n) {
    if (size_ + n > capacity_) grow_to(std::max(size_ + n, 2 * capacity_));  // geometric, as push_back
    std::copy_backward(data_ + at, data_ + size_, data_ + size_ + n);
    size_ += n;
  }

  std::int64_t* data_ = inline_;
  size_type size_ = 0, capacity_ = kInline;
  std::int64_t inline_[kInline];
};

// Row-major strides of a contiguous tensor of this shape.
Shape contiguous_strides(const Shape& sizes);
std::int64_t numel_of(const Shape& sizes);
bool is_contiguous_layout(const Shape& sizes, const Shape& strides);

// Maps a possibly negative dim into [0, rank); throws naming `op` when out of range.
// `rank` may be 0, where PyTorch accepts dims -1 and 0 (the scalar's implicit dim).
std::int64_t wrap_dim(std::int64_t dim, std::int64_t rank, std::string_view op);

// NumPy's rule: align on the right; sizes agree, or one of them is 1. Throws naming `op` and
// both shapes when they do not broadcast.
Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op);
bool broadcastable(const Shape& a, const Shape& b);

// Strides that read a tensor of (sizes, strides) as if it had shape `target` (which it
// broadcasts to): 0 along every dimension that is added or of size 1.
Shape broadcast_strides(const Shape& sizes, const Shape& strides, const Shape& target);

// Strides for viewing (sizes, strides) as `target` without copying, or an empty optional-like
// result (returns false) when the memory layout does not allow it.
bool view_strides(const Shape& sizes, const Shape& strides, const Shape& target, Shape& out);

// A tensor of `sizes` seen as [outer, n, inner] around `dim` (n = sizes[dim], which must be in
// range; a 0-dim tensor is [1, 1, 1]): the layout of every kernel that works along one dim.
struct DimSplit {
  std::int64_t outer = 1, n = 1, inner = 1;
};
DimSplit split_at_dim(const Shape& sizes, std::int64_t dim);

// Resolves a single -1 in a requested shape against the input's shape (its element count); throws
// naming `op` and both shapes.
Shape infer_shape(const Shape& requested, const Shape& input, std::string_view op);

}  // namespace tg
