// The data layer: the IDX reader on files the tests write (plain and gzip, valid and damaged),
// MNIST/FashionMNIST on a fake dataset directory, DataLoader batching and shuffling, and the
// real Fashion-MNIST when Debian's dataset-fashion-mnist is installed. Tag [data].
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "tapegrad/core/simd.h"
#include "tapegrad/data/dataloader.h"
#include "tapegrad/data/fashion_mnist.h"
#include "tapegrad/data/idx.h"
#include "tapegrad.h"
#include "tests/support/files.h"

using Catch::Contains;
using tg::Tensor;
namespace fs = std::filesystem;

namespace {

using tg_test::TempDir;
using tg_test::idx_bytes;
using tg_test::read_raw;

void write_raw(const std::string& path, const std::string& bytes) { REQUIRE(tg_test::write_raw(path, bytes)); }

void write_gz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

std::vector<std::uint8_t> pattern(std::size_t n, std::size_t seed = 0) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>((i * 37 + seed * 11 + 5) % 256);
  return v;
}

// A dataset whose sample i is the number i, for the loader tests.
class IndexDataset : public tg::data::Dataset {
 public:
  explicit IndexDataset(std::int64_t n) : n_(n) {}
  std::int64_t size() const override { return n_; }
  std::pair<Tensor, Tensor> get_batch(const std::vector<std::int64_t>& indices) const override {
    std::vector<double> x(indices.begin(), indices.end());
    return {tg::tensor(x, {static_cast<std::int64_t>(x.size())}),
            tg::tensor(indices, {static_cast<std::int64_t>(indices.size())})};
  }

 private:
  std::int64_t n_;
};

std::vector<std::vector<std::int64_t>> epoch(const tg::data::DataLoader& loader) {
  std::vector<std::vector<std::int64_t>> batches;
  for (auto& [X, y] : loader) {
    CHECK(X.to_vector<std::int64_t>() == y.to_vector<std::int64_t>());
    batches.push_back(y.to_vector<std::int64_t>());
  }
  return batches;
}

std::vector<std::int64_t> flat(const std::vector<std::vector<std::int64_t>>& batches) {
  std::vector<std::int64_t> out;
  for (const auto& b : batches) out.insert(out.end(), b.begin(), b.end());
  return out;
}

}  // namespace

// --- IDX ------------------------------------------------------------------------------------

TEST_CASE("read_idx parses images and labels, plain and gzip-compressed", "[data]") {
  const bool gz = GENERATE(false, true);
  TempDir dir;
  auto write = gz ? write_gz : write_raw;
  const auto pixels = pattern(3 * 2 * 4);
  const std::vector<std::uint8_t> labels = {7, 0, 255};
  write(dir.file("images"), idx_bytes(0x803, {3, 2, 4}, pixels));
  write(dir.file("labels"), idx_bytes(0x801, {3}, labels));

  tg::data::IdxArray images = tg::data::read_idx_images(dir.file("images"));
  CHECK(images.dims == std::vector<std::int64_t>{3, 2, 4});
  CHECK(images.data == pixels);
  tg::data::IdxArray l = tg::data::read_idx_labels(dir.file("labels"));
  CHECK(l.dims == std::vector<std::int64_t>{3});
  CHECK(l.data == labels);
}

TEST_CASE("read_idx reads a payload larger than its first allocation", "[data]") {
  TempDir dir;
  const auto pixels = pattern(3 * 4096 * 8192);  // 96 MiB: past the first 64 MiB buffer
  write_raw(dir.file("big"), idx_bytes(0x803, {3, 4096, 8192}, pixels));
  tg::data::IdxArray images = tg::data::read_idx_images(dir.file("big"));
  CHECK(images.dims == std::vector<std::int64_t>{3, 4096, 8192});
  CHECK(images.data == pixels);
}

TEST_CASE("read_idx rejects damaged files and names them", "[data][errors]") {
  TempDir dir;
  const std::string path = dir.file("bad-idx3-ubyte");
  const std::string good = idx_bytes(0x803, {2, 3, 4}, pattern(24));
  auto images = [&] { tg::data::read_idx_images(path); };
  auto labels = [&] { tg::data::read_idx_labels(path); };
  const std::string quoted = "'" + path + "'";  // every message names the file

  SECTION("missing file") {
    CHECK_THROWS_WITH(
        images(), Contains("[read_idx]") && Contains(quoted) && Contains("cannot open") && Contains("No such file"));
  }
  SECTION("a directory") {
    fs::create_directory(path);
    CHECK_THROWS_WITH(images(), Contains("[read_idx] cannot read") && Contains(quoted) && Contains("Is a directory"));
  }
  SECTION("bad magic: not uint8") {
    write_raw(path, idx_bytes(0x0D03, {2, 3, 4}, pattern(24 * 4)));
    CHECK_THROWS_WITH(images(), Contains("[read_idx]") && Contains(quoted) &&
                                    Contains("expected magic number 0x00000803, got 0x00000d03"));
  }
  SECTION("bad magic: not IDX at all") {
    write_raw(path, "P5\n28 28\n255\n" + std::string(784, '\0'));
    CHECK_THROWS_WITH(images(), Contains("[read_idx]") && Contains(quoted) && Contains("not an IDX file"));
  }
  SECTION("wrong number of dims") {
    write_raw(path, good);
    CHECK_THROWS_WITH(labels(), Contains("[read_idx]") && Contains(quoted) && Contains("3-dimensional") &&
                                    Contains("expected 1-dimensional label data"));
    write_raw(path, idx_bytes(0x801, {24}, pattern(24)));
    CHECK_THROWS_WITH(images(), Contains("[read_idx]") && Contains(quoted) && Contains("1-dimensional") &&
                                    Contains("expected 3-dimensional image data"));
  }
  SECTION("truncated header") {
    write_raw(path, good.substr(0, 10));
    CHECK_THROWS_WITH(images(), Contains("[read_idx]") && Contains(quoted) &&
                                    Contains("truncated: expected a 16-byte header, got 10 bytes"));
    write_raw(path, good.substr(0, 2));
    CHECK_THROWS_WITH(images(), Contains("[read_idx]") && Contains(quoted) &&
                                    Contains("truncated: expected a 16-byte header, got 2 bytes"));
    write_raw(path, "");
    CHECK_THROWS_WITH(images(), Contains("[read_idx]") && Contains(quoted) && Contains("got 0 bytes"));
  }
  SECTION("truncated payload, plain and gzip") {
    write_raw(path, good.substr(0, good.size() - 5));
    CHECK_THROWS_WITH(images(), Contains("[read_idx]") && Contains(quoted) &&
                                    Contains("truncated: expected 24 bytes of image data, got 19"));
    write_gz(path, good.substr(0, good.size() - 1));
    CHECK_THROWS_WITH(images(), Contains("[read_idx]") && Contains(quoted) &&
                                    Contains("truncated: expected 24 bytes of image data, got 23"));
    write_raw(path, idx_bytes(0x801, {24}, pattern(20)));
    CHECK_THROWS_WITH(labels(), Contains("[read_idx]") && Contains(quoted) &&
                                    Contains("truncated: expected 24 bytes of label data, got 20"));
  }
  SECTION("trailing bytes, plain and gzip") {
    write_raw(path, good + "x");
    CHECK_THROWS_WITH(images(), Contains("[read_idx]") && Contains(quoted) && Contains("trailing bytes"));
    write_gz(path, good + std::string(1000, '\0'));
    CHECK_THROWS_WITH(images(), Contains("[read_idx]") && Contains(quoted) && Contains("trailing bytes"));
    // After the gzip stream (issue 14, finding 11: zlib's gz* reader skipped them silently).
    write_gz(path, good);
    const std::string member = read_raw(path);
    for (const std::string& tail : {std::string("x"), std::string(8, '\0'), std::string("\x1f")}) {
      write_raw(path, member + tail);
      CHECK_THROWS_WITH(images(), Contains("[read_idx]") && Contains(quoted) &&
                                      Contains("trailing bytes after its gzip stream"));
    }
  }
  SECTION("a gzip file of two members is one stream, as gunzip reads it") {
    write_gz(path, good.substr(0, 10));
    const std::string first = read_raw(path);
    write_gz(path, good.substr(10));
    write_raw(path, first + read_raw(path));
    CHECK(tg::data::read_idx_images(path).data == pattern(24));
  }
  SECTION("a size of zero") {
    write_raw(path, idx_bytes(0x803, {2, 0, 4}, {}));
    CHECK_THROWS_WITH(images(), Contains("[read_idx]") && Contains(quoted) &&
                                    Contains("expected positive sizes, got size 0 in dimension 1"));
  }
  SECTION("a header that promises more than the file holds is refused before allocating it") {
    // 2^39 bytes (512 GiB) promised, 10 held: allocating what the header claims would fail.
    const std::string promise = idx_bytes(0x803, {1u << 13, 1u << 13, 1u << 13}, pattern(10));
    write_raw(path, promise);
    CHECK_THROWS_WITH(images(), Contains("[read_idx]") && Contains(quoted) &&
                                    Contains("truncated: expected 549755813888 bytes of image data, got 10"));
    write_gz(path, promise);
    CHECK_THROWS_WITH(images(), Contains("[read_idx]") && Contains(quoted) &&
                                    Contains("truncated: expected 549755813888 bytes of image data, got 10"));
  }
  SECTION("an implausible size") {
    write_raw(path, idx_bytes(0x803, {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, pattern(10)));
    CHECK_THROWS_WITH(images(), Contains("[read_idx]") && Contains(quoted) && Contains("implausible size"));
  }
  SECTION("corrupt gzip: bad checksum") {
    write_gz(path, good);
    std::string bytes = read_raw(path);
    bytes[bytes.size() - 8] = static_cast<char>(bytes[bytes.size() - 8] ^ 0xFF);  // CRC-32 trailer
    write_raw(path, bytes);
    CHECK_THROWS_WITH(images(), Contains("[read_idx]") && Contains(quoted) && Contains("corrupt gzip stream") &&
                                    Contains("incorrect data check"));
  }
  SECTION("corrupt gzip: invalid deflate data") {
    write_gz(path, good);
    std::string bytes = read_raw(path);
    bytes[10] = static_cast<char>(0x07);  // first deflate block: final, reserved type 3
    write_raw(path, bytes);
    CHECK_THROWS_WITH(images(), Contains("[read_idx]") && Contains(quoted) && Contains("corrupt gzip stream") &&
                                    Contains("invalid block type"));
  }
  SECTION("gzip stream cut off") {
    write_gz(path, idx_bytes(0x803, {2, 100, 100}, pattern(20000)));
    const std::string bytes = read_raw(path);
    write_raw(path, bytes.substr(0, bytes.size() / 2));
    CHECK_THROWS_WITH(images(), Contains("[read_idx]") && Contains(quoted) && Contains("truncated") &&
                                    Contains("gzip stream ends early"));
    write_raw(path, bytes.substr(0, bytes.size() - 4));  // every byte of data, the length field cut
    CHECK_THROWS_WITH(images(), Contains("[read_idx]") && Contains(quoted) && Contains("truncated"));
  }
}

// --- MNIST / FashionMNIST ---------------------------------------------------------------------

namespace {

// A fake dataset directory: the train split gzip-compressed, the test split plain, as
// torchvision's raw/ folder has them.
struct FakeMNIST {
  TempDir dir;
  std::vector<std::uint8_t> train_pixels = pattern(5 * 28 * 28, 1), test_pixels = pattern(3 * 28 * 28, 2);
  std::vector<std::uint8_t> train_labels = {9, 0, 3, 9, 5}, test_labels = {1, 2, 0};
  FakeMNIST() {
    write_gz(dir.file("train-images-idx3-ubyte.gz"), idx_bytes(0x803, {5, 28, 28}, train_pixels));
    write_gz(dir.file("train-labels-idx1-ubyte.gz"), idx_bytes(0x801, {5}, train_labels));
    write_raw(dir.file("t10k-images-idx3-ubyte"), idx_bytes(0x803, {3, 28, 28}, test_pixels));
    write_raw(dir.file("t10k-labels-idx1-ubyte"), idx_bytes(0x801, {3}, test_labels));
  }
};

}  // namespace

TEST_CASE("FashionMNIST::get_batch gives float images k/255 and int64 labels", "[data]") {
  FakeMNIST fake;
  tg::data::FashionMNIST train(fake.dir.str(), true);
  CHECK(train.size() == 5);
  CHECK(train.height() == 28);
  CHECK(train.width() == 28);

  const std::vector<std::int64_t> indices = {4, 0, 4, 2};
  // Every byte value (each image of the pattern holds all 256) under each instruction set's conversion.
  for (tg::simd::Isa isa : {tg::simd::Isa::Avx512, tg::simd::Isa::Avx2, tg::simd::Isa::Portable}) {
    const tg::simd::IsaLimit limit(isa);
    INFO(tg::simd::isa_name(tg::simd::active_isa()));
    auto [X, y] = train.get_batch(indices);
    CHECK(X.sizes() == tg::Shape{4, 1, 28, 28});
    CHECK(X.dtype() == tg::kFloat32);
    CHECK(y.sizes() == tg::Shape{4});
    CHECK(y.dtype() == tg::kInt64);
    CHECK(y.to_vector<std::int64_t>() == std::vector<std::int64_t>{5, 9, 5, 3});
    const std::vector<float> x = X.to_vector<float>();
    std::set<std::uint8_t> seen;
    bool exact = true;
    for (std::size_t b = 0; b < indices.size(); ++b)
      for (std::size_t k = 0; k < 784; ++k) {
        const std::uint8_t px = fake.train_pixels[static_cast<std::size_t>(indices[b]) * 784 + k];
        seen.insert(px);
        exact = exact && x[b * 784 + k] == static_cast<float>(px) / 255.0f;
      }
    CHECK(seen.size() == 256);
    CHECK(exact);
    CHECK(X.min().item<float>() == 0.0f);
    CHECK(X.max().item<float>() == 1.0f);
  }

  auto [X0, y0] = train.get_batch({});
  CHECK(X0.sizes() == tg::Shape{0, 1, 28, 28});
  CHECK(y0.sizes() == tg::Shape{0});

  tg::data::FashionMNIST test(fake.dir.str(), false);
  CHECK(test.size() == 3);
  auto [Xt, yt] = test.get_batch({2, 1, 0});
  CHECK(yt.to_vector<std::int64_t>() == std::vector<std::int64_t>{0, 2, 1});
  CHECK(Xt.to_vector<float>()[784] == static_cast<float>(fake.test_pixels[784]) / 255.0f);

  CHECK_THROWS_WITH(train.get_batch({0, 5}), Contains("[FashionMNIST]") && Contains("[0, 5), got 5"));
  CHECK_THROWS_WITH(train.get_batch({-1}), Contains("[FashionMNIST]") && Contains("got -1"));
}

TEST_CASE("FashionMNIST and MNIST name their classes", "[data]") {
  FakeMNIST fake;
  tg::data::FashionMNIST fashion(fake.dir.str());
  CHECK(fashion.text_labels() == std::vector<std::string>{"t-shirt", "trouser", "pullover", "dress", "coat", "sandal",
                                                          "shirt", "sneaker", "bag", "ankle boot"});
  CHECK(fashion.text_labels(fashion.get_batch({0, 1, 2}).second) ==
        std::vector<std::string>{"ankle boot", "t-shirt", "dress"});
  CHECK_THROWS_WITH(fashion.text_labels(tg::tensor(std::vector<std::int64_t>{10})),
                    Contains("[text_labels]") && Contains("got 10"));
  tg::data::MNIST digits(fake.dir.str());
  CHECK(digits.text_labels()[9] == "9");
  CHECK(digits.size() == 5);
}

TEST_CASE("FashionMNIST says what to do when files are missing or damaged", "[data][errors]") {
  FakeMNIST fake;
  const std::string remedy = "install the Debian package dataset-fashion-mnist";

  SECTION("missing directory") {
    const std::string root = fake.dir.file("nowhere");
    CHECK_THROWS_WITH(tg::data::FashionMNIST(root), "[FashionMNIST] cannot find '" + root + "': " + remedy);
    CHECK_THROWS_WITH(tg::data::MNIST(root),
                      "[MNIST] cannot find '" + root + "': download the four MNIST IDX files into it");
  }
  SECTION("a file where the directory should be") {
    const std::string file = fake.dir.file("train-images-idx3-ubyte.gz");
    CHECK_THROWS_WITH(tg::data::FashionMNIST(file), "[FashionMNIST] '" + file +
                                                        "' is a file; expected the directory that holds the IDX files "
                                                        "(train-images-idx3-ubyte, ...)");
    CHECK_THROWS_WITH(tg::data::MNIST(file, false), Contains("is a file") && Contains("t10k-images-idx3-ubyte"));
  }
  SECTION("missing file") {
    fs::remove(fake.dir.file("train-labels-idx1-ubyte.gz"));
    CHECK_THROWS_WITH(tg::data::FashionMNIST(fake.dir.str()),
                      "[FashionMNIST] cannot find '" + fake.dir.file("train-labels-idx1-ubyte.gz") + "': " + remedy);
  }
  SECTION("label out of range") {
    write_raw(fake.dir.file("t10k-labels-idx1-ubyte"), idx_bytes(0x801, {3}, {1, 10, 0}));
    CHECK_THROWS_WITH(tg::data::FashionMNIST(fake.dir.str(), false),
                      Contains("[FashionMNIST] expected labels in [0, 9], got 10 at index 1") &&
                          Contains(fake.dir.file("t10k-labels-idx1-ubyte")));
  }
  SECTION("images and labels disagree") {
    write_raw(fake.dir.file("t10k-labels-idx1-ubyte"), idx_bytes(0x801, {2}, {1, 2}));
    CHECK_THROWS_WITH(
        tg::data::FashionMNIST(fake.dir.str(), false),
        Contains("[FashionMNIST] expected as many labels as images, got 3 images") && Contains("2 labels"));
  }
  SECTION("a damaged file") {
    write_raw(fake.dir.file("t10k-images-idx3-ubyte"), "garbage!");
    CHECK_THROWS_WITH(tg::data::FashionMNIST(fake.dir.str(), false),
                      Contains("[read_idx]") && Contains(fake.dir.file("t10k-images-idx3-ubyte")));
  }
  SECTION("a plain file is preferred to its .gz") {
    write_raw(fake.dir.file("train-labels-idx1-ubyte"), idx_bytes(0x801, {5}, {1, 1, 1, 1, 1}));
    tg::data::FashionMNIST train(fake.dir.str());
    CHECK(train.get_batch({0}).second.item<std::int64_t>() == 1);
  }
}

// --- DataLoader -------------------------------------------------------------------------------

TEST_CASE("DataLoader batches in order and keeps or drops the last partial batch", "[data]") {
  IndexDataset data(10);
  tg::data::DataLoader loader(data, {.batch_size = 4});
  CHECK(loader.num_batches() == 3);
  CHECK(epoch(loader) == std::vector<std::vector<std::int64_t>>{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9}});

  tg::data::DataLoader dropping(data, {.batch_size = 4, .drop_last = true});
  CHECK(dropping.num_batches() == 2);
  CHECK(epoch(dropping) == std::vector<std::vector<std::int64_t>>{{0, 1, 2, 3}, {4, 5, 6, 7}});

  tg::data::DataLoader exact(data, {.batch_size = 5, .drop_last = true});
  CHECK(exact.num_batches() == 2);
  CHECK(epoch(exact).size() == 2);

  tg::data::DataLoader big(data, {.batch_size = 64});
  CHECK(big.num_batches() == 1);
  CHECK(flat(epoch(big)) == flat(epoch(loader)));
  tg::data::DataLoader big_dropped(data, {.batch_size = 64, .drop_last = true});
  CHECK(big_dropped.num_batches() == 0);
  CHECK(epoch(big_dropped).empty());

  IndexDataset none(0);
  tg::data::DataLoader empty(none, {.batch_size = 3, .shuffle = true});
  CHECK(empty.num_batches() == 0);
  CHECK(empty.begin() == empty.end());

  tg::data::DataLoader ones(data);  // PyTorch's default batch_size = 1
  CHECK(ones.num_batches() == 10);

  // Iterator use by hand: the batch is built once and kept until ++.
  auto it = loader.begin();
  const auto* first = &*it;
  CHECK(&*it == first);
  CHECK(it->first.numel() == 4);
  ++it;
  CHECK(it->second.to_vector<std::int64_t>() == std::vector<std::int64_t>{4, 5, 6, 7});

  CHECK_THROWS_WITH(tg::data::DataLoader(data, {.batch_size = 0}),
                    Contains("[DataLoader] expected batch_size >= 1, got 0"));
}

TEST_CASE("DataLoader shuffles every index once per epoch, anew each epoch, reproducibly", "[data]") {
  IndexDataset data(103);
  tg::data::DataLoader loader(data, {.batch_size = 16, .shuffle = true});
  tg::manual_seed(7);
  const auto e1 = epoch(loader);
  const auto e2 = epoch(loader);

  CHECK(e1.size() == 7);
  CHECK(e1.back().size() == 103 - 6 * 16);
  std::vector<std::int64_t> all(103);
  std::iota(all.begin(), all.end(), 0);
  for (const auto& e : {e1, e2}) {
    std::vector<std::int64_t> seen = flat(e);
    std::sort(seen.begin(), seen.end());
    CHECK(seen == all);
  }
  CHECK(flat(e1) != flat(e2));
  CHECK(flat(e1) != all);

  // The order is tg::randperm's, drawn from the global generator at the start of each epoch.
  tg::manual_seed(7);
  CHECK(flat(epoch(loader)) == flat(e1));
  CHECK(flat(epoch(loader)) == flat(e2));
  tg::manual_seed(7);
  CHECK(flat(e1) == tg::randperm(103).to_vector<std::int64_t>());

  // A checkpointed generator state replays the next epoch.
  tg::manual_seed(123);
  epoch(loader);
  const std::string state = tg::get_rng_state();
  const auto e3 = epoch(loader);
  tg::set_rng_state(state);
  CHECK(epoch(loader) == e3);

  // Drawing happens at begin(): an epoch started but not consumed still advances the generator.
  tg::manual_seed(7);
  auto it = loader.begin();
  CHECK(flat(epoch(loader)) == flat(e2));
  CHECK(it->second.to_vector<std::int64_t>() == e1.front());
}

namespace {

// Every third index from `start`, backwards: an order no other path produces.
class EveryThird : public tg::data::Sampler {
 public:
  EveryThird(std::int64_t n, std::int64_t start) : n_(n), start_(start) {}
  std::vector<std::int64_t> indices() const override {
    std::vector<std::int64_t> out;
    for (std::int64_t i = n_ - 1 - start_; i >= 0; i -= 3) out.push_back(i);
    return out;
  }
  std::int64_t size() const override { return (n_ - start_ + 2) / 3; }
  std::int64_t n_, start_;
};

}  // namespace

TEST_CASE("DataLoader with a sampler batches the sampler's indices, asked anew each epoch", "[data]") {
  IndexDataset data(10);
  EveryThird sampler(10, 0);
  tg::data::DataLoader loader(data, sampler, {.batch_size = 3});
  CHECK(loader.num_batches() == 2);
  CHECK(epoch(loader) == std::vector<std::vector<std::int64_t>>{{9, 6, 3}, {0}});
  sampler.start_ = 1;  // the next epoch sees the sampler as it is then
  CHECK(epoch(loader) == std::vector<std::vector<std::int64_t>>{{8, 5, 2}});
  tg::data::DataLoader dropping(data, sampler, {.batch_size = 2, .drop_last = true});
  CHECK(epoch(dropping) == std::vector<std::vector<std::int64_t>>{{8, 5}});
  CHECK_THROWS_WITH(tg::data::DataLoader(data, sampler, {.batch_size = 2, .shuffle = true}),
                    Contains("[DataLoader] expected shuffle=false with a sampler"));
}

// --- the real Fashion-MNIST (Debian's dataset-fashion-mnist) ----------------------------------

TEST_CASE("the installed Fashion-MNIST loads: 60000 + 10000 images, known labels", "[data]") {
  if (!fs::is_directory(tg::data::kFashionMNISTRoot)) {
    WARN("skipped: " << tg::data::kFashionMNISTRoot << " is absent (install dataset-fashion-mnist)");
    SUCCEED();
    return;
  }
  tg::data::FashionMNIST train;
  tg::data::FashionMNIST test(tg::data::kFashionMNISTRoot, false);
  REQUIRE(train.size() == 60000);
  REQUIRE(test.size() == 10000);
  CHECK(train.height() == 28);
  CHECK(train.width() == 28);

  // Reference values from numpy on the same files.
  auto [X, y] = train.get_batch({0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(y.to_vector<std::int64_t>() == std::vector<std::int64_t>{9, 0, 0, 3, 0, 2, 7, 2, 5, 5});
  CHECK(train.text_labels(y)[0] == "ankle boot");
  CHECK(std::lround(X.select(0, 0).sum().item<double>() * 255.0) == 76247);
  CHECK(test.get_batch({0, 1, 2, 3, 4}).second.to_vector<std::int64_t>() == std::vector<std::int64_t>{9, 2, 1, 1, 6});

  std::vector<std::int64_t> counts(10, 0);
  for (auto& [Xb, yb] : tg::data::DataLoader(train, {.batch_size = 1000}))
    for (std::int64_t label : yb.to_vector<std::int64_t>()) ++counts[static_cast<std::size_t>(label)];
  CHECK(counts == std::vector<std::int64_t>(10, 6000));
}
