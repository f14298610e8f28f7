// The IDX reader (the file format of MNIST and Fashion-MNIST): a big-endian header, magic
// 0x00000803 for uint8 images [N, H, W] or 0x00000801 for uint8 labels [N], then the raw bytes.
// Reads gzip-compressed and plain files alike (zlib). Layer: data; knows nothing of tensors,
// the tape or models.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tg::data {

struct IdxArray {
  std::vector<std::int64_t> dims;  // [N, H, W] for images, [N] for labels; all positive
  std::vector<std::uint8_t> data;  // row-major, exactly the product of dims bytes
};

// Both throw tg::Error naming the file when it cannot be opened, when the magic number or the
// number of dimensions is not the expected one, when a size is zero, when the header or the
// payload is truncated, when bytes follow the payload, when the gzip stream is corrupt, or when
// bytes that are not another gzip member follow it. A header that promises more data than the file
// holds fails when the data runs out, having allocated no more than 64 MiB or twice what arrived.
IdxArray read_idx_images(const std::string& path);
IdxArray read_idx_labels(const std::string& path);

}  // namespace tg::data
