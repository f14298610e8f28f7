// write_file_atomically: contents replaced whole, nothing left behind, temporaries of killed
// writers tidied, errors named. Tag [core].
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include "tapegrad/core/atomic_file.h"
#include "tapegrad/core/error.h"
#include "tests/support/files.h"

using Catch::Contains;

namespace {

std::size_t entries(const std::string& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}

// The pid of a process that has exited and been reaped.
pid_t dead_pid() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return pid;
}

}  // namespace

TEST_CASE("write_file_atomically replaces a file whole and leaves nothing else", "[core]") {
  tg_test::TempDir dir;
  const std::string path = dir.file("state.bin");
  tg::write_file_atomically(path, {"first ", "version"}, "test");
  CHECK(tg_test::read_raw(path) == "first version");
  tg::write_file_atomically(path, {std::string_view("\0\1", 2), "", "second"}, "test");
  CHECK(tg_test::read_raw(path) == std::string("\0\1second", 8));
  tg::write_file_atomically(path, {}, "test");
  CHECK(tg_test::read_raw(path).empty());
  CHECK(entries(dir.str()) == 1);
  CHECK((std::filesystem::status(path).permissions() & std::filesystem::perms::owner_write) !=
        std::filesystem::perms::none);
}

TEST_CASE("write_file_atomically removes the temporaries of writers that were killed", "[core]") {
  tg_test::TempDir dir;
  const std::string path = dir.file("ckpt");
  const std::string stale = path + ".tmp." + std::to_string(dead_pid());
  const std::string alive = path + ".tmp." + std::to_string(::getppid());  // a running process's: kept
  const std::string other = dir.file("other.tmp.1");                      // another file's: kept
  REQUIRE(tg_test::write_raw(stale, "half a checkpoint"));
  REQUIRE(tg_test::write_raw(alive, "being written"));
  REQUIRE(tg_test::write_raw(other, "not ours"));
  tg::write_file_atomically(path, {"done"}, "test");
  CHECK(tg_test::read_raw(path) == "done");
  CHECK(!std::filesystem::exists(stale));
  CHECK(std::filesystem::exists(alive));
  CHECK(std::filesystem::exists(other));
}

TEST_CASE("write_file_atomically throws naming the op and the path, and keeps the old file", "[core][errors]") {
  tg_test::TempDir dir;
  const std::string missing = dir.file("no/such/dir/file");
  CHECK_THROWS_WITH(tg::write_file_atomically(missing, {"x"}, "save"),
                    Contains("[save] cannot write '" + missing + "'") && Contains("No such file or directory"));
  // The target is a directory: the rename fails, the temporary goes.
  const std::string target = dir.file("a_directory");
  std::filesystem::create_directory(target);
  CHECK_THROWS_WITH(tg::write_file_atomically(target, {"x"}, "save"),
                    Contains("[save] moving the new file into place at '" + target + "' failed"));
  CHECK(std::filesystem::is_directory(target));
  CHECK(entries(dir.str()) == 1);
}
