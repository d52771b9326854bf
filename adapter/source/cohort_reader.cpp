#include "adapter/source/cohort_reader.hpp"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <set>
#include <stdexcept>

#include "adapter/source/fetch_page.hpp"
#include "fhir/json.hpp"

namespace fra::source {
namespace {

using fhir::json::member;
using fhir::json::string_member;

std::string trim(std::string s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

// "Patient/<id>" (relative, or absolute on the server's base) -> "<id>"; "" otherwise.
std::string patient_id_of(const std::string& reference) {
  const std::string prefix = "Patient/";
  auto at = reference.rfind(prefix);
  if (at == std::string::npos || (at > 0 && reference[at - 1] != '/')) return "";
  std::string id = reference.substr(at + prefix.size());
  if (id.empty() || id.find_first_of("/?#") != std::string::npos) return "";
  return id;
}

std::vector<std::string> group_members(fhir::Client& client, const std::string& group_id) {
  auto resp = client.get("Group/" + fhir::url_encode(group_id));
  if (resp.status != 200)
    throw fhir::FhirError(fmt::format("GET Group/{}: HTTP {}", group_id, resp.status), resp.status);
  rapidjson::Document doc;
  doc.Parse(resp.body.data(), resp.body.size());
  if (doc.HasParseError() || !fhir::json::is_string(member(doc, "resourceType"), "Group"))
    throw fhir::FhirError(fmt::format("GET Group/{}: not a Group", group_id), resp.status);
  std::vector<std::string> ids;
  const auto* list = member(doc, "member");
  if (list == nullptr || !list->IsArray()) return ids;
  for (const auto& m : list->GetArray()) {
    if (const auto* inactive = member(m, "inactive"); inactive != nullptr && inactive->IsTrue())
      continue;
    const auto* entity = member(m, "entity");
    auto id = entity ? patient_id_of(string_member(*entity, "reference").value_or("")) : "";
    if (!id.empty()) ids.push_back(id);
  }
  return ids;
}

// The id of the one Patient with an identifier, "" when none or several answer.
std::string resolve_identifier(fhir::Client& client, const std::string& system_value) {
  auto page = fetch_page(client, "Patient?identifier=" + fhir::url_encode(system_value));
  if (page.resources.size() != 1) return "";
  return string_member(*page.resources[0], "id").value_or("");
}

// One line of a patients file: a Patient id or an identifier (`system|value`); blank lines and
// comments are skipped. Throws std::runtime_error naming the line number, never its content.
struct Line {
  int number = 0;
  std::string id, identifier;
};

std::vector<Line> read_patients_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(fmt::format("cohort.patients_file: cannot read {}", path));
  std::vector<Line> out;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    line = trim(line.substr(0, line.find('#')));
    if (line.empty()) continue;
    if (line.starts_with("Patient/")) {
      auto id = patient_id_of(line);
      if (id.empty())
        throw std::runtime_error(fmt::format("cohort.patients_file line {}: not Patient/<id>", n));
      out.push_back({n, id, ""});
    } else if (auto bar = line.find('|'); bar != std::string::npos && bar + 1 < line.size()) {
      out.push_back({n, "", line});
    } else {
      throw std::runtime_error(fmt::format(
          "cohort.patients_file line {}: expected Patient/<id> or an identifier system|value", n));
    }
  }
  return out;
}

std::vector<std::string> file_patients(fhir::Client& client, const std::string& path,
                                       int& unresolved) {
  std::vector<std::string> ids;
  for (const auto& line : read_patients_file(path)) {
    if (!line.id.empty()) {
      ids.push_back(line.id);
      continue;
    }
    auto id = resolve_identifier(client, line.identifier);
    if (id.empty()) {
      spdlog::warn("cohort.patients_file line {}: no single Patient has that identifier",
                   line.number);
      ++unresolved;
    } else {
      ids.push_back(id);
    }
  }
  return ids;
}

}  // namespace

std::optional<std::string> check_patients_file(const std::string& path) {
  try {
    read_patients_file(path);
    return std::nullopt;
  } catch (const std::runtime_error& e) {
    return e.what();
  }
}

CohortReading read_cohort(fhir::Client& client, const CohortSpec& spec,
                          const mapping::Pseudonymizer& ps) {
  std::vector<std::string> ids;
  CohortReading out;
  if (!spec.group_id.empty()) ids = group_members(client, spec.group_id);
  if (!spec.patients_file.empty()) {
    auto more = file_patients(client, spec.patients_file, out.unresolved);
    ids.insert(ids.end(), more.begin(), more.end());
  }
  std::set<std::string> seen;
  for (const auto& id : ids)
    if (seen.insert(id).second)
      out.members.push_back({ps.of("Patient", fhir::FhirId{id}), ps.seal("Patient/" + id)});
  return out;
}

}  // namespace fra::source
