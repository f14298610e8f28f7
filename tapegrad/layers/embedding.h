// Embedding: a lookup table of num_embeddings rows of embedding_dim values; the embedding
// function (one tape entry whose backward adds each output row's gradient into its weight row)
// and nn::Embedding with PyTorch's initialization (N(0, 1), the padding row zero). Layer: layers.
#pragma once

#include <optional>

#include "tapegrad/layers/module.h"

namespace tg {

// indices int64 of any shape, each in [0, V); weight [V, D] -> [*indices.shape, D], row k the
// weight row indices[k]. The row padding_idx gets no gradient. grad_fn EmbeddingBackward0.
Tensor embedding(const Tensor& indices, const Tensor& weight, std::optional<std::int64_t> padding_idx = std::nullopt);

}  // namespace tg

namespace tg::nn {

class Embedding : public Module {
 public:
  // padding_idx in [−num_embeddings, num_embeddings) (negative counts from the end); its row
  // starts at zero and is never trained.
  Embedding(std::int64_t num_embeddings, std::int64_t embedding_dim,
            std::optional<std::int64_t> padding_idx = std::nullopt);
  // An Embedding holding `embeddings` [V, D] (shared, not copied); freeze keeps them fixed.
  static Embedding from_pretrained(const Tensor& embeddings, bool freeze = true,
                                   std::optional<std::int64_t> padding_idx = std::nullopt);
  Tensor forward(const Tensor& input) override;
  void reset_parameters();  // N(0, 1), then the padding row zeroed
  std::string name() const override { return "Embedding"; }
  std::shared_ptr<Module> clone() const override {
    return clone_as(*this, [](Embedding& m, const Rebind& r) { r(m.weight); });
  }
  std::string extra_repr() const override;

  std::int64_t num_embeddings, embedding_dim;
  std::optional<std::int64_t> padding_idx;  // wrapped into [0, num_embeddings)
  Tensor weight;                            // [num_embeddings, embedding_dim]

 private:
  Embedding(const Tensor& embeddings, bool freeze, std::optional<std::int64_t> padding_idx);
};

}  // namespace tg::nn
