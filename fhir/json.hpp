#pragma once
// Small helpers for reading FHIR JSON with RapidJSON, shared by the fhir/ readers.

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

}  // namespace fra::fhir::json
