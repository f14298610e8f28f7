// Includes the consumer's own core/ and data/ headers next to tapegrad's, and uses both.
#include "core/tensor.h"
#include "data/dataset.h"

#include <tapegrad.h>
#include <tapegrad/layers/conv2d.h>
#include <tapegrad/core/native.h>

#include <cstdio>

int main() {
  app::Tensor mine{2.5};
  app::Dataset rows;
  // Samples whose input and target are their index.
  tg::Tensor indices = tg::arange(rows.rows * 2);
  tg::data::TensorDataset data(indices.to(tg::kFloat32), indices);
  double total = 0;
  for (const auto& [X, y] : tg::data::DataLoader(data, {.batch_size = 4}))
    total += tg::native::sum(X, {}, false).item<double>();
  tg::Tensor y = tg::conv2d(tg::ones({1, 1, 3, 3}), tg::ones({1, 1, 2, 2}));
  bool ok = total == 15.0 && mine.value == 2.5 && y.sizes() == tg::Shape({1, 1, 2, 2}) &&
            y.sum().item<double>() == 16.0;
  std::printf("consumer: %s (sum of indices %g, conv2d sum %g)\n", ok ? "ok" : "WRONG", total, y.sum().item<double>());
  return ok ? 0 : 1;
}
