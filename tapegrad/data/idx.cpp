// The IDX reader over zlib's gz* streams, which inflate gzip files and pass plain files through
// unchanged. Layer: data; knows nothing of tensors, the tape or models.
#include "tapegrad/data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string_view>

#include "tapegrad/core/error.h"

namespace tg::data {

namespace {

constexpr const char* kRemedy = "the file is damaged or not an IDX file: download it again or reinstall its package";
// Nothing real comes close: a bigger size is a corrupt header, not a reason to allocate.
constexpr std::uint64_t kMaxPayload = std::uint64_t{1} << 40;

struct GzClose {
  void operator()(gzFile_s* f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<gzFile_s, GzClose>;

struct Chunk {
  std::size_t got = 0;
  bool gzip_ended_early = false;  // zlib's "unexpected end of file": the compressed data stops
};

// Reads up to n bytes; fewer only at the end of the data. Throws on a read error or corrupt gzip
// data. zlib reports a cut-off gzip stream as a short read, not an error, so it is flagged here.
Chunk read_some(gzFile f, std::uint8_t* out, std::size_t n, const std::string& path) {
  Chunk c;
  while (c.got < n) {
    const auto want = static_cast<unsigned>(std::min<std::size_t>(n - c.got, std::size_t{1} << 20));
    const int r = gzread(f, out + c.got, want);
    int err = Z_OK;
    std::string_view msg = gzerror(f, &err);
    if (msg.starts_with(path) && msg.substr(path.size()).starts_with(": ")) msg.remove_prefix(path.size() + 2);
    TG_CHECK(err != Z_ERRNO, "[read_idx] cannot read '{}': {}", path, msg);
    TG_CHECK(r >= 0 && (err == Z_OK || err == Z_BUF_ERROR), "[read_idx] cannot read '{}': corrupt gzip stream: {}; {}",
             path, msg, kRemedy);
    c.got += static_cast<std::size_t>(r);
    if (err == Z_BUF_ERROR) c.gzip_ended_early = true;
    if (r == 0) break;
  }
  return c;
}

std::uint32_t big_endian(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

const char* cut_note(const Chunk& c) { return c.gzip_ended_early ? " (the gzip stream ends early)" : ""; }

IdxArray read_idx(const std::string& path, std::uint8_t ndims, const char* what) {
  const std::uint32_t want_magic = 0x00000800u | ndims;
  errno = 0;
  GzFile f(gzopen(path.c_str(), "rb"));
  TG_CHECK(f != nullptr, "[read_idx] cannot open '{}': {}", path, errno != 0 ? std::strerror(errno) : "out of memory");
  gzbuffer(f.get(), 1u << 17);

  std::uint8_t header[16] = {};
  const std::size_t header_len = 4 + 4 * std::size_t{ndims};
  Chunk c = read_some(f.get(), header, 4, path);
  TG_CHECK(c.got == 4, "[read_idx] '{}' is truncated: expected a {}-byte header, got {} bytes{}; {}", path, header_len,
           c.got, cut_note(c), kRemedy);
  const std::uint32_t magic = big_endian(header);
  TG_CHECK(header[0] == 0 && header[1] == 0 && header[2] == 0x08,
           "[read_idx] '{}' is not an IDX file of uint8 {} data: expected magic number 0x{:08x}, got 0x{:08x}; {}",
           path, what, want_magic, magic, kRemedy);
  TG_CHECK(header[3] == ndims,
           "[read_idx] '{}' holds {}-dimensional data (magic 0x{:08x}), expected {}-dimensional {} data (magic "
           "0x{:08x})",
           path, header[3], magic, ndims, what, want_magic);
  c = read_some(f.get(), header + 4, header_len - 4, path);
  TG_CHECK(c.got == header_len - 4, "[read_idx] '{}' is truncated: expected a {}-byte header, got {} bytes{}; {}", path,
           header_len, 4 + c.got, cut_note(c), kRemedy);

  IdxArray out;
  std::uint64_t total = 1;
  for (std::size_t d = 0; d < ndims; ++d) {
    const std::uint32_t size = big_endian(header + 4 + 4 * d);
    TG_CHECK(size > 0, "[read_idx] '{}': expected positive sizes, got size 0 in dimension {}; {}", path, d, kRemedy);
    out.dims.push_back(size);
    total *= size;
    TG_CHECK(total <= kMaxPayload, "[read_idx] '{}': the header claims an implausible size {}; {}", path,
             fmt::join(out.dims, " x "), kRemedy);
  }

  // Allocate what a real file needs in one go (the Fashion-MNIST training images are 47 MB) and
  // grow past that only as the data actually arrives, so a lying header cannot exhaust memory.
  out.data.resize(static_cast<std::size_t>(std::min<std::uint64_t>(total, std::uint64_t{1} << 26)));
  std::size_t got = 0;
  for (;;) {
    c = read_some(f.get(), out.data.data() + got, out.data.size() - got, path);
    got += c.got;
    if (got < out.data.size() || out.data.size() == total) break;
    out.data.resize(static_cast<std::size_t>(std::min<std::uint64_t>(total, 2 * std::uint64_t{out.data.size()})));
  }
  TG_CHECK(got == total, "[read_idx] '{}' is truncated: expected {} bytes of {} data, got {}{}; {}", path, total, what,
           got, cut_note(c), kRemedy);
  std::uint8_t extra = 0;
  c = read_some(f.get(), &extra, 1, path);
  TG_CHECK(c.got == 0, "[read_idx] '{}' has trailing bytes after the {} bytes of {} data that its header announces; {}",
           path, total, what, kRemedy);
  TG_CHECK(!c.gzip_ended_early, "[read_idx] '{}' is truncated: the gzip stream ends before its checksum; {}", path,
           kRemedy);
  return out;
}

}  // namespace

IdxArray read_idx_images(const std::string& path) { return read_idx(path, 3, "image"); }
IdxArray read_idx_labels(const std::string& path) { return read_idx(path, 1, "label"); }

}  // namespace tg::data
