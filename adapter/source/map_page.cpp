#include "adapter/source/map_page.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>

#include "fhir/json.hpp"
#include "mapping/rows.hpp"

namespace fra::source {
namespace {

bool version_id_missing(const rapidjson::Value& r) {
  const auto* meta = fhir::json::member(r, "meta");
  return meta == nullptr || !fhir::json::string_member(*meta, "versionId");
}

// The version of a resource whether or not it maps, so a dead letter is kept once per version.
std::string version_or_instant(const fhir::Meta& m) {
  if (m.version_id.empty()) return fhir::format_instant(m.last_updated);
  if (!mapping::valid_utf8(m.version_id))
    return "hex:" + mapping::to_hex(reinterpret_cast<const unsigned char*>(m.version_id.data()),
                                    m.version_id.size());
  return m.version_id;
}

template <typename View, typename Map, typename Record>
void take(store::Page& out, const std::string& type, const Result<View>& view, Map&& map,
          const mapping::Pseudonymizer& ps, std::vector<Record>& into) {
  if (!view) return;
  auto rec = map(view.value());
  if (!rec) {
    out.dead_letters.push_back({type, ps.of(type, view->id), version_or_instant(view->meta),
                                rec.error(), ps.seal(type + "/" + view->id.value)});
    return;
  }
  into.push_back(std::move(rec).value());
}

// A server that sends neither meta.versionId nor meta.lastUpdated (Epic): the version of what it
// sent is a keyed hash of the resource's content, so the same content is not stored twice and
// changed content is a new version, whichever way (search, per patient, a bulk file) it came.
template <typename Record>
void version_by_content(std::vector<Record>& records, std::size_t from,
                        const std::string& version) {
  for (std::size_t i = from; i < records.size(); ++i) {
    auto& v = records[i].version;
    if (v.version_id.empty() && v.last_updated == 0) v.version_id = version;
  }
}

std::string content_version(const rapidjson::Value& r, const mapping::Pseudonymizer& ps) {
  rapidjson::StringBuffer text;
  rapidjson::Writer<rapidjson::StringBuffer> w(text);
  r.Accept(w);
  return "c" + ps.derive("content", text.GetString()).hex.substr(0, 32);
}

}  // namespace

void map_resource(const std::string& type, const rapidjson::Value& r,
                  const mapping::Pseudonymizer& ps, const mapping::ObservationCatalog& catalog,
                  store::Page& out) {
  std::string rtype = fhir::resource_type_of(r);
  std::string id = fhir::resource_id_of(r);
  std::optional<mapping::Pseudonym> key;
  std::vector<std::uint8_t> sealed;
  if (!id.empty()) {
    key = ps.of(rtype.empty() ? type : rtype, fhir::FhirId{id});
    sealed = ps.seal((rtype.empty() ? type : rtype) + "/" + id);
  }
  if (rtype != type) {
    out.dead_letters.push_back(
        {type, key, "",
         make_error("unexpected-type", "a resource of another type than expected", "/resourceType"),
         sealed});
    return;
  }
  if (type == "Condition" && !catalog.conditions) {  // no feature reads one: not looked at
    ++out.ignored;
    return;
  }
  const std::size_t patients = out.patients.size(), observations = out.observations.size(),
                    encounters = out.encounters.size(), conditions = out.conditions.size(),
                    dead = out.dead_letters.size();
  fhir::Micros last_updated = 0;
  auto note = [&](const auto& view) {
    if (view)
      last_updated = view->meta.last_updated;
    else
      out.dead_letters.push_back({type, key, "", view.error(), sealed});
  };
  if (type == "Patient") {
    auto v = fhir::read_patient(r);
    note(v);
    take(
        out, type, v, [&](const auto& p) { return mapping::map_patient(p, ps); }, ps, out.patients);
  } else if (type == "Observation") {
    auto v = fhir::read_observation(r);
    note(v);
    take(
        out, type, v, [&](const auto& o) { return mapping::map_observation(o, ps, catalog); }, ps,
        out.observations);
    // One no feature reads: counted, and stored (without values) only when it names its patient.
    if (!out.observations.empty() && out.observations.size() > observations &&
        !out.observations.back().read) {
      ++out.ignored;
      if (out.observations.back().patient.hex.empty()) out.observations.pop_back();
    }
  } else if (type == "Encounter") {
    auto v = fhir::read_encounter(r);
    note(v);
    take(
        out, type, v, [&](const auto& e) { return mapping::map_encounter(e, ps); }, ps,
        out.encounters);
  } else if (type == "Condition") {
    auto v = fhir::read_condition(r);
    note(v);
    take(
        out, type, v, [&](const auto& c) { return mapping::map_condition(c, ps); }, ps,
        out.conditions);
  }
  out.max_last_updated = std::max(out.max_last_updated, last_updated);
  if (last_updated == 0 && version_id_missing(r)) {
    const std::string version = content_version(r, ps);
    version_by_content(out.patients, patients, version);
    version_by_content(out.observations, observations, version);
    version_by_content(out.encounters, encounters, version);
    version_by_content(out.conditions, conditions, version);
    for (std::size_t i = dead; i < out.dead_letters.size(); ++i)
      out.dead_letters[i].version_id = version;
  }
}

store::Page map_page(const std::string& type, const fhir::SearchPage& page,
                     const mapping::Pseudonymizer& ps, const mapping::ObservationCatalog& catalog) {
  store::Page out;
  out.resource_type = type;
  for (const rapidjson::Value* r : page.resources) map_resource(type, *r, ps, catalog, out);
  return out;
}

}  // namespace fra::source
