// write_file_atomically over POSIX calls (open, linkat, rename, fsync). Layer: core.
#include "tapegrad/core/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "tapegrad/core/error.h"

namespace tg {

namespace {

namespace fs = std::filesystem;

// Closes a descriptor on every path out.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Removes "<name>.tmp.<pid>" files of dead processes from dir (errors are ignored: this is tidying).
void remove_stale_temporaries(const fs::path& dir, const std::string& name) {
  const std::string prefix = name + ".tmp.";
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string entry = it->path().filename().string();
    if (!entry.starts_with(prefix) || entry.size() == prefix.size() || entry.size() > prefix.size() + 9) continue;
    const std::string digits = entry.substr(prefix.size());
    if (digits.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(digits));
    if (pid != ::getpid() && ::kill(pid, 0) != 0 && errno == ESRCH) fs::remove(it->path(), ec);
  }
}

// Gives the unnamed file `fd` the name `to` (which must not exist).
bool link_unnamed(int fd, const std::string& to) {
  const std::string self = "/proc/self/fd/" + std::to_string(fd);
  if (::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, to.c_str(), AT_SYMLINK_FOLLOW) == 0) return true;
  return ::linkat(fd, "", AT_FDCWD, to.c_str(), AT_EMPTY_PATH) == 0;  // without /proc (needs privilege)
}

}  // namespace

void write_file_atomically(const std::string& path, const std::vector<std::string_view>& pieces,
                           std::string_view op) {
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  remove_stale_temporaries(dir, target.filename().string());

  Fd file;
  file.fd = ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
  const bool unnamed = file.fd >= 0;
  if (!unnamed && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL))  // no O_TMPFILE here
    file.fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  TG_CHECK(file.fd >= 0, "[{}] cannot write '{}': {}", op, path, std::strerror(errno));

  auto fail = [&](const char* what) {
    const int err = errno;
    ::unlink(tmp.c_str());
    TG_CHECK(false, "[{}] {} '{}' failed: {}", op, what, path, std::strerror(err));
  };
  for (std::string_view piece : pieces)
    if (!write_all(file.fd, piece)) fail("writing");
  if (::fsync(file.fd) != 0) fail("syncing");
  if (unnamed) {
    ::unlink(tmp.c_str());  // a leftover of an earlier process that had our pid
    if (!link_unnamed(file.fd, tmp)) fail("naming the temporary file of");
  }
  if (::close(file.fd) != 0) {
    file.fd = -1;
    fail("closing");
  }
  file.fd = -1;
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("moving the new file into place at");

  // The rename lives in the directory: without this sync a power loss can bring the old file back.
  Fd directory;
  directory.fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  TG_CHECK(directory.fd >= 0 && ::fsync(directory.fd) == 0, "[{}] wrote '{}' but cannot sync its directory: {}", op,
           path, std::strerror(errno));
}

}  // namespace tg
