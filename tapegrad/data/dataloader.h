// tg::data::DataLoader: batches of a Dataset in order, shuffled, or in a Sampler's order, one
// epoch per loop over it.
// Layer: data; may use core, knows nothing of models or apps.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "tapegrad/data/dataset.h"
#include "tapegrad/data/sampler.h"

namespace tg::data {

struct DataLoaderOptions {
  std::int64_t batch_size = 1;
  bool shuffle = false;
  bool drop_last = false;  // false keeps the last, smaller batch
};

// Each begin() starts an epoch (each `for (auto& [X, y] : loader)` calls it once). With shuffle,
// begin() draws the epoch's order from tg::randperm(size), on the calling thread, from the global
// generator: tg::manual_seed makes the order reproducible and tg::get_rng_state checkpoints it.
// With a sampler, begin() takes the epoch's order from sampler.indices() instead (the caller
// moves the sampler to the next epoch, e.g. DistributedSampler::set_epoch, before the loop).
// The loader keeps references to the dataset and the sampler, which must outlive it and its
// iterators.
class DataLoader {
 public:
  using Batch = std::pair<Tensor, Tensor>;

  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    using pointer = const Batch*;
    using reference = const Batch&;

    Iterator() = default;
    // The batch is assembled on first access and kept until the iterator moves on.
    const Batch& operator*() const;
    const Batch* operator->() const { return &**this; }
    Iterator& operator++();
    bool operator==(const Iterator& other) const { return batch_ == other.batch_; }

   private:
    friend class DataLoader;
    Iterator(const DataLoader* loader, std::shared_ptr<const std::vector<std::int64_t>> order, std::int64_t batch)
        : loader_(loader), order_(std::move(order)), batch_(batch) {}

    const DataLoader* loader_ = nullptr;
    std::shared_ptr<const std::vector<std::int64_t>> order_;  // null: 0, 1, 2, ...
    std::int64_t batch_ = 0;
    mutable std::optional<Batch> current_;
  };

  // Throws for batch_size < 1, and for shuffle with a sampler (the sampler decides the order).
  explicit DataLoader(const Dataset& dataset, DataLoaderOptions options = {});
  DataLoader(const Dataset& dataset, const Sampler& sampler, DataLoaderOptions options = {});
  DataLoader(const Dataset&& dataset, DataLoaderOptions options = {}) = delete;  // would dangle
  DataLoader(const Dataset& dataset, const Sampler&& sampler, DataLoaderOptions options = {}) = delete;

  Iterator begin() const;
  Iterator end() const;
  std::int64_t num_batches() const;
  const Dataset& dataset() const { return dataset_; }
  const DataLoaderOptions& options() const { return options_; }

 private:
  std::int64_t num_samples() const;  // per epoch: the sampler's size, else the dataset's

  const Dataset& dataset_;
  const Sampler* sampler_ = nullptr;
  DataLoaderOptions options_;
};

}  // namespace tg::data
