#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "adapter/config/secret_file.hpp"

using fra::config::read_secret_file;

namespace {

// A file of `bytes` with `mode`, removed when the test ends.
struct SecretFile {
  std::string path = "/tmp/fra-unit-secret-" + std::to_string(::getpid());
  SecretFile(const std::string& bytes, mode_t mode) {
    std::ofstream(path, std::ios::binary) << bytes;
    ::chmod(path.c_str(), mode);
  }
  ~SecretFile() { std::remove(path.c_str()); }
};

}  // namespace

// Defect 3: fhir.basic_password_file and fhir.bearer_token_file were read without the mode check
// the key files had, so a password any local user could read was accepted.
TEST_CASE("defect 3, a secret file others can read is accepted: now refused, whatever its mode") {
  for (mode_t mode : {0644, 0640, 0604, 0660, 0620, 0602, 0610, 0601}) {
    SecretFile f("correct horse battery staple\n", mode);
    auto r = read_secret_file(f.path, 1);
    INFO("mode " << std::oct << mode);
    REQUIRE(!r.ok());
    char octal[8];
    std::snprintf(octal, sizeof octal, "%o", static_cast<unsigned>(mode));
    CHECK(r.error().message ==
          f.path + ": readable by group or others (mode " + octal + "); chmod 600 it");
  }
  for (mode_t mode : {0600, 0400}) {
    SecretFile f("correct horse battery staple\n", mode);
    auto r = read_secret_file(f.path, 1);
    REQUIRE(r.ok());
    CHECK(r.value() == "correct horse battery staple\n");  // as the file holds it
  }
}

TEST_CASE("secret files: missing, a folder, empty and short are refused with the reason") {
  const std::string missing = "/nonexistent/fra-secret";
  CHECK(read_secret_file(missing, 1).error().message ==
        missing + ": cannot read (No such file or directory)");
  auto dir = std::filesystem::temp_directory_path() /
             ("fra-unit-secret-dir-" + std::to_string(::getpid()));
  std::filesystem::create_directory(dir);
  ::chmod(dir.c_str(), 0700);
  CHECK(read_secret_file(dir.string(), 1).error().message == dir.string() + ": not a regular file");
  std::filesystem::remove(dir);
  {
    SecretFile f("", 0600);
    CHECK(read_secret_file(f.path, 1).error().message == f.path + ": the file is empty");
  }
  {
    SecretFile f(std::string(16, 'a'), 0600);
    CHECK(read_secret_file(f.path, 32).error().message ==
          f.path + ": key is 16 bytes; at least 32 are required");
    CHECK(read_secret_file(f.path, 16).value().size() == 16);
  }
}

TEST_CASE("no byte of a secret appears in any message") {
  const std::string secret = "s3cr3t-Zq9";
  for (mode_t mode : {0644, 0600}) {
    SecretFile f(secret, mode);
    auto r = read_secret_file(f.path, 64);
    REQUIRE(!r.ok());
    CHECK(r.error().message.find(secret) == std::string::npos);
    CHECK(r.error().message.find("Zq9") == std::string::npos);
  }
}
