#pragma once
// Small helpers for reading FHIR JSON with RapidJSON, shared by the fhir/ readers, and for writing
// JSON text by hand where a page of rows or a log line is built fastest that way.

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <optional>
#include <string>
#include <string_view>

namespace fra::fhir::json {

/// The member `name` of an object, or nullptr when `v` is not an object or has no such member.
inline const rapidjson::Value* member(const rapidjson::Value& v, const char* name) {
  if (!v.IsObject()) return nullptr;
  auto it = v.FindMember(name);
  return it == v.MemberEnd() ? nullptr : &it->value;
}

/// The string member `name`, or nullopt when absent or not a string.
inline std::optional<std::string> string_member(const rapidjson::Value& v, const char* name) {
  const auto* m = member(v, name);
  if (m == nullptr || !m->IsString()) return std::nullopt;
  return std::string(m->GetString(), m->GetStringLength());
}

/// True when `v` is a string equal to `s`.
inline bool is_string(const rapidjson::Value* v, std::string_view s) {
  return v != nullptr && v->IsString() &&
         std::string_view(v->GetString(), v->GetStringLength()) == s;
}

/// Writes `s` to `out` (an output iterator of char) as the inside of a JSON string: `"` and `\`
/// escaped, control characters as \u00XX. Returns the iterator past what it wrote.
template <typename Out>
Out escape_string(std::string_view s, Out out) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      *out++ = '\\';
      *out++ = c;
    } else if (u < 0x20) {
      out = fmt::format_to(out, "\\u{:04x}", u);
    } else {
      *out++ = c;
    }
  }
  return out;
}

/// Writes `"key": "value"` with a RapidJSON writer (any of its Writer types).
template <typename Writer>
void key_string(Writer& w, const char* key, const std::string& value) {
  w.Key(key);
  w.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
}

}  // namespace fra::fhir::json
