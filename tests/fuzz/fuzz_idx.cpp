// libFuzzer harness: the IDX reader (read_idx_images / read_idx_labels) on arbitrary files, plain
// and gzip. The first input byte picks the mode, the rest is the file: bit 0 gzips it (so that
// mutations reach the IDX parser behind the inflater; seeds that are gzip files already fuzz the
// inflater itself), bit 1 splits it into two gzip members, bit 2 reads labels instead of images.
// Promise: tg::Error or a well-formed array, nothing else, whatever the bytes.
#include <cstdint>
#include <string>

#include "tapegrad/core/error.h"
#include "tapegrad/data/idx.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

void write_seeds(const std::string& dir) {
  const std::string images = tg_fuzz::idx(0x803, {2, 3, 4}, std::string("\x00\x10\x20\x30\x40\x50\x60\x70\x80\x90\xa0"
                                                                        "\xb0\xc0\xd0\xe0\xf0\xff\x01\x02\x03\x04\x05\x06\x07", 24));
  const std::string labels = tg_fuzz::idx(0x801, {3}, std::string("\x07\x00\x09", 3));
  tg_fuzz::write_file(dir + "images", '\0' + images);
  tg_fuzz::write_file(dir + "labels", '\4' + labels);
  tg_fuzz::write_file(dir + "images_gzipped_by_the_harness", '\1' + images);
  tg_fuzz::write_file(dir + "labels_in_two_gzip_members", '\6' + labels);
  tg_fuzz::write_file(dir + "images_gzip_file", '\0' + tg_fuzz::gzip(images));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  tg_fuzz::write_seeds_if_asked(write_seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const tg_fuzz::MemFile file("idx");
  if (size == 0) return 0;
  const std::uint8_t mode = data[0];
  std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (mode & 2) bytes = tg_fuzz::gzip(bytes.substr(0, bytes.size() / 2)) + tg_fuzz::gzip(bytes.substr(bytes.size() / 2));
  else if (mode & 1) bytes = tg_fuzz::gzip(bytes);
  file.write(bytes);
  try {
    const bool labels = mode & 4;
    const tg::data::IdxArray a = labels ? tg::data::read_idx_labels(file.path()) : tg::data::read_idx_images(file.path());
    TG_FUZZ_EXPECT(a.dims.size() == (labels ? 1u : 3u));
    std::uint64_t n = 1;
    for (std::int64_t d : a.dims) {
      TG_FUZZ_EXPECT(d > 0);
      n *= static_cast<std::uint64_t>(d);
    }
    TG_FUZZ_EXPECT(a.data.size() == n);
  } catch (const tg::Error&) {
  }
  return 0;
}
