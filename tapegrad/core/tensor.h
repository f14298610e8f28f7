// tg::Tensor: a cheap shared handle to (storage, sizes, strides, offset, dtype), all in elements.
// Copying a Tensor shares everything, including its autograd state; clone() copies the data.
// Layer: core. The tensor carries a slot for autograd state that core sees only through
// AutogradMetaInterface (as c10's AutogradMetaInterface): core builds, links and is tested without
// autograd. The math and view methods declared here are the differentiable ops; they are defined
// in autograd/ops.cpp on top of the raw kernels of core/native.h.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tapegrad/core/dtype.h"
#include "tapegrad/core/error.h"
#include "tapegrad/core/removable_handle.h"
#include "tapegrad/core/scalar.h"
#include "tapegrad/core/shape.h"
#include "tapegrad/core/storage.h"

namespace tg {

// What core may ask of a tensor's autograd state; autograd/meta.h implements it.
struct AutogradMetaInterface {
  virtual ~AutogradMetaInterface() = default;
  virtual bool requires_grad() const = 0;
  virtual std::string grad_fn_name() const = 0;  // "" for leaves
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape sizes;
  Shape strides;
  std::int64_t offset = 0;
  DType dtype = kFloat32;
  std::shared_ptr<AutogradMetaInterface> autograd;  // null until autograd touches the tensor
};

struct ValuesIndices;

class Tensor {
 public:
  Tensor() = default;  // undefined: defined() is false
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // A fresh, uninitialized, contiguous tensor.
  static Tensor empty(const Shape& sizes, DType dtype = kFloat32);
  // A view of `storage` (shares it).
  static Tensor make_view(std::shared_ptr<Storage> storage, Shape sizes, Shape strides, std::int64_t offset,
                          DType dtype);

  // --- queries ------------------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& sizes() const { return checked().sizes; }
  const Shape& strides() const { return checked().strides; }
  std::int64_t storage_offset() const { return checked().offset; }
  std::int64_t size(std::int64_t dim) const;  // negative dims count from the end
  std::int64_t stride(std::int64_t dim) const;
  std::int64_t dim() const { return static_cast<std::int64_t>(checked().sizes.size()); }
  std::int64_t numel() const { return numel_of(checked().sizes); }
  DType dtype() const { return checked().dtype; }
  bool is_contiguous() const { return is_contiguous_layout(checked().sizes, checked().strides); }
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }
  // Whether the two share one storage (a view of the other, or both views of a third).
  bool shares_storage(const Tensor& other) const;

  // Pointer to the first element; throws when T is not the tensor's element type.
  template <class T>
  T* data_ptr() const;
  void* raw_data() const;  // pointer to the first element, any dtype

  // The single element, converted to T; throws naming `item` unless numel() == 1.
  template <class T>
  T item() const;
  // All elements in logical row-major order (any strides), converted to T.
  template <class T>
  std::vector<T> to_vector() const;

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  const std::shared_ptr<Storage>& storage() const { return checked().storage; }

  // --- views: share storage, no copy ------------------------------------------------------
  Tensor view(const Shape& sizes) const;     // throws when strides do not allow it; one -1 allowed
  Tensor reshape(const Shape& sizes) const;  // a view when possible, else a copy
  Tensor transpose(std::int64_t dim0, std::int64_t dim1) const;
  Tensor t() const;  // transpose of a 2-D tensor
  Tensor permute(const Shape& dims) const;
  Tensor slice(std::int64_t dim, std::int64_t start, std::int64_t end, std::int64_t step = 1) const;
  Tensor select(std::int64_t dim, std::int64_t index) const;
  Tensor unsqueeze(std::int64_t dim) const;
  Tensor squeeze() const;  // every dimension of size 1
  Tensor squeeze(std::int64_t dim) const;
  Tensor expand(const Shape& sizes) const;  // -1 keeps a size; new dims are added in front
  Tensor expand_as(const Tensor& other) const { return expand(other.sizes()); }
  Tensor flatten(std::int64_t start_dim = 0, std::int64_t end_dim = -1) const;

  // --- copies -------------------------------------------------------------------------------
  Tensor contiguous() const;  // *this when already contiguous
  Tensor clone() const;
  Tensor to(DType dtype) const;  // *this when already of that dtype

  // --- indexing (int64 indices, each in [0, size); int64 0/1 masks stand in for bool) -------
  // index 0-dim or 1-dim: the slices index[j] along dim.
  Tensor index_select(std::int64_t dim, const Tensor& index) const;
  // index has this tensor's rank: out[i][j] = self[index[i][j]][j] for dim 0 (out has index's shape).
  Tensor gather(std::int64_t dim, const Tensor& index) const;
  // A copy with src added where index points (the adjoint of gather): for dim 0,
  // out[index[i][j]][j] += src[i][j]. src has this tensor's dtype.
  Tensor scatter_add(std::int64_t dim, const Tensor& index, const Tensor& src) const;
  // value where mask != 0, else self; mask and self broadcast together. value: a number, or a 0-dim
  // tensor (differentiable).
  Tensor masked_fill(const Tensor& mask, Scalar value) const;
  Tensor masked_fill(const Tensor& mask, const Tensor& value) const;
  // where(condition, *this, other), broadcasting all three.
  Tensor where(const Tensor& condition, const Tensor& other) const;
  Tensor where(const Tensor& condition, Scalar other) const;
  // The k largest (or smallest) along dim, sorted; NaN counts as the largest. Ties go to the lower
  // index. Gradients flow to the values.
  ValuesIndices topk(std::int64_t k, std::int64_t dim = -1, bool largest = true, bool sorted = true) const;
  // Along dim; NaN sorts last ascending, first descending. Stable: ties keep their order.
  ValuesIndices sort(std::int64_t dim = -1, bool descending = false) const;

  // --- elementwise math (broadcasting; results are new tensors) ------------------------------
  Tensor add(const Tensor& other) const;
  Tensor sub(const Tensor& other) const;
  Tensor mul(const Tensor& other) const;
  Tensor div(const Tensor& other) const;
  Tensor add(Scalar other) const;
  Tensor sub(Scalar other) const;
  Tensor mul(Scalar other) const;
  Tensor div(Scalar other) const;
  Tensor rsub(Scalar other) const;  // other - *this
  Tensor rdiv(Scalar other) const;  // other / *this
  Tensor pow(Scalar exponent) const;
  Tensor pow(const Tensor& exponent) const;
  Tensor neg() const;
  Tensor exp() const;
  Tensor log() const;
  Tensor sqrt() const;
  Tensor abs() const;
  Tensor sigmoid() const;
  Tensor tanh() const;
  Tensor relu() const;
  // min(max(self, min), max); either bound may be absent (std::nullopt), not both. When
  // min > max every element becomes max, as PyTorch.
  Tensor clamp(std::optional<Scalar> min, std::optional<Scalar> max) const;
  // The same with tensor bounds, broadcasting; differentiable in self and both bounds.
  Tensor clamp(const std::optional<Tensor>& min, const std::optional<Tensor>& max) const;
  Tensor maximum(const Tensor& other) const;
  Tensor minimum(const Tensor& other) const;

  // Comparisons give int64 tensors of 0 and 1 (sum() counts the matches).
  Tensor eq(const Tensor& other) const;
  Tensor ne(const Tensor& other) const;
  Tensor lt(const Tensor& other) const;
  Tensor le(const Tensor& other) const;
  Tensor gt(const Tensor& other) const;
  Tensor ge(const Tensor& other) const;
  Tensor eq(Scalar other) const;
  Tensor ne(Scalar other) const;
  Tensor lt(Scalar other) const;
  Tensor le(Scalar other) const;
  Tensor gt(Scalar other) const;
  Tensor ge(Scalar other) const;

  // --- reductions (negative dims allowed; an empty dims list means every dim) ---------------
  // sum of int64 stays int64; mean and var need a floating tensor.
  Tensor sum() const;
  Tensor sum(const Shape& dims, bool keepdim = false) const;
  Tensor mean() const;
  Tensor mean(const Shape& dims, bool keepdim = false) const;
  Tensor var() const;  // unbiased, over all elements
  Tensor var(const Shape& dims, bool unbiased = true, bool keepdim = false) const;
  Tensor std() const;
  Tensor std(const Shape& dims, bool unbiased = true, bool keepdim = false) const;
  Tensor min() const;
  Tensor max() const;
  Tensor min(const Shape& dims, bool keepdim = false) const;  // values only (PyTorch's amin)
  Tensor max(const Shape& dims, bool keepdim = false) const;  // values only (PyTorch's amax)
  Tensor argmax() const;                                      // index into the flattened tensor
  Tensor argmax(std::int64_t dim, bool keepdim = false) const;
  Tensor argmin() const;
  Tensor argmin(std::int64_t dim, bool keepdim = false) const;
  // log Σ exp over dims, stable for any magnitude; an int64 tensor gives float32.
  Tensor logsumexp(const Shape& dims, bool keepdim = false) const;
  // The vector p-norm over dims (all when empty): (Σ |x|^p)^(1/p); p = 0 counts nonzeros,
  // p = ±inf is the max / min of |x|. Floating tensors only.
  Tensor norm(Scalar p = 2) const;
  Tensor norm(Scalar p, const Shape& dims, bool keepdim = false) const;

  // softmax / log_softmax along dim, fused and shifted by each line's max (no overflow); dtype
  // converts the input first (the only way to take an int64 tensor).
  Tensor softmax(std::int64_t dim, std::optional<DType> dtype = std::nullopt) const;
  Tensor log_softmax(std::int64_t dim, std::optional<DType> dtype = std::nullopt) const;

  Tensor matmul(const Tensor& other) const;

  // --- in place: write through views, bump the storage's version ----------------------------
  Tensor& fill_(Scalar value);
  Tensor& zero_();
  Tensor& mul_(Scalar value);
  Tensor& mul_(const Tensor& other);
  Tensor& add_(const Tensor& other, Scalar alpha = 1);  // *this += alpha * other
  Tensor& add_(Scalar value);
  Tensor& sub_(const Tensor& other);
  Tensor& div_(Scalar value);
  Tensor& copy_(const Tensor& src);  // src broadcasts to *this; dtype converts

  // --- autograd (requires_grad and grad_fn_name in core, the rest in autograd/) ---------------
  bool requires_grad() const;
  Tensor requires_grad_(bool flag = true);  // only on leaves; returns *this
  Tensor grad() const;                          // undefined until a backward reaches the leaf
  void set_grad(const Tensor& grad);            // replace (or, undefined, clear) .grad
  // As torch.Tensor.backward: an undefined `gradient` means ones (the tensor must then hold one
  // element). retain_graph keeps the entries' saved state for another backward through them.
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false) const;
  Tensor detach() const;  // shares storage, cut from the tape
  bool is_leaf() const;
  std::string grad_fn_name() const;  // "" for leaves and tensors outside the tape

  // As torch.Tensor.register_hook: fn(grad) runs once this tensor's gradient in a backward is
  // complete, hooks in registration order, each seeing the previous one's result. fn may return
  // a replacement of the same shape and dtype, which flows on (an undefined Tensor, or a void fn,
  // keeps the gradient). On a leaf the hooks run before the gradient is accumulated into .grad.
  // The tensor must require grad.
  using GradientHook = std::function<Tensor(const Tensor& grad)>;
  template <class F>
    requires std::is_invocable_v<F&, const Tensor&>
  RemovableHandle register_hook(F&& fn);
  // As torch.Tensor.register_post_accumulate_grad_hook (PyTorch 2.1): fn(leaf) runs once per
  // backward, after the leaf's whole gradient of that backward has been added into .grad (the
  // moment a data-parallel wrapper can reduce it). Leaves that require grad only.
  using PostAccumulateGradHook = std::function<void(const Tensor& leaf)>;
  RemovableHandle register_post_accumulate_grad_hook(PostAccumulateGradHook fn);

 private:
  const TensorImpl& checked() const;
  RemovableHandle register_gradient_hook(GradientHook fn);
  std::shared_ptr<TensorImpl> impl_;
};

// What topk and sort return, as PyTorch's named tuples: `auto [values, indices] = x.topk(2);`.
struct ValuesIndices {
  Tensor values;
  Tensor indices;  // int64, positions along the op's dim
};

// --- operators (broadcasting; scalars on either side) ---------------------------------------
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, Scalar b);
Tensor operator-(const Tensor& a, Scalar b);
Tensor operator*(const Tensor& a, Scalar b);
Tensor operator/(const Tensor& a, Scalar b);
Tensor operator+(Scalar a, const Tensor& b);
Tensor operator-(Scalar a, const Tensor& b);
Tensor operator*(Scalar a, const Tensor& b);
Tensor operator/(Scalar a, const Tensor& b);
Tensor operator-(const Tensor& a);

Tensor matmul(const Tensor& a, const Tensor& b);

// --- factories --------------------------------------------------------------------------------
Tensor empty(const Shape& sizes, DType dtype = kFloat32);
Tensor zeros(const Shape& sizes, DType dtype = kFloat32);
Tensor ones(const Shape& sizes, DType dtype = kFloat32);
Tensor full(const Shape& sizes, Scalar value, DType dtype = kFloat32);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor empty_like(const Tensor& t);
Tensor full_like(const Tensor& t, Scalar value);
// int64 when every argument is an integer, else float32 (as PyTorch).
Tensor arange(Scalar end);
Tensor arange(Scalar start, Scalar end, Scalar step = 1);
Tensor arange(Scalar start, Scalar end, Scalar step, DType dtype);
namespace detail {
// The element types tg::tensor takes: float, double and the signed integers int, long, long long.
template <class T>
inline constexpr bool is_tensor_value = std::is_same_v<T, float> || std::is_same_v<T, double> ||
                                        std::is_same_v<T, int> || std::is_same_v<T, long> ||
                                        std::is_same_v<T, long long>;
// How deep braced lists nest: 1 for std::initializer_list<T>, 2 for a list of lists, ...
template <class T>
inline constexpr std::size_t list_depth = 0;
template <class T>
inline constexpr std::size_t list_depth<std::initializer_list<T>> = 1 + list_depth<T>;

// A tensor of `sizes` and `dtype` from `count` contiguous values of `values_dtype`; throws naming
// `tensor` when the count does not fill the shape.
Tensor tensor_from_values(const void* values, std::size_t count, DType values_dtype, const Shape& sizes, DType dtype);
// Throws naming `tensor` when a sub-list at `depth` has `got` values where the first had `expected`.
void check_list_length(std::int64_t expected, std::int64_t got, std::size_t depth);

// Appends a (nested) list's values to `out` in row-major order, recording each depth's length in
// `sizes` (-1 until seen) from the first sub-list and checking every other sub-list against it.
template <class Out, class V>
void flatten_list(std::initializer_list<V> list, std::size_t depth, Shape& sizes, std::vector<Out>& out) {
  const auto n = static_cast<std::int64_t>(list.size());
  if (sizes[depth] < 0) sizes[depth] = n;
  else check_list_length(sizes[depth], n, depth);
  for (const V& v : list) {
    if constexpr (list_depth<V> > 0) flatten_list(v, depth + 1, sizes, out);
    else out.push_back(static_cast<Out>(v));
  }
}

template <class T, class List>
Tensor tensor_from_list(List values, std::optional<DType> dtype) {
  static_assert(is_tensor_value<T>, "tg::tensor takes float, double, int or int64_t values");
  using Out = std::conditional_t<std::is_floating_point_v<T>, double, std::int64_t>;
  Shape sizes(list_depth<List>, -1);
  std::vector<Out> flat;
  flatten_list(values, 0, sizes, flat);
  for (std::int64_t& s : sizes) s = s < 0 ? 0 : s;  // depths below an empty list: size 0
  // As torch::tensor: integers give int64, floating literals the default dtype (float32).
  DType literal = std::is_floating_point_v<T> ? kFloat32 : kInt64;
  return tensor_from_values(flat.data(), flat.size(), dtype_of<Out>(), sizes, dtype.value_or(literal));
}
}  // namespace detail

// A copy of `values` with the given shape; dtype from T: float32 (float), float64 (double), int64
// (int, int64_t), uint8 (std::uint8_t). Other element types fail to compile.
template <class T>
Tensor tensor(const std::vector<T>& values, const Shape& sizes) {
  static_assert(detail::is_tensor_value<T> || std::is_same_v<T, std::uint8_t>,
                "tg::tensor takes float, double, int or int64_t values (and std::uint8_t in a std::vector)");
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, std::int64_t> && !std::is_same_v<T, std::uint8_t>) {
    std::vector<std::int64_t> wide(values.begin(), values.end());
    return detail::tensor_from_values(wide.data(), wide.size(), kInt64, sizes, kInt64);
  } else {
    return detail::tensor_from_values(values.data(), values.size(), dtype_of<T>(), sizes, dtype_of<T>());
  }
}
template <class T>
Tensor tensor(const std::vector<T>& values) {
  return tensor(values, Shape{static_cast<std::int64_t>(values.size())});
}
// From braced lists, nested up to 4 deep, as torch::tensor: tg::tensor({{1, 2}, {3, 4}}) is an
// int64 [2, 2]; floating values give float32 (PyTorch's default dtype) unless `dtype` is given.
// Throws naming `tensor` when sub-lists at one depth differ in length.
template <class T>
Tensor tensor(std::initializer_list<T> values, std::optional<DType> dtype = std::nullopt) {
  return detail::tensor_from_list<T>(values, dtype);
}
template <class T>
Tensor tensor(std::initializer_list<std::initializer_list<T>> values, std::optional<DType> dtype = std::nullopt) {
  return detail::tensor_from_list<T>(values, dtype);
}
template <class T>
Tensor tensor(std::initializer_list<std::initializer_list<std::initializer_list<T>>> values,
              std::optional<DType> dtype = std::nullopt) {
  return detail::tensor_from_list<T>(values, dtype);
}
template <class T>
Tensor tensor(std::initializer_list<std::initializer_list<std::initializer_list<std::initializer_list<T>>>> values,
              std::optional<DType> dtype = std::nullopt) {
  return detail::tensor_from_list<T>(values, dtype);
}
// A 0-dim tensor.
Tensor scalar_tensor(Scalar value, DType dtype = kFloat32);

// ---------------------------------------------------------------------------------------------
template <class T>
T* Tensor::data_ptr() const {
  TG_CHECK(dtype() == dtype_of<T>(), "[data_ptr] expected a tensor of dtype {}, got {}", dtype_name(dtype_of<T>()),
           dtype_name(dtype()));
  return static_cast<T*>(raw_data());
}

template <class T>
T Tensor::item() const {
  TG_CHECK(numel() == 1, "[item] a Tensor with {} elements (shape {}) cannot be converted to a Scalar", numel(),
           sizes());
  return dispatch(dtype(), [&]<class S>() { return convert_element<T>(*static_cast<const S*>(raw_data())); });
}

template <class F>
  requires std::is_invocable_v<F&, const Tensor&>
RemovableHandle Tensor::register_hook(F&& fn) {
  if constexpr (std::is_void_v<std::invoke_result_t<F&, const Tensor&>>) {
    return register_gradient_hook([f = std::forward<F>(fn)](const Tensor& grad) mutable {
      f(grad);
      return Tensor();
    });
  } else {
    return register_gradient_hook(GradientHook(std::forward<F>(fn)));
  }
}

namespace detail {
// Copies the tensor's elements in row-major logical order into `out`, converting to `to`.
void gather_elements(const Tensor& t, void* out, DType to);
}  // namespace detail

template <class T>
std::vector<T> Tensor::to_vector() const {
  std::vector<T> out(static_cast<std::size_t>(numel()));
  detail::gather_elements(*this, out.data(), dtype_of<T>());
  return out;
}

}  // namespace tg
