// lenet_bn killed with SIGKILL 30 times, at random moments and inside its saves: after every kill
// the checkpoint on disk is a complete one, the last one written or the one before (never a torn
// or older file), --resume continues from it, and no temporary file outlives the run that made it.
// Small data (48 images) and short epochs, so that saves are a fair share of the run. Tag [apps].
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tapegrad.h"
#include "tests/support/files.h"

#ifdef TG_LENET_BN_APP
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kEpochs = 5;

// A Fashion-MNIST directory of 48 training and 16 test images of noise with a class's block.
void write_dataset(const std::string& dir) {
  std::mt19937 rng(5);
  for (const auto& [split, n] : {std::pair<std::string, std::uint32_t>{"train", 48}, {"t10k", 16}}) {
    std::vector<std::uint8_t> pixels(n * 28 * 28), labels(n);
    for (std::uint32_t i = 0; i < n; ++i) {
      labels[i] = static_cast<std::uint8_t>(i % 10);
      for (std::uint32_t p = 0; p < 28 * 28; ++p) {
        const bool block = p / 28 / 10 == labels[i] / 4 && p % 28 / 6 == labels[i] % 4;
        pixels[i * 28 * 28 + p] = static_cast<std::uint8_t>(block ? 200 + rng() % 56 : rng() % 80);
      }
    }
    REQUIRE(tg_test::write_raw(dir + "/" + split + "-images-idx3-ubyte", tg_test::idx_bytes(0x803, {n, 28, 28}, pixels)));
    REQUIRE(tg_test::write_raw(dir + "/" + split + "-labels-idx1-ubyte", tg_test::idx_bytes(0x801, {n}, labels)));
  }
}

// Starts lenet_bn (output discarded); returns its pid.
pid_t start(const std::vector<std::string>& args) {
  std::vector<char*> argv{const_cast<char*>(TG_LENET_BN_APP)};
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, STDOUT_FILENO);
    ::dup2(null, STDERR_FILENO);
    ::execv(TG_LENET_BN_APP, argv.data());
    ::_exit(127);
  }
  return pid;
}

// Waits for pid; its exit code, or -signal when a signal ended it.
int finish(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

// Whether pid has a file open in `dir` that has no name yet: a save in progress (O_TMPFILE).
bool saving(pid_t pid, const std::string& dir) {
  std::error_code ec;
  for (fs::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string target = fs::read_symlink(it->path(), ec).string();
    if (!ec && target.starts_with(dir) && target.ends_with(" (deleted)")) return true;
  }
  return false;
}

// A checkpoint's tensors (names, shapes, bytes) and epoch: equal for equal training states (the
// metadata's timings differ from run to run).
std::string state_of(const std::string& path) {
  tg::Metadata meta;
  std::string out;
  for (const auto& [name, t] : tg::load_tensors(path, &meta)) {
    out += fmt::format("{} {}:", name, t.sizes());
    out.append(static_cast<const char*>(t.raw_data()), static_cast<std::size_t>(t.numel()) * tg::itemsize(t.dtype()));
  }
  return "epoch " + meta["epoch"] + ": " + out;
}

std::vector<std::string> leftovers(const std::string& dir, const std::string& keep) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename() != keep) out.push_back(e.path().filename().string());
  return out;
}

}  // namespace

TEST_CASE("lenet_bn killed 30 times, in saves too, always leaves a complete checkpoint it resumes from",
          "[apps][errors]") {
  tg_test::TempDir data, run;
  write_dataset(data.str());
  const std::vector<std::string> common{"--data-dir", data.str(), "--batch-size", "16", "--threads", "1",
                                        "--quiet",    "--seed",   "3"};
  auto args = [&](int epochs, const std::string& save, const std::string& resume) {
    std::vector<std::string> a = common;
    a.insert(a.end(), {"--epochs", std::to_string(epochs), "--save", save});
    if (!resume.empty()) a.insert(a.end(), {"--resume", resume});
    return a;
  };

  // The state after each epoch, from runs that nothing interrupts; and how long a whole run takes.
  std::vector<std::string> reference(kEpochs + 1);
  Clock::duration whole{};
  for (int e = 1; e <= kEpochs; ++e) {
    const std::string path = run.file("reference_" + std::to_string(e));
    const auto t0 = Clock::now();
    REQUIRE(finish(start(args(e, path, ""))) == 0);
    whole = Clock::now() - t0;
    reference[static_cast<std::size_t>(e)] = state_of(path);
    fs::remove(path);
  }
  auto epoch_of = [&](const std::string& path) {
    const std::string state = state_of(path);
    for (int e = 1; e <= kEpochs; ++e)
      if (reference[static_cast<std::size_t>(e)] == state) return e;
    return 0;  // not any complete checkpoint of this training
  };

  const std::string ckpt = run.file("lenet.safetensors");
  std::mt19937 rng(14);
  int kills = 0, kills_in_saves = 0, resumes = 0, done = 0;
  std::vector<pid_t> killed;  // the runs a kill ended
  // Until there were enough of each: a kill before the first save leaves nothing to resume from,
  // and a run may end before its save is caught, so how many trials that takes varies.
  for (int trial = 0; (kills < 30 || kills_in_saves < 10 || resumes < 10) && trial < 200; ++trial) {
    const bool resuming = fs::exists(ckpt);
    const int before = resuming ? epoch_of(ckpt) : 0;
    const pid_t pid = start(args(kEpochs, ckpt, resuming ? ckpt : ""));
    resumes += resuming;
    bool killed_in_save = false;
    if (trial % 2 == 0) {  // a random moment of the run
      std::this_thread::sleep_for(std::uniform_real_distribution<double>(0.0, 1.0)(rng) * whole);
    } else {  // the first moment a save is under way
      const auto deadline = Clock::now() + 4 * whole;
      while (Clock::now() < deadline && !(killed_in_save = saving(pid, run.str()))) {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) break;
      }
    }
    ::kill(pid, SIGKILL);
    const int code = finish(pid);
    INFO("trial " << trial << ", resumed from epoch " << before << ", exit " << code);
    REQUIRE((code == 0 || code == -SIGKILL));
    if (code == -SIGKILL) {
      killed.push_back(pid);
      ++kills;
      kills_in_saves += killed_in_save;
    }
    // Either no checkpoint was ever completed, or it is a complete one, not older than before.
    if (before == 0 && !fs::exists(ckpt)) continue;
    REQUIRE(fs::exists(ckpt));
    const int after = epoch_of(ckpt);
    REQUIRE(after >= before);
    REQUIRE(after >= 1);
    if (code == 0) {
      REQUIRE(after == kEpochs);
      ++done;
      fs::remove(ckpt);  // start over, to be killed again
    }
    // A name-less save leaves nothing; only a kill between naming and renaming could leave a
    // temporary, and the next save removes it: at most one, of a killed run, this one's or (when
    // this one was killed before it saved) an earlier one's.
    const std::vector<std::string> left = leftovers(run.str(), "lenet.safetensors");
    CHECK(left.size() <= 1);
    for (const std::string& name : left)
      CHECK(std::any_of(killed.begin(), killed.end(), [&](pid_t p) {
        return name == "lenet.safetensors.tmp." + std::to_string(p);
      }));
  }
  INFO(kills << " kills (" << kills_in_saves << " in saves), " << resumes << " resumes, " << done << " full runs");
  CHECK(kills >= 30);
  CHECK(kills_in_saves >= 10);
  CHECK(resumes >= 10);
  // The last checkpoint resumes to the end, equal to the uninterrupted run, and nothing is left.
  REQUIRE(finish(start(args(kEpochs, ckpt, fs::exists(ckpt) ? ckpt : ""))) == 0);
  CHECK(epoch_of(ckpt) == kEpochs);
  CHECK(leftovers(run.str(), "lenet.safetensors").empty());
}
#endif
