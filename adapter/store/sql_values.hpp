#pragma once
// How values cross into statements and back, shared by the store's repositories only.

#include <cstdint>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <string_view>
#include <vector>

namespace fra::store::detail {

/// Lower-case hex of bytes, and back (bytea crosses as hex text: decode(x, 'hex')).
std::string to_hex(const std::vector<std::uint8_t>& b);
std::vector<std::uint8_t> from_hex(const std::string& hex);

/// An array literal of strings that need no quoting (pseudonyms, numbers): {a,b,c}.
std::string plain_array(const std::vector<std::string>& items);
/// An array literal of arbitrary strings: each element quoted, `"` and `\` escaped.
std::string text_array(const std::vector<std::string>& items);

/// Appends `s` to `out` as a JSON string (quoted, escaped).
void append_json_string(std::string& out, std::string_view s);

/// A field that may be NULL (libpqxx 6.4 reads std::optional only when built with it).
template <typename T>
std::optional<T> opt(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<T>();
}

}  // namespace fra::store::detail
