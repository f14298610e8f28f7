// tg::data::DataLoader. Batches are assembled on the calling thread: a shuffled epoch of
// Fashion-MNIST in batches of 256 takes ~35 ms in all (0.15 ms a batch), well under 1% of a
// training epoch, too little for a prefetch thread to pay. Layer: data; knows nothing of models.
#include "tapegrad/data/dataloader.h"

#include <algorithm>

#include "tapegrad/core/random.h"

namespace tg::data {

DataLoader::DataLoader(const Dataset& dataset, DataLoaderOptions options) : dataset_(dataset), options_(options) {
  TG_CHECK(options_.batch_size >= 1, "[DataLoader] expected batch_size >= 1, got {}", options_.batch_size);
}

DataLoader::DataLoader(const Dataset& dataset, const Sampler& sampler, DataLoaderOptions options)
    : DataLoader(dataset, options) {
  TG_CHECK(!options_.shuffle, "[DataLoader] expected shuffle=false with a sampler (the sampler decides the order), "
           "got shuffle=true");
  sampler_ = &sampler;
}

std::int64_t DataLoader::num_samples() const { return sampler_ ? sampler_->size() : dataset_.size(); }

std::int64_t DataLoader::num_batches() const {
  const std::int64_t n = num_samples(), b = options_.batch_size;
  return n / b + (!options_.drop_last && n % b != 0);  // not (n + b - 1) / b: overflows for b near INT64_MAX
}

DataLoader::Iterator DataLoader::begin() const {
  std::shared_ptr<const std::vector<std::int64_t>> order;
  if (sampler_) {
    std::vector<std::int64_t> indices = sampler_->indices();
    TG_CHECK(static_cast<std::int64_t>(indices.size()) == sampler_->size(),
             "[DataLoader] expected the sampler's {} indices (its size()), got {}", sampler_->size(), indices.size());
    order = std::make_shared<const std::vector<std::int64_t>>(std::move(indices));
  } else if (options_.shuffle) {
    order = std::make_shared<const std::vector<std::int64_t>>(randperm(dataset_.size()).to_vector<std::int64_t>());
  }
  return Iterator(this, std::move(order), 0);
}

DataLoader::Iterator DataLoader::end() const { return Iterator(this, nullptr, num_batches()); }

const DataLoader::Batch& DataLoader::Iterator::operator*() const {
  if (!current_) {
    const std::int64_t b = loader_->options_.batch_size;
    const std::int64_t start = batch_ * b;
    const std::int64_t stop = start + std::min(b, loader_->num_samples() - start);
    std::vector<std::int64_t> indices(static_cast<std::size_t>(stop - start));
    for (std::int64_t i = start; i < stop; ++i)
      indices[static_cast<std::size_t>(i - start)] = order_ ? (*order_)[static_cast<std::size_t>(i)] : i;
    current_ = loader_->dataset_.get_batch(indices);
  }
  return *current_;
}

DataLoader::Iterator& DataLoader::Iterator::operator++() {
  ++batch_;
  current_.reset();
  return *this;
}

}  // namespace tg::data
