// embedding: rows of a weight table gathered by index, with the backward that scatters each
// output row's gradient back (adding where an index repeats) as one tape entry; nn::Embedding.
// Layer: layers; must not know optimizers.
#include "tapegrad/layers/embedding.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "tapegrad/autograd/tape.h"
#include "tapegrad/core/native.h"
#include "tapegrad/core/parallel.h"
#include "tapegrad/core/random.h"

namespace tg {

namespace {

// --- kernels: K indices into V rows of D values -----------------------------------------------

// y[k] = weight[index[k]] (a row copy each).
template <class T>
void embedding_forward(T* y, const T* weight, const std::int64_t* index, std::int64_t K, std::int64_t D) {
  parallel_for(0, K, K * D, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t k = lo; k < hi; ++k)
      std::memcpy(y + k * D, weight + index[k] * D, static_cast<std::size_t>(D) * sizeof(T));
  });
}

// y[k] = weight[index[k]]  ⇒  dweight[v] = Σ_{k: index[k] = v} dy[k], except dweight[padding] = 0.
// One thread, in index order: repeated indices add into one row.
template <class T>
void embedding_backward(T* dweight, const T* dy, const std::int64_t* index, std::int64_t padding, std::int64_t K,
                        std::int64_t V, std::int64_t D) {
  std::fill(dweight, dweight + V * D, T(0));
  for (std::int64_t k = 0; k < K; ++k) {
    if (index[k] == padding) continue;
    T* row = dweight + index[k] * D;
    const T* g = dy + k * D;
    for (std::int64_t d = 0; d < D; ++d) row[d] += g[d];
  }
}

// padding_idx wrapped into [0, V), or −1 for none; throws naming `op` when out of range.
std::int64_t wrap_padding(std::optional<std::int64_t> padding_idx, std::int64_t V, const char* op) {
  if (!padding_idx) return -1;
  TG_CHECK(*padding_idx >= -V && *padding_idx < V, "[{}] expected padding_idx in [{}, {}) (num_embeddings {}), got {}",
           op, -V, V, V, *padding_idx);
  return *padding_idx < 0 ? *padding_idx + V : *padding_idx;
}

}  // namespace

// --- the differentiable function ------------------------------------------------------------------

Tensor embedding(const Tensor& indices, const Tensor& weight, std::optional<std::int64_t> padding_idx) {
  TG_CHECK(weight.defined() && weight.dim() == 2, "[embedding] expected weight of shape [num_embeddings, "
           "embedding_dim], got {}", weight.defined() ? weight.sizes() : Shape{});
  TG_CHECK(is_floating(weight.dtype()), "[embedding] expected a floating point weight, got {}",
           dtype_name(weight.dtype()));
  TG_CHECK(indices.defined() && indices.dtype() == kInt64, "[embedding] expected int64 indices, got {}",
           indices.defined() ? dtype_name(indices.dtype()) : "an undefined tensor");
  const std::int64_t V = weight.size(0), D = weight.size(1), K = indices.numel();
  const std::int64_t padding = wrap_padding(padding_idx, V, "embedding");
  Tensor ic = native::contiguous(indices);
  const std::int64_t* index = ic.data_ptr<std::int64_t>();
  for (std::int64_t k = 0; k < K; ++k)
    TG_CHECK(index[k] >= 0 && index[k] < V, "[embedding] index {} is out of range for {} embeddings", index[k], V);
  Tensor wc = native::contiguous(weight);
  Shape out_shape = indices.sizes();
  out_shape.push_back(D);
  Tensor y = Tensor::empty(out_shape, weight.dtype());
  dispatch_floating(weight.dtype(), [&]<class T>() {
    embedding_forward<T>(y.data_ptr<T>(), wc.data_ptr<T>(), index, K, D);
  });
  // The backward reads only the indices: the weight's values may change before it runs.
  return autograd::record(
      "EmbeddingBackward0", y, {indices, weight},
      [ic, padding, K, V, D](const Tensor& g) {
        Tensor dy = native::contiguous(g);
        Tensor dweight = Tensor::empty({V, D}, dy.dtype());
        dispatch_floating(dy.dtype(), [&]<class T>() {
          embedding_backward<T>(dweight.data_ptr<T>(), dy.data_ptr<T>(), ic.data_ptr<std::int64_t>(), padding, K, V,
                                D);
        });
        return std::vector<Tensor>{Tensor(), dweight};
      },
      {indices});
}

// --- the module ---------------------------------------------------------------------------

namespace nn {

Embedding::Embedding(std::int64_t num, std::int64_t dim, std::optional<std::int64_t> padding)
    : num_embeddings(num), embedding_dim(dim) {
  TG_CHECK(num >= 0 && dim >= 0, "[Embedding] expected non-negative num_embeddings and embedding_dim, got {} and {}",
           num, dim);
  const std::int64_t p = wrap_padding(padding, num, "Embedding");
  if (p >= 0) padding_idx = p;
  weight = register_parameter("weight", empty({num, dim}));
  reset_parameters();
}

Embedding::Embedding(const Tensor& embeddings, bool freeze, std::optional<std::int64_t> padding) {
  TG_CHECK(embeddings.defined() && embeddings.dim() == 2 && is_floating(embeddings.dtype()),
           "[Embedding] expected floating point embeddings of shape [num_embeddings, embedding_dim], got {}",
           embeddings.defined() ? embeddings.sizes() : Shape{});
  num_embeddings = embeddings.size(0);
  embedding_dim = embeddings.size(1);
  const std::int64_t p = wrap_padding(padding, num_embeddings, "Embedding");
  if (p >= 0) padding_idx = p;
  weight = register_parameter("weight", embeddings.detach(), !freeze);  // a new handle: the caller's stays as it is
}

Embedding Embedding::from_pretrained(const Tensor& embeddings, bool freeze, std::optional<std::int64_t> padding) {
  return Embedding(embeddings, freeze, padding);
}

void Embedding::reset_parameters() {
  NoGradGuard no_grad;
  normal_(weight);
  if (padding_idx) native::fill_(native::select(weight, 0, *padding_idx), 0);
}

Tensor Embedding::forward(const Tensor& input) { return embedding(input, weight, padding_idx); }

std::string Embedding::extra_repr() const {
  std::string s = fmt::format("{}, {}", num_embeddings, embedding_dim);
  if (padding_idx) s += fmt::format(", padding_idx={}", *padding_idx);
  return s;
}

}  // namespace nn

}  // namespace tg
