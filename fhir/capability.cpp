#include "fhir/capability.hpp"

#include <rapidjson/document.h>

#include "fhir/json.hpp"

namespace fra::fhir {

using json::member;
using json::string_member;

bool Capability::can(const std::string& type, const std::string& interaction) const {
  auto it = resources.find(type);
  return it != resources.end() && it->second.interactions.contains(interaction);
}

bool Capability::searches_by(const std::string& type, const std::string& param) const {
  auto it = resources.find(type);
  return it != resources.end() &&
         (it->second.search_params.contains(param) || server_search_params.contains(param));
}

bool Capability::updates_conditionally(const std::string& type) const {
  auto it = resources.find(type);
  return it != resources.end() && it->second.conditional_update &&
         it->second.interactions.contains("update");
}

Result<Capability> parse_capability(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  if (doc.HasParseError() || !json::is_string(member(doc, "resourceType"), "CapabilityStatement"))
    return make_error("bad-capability", "the server's metadata is not a CapabilityStatement");
  Capability cap;
  const auto* rest = member(doc, "rest");
  if (rest == nullptr || !rest->IsArray()) return cap;
  for (const auto& r : rest->GetArray()) {
    if (string_member(r, "mode").value_or("server") != "server") continue;
    if (const auto* list = member(r, "searchParam"); list != nullptr && list->IsArray())
      for (const auto& p : list->GetArray())
        if (auto name = string_member(p, "name")) cap.server_search_params.insert(*name);
    const auto* resources = member(r, "resource");
    if (resources == nullptr || !resources->IsArray()) continue;
    for (const auto& res : resources->GetArray()) {
      auto type = string_member(res, "type");
      if (!type) continue;
      auto& out = cap.resources[*type];
      if (const auto* list = member(res, "interaction"); list != nullptr && list->IsArray())
        for (const auto& i : list->GetArray())
          if (auto code = string_member(i, "code")) out.interactions.insert(*code);
      if (const auto* list = member(res, "searchParam"); list != nullptr && list->IsArray())
        for (const auto& p : list->GetArray())
          if (auto name = string_member(p, "name")) out.search_params.insert(*name);
      if (const auto* c = member(res, "conditionalUpdate"); c != nullptr && c->IsBool())
        out.conditional_update = c->GetBool();
    }
  }
  return cap;
}

Capability read_capability(Client& client) {
  auto resp = client.get("metadata");
  if (resp.status != 200)
    throw FhirError("GET metadata: HTTP " + std::to_string(resp.status), resp.status);
  auto cap = parse_capability(resp.body);
  if (!cap) throw FhirError("GET metadata: " + cap.error().message, resp.status);
  return std::move(cap).value();
}

}  // namespace fra::fhir
