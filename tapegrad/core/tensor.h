// tg::Tensor: a cheap shared handle to (storage, sizes, strides, offset, dtype), all in elements.
// Copying a Tensor shares everything, including its autograd state; clone() copies the data.
// Layer: core. The tensor carries a slot for autograd state that core sees only through
// AutogradMetaInterface (as c10's AutogradMetaInterface): core builds, links and is tested without
// autograd. The math and view methods declared here are the differentiable ops; they are defined
// in autograd/ops.cpp on top of the raw kernels of core/native.h.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <type_traits>
#include <string>
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
  Tensor index_select(std::int64_t dim, const Tensor& index) const;

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
  Tensor clamp(Scalar min, Scalar max) const;
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
// A copy of `values` with the given shape; dtype from T (float, double, int64_t).
template <class T>
Tensor tensor(const std::vector<T>& values, const Shape& sizes);
template <class T>
Tensor tensor(const std::vector<T>& values) {
  return tensor(values, Shape{static_cast<std::int64_t>(values.size())});
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
  return dispatch(dtype(), [&]<class S>() { return static_cast<T>(*static_cast<const S*>(raw_data())); });
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
