// MNIST and FashionMNIST: finding the files, checking they agree, and per-batch uint8 → float32
// conversion. Layer: data; may use core, knows nothing of models or apps.
#include "tapegrad/data/fashion_mnist.h"

#include <array>
#include <cmath>
#include <filesystem>
#include <system_error>

#include "tapegrad/core/simd.h"
#include "tapegrad/data/idx.h"

namespace tg::data {

namespace {

// <root>/<stem>, else <root>/<stem>.gz; throws naming the expected path and the remedy.
std::string find_file(const std::string& root, const std::string& stem, const char* name, const char* remedy) {
  namespace fs = std::filesystem;
  std::error_code ec;
  TG_CHECK(!fs::exists(root, ec) || fs::is_directory(root, ec),
           "[{}] '{}' is a file; expected the directory that holds the IDX files ({}-images-idx3-ubyte, ...)", name,
           root, stem.substr(0, stem.find('-')));
  TG_CHECK(fs::is_directory(root, ec), "[{}] cannot find '{}': {}", name, root, remedy);
  const fs::path plain = fs::path(root) / stem;
  if (fs::is_regular_file(plain, ec)) return plain.string();
  const std::string gz = plain.string() + ".gz";
  TG_CHECK(fs::is_regular_file(gz, ec), "[{}] cannot find '{}': {}", name, gz, remedy);
  return gz;
}

// k/255 exactly as float32 division rounds it (what torchvision's ToTensor gives).
const std::array<float, 256>& byte_to_unit() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int k = 0; k < 256; ++k) t[static_cast<std::size_t>(k)] = static_cast<float>(k) / 255.0f;
    return t;
  }();
  return table;
}

// dst[k] = src[k]/255 as float32 division rounds it. With FMA, on vectors: q = v·c with c the float
// nearest 1/255, then one correction, q + (v − q·255)·c, which gives the rounded quotient for every
// byte (the tests check all 256 under each instruction set) with three FMAs and no divide; the
// table's lookups do not vectorize (they took 0.45 ns a pixel, 1.5% of a LeNet-BN step).
void bytes_to_unit(float* dst, const std::uint8_t* src, std::int64_t n) {
  simd::with_isa([&]<simd::Isa I>() TG_SIMD_LAMBDA {
    if constexpr (I == simd::Isa::Portable) {
      const std::array<float, 256>& unit = byte_to_unit();
      for (std::int64_t k = 0; k < n; ++k) dst[k] = unit[src[k]];
    } else {
      constexpr float c = 1.0f / 255.0f;
      for (std::int64_t k = 0; k < n; ++k) {
        const float v = static_cast<float>(src[k]), q = v * c;
        dst[k] = std::fma(std::fma(-q, 255.0f, v), c, q);
      }
    }
  });
}

}  // namespace

MNIST::MNIST(const std::string& root, bool train)
    : MNIST(root, train,
            {"MNIST",
             "download the four MNIST IDX files into it",
             {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}}) {}

FashionMNIST::FashionMNIST(const std::string& root, bool train)
    : MNIST(root, train,
            {"FashionMNIST",
             "install the Debian package dataset-fashion-mnist",
             {"t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"}}) {}

MNIST::MNIST(const std::string& root, bool train, Info info) : name_(info.name), classes_(std::move(info.classes)) {
  const std::string split = train ? "train" : "t10k";
  const std::string images_path = find_file(root, split + "-images-idx3-ubyte", info.name, info.remedy);
  const std::string labels_path = find_file(root, split + "-labels-idx1-ubyte", info.name, info.remedy);
  IdxArray images = read_idx_images(images_path);
  IdxArray labels = read_idx_labels(labels_path);
  TG_CHECK(images.dims[0] == labels.dims[0],
           "[{}] expected as many labels as images, got {} images in '{}' and {} labels in '{}'; one of the files is "
           "damaged: {}",
           name_, images.dims[0], images_path, labels.dims[0], labels_path, info.remedy);
  for (std::size_t i = 0; i < labels.data.size(); ++i)
    TG_CHECK(labels.data[i] < classes_.size(), "[{}] expected labels in [0, {}], got {} at index {} of '{}'; {}", name_,
             classes_.size() - 1, labels.data[i], i, labels_path, info.remedy);
  count_ = images.dims[0];
  height_ = images.dims[1];
  width_ = images.dims[2];
  images_ = std::move(images.data);
  labels_ = std::move(labels.data);
}

std::pair<Tensor, Tensor> MNIST::get_batch(const std::vector<std::int64_t>& indices) const {
  for (std::int64_t i : indices)
    TG_CHECK(i >= 0 && i < count_, "[{}] expected sample indices in [0, {}), got {}", name_, count_, i);
  const auto batch = static_cast<std::int64_t>(indices.size());
  const std::int64_t pixels = height_ * width_;
  Tensor x = Tensor::empty({batch, 1, height_, width_}, kFloat32);
  Tensor y = Tensor::empty({batch}, kInt64);
  float* xp = x.data_ptr<float>();
  std::int64_t* yp = y.data_ptr<std::int64_t>();
  for (std::int64_t b = 0; b < batch; ++b) {
    const std::size_t i = static_cast<std::size_t>(indices[static_cast<std::size_t>(b)]);
    bytes_to_unit(xp + b * pixels, images_.data() + i * static_cast<std::size_t>(pixels), pixels);
    yp[b] = labels_[i];
  }
  return {x, y};
}

std::vector<std::string> MNIST::text_labels(const Tensor& labels) const {
  TG_CHECK(labels.defined() && labels.dtype() == kInt64, "[text_labels] expected an int64 tensor of labels, got {}",
           labels.defined() ? dtype_name(labels.dtype()) : "an undefined tensor");
  std::vector<std::string> names;
  for (std::int64_t label : labels.to_vector<std::int64_t>()) {
    TG_CHECK(label >= 0 && label < static_cast<std::int64_t>(classes_.size()),
             "[text_labels] expected labels in [0, {}], got {}", classes_.size() - 1, label);
    names.push_back(classes_[static_cast<std::size_t>(label)]);
  }
  return names;
}

}  // namespace tg::data
