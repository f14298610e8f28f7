// The differentiable softmax family: softmax, log_softmax and logsumexp, on core's fused kernels
// (core/softmax.cpp). softmax and log_softmax save only their output, from which the backward
// kernel derives the gradient. Layer: autograd.
#include "tapegrad/autograd/functions.h"
#include "tapegrad/autograd/op_helpers.h"
#include "tapegrad/autograd/tape.h"
#include "tapegrad/core/native.h"

namespace tg {

using autograd::record;
using autograd::detail::Grads;
using autograd::detail::unsqueeze_reduced;

namespace {

Tensor softmax_op(const Tensor& input, std::int64_t dim, std::optional<DType> dtype, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  TG_CHECK(!dtype || is_floating(*dtype), "[{}] expected a floating point dtype, got {}", op, dtype_name(*dtype));
  Tensor x = dtype ? input.to(*dtype) : input;  // differentiable: the gradient returns in input's dtype
  Tensor y = native::softmax(x, dim, log);
  return record(log ? "LogSoftmaxBackward0" : "SoftmaxBackward0", y, {x},
                [y_saved = native::alias(y), dim, log](const Tensor& g) {
                  return Grads{native::softmax_backward(g, y_saved, dim, log)};
                }, {y});
}

}  // namespace

Tensor Tensor::softmax(std::int64_t dim, std::optional<DType> dtype) const { return softmax_op(*this, dim, dtype, false); }
Tensor Tensor::log_softmax(std::int64_t dim, std::optional<DType> dtype) const {
  return softmax_op(*this, dim, dtype, true);
}
Tensor softmax(const Tensor& input, std::int64_t dim, std::optional<DType> dtype) {
  return softmax_op(input, dim, dtype, false);
}
Tensor log_softmax(const Tensor& input, std::int64_t dim, std::optional<DType> dtype) {
  return softmax_op(input, dim, dtype, true);
}

// y = log Σ exp(x) over dims:  dx = g · exp(x − y), y broadcast back over the reduced dims.
Tensor Tensor::logsumexp(const Shape& dims, bool keepdim) const {
  Tensor x = *this;
  Tensor out = native::logsumexp(x, dims, keepdim);
  return record("LogsumexpBackward0", out, {x}, [x, dims, keepdim, y = native::alias(out)](const Tensor& g) {
    Tensor yk = unsqueeze_reduced(y, x.sizes(), dims, keepdim), gk = unsqueeze_reduced(g, x.sizes(), dims, keepdim);
    return Grads{gk * (x - yk).exp()};
  }, {x, out});
}

Tensor logsumexp(const Tensor& input, const Shape& dims, bool keepdim) { return input.logsumexp(dims, keepdim); }

}  // namespace tg
