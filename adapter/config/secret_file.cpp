#include "adapter/config/secret_file.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace fra::config {
namespace {

// Closes the descriptor on every way out.
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

Result<std::string> read_secret_file(const std::string& path, std::size_t min_bytes) {
  // The mode is read from the descriptor the bytes come from, so that a file swapped between a
  // check by name and the read cannot slip through.
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY)};
  if (f.fd < 0)
    return make_error("secret-file",
                      fmt::format("{}: cannot read ({})", path, std::strerror(errno)));
  struct stat st {};
  if (::fstat(f.fd, &st) != 0 || !S_ISREG(st.st_mode))
    return make_error("secret-file", fmt::format("{}: not a regular file", path));
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
    return make_error("secret-file",
                      fmt::format("{}: readable by group or others (mode {:o}); chmod 600 it", path,
                                  st.st_mode & 0777));
  std::string bytes;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(f.fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error("secret-file",
                        fmt::format("{}: cannot read ({})", path, std::strerror(errno)));
    }
    bytes.append(buf, static_cast<std::size_t>(n));
  }
  if (bytes.empty() && min_bytes > 0)
    return make_error("secret-file", fmt::format("{}: the file is empty", path));
  if (bytes.size() < min_bytes)
    return make_error("secret-file", fmt::format("{}: key is {} bytes; at least {} are required",
                                                 path, bytes.size(), min_bytes));
  return bytes;
}

}  // namespace fra::config
