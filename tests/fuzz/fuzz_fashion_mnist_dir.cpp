// libFuzzer harness: a Fashion-MNIST-style directory. The input is
//   [mode] [labels length, 2 bytes little-endian] [labels file] [images file]
// and mode bit 0 picks the split (train-* or t10k-*), bits 1 and 2 gzip the images and the
// labels file (named *.gz), bit 3 puts a second, empty labels file next to the real one. The
// files go into a directory on tmpfs; FashionMNIST loads it, and a DataLoader reads every batch.
// Promise: tg::Error, or a dataset whose batches hold values k/255 and labels in [0, 9].
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "tapegrad/data/dataloader.h"
#include "tapegrad/data/fashion_mnist.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/support/files.h"

namespace {

void put(const std::string& path, const std::string& bytes) {
  if (!tg_test::write_raw(path, bytes)) std::abort();
}

// [mode][labels length][labels][images] for three 2x3 images.
std::string sample(std::uint8_t mode, bool gz_file_inside = false) {
  const std::string labels = tg_fuzz::idx(0x801, {3}, std::string("\x09\x00\x03", 3));
  std::string images = tg_fuzz::idx(0x803, {3, 2, 3}, std::string("\x00\x11\x22\x33\x44\x55\x66\x77\x88"
                                                                  "\x99\xaa\xbb\xcc\xdd\xee\xff\x01\x02", 18));
  if (gz_file_inside) images = tg_fuzz::gzip(images);
  std::string out(1, static_cast<char>(mode));
  out += static_cast<char>(labels.size() & 0xff);
  out += static_cast<char>(labels.size() >> 8);
  return out + labels + images;
}

void write_seeds(const std::string& dir) {
  tg_fuzz::write_file(dir + "train_plain", sample(1));
  tg_fuzz::write_file(dir + "test_gzipped", sample(6));
  tg_fuzz::write_file(dir + "train_both_names", sample(9));
  tg_fuzz::write_file(dir + "test_gzip_bytes_in_a_plain_name", sample(0, true));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  tg_fuzz::write_seeds_if_asked(write_seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const tg_test::TempDir dir;
  if (size < 3) return 0;
  const std::uint8_t mode = data[0];
  const std::size_t labels_len = std::min<std::size_t>(size - 3, data[1] | (std::size_t{data[2]} << 8));
  std::string labels(reinterpret_cast<const char*>(data) + 3, labels_len);
  std::string images(reinterpret_cast<const char*>(data) + 3 + labels_len, size - 3 - labels_len);
  const bool train = mode & 1, images_gz = mode & 2, labels_gz = mode & 4;
  const std::string split = train ? "train" : "t10k";
  for (const auto& entry : std::filesystem::directory_iterator(dir.str())) std::filesystem::remove(entry.path());
  put(dir.file(split + "-images-idx3-ubyte" + (images_gz ? ".gz" : "")), images_gz ? tg_fuzz::gzip(images) : images);
  put(dir.file(split + "-labels-idx1-ubyte" + (labels_gz ? ".gz" : "")), labels_gz ? tg_fuzz::gzip(labels) : labels);
  if (mode & 8) put(dir.file(split + "-labels-idx1-ubyte" + (labels_gz ? "" : ".gz")), "");
  try {
    tg::data::FashionMNIST set(dir.str(), train);
    TG_FUZZ_EXPECT(set.size() > 0 && set.height() > 0 && set.width() > 0);
    tg::data::DataLoader loader(set, {.batch_size = 7});
    std::int64_t seen = 0;
    for (const auto& [x, y] : loader) {
      TG_FUZZ_EXPECT(x.sizes() == tg::Shape({y.numel(), 1, set.height(), set.width()}));
      for (float v : x.to_vector<float>()) TG_FUZZ_EXPECT(v >= 0.0f && v <= 1.0f);
      for (std::int64_t label : y.to_vector<std::int64_t>()) TG_FUZZ_EXPECT(label >= 0 && label <= 9);
      TG_FUZZ_EXPECT(set.text_labels(y).size() == static_cast<std::size_t>(y.numel()));
      seen += y.numel();
    }
    TG_FUZZ_EXPECT(seen == set.size());
  } catch (const tg::Error&) {
  }
  return 0;
}
