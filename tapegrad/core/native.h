// The raw tensor ops: views, copies, broadcasting elementwise math, reductions, matmul, in-place
// writes. They never record on the tape; the Tensor methods (autograd/ops.cpp) call these and
// record. Every function validates its inputs and throws tg::Error naming the op before it
// allocates or writes anything. Layer: core.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "tapegrad/core/tensor.h"

namespace tg::native {

// --- views ------------------------------------------------------------------------------------
Tensor as_strided(const Tensor& t, Shape sizes, Shape strides, std::int64_t offset);
Tensor view(const Tensor& t, const Shape& sizes);
Tensor reshape(const Tensor& t, const Shape& sizes);
Tensor transpose(const Tensor& t, std::int64_t dim0, std::int64_t dim1);
Tensor permute(const Tensor& t, const Shape& dims);
Tensor slice(const Tensor& t, std::int64_t dim, std::int64_t start, std::int64_t end, std::int64_t step);
Tensor select(const Tensor& t, std::int64_t dim, std::int64_t index);
Tensor unsqueeze(const Tensor& t, std::int64_t dim);
Tensor squeeze(const Tensor& t);
Tensor squeeze(const Tensor& t, std::int64_t dim);
Tensor expand(const Tensor& t, const Shape& sizes);
Tensor alias(const Tensor& t);  // a new handle on the same storage and layout

// --- copies -----------------------------------------------------------------------------------
Tensor contiguous(const Tensor& t);
Tensor clone(const Tensor& t);
Tensor to(const Tensor& t, DType dtype);

// --- indexing (indexing.cpp): int64 indices, checked in range before anything is written -------
// PyTorch's cat: every tensor has the same shape except along dim (1-D tensors of shape [0] are
// skipped, as PyTorch's legacy rule); the result has the promoted dtype.
Tensor cat(const std::vector<Tensor>& tensors, std::int64_t dim);
// index 0-dim or 1-dim; out.select(dim, j) = t.select(dim, index[j]).
Tensor index_select(const Tensor& t, std::int64_t dim, const Tensor& index);
// dst.select(dim, index[j]) += src.select(dim, j) for every j (repeats add); src has dst's shape
// except along dim, where it has index's length. The backward of index_select.
void index_add_(const Tensor& dst, std::int64_t dim, const Tensor& index, const Tensor& src);
// index has t's rank and, apart from dim, sizes <= t's: out[p] = t[p with p[dim] = index[p]].
Tensor gather(const Tensor& t, std::int64_t dim, const Tensor& index);
// dst[p with p[dim] = index[p]] += src[p] for every position p of index; index's sizes are <= src's
// everywhere and <= dst's apart from dim; src has dst's dtype. The backward of gather.
void scatter_add_(const Tensor& dst, std::int64_t dim, const Tensor& index, const Tensor& src);
// int64 [*] -> int64 [*, num_classes] of 0 and 1; num_classes -1 means max(labels) + 1.
Tensor one_hot(const Tensor& labels, std::int64_t num_classes);

// --- sorting (sort.cpp): NaN sorts above every number, as PyTorch ------------------------------
// Along dim, ascending or descending; ties keep their order (always stable).
ValuesIndices sort(const Tensor& t, std::int64_t dim, bool descending);
// The k largest (or smallest) along dim, sorted, ties in index order; 0 <= k <= size(dim).
ValuesIndices topk(const Tensor& t, std::int64_t k, std::int64_t dim, bool largest);

// --- elementwise ------------------------------------------------------------------------------
enum class BinaryOp { Add, Sub, Mul, Div, Pow, Maximum, Minimum, Eq, Ne, Lt, Le, Gt, Ge };
enum class UnaryOp { Neg, Exp, Log, Sqrt, Abs, Sigmoid, Tanh, Relu };

// Result dtype: promote(a, b) (float32 for int64 / int64); int64 for comparisons.
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
Tensor binary(BinaryOp op, const Tensor& a, Scalar b);
Tensor binary(BinaryOp op, Scalar a, const Tensor& b);
Tensor unary(UnaryOp op, const Tensor& t);  // exp, log, sqrt, sigmoid, tanh of int64 give float32
// min(max(t, min), max), either bound optional (not both absent): when min > max every element
// becomes max, as PyTorch. An int64 tensor with a fractional bound gives float32.
Tensor clamp(const Tensor& t, std::optional<Scalar> min, std::optional<Scalar> max);
// The same with tensor bounds (an undefined tensor for no bound), broadcasting all three; the
// result has their promoted dtype.
Tensor clamp(const Tensor& t, const Tensor& min, const Tensor& max);
// out = a + alpha * b (broadcasting), one pass.
Tensor add_scaled(const Tensor& a, const Tensor& b, Scalar alpha);
// Elementwise where(cond != 0, a, b) over a broadcast shape, in the promoted dtype of a and b.
// cond is int64 (the comparisons' 0/1 masks stand in for PyTorch's bool).
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor where(const Tensor& cond, const Tensor& a, Scalar b);  // b takes a's dtype, or float32
Tensor where(const Tensor& cond, Scalar a, const Tensor& b);

// The backward of an activation in one pass, from the saved output y (sigmoid: g·y·(1 − y);
// tanh: g·(1 − y²); relu: g·[y > 0]). grad and y have one shape; the result has y's dtype.
enum class ActivationGrad { Sigmoid, Tanh, Relu };
Tensor activation_backward(ActivationGrad kind, const Tensor& grad, const Tensor& y);
// sigmoid of n contiguous values into o (which may be x), with the kernels of unary(Sigmoid): for
// layers that fuse it into a pass of their own (layers/batchnorm.cpp's batch_norm_act).
void sigmoid_contiguous(float* o, const float* x, std::int64_t n);
void sigmoid_contiguous(double* o, const double* x, std::int64_t n);

// --- reductions -------------------------------------------------------------------------------
// `dims` empty means every dim. Float sums accumulate in double.
Tensor sum(const Tensor& t, const Shape& dims, bool keepdim);
Tensor mean(const Tensor& t, const Shape& dims, bool keepdim);
// Two-pass variance; divides by (count - correction). Errors name `op` (std passes its own name).
Tensor var(const Tensor& t, const Shape& dims, std::int64_t correction, bool keepdim, std::string_view op = "var");
Tensor amax(const Tensor& t, const Shape& dims, bool keepdim);
Tensor amin(const Tensor& t, const Shape& dims, bool keepdim);
Tensor argmax(const Tensor& t, std::optional<std::int64_t> dim, bool keepdim);
Tensor argmin(const Tensor& t, std::optional<std::int64_t> dim, bool keepdim);
// Sums a (broadcast) gradient back to `shape`: the inverse of broadcasting to grad's shape.
Tensor sum_to(const Tensor& grad, const Shape& shape);
// The reduced dims as a sorted list of non-negative dims (all dims when `dims` is empty);
// throws naming `op` on a repeated or out-of-range dim.
Shape reduction_dims(const Shape& dims, std::int64_t rank, std::string_view op);
// Count of elements folded into each output of a reduction over `dims`.
std::int64_t reduction_count(const Shape& sizes, const Shape& dims);

// PyTorch's vector norm over `dims` (all when empty), accumulated in double: p = 0 counts the
// nonzeros, ±inf is the max / min of |t|, otherwise (Σ |t|^p)^(1/p). t is floating.
Tensor norm(const Tensor& t, double p, const Shape& dims, bool keepdim);

// --- softmax family (softmax.cpp): each line along dim is shifted by its max, so no exp overflows
// y = softmax(t) or log_softmax(t) along dim; t is floating.
Tensor softmax(const Tensor& t, std::int64_t dim, bool log);
// dx from dy and the saved output y (same shape and dtype).
Tensor softmax_backward(const Tensor& grad, const Tensor& y, std::int64_t dim, bool log);
// log Σ exp(t) over `dims` (all when empty); an int64 t gives float32. Lines of -inf give -inf.
Tensor logsumexp(const Tensor& t, const Shape& dims, bool keepdim);

// --- linear algebra ---------------------------------------------------------------------------
// PyTorch's matmul: 1-D and 2-D operands, and batched with broadcast batch dims.
Tensor matmul(const Tensor& a, const Tensor& b);

// --- in place (write through views; bump the storage version) ----------------------------------
// Throws naming `op` when two elements of t share one memory location (a dimension of size > 1
// with stride 0, as expand makes): an elementwise write through it would update one element many
// times. PyTorch refuses the same writes; fill_ and zero_ write one value and are allowed.
void check_no_internal_overlap(const Tensor& t, std::string_view op);
void fill_(const Tensor& t, Scalar value);
void copy_(const Tensor& dst, const Tensor& src);  // src broadcasts to dst's shape
// dst = dst op other; other broadcasts to dst's shape; the result must fit dst's dtype.
void binary_(BinaryOp op, const Tensor& dst, const Tensor& other);
void binary_(BinaryOp op, const Tensor& dst, Scalar other);
void add_scaled_(const Tensor& dst, const Tensor& other, Scalar alpha);  // dst += alpha * other

}  // namespace tg::native
