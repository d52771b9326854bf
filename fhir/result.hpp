#pragma once
// Result<T>: the value of a step that bad input can make fail, shaped like std::expected.
// The error names a stable code, a message without PHI, and a JSON pointer into the resource.

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace fra {

/// Why a piece of input could not be used. Never carries field values (they may be PHI).
struct Error {
  std::string code;     ///< stable, machine-readable: "missing-subject", "bad-date", ...
  std::string message;  ///< human-readable, PHI-free
  std::string pointer;  ///< JSON pointer to the offending element, "" if none
};

/// A value or an Error.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit like std::expected
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  const Error& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }
  const T* operator->() const { return &value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Error> v_;
};

/// Builds an Error.
inline Error make_error(std::string code, std::string message, std::string pointer = {}) {
  return Error{std::move(code), std::move(message), std::move(pointer)};
}

}  // namespace fra
