#pragma once
// The files the configuration names that hold a secret: the pseudonym and sealing keys, the
// SMART and mutual-TLS private keys, the notification secret, the bearer token and the basic
// authentication password. Every one is read here, with one rule for all of them.

#include <cstddef>
#include <string>

#include "fhir/result.hpp"

namespace fra::config {

/// The bytes of a secret file, as they are. Errors (one line naming the path, never a byte of
/// the file): it cannot be opened, is not a regular file, gives group or others any access
/// (anything but 0600 or 0400), or holds fewer than `min_bytes` bytes.
Result<std::string> read_secret_file(const std::string& path, std::size_t min_bytes);

}  // namespace fra::config
