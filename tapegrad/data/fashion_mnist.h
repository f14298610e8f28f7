// MNIST and FashionMNIST: one split of the IDX files, held as uint8 in memory and converted to
// float32 in [0, 1] one batch at a time, as torchvision's ToTensor does. Layer: data; may use
// core, knows nothing of models or apps.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tapegrad/data/dataset.h"

namespace tg::data {

// Where Debian's package dataset-fashion-mnist installs the files.
inline constexpr const char* kFashionMNISTRoot = "/usr/share/datasets/fashion-mnist";
inline constexpr const char* kMNISTRoot = "/usr/share/datasets/mnist";

class MNIST : public Dataset {
 public:
  // Loads <root>/train-images-idx3-ubyte and train-labels-idx1-ubyte (t10k-* when train is
  // false), each plain or with .gz appended. Throws tg::Error naming the path and what to do
  // when a file is missing, damaged, when the two files disagree on the sample count, or when a
  // label is outside [0, 9].
  explicit MNIST(const std::string& root = kMNISTRoot, bool train = true);

  std::int64_t size() const override { return count_; }
  std::int64_t height() const { return height_; }
  std::int64_t width() const { return width_; }
  // {images float32 [B, 1, H, W] with values k/255, labels int64 [B]}.
  std::pair<Tensor, Tensor> get_batch(const std::vector<std::int64_t>& indices) const override;

  // The ten class names, by label.
  const std::vector<std::string>& text_labels() const { return classes_; }
  // The class name of each label of an int64 tensor (as d2l's get_fashion_mnist_labels).
  std::vector<std::string> text_labels(const Tensor& labels) const;

 protected:
  struct Info {
    const char* name;    // opens every error message: "[FashionMNIST] ..."
    const char* remedy;  // what to do when the files are missing
    std::vector<std::string> classes;
  };
  MNIST(const std::string& root, bool train, Info info);

 private:
  std::string name_;
  std::vector<std::string> classes_;
  std::int64_t count_ = 0, height_ = 0, width_ = 0;
  std::vector<std::uint8_t> images_;  // [N, H, W]
  std::vector<std::uint8_t> labels_;  // [N]
};

class FashionMNIST : public MNIST {
 public:
  // As MNIST; the class names are d2l's: t-shirt, trouser, ..., ankle boot.
  explicit FashionMNIST(const std::string& root = kFashionMNISTRoot, bool train = true);
};

}  // namespace tg::data
