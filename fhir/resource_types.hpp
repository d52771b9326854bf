#pragma once
// The resource types the adapter reads, in the order a sync takes them (a patient before the
// resources that refer to it), and what each is followed for. One table: a new type is a row.

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace fra::fhir {

struct ReadType {
  std::string_view name;
  bool deletions_followed;  ///< its `_history` is followed for deletes (patients are never removed)
  bool when_read;           ///< fetched only when some feature reads it (Condition), else always
};

inline constexpr std::array<ReadType, 4> kReadTypes{{
    {"Patient", false, false},
    {"Encounter", true, false},
    {"Condition", true, true},
    {"Observation", true, false},
}};

/// The rows of kReadTypes a sync fetches, in order: those read always, and those read only when
/// a feature does when `conditions` (some feature reads Conditions).
inline std::vector<ReadType> read_types(bool conditions) {
  std::vector<ReadType> out;
  for (const auto& t : kReadTypes)
    if (!t.when_read || conditions) out.push_back(t);
  return out;
}

/// The names of read_types(conditions), in order.
inline std::vector<std::string> read_type_names(bool conditions) {
  std::vector<std::string> out;
  for (const auto& t : read_types(conditions)) out.emplace_back(t.name);
  return out;
}

/// The row of `type` in kReadTypes, nullptr for a type the adapter does not read.
constexpr const ReadType* find_read_type(std::string_view type) {
  for (const auto& t : kReadTypes)
    if (t.name == type) return &t;
  return nullptr;
}

/// True for a type in kReadTypes.
constexpr bool is_read_type(std::string_view type) { return find_read_type(type) != nullptr; }

/// True for a type in kReadTypes whose deletions are followed.
constexpr bool deletions_followed(std::string_view type) {
  const ReadType* t = find_read_type(type);
  return t != nullptr && t->deletions_followed;
}

}  // namespace fra::fhir
