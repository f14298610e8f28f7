// The IDX reader, over zlib's inflate for gzip files and plain reads for the others. Layer: data;
// knows nothing of tensors, the tape or models.
#include "tapegrad/data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "tapegrad/core/error.h"

namespace tg::data {

namespace {

constexpr const char* kRemedy = "the file is damaged or not an IDX file: download it again or reinstall its package";
// Nothing real comes close: a bigger size is a corrupt header, not a reason to allocate.
constexpr std::uint64_t kMaxPayload = std::uint64_t{1} << 40;

struct Chunk {
  std::size_t got = 0;
  bool gzip_ended_early = false;  // the compressed data stops inside a gzip member
};

// A file's bytes: inflated when it starts with gzip's magic (every member of a multi-member file,
// as gunzip), passed through otherwise. Through zlib's inflate rather than its gz* streams,
// which skip whatever follows the last member without a word.
class Source {
 public:
  explicit Source(const std::string& path) : path_(path), file_(std::fopen(path.c_str(), "rb"), &std::fclose) {
    TG_CHECK(file_ != nullptr, "[read_idx] cannot open '{}': {}", path, std::strerror(errno));
    refill();
    gzip_ = avail() >= 2 && in_[0] == 0x1f && in_[1] == 0x8b;
    if (gzip_) {
      TG_CHECK(inflateInit2(&z_, 16 + MAX_WBITS) == Z_OK, "[read_idx] cannot read '{}': out of memory", path);
      inflating_ = true;
    }
  }
  ~Source() {
    if (inflating_) inflateEnd(&z_);
  }
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;

  // Reads up to n bytes; fewer only at the end of the data. Throws on a read error, corrupt gzip
  // data, or bytes after the last gzip member that do not start another.
  Chunk read(std::uint8_t* out, std::size_t n) {
    Chunk c;
    while (c.got < n) {
      if (avail() == 0 && !eof_) refill();
      if (!gzip_) {
        if (avail() == 0) break;
        const std::size_t m = std::min(n - c.got, avail());
        std::memcpy(out + c.got, in_.data() + pos_, m);
        pos_ += m;
        c.got += m;
        continue;
      }
      if (member_ended_) {  // what follows a gzip member must be another one, or nothing
        if (avail() < 2 && !eof_) refill();
        if (avail() == 0) break;
        TG_CHECK(avail() >= 2 && in_[pos_] == 0x1f && in_[pos_ + 1] == 0x8b,
                 "[read_idx] '{}' has trailing bytes after its gzip stream; {}", path_, kRemedy);
        TG_CHECK(inflateReset(&z_) == Z_OK, "[read_idx] cannot read '{}': corrupt gzip stream", path_);
        member_ended_ = false;
      }
      z_.next_in = in_.data() + pos_;
      z_.avail_in = static_cast<uInt>(avail());
      z_.next_out = out + c.got;
      z_.avail_out = static_cast<uInt>(std::min<std::size_t>(n - c.got, std::size_t{1} << 30));
      const int r = inflate(&z_, Z_NO_FLUSH);
      const std::size_t produced = static_cast<std::size_t>(z_.next_out - (out + c.got));
      pos_ = static_cast<std::size_t>(z_.next_in - in_.data());
      c.got += produced;
      if (r == Z_STREAM_END) {
        member_ended_ = true;
      } else if (r == Z_BUF_ERROR || (r == Z_OK && produced == 0 && avail() == 0)) {
        if (avail() == 0 && eof_) {  // wants more input and the file has none
          c.gzip_ended_early = true;
          break;
        }
      } else {
        TG_CHECK(r == Z_OK, "[read_idx] cannot read '{}': corrupt gzip stream: {}; {}", path_,
                 z_.msg ? z_.msg : zError(r), kRemedy);
      }
    }
    return c;
  }

 private:
  std::size_t avail() const { return size_ - pos_; }

  // Moves the unread bytes to the front and reads more after them.
  void refill() {
    std::memmove(in_.data(), in_.data() + pos_, avail());
    size_ = avail();
    pos_ = 0;
    while (size_ < in_.size() && !eof_) {
      const std::size_t got = std::fread(in_.data() + size_, 1, in_.size() - size_, file_.get());
      TG_CHECK(!std::ferror(file_.get()), "[read_idx] cannot read '{}': {}", path_, std::strerror(errno));
      size_ += got;
      eof_ = got == 0;
    }
  }

  std::string path_;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file_;
  std::vector<std::uint8_t> in_ = std::vector<std::uint8_t>(std::size_t{1} << 17);
  std::size_t pos_ = 0, size_ = 0;
  bool eof_ = false, gzip_ = false, inflating_ = false, member_ended_ = false;
  z_stream z_{};
};

std::uint32_t big_endian(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

const char* cut_note(const Chunk& c) { return c.gzip_ended_early ? " (the gzip stream ends early)" : ""; }

IdxArray read_idx(const std::string& path, std::uint8_t ndims, const char* what) {
  const std::uint32_t want_magic = 0x00000800u | ndims;
  Source f(path);

  std::uint8_t header[16] = {};
  const std::size_t header_len = 4 + 4 * std::size_t{ndims};
  Chunk c = f.read(header, 4);
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
  c = f.read(header + 4, header_len - 4);
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
    c = f.read(out.data.data() + got, out.data.size() - got);
    got += c.got;
    if (got < out.data.size() || out.data.size() == total) break;
    out.data.resize(static_cast<std::size_t>(std::min<std::uint64_t>(total, 2 * std::uint64_t{out.data.size()})));
  }
  TG_CHECK(got == total, "[read_idx] '{}' is truncated: expected {} bytes of {} data, got {}{}; {}", path, total, what,
           got, cut_note(c), kRemedy);
  std::uint8_t extra = 0;
  c = f.read(&extra, 1);
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
