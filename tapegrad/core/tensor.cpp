// The Tensor handle's own methods (queries, element access) and the factories. Layer: core.
#include "tapegrad/core/tensor.h"

#include <cmath>
#include <cstring>

#include "tapegrad/core/loop.h"
#include "tapegrad/core/native.h"

namespace tg {

namespace {

// A new contiguous tensor; a bad shape throws naming the factory `op` the user called.
Tensor allocate(const Shape& sizes, DType dtype, std::string_view op) {
  for (std::int64_t s : sizes) TG_CHECK(s >= 0, "[{}] expected non-negative sizes, got {}", op, sizes);
  const std::int64_t numel = numel_of(sizes), item = static_cast<std::int64_t>(itemsize(dtype));
  TG_CHECK(numel <= static_cast<std::int64_t>(kMaxStorageBytes) / item,
           "[{}] shape {} of {} needs {} elements of {} bytes, more than a storage can hold ({} bytes)", op, sizes,
           dtype_name(dtype), numel, item, kMaxStorageBytes);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(static_cast<std::size_t>(numel * item));
  impl->sizes = sizes;
  impl->strides = contiguous_strides(sizes);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

}  // namespace

Tensor Tensor::empty(const Shape& sizes, DType dtype) { return allocate(sizes, dtype, "empty"); }

Tensor Tensor::make_view(std::shared_ptr<Storage> storage, Shape sizes, Shape strides, std::int64_t offset,
                         DType dtype) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->sizes = std::move(sizes);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

const TensorImpl& Tensor::checked() const {
  TG_CHECK(impl_ != nullptr, "[Tensor] the tensor is undefined (default-constructed)");
  return *impl_;
}

std::int64_t Tensor::size(std::int64_t d) const {
  TG_CHECK(dim() > 0, "[size] a 0-dim tensor has no dimension {}", d);
  return sizes()[wrap_dim(d, dim(), "size")];
}

std::int64_t Tensor::stride(std::int64_t d) const {
  TG_CHECK(dim() > 0, "[stride] a 0-dim tensor has no dimension {}", d);
  return strides()[wrap_dim(d, dim(), "stride")];
}

bool Tensor::shares_storage(const Tensor& other) const {
  return defined() && other.defined() && impl_->storage == other.impl_->storage;
}

bool Tensor::requires_grad() const {
  const AutogradMetaInterface* meta = checked().autograd.get();
  return meta && meta->requires_grad();
}

std::string Tensor::grad_fn_name() const {
  const AutogradMetaInterface* meta = checked().autograd.get();
  return meta ? meta->grad_fn_name() : std::string();
}

void* Tensor::raw_data() const {
  const TensorImpl& i = checked();
  return static_cast<char*>(i.storage->data()) + i.offset * static_cast<std::int64_t>(itemsize(i.dtype));
}

namespace detail {

void gather_elements(const Tensor& t, void* out, DType to) {
  if (t.numel() == 0) return;
  Tensor src = t.dtype() == to ? t : native::to(t, to);
  Tensor c = native::contiguous(src);
  std::memcpy(out, c.raw_data(), static_cast<std::size_t>(c.numel()) * itemsize(to));
}

}  // namespace detail

// --- factories --------------------------------------------------------------------------------

Tensor empty(const Shape& sizes, DType dtype) { return Tensor::empty(sizes, dtype); }

Tensor full(const Shape& sizes, Scalar value, DType dtype) {
  // throws for a value the dtype cannot hold (NaN into int64, 300 into uint8), before allocating
  dispatch(dtype, [&]<class T>() { (void)value.to<T>("full"); });
  Tensor t = allocate(sizes, dtype, "full");
  native::fill_(t, value);
  return t;
}

Tensor zeros(const Shape& sizes, DType dtype) {
  Tensor t = allocate(sizes, dtype, "zeros");
  std::memset(t.raw_data(), 0, static_cast<std::size_t>(t.numel()) * itemsize(dtype));
  return t;
}

Tensor ones(const Shape& sizes, DType dtype) {
  Tensor t = allocate(sizes, dtype, "ones");
  native::fill_(t, 1);
  return t;
}
Tensor zeros_like(const Tensor& t) { return zeros(t.sizes(), t.dtype()); }
Tensor ones_like(const Tensor& t) { return ones(t.sizes(), t.dtype()); }
Tensor empty_like(const Tensor& t) { return empty(t.sizes(), t.dtype()); }
Tensor full_like(const Tensor& t, Scalar value) { return full(t.sizes(), value, t.dtype()); }

Tensor arange(Scalar end) { return arange(0, end, 1); }

Tensor arange(Scalar start, Scalar end, Scalar step) {
  bool integral = start.is_integral() && end.is_integral() && step.is_integral();
  return arange(start, end, step, integral ? kInt64 : kFloat32);
}

Tensor arange(Scalar start, Scalar end, Scalar step, DType dtype) {
  double s = start.to_double(), e = end.to_double(), st = step.to_double();
  TG_CHECK(st != 0, "[arange] step must be nonzero");
  TG_CHECK(std::isfinite(s) && std::isfinite(e), "[arange] unsupported range: {} -> {}", s, e);
  TG_CHECK((st > 0 && e >= s) || (st < 0 && e <= s),
           "[arange] upper bound and larger bound inconsistent with step sign (start {}, end {}, step {})", s, e, st);
  const double count = std::ceil((e - s) / st);
  TG_CHECK(count < 0x1p63, "[arange] the range {} -> {} in steps of {} has more elements than an int64 counts", s, e,
           st);
  const std::int64_t n = static_cast<std::int64_t>(count);
  // An integer dtype counts from start by step, both truncated toward zero (as PyTorch's), and
  // wraps around (arange(250, 260) in uint8 passes 255 to 0).
  const bool integral = is_integral(dtype);
  const std::int64_t a = integral ? start.to_int("arange") : 0, b = integral ? step.to_int("arange") : 0;
  TG_CHECK(!integral || b != 0, "[arange] step must be nonzero ({} is 0 in {})", st, dtype_name(dtype));
  Tensor t = Tensor::empty({n}, dtype);
  dispatch(dtype, [&]<class T>() {
    T* p = t.data_ptr<T>();
    if constexpr (std::is_integral_v<T>) {  // in uint64: a rounded bound must not overflow
      for (std::int64_t i = 0; i < n; ++i)
        p[i] = static_cast<T>(static_cast<std::uint64_t>(a) + static_cast<std::uint64_t>(i) * static_cast<std::uint64_t>(b));
    } else {
      for (std::int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(s + static_cast<double>(i) * st);
    }
  });
  return t;
}

namespace detail {

Tensor tensor_from_values(const void* values, std::size_t count, DType values_dtype, const Shape& sizes, DType dtype) {
  for (std::int64_t s : sizes) TG_CHECK(s >= 0, "[tensor] expected non-negative sizes, got {}", sizes);
  TG_CHECK(numel_of(sizes) == static_cast<std::int64_t>(count), "[tensor] shape {} needs {} values, got {}", sizes,
           numel_of(sizes), count);
  if (dtype == kUInt8 && values_dtype != kUInt8) {  // each value checked as fill_ checks it: 300 is refused
    dispatch(values_dtype, [&]<class S>() {
      for (std::size_t i = 0; i < count; ++i) (void)Scalar(static_cast<const S*>(values)[i]).to<std::uint8_t>("tensor");
    });
  }
  Tensor t = Tensor::empty(sizes, values_dtype);
  if (count > 0) std::memcpy(t.raw_data(), values, count * itemsize(values_dtype));
  return native::to(t, dtype);
}

void check_list_length(std::int64_t expected, std::int64_t got, std::size_t depth) {
  TG_CHECK(got == expected, "[tensor] expected sequence of length {} at dim {} (got {})", expected, depth, got);
}

}  // namespace detail

Tensor scalar_tensor(Scalar value, DType dtype) { return full({}, value, dtype); }

}  // namespace tg
