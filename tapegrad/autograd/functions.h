// The tensor ops as free functions, under PyTorch's names (torch.cat, torch.where,
// torch.softmax, F.one_hot, ...): those with no Tensor method, and the function spelling of some
// methods. Differentiable where PyTorch's are; defined in autograd/ops_*.cpp. Layer: autograd.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "tapegrad/core/tensor.h"

namespace tg {

// --- joining ------------------------------------------------------------------------------------
// Along an existing dim: equal shapes apart from dim (1-D tensors of shape [0] are skipped, as
// PyTorch's legacy rule); the promoted dtype.
Tensor cat(const std::vector<Tensor>& tensors, std::int64_t dim = 0);
// Along a new dim (in [-(rank + 1), rank]): equal shapes; the promoted dtype.
Tensor stack(const std::vector<Tensor>& tensors, std::int64_t dim = 0);

// --- selecting ----------------------------------------------------------------------------------
// input where condition != 0, else other; condition is an int64 mask (as comparisons give), and
// all three broadcast. A number takes the tensor's dtype (or float32 beside int64).
Tensor where(const Tensor& condition, const Tensor& input, const Tensor& other);
Tensor where(const Tensor& condition, const Tensor& input, Scalar other);
Tensor where(const Tensor& condition, Scalar input, const Tensor& other);
Tensor masked_fill(const Tensor& input, const Tensor& mask, Scalar value);
Tensor index_select(const Tensor& input, std::int64_t dim, const Tensor& index);
Tensor gather(const Tensor& input, std::int64_t dim, const Tensor& index);
Tensor scatter_add(const Tensor& input, std::int64_t dim, const Tensor& index, const Tensor& src);
// int64 labels [*] -> int64 [*, num_classes] of 0 and 1; -1 infers max(labels) + 1. Not
// differentiable (PyTorch's F.one_hot).
Tensor one_hot(const Tensor& labels, std::int64_t num_classes = -1);
ValuesIndices topk(const Tensor& input, std::int64_t k, std::int64_t dim = -1, bool largest = true,
                   bool sorted = true);
ValuesIndices sort(const Tensor& input, std::int64_t dim = -1, bool descending = false);

// --- normalizing --------------------------------------------------------------------------------
Tensor softmax(const Tensor& input, std::int64_t dim, std::optional<DType> dtype = std::nullopt);
Tensor log_softmax(const Tensor& input, std::int64_t dim, std::optional<DType> dtype = std::nullopt);
Tensor logsumexp(const Tensor& input, const Shape& dims, bool keepdim = false);
Tensor clamp(const Tensor& input, std::optional<Scalar> min, std::optional<Scalar> max);
Tensor clamp(const Tensor& input, const std::optional<Tensor>& min, const std::optional<Tensor>& max);
Tensor norm(const Tensor& input, Scalar p = 2, const Shape& dims = {}, bool keepdim = false);

}  // namespace tg
