// Tests of embeddings: embedding and nn::Embedding against PyTorch 1.13 (module_refs.inc) in
// float32 and float64 with the weight's gradient (repeated indices add, padding_idx gets none),
// PyTorch's initialization for a seed, from_pretrained, printing, a float64 gradcheck table, and
// every bad input. Tags [layers] [gradcheck] [errors].
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "tapegrad.h"

#include "module_refs.inc"
#include "ref_helpers.h"

TEST_CASE("embedding matches PyTorch, with the weight's gradient", "[layers]") {
  const tg::DType dtype = GENERATE(tg::kFloat32, tg::kFloat64);
  for (const module_refs::EmbeddingRef& r : module_refs::kEmbedding) {
    INFO(r.name << " in " << tg::dtype_name(dtype));
    Tensor weight = ref::make(r.weight, {r.num, r.dim}, dtype, true);
    Tensor index = tg::tensor(r.index).reshape(r.index_shape);
    Tensor y = tg::embedding(index, weight, r.padding_idx);
    CHECK(y.grad_fn_name() == "EmbeddingBackward0");
    Shape out = r.index_shape;
    out.push_back(r.dim);
    ref::check_ref(y, out, r.y, dtype);
    y.backward(ref::make(r.w, out, dtype));
    ref::check_ref(weight.grad(), {r.num, r.dim}, r.dweight, dtype);
  }
}

TEST_CASE("nn::Embedding starts from PyTorch's numbers for a seed and prints like PyTorch", "[layers]") {
  for (const module_refs::EmbeddingInitRef& r : module_refs::kEmbeddingInit) {
    INFO("seed " << r.seed);
    tg::manual_seed(r.seed);
    nn::Embedding e(r.num, r.dim, r.padding_idx);
    ref::check_ref(e.weight, {r.num, r.dim}, r.weight, tg::kFloat32);
    CHECK(e.weight.requires_grad());
  }
  CHECK(nn::Embedding(10, 3).to_string() == "Embedding(10, 3)");
  CHECK(nn::Embedding(10, 3, -1).to_string() == "Embedding(10, 3, padding_idx=9)");  // wrapped, as PyTorch
  for (const module_refs::ReprRef& r : module_refs::kRepr)
    if (std::string(r.expr) == "nn.Embedding(5, 3, padding_idx=0)")
      CHECK(nn::Embedding(5, 3, 0).to_string() == r.text);

  Tensor table = tg::tensor(std::vector<float>{1, 2, 3, 4, 5, 6}, {3, 2});
  nn::Embedding frozen = nn::Embedding::from_pretrained(table);
  CHECK(frozen.num_embeddings == 3);
  CHECK(frozen.embedding_dim == 2);
  CHECK_FALSE(frozen.weight.requires_grad());
  CHECK(frozen.weight.shares_storage(table));
  Tensor out = frozen(tg::tensor(std::vector<std::int64_t>{2, 0, 2}));
  CHECK(out.to_vector<double>() == std::vector<double>{5, 6, 1, 2, 5, 6});
  CHECK_FALSE(out.requires_grad());
  nn::Embedding trained = nn::Embedding::from_pretrained(table, false, 1);
  CHECK(trained.weight.requires_grad());
  trained(tg::tensor(std::vector<std::int64_t>{1, 0, 0})).sum().backward();
  CHECK(trained.weight.grad().to_vector<double>() == std::vector<double>{2, 2, 0, 0, 0, 0});
  CHECK_FALSE(table.requires_grad());  // the caller's tensor is left as it was
}

TEST_CASE("embedding gradchecks in float64", "[layers][gradcheck]") {
  using ref::Inputs;
  // The row padding_idx names gets no gradient by design, which central differences contradict:
  // the padding row checks that the others are unaffected.
  const Tensor index = tg::tensor(std::vector<std::int64_t>{3, 0, 3, 1, 4, 0}).reshape({2, 3});
  ref::check_gradcheck_rows({
      {"[2, 3] indices", [&](const Inputs& in) { return tg::embedding(index, in[0]); }, {{5, 4}},
       "EmbeddingBackward0"},
      {"padding_idx 2 (no index hits it)", [&](const Inputs& in) { return tg::embedding(index, in[0], 2); }, {{5, 4}},
       "EmbeddingBackward0"},
      {"0-dim index", [](const Inputs& in) { return tg::embedding(tg::scalar_tensor(2, tg::kInt64), in[0]); },
       {{3, 2}}, "EmbeddingBackward0"},
  });
}

TEST_CASE("embedding rejects bad input with the op's name", "[layers][errors]") {
  Tensor weight = tg::randn({5, 3});
  auto idx = [](std::vector<std::int64_t> v) { return tg::tensor(v); };
  CHECK_THROWS_WITH(tg::embedding(idx({1, 5}), weight), "[embedding] index 5 is out of range for 5 embeddings");
  CHECK_THROWS_WITH(tg::embedding(idx({-1}), weight), Contains("[embedding] index -1 is out of range"));
  CHECK_THROWS_WITH(tg::embedding(tg::ones({2}), weight), "[embedding] expected int64 indices, got float32");
  CHECK_THROWS_WITH(tg::embedding(idx({0}), tg::randn({5})),
                    "[embedding] expected weight of shape [num_embeddings, embedding_dim], got [5]");
  CHECK_THROWS_WITH(tg::embedding(idx({0}), weight, 5),
                    "[embedding] expected padding_idx in [-5, 5) (num_embeddings 5), got 5");
  CHECK_THROWS_WITH(nn::Embedding(4, 2, -5), Contains("[Embedding]") && Contains("got -5"));
  CHECK_THROWS_WITH(nn::Embedding(-1, 2), Contains("[Embedding]") && Contains("-1"));
  CHECK_THROWS_WITH(nn::Embedding::from_pretrained(tg::ones({3}, tg::kInt64)), Contains("[Embedding]"));
}
