// libFuzzer target: any bytes from a FHIR server (a search or history page, a batch response, an
// OperationOutcome, one ndjson line of a Bulk Data export, a dateTime) go through the parsers
// and the resource → row mapping without fault. Besides crashes, hangs and leaks it checks what
// the store relies on: every text a row or a dead letter carries to PostgreSQL is UTF-8 without
// NUL, a sealed reference opens to the patient it names, and a parsed instant formats back to
// itself.

#include <rapidjson/document.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "adapter/config/config.hpp"
#include "fhir/bundle.hpp"
#include "fhir/datetime.hpp"
#include "fhir/resources.hpp"
#include "mapping/pseudonym.hpp"
#include "mapping/rows.hpp"

namespace {

using namespace fra;

void require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz_resource: %s\n", what);
  std::abort();
}

// PostgreSQL text: UTF-8 and no NUL.
bool storable(std::string_view s) {
  return mapping::valid_utf8(s) && s.find('\0') == std::string_view::npos;
}

void check_error(const Error& e) {
  require(!e.code.empty(), "an error without a code");
  require(storable(e.code) && storable(e.message) && storable(e.pointer),
          "a dead letter's code, message or pointer is not storable text");
}

const mapping::Pseudonymizer& pseudonymizer() {
  static const mapping::Pseudonymizer ps(std::string("0123456789abcdef0123456789abcdef"));
  return ps;
}

// The shipped features, plus a count of a code no other feature reads (kept in no unit).
const mapping::ObservationCatalog& catalog() {
  static const mapping::ObservationCatalog cat = [] {
    auto file = config::load_features(FRA_SOURCE_DIR "/models/readmission-risk/features.toml");
    require(file.problems.empty(), "the shipped features do not load");
    auto defs = file.features;
    mapping::FeatureDefinition counted;
    counted.name = "unknown_code_count";
    counted.source = mapping::FeatureDefinition::Source::observation;
    counted.unit = "1";
    counted.codes = {"http://loinc.org|99999-9"};
    counted.aggregation = mapping::FeatureDefinition::Aggregation::count;
    defs.push_back(counted);
    auto c = mapping::catalog_of(defs);
    require(c.ok(), "no catalog of the shipped features");
    return std::move(c).value();
  }();
  return cat;
}

void check_version(const mapping::Version& v) {
  require(v.key.hex.size() == 64, "a pseudonym is not 64 hex digits");
  require(storable(v.version_id), "a stored versionId is not storable text");
}

void map_patient(const rapidjson::Value& r) {
  auto p = fhir::read_patient(r);
  if (!p) return check_error(p.error());
  auto rec = mapping::map_patient(p.value(), pseudonymizer());
  if (!rec) return check_error(rec.error());
  check_version(rec->version);
  require(storable(rec->sex.value_or("")), "a stored sex is not storable text");
  auto opened = pseudonymizer().open(rec->sealed_reference);
  require(opened.ok() && opened.value() == "Patient/" + p->id.value,
          "a sealed reference does not open to its patient");
}

void map_observation(const rapidjson::Value& r) {
  auto o = fhir::read_observation(r);
  if (!o) return check_error(o.error());
  auto rec = mapping::map_observation(o.value(), pseudonymizer(), catalog());
  if (!rec) return check_error(rec.error());
  // One no feature reads and that names no patient is counted and not stored (map_page).
  if (!rec->read && rec->patient.hex.empty()) {
    require(rec->values.empty(), "an Observation no feature reads has values");
    return;
  }
  require(rec->read || rec->values.empty(), "an Observation no feature reads has values");
  check_version(rec->version);
  for (const auto& m : rec->values) {
    require(catalog().count(m.code) == 1, "a stored value of a code no feature reads");
    require(storable(m.unit), "a stored unit is not storable text");
    require(storable(m.value_code), "a stored coded value is not storable text");
    require(m.value_code.empty() == !catalog().at(m.code).coded,
            "a coded value for a code read as numbers, or the reverse");
  }
}

void map_condition(const rapidjson::Value& r) {
  auto c = fhir::read_condition(r);
  if (!c) return check_error(c.error());
  auto rec = mapping::map_condition(c.value(), pseudonymizer());
  if (!rec) return check_error(rec.error());
  check_version(rec->version);
  for (const auto& code : rec->codes) require(storable(code), "a stored code is not storable text");
  require(!rec->abatement || !rec->active || c->clinical_status != "",
          "a Condition without status but abated is active");
}

void map_encounter(const rapidjson::Value& r) {
  auto e = fhir::read_encounter(r);
  if (!e) return check_error(e.error());
  auto rec = mapping::map_encounter(e.value(), pseudonymizer());
  if (!rec) return check_error(rec.error());
  check_version(rec->version);
  require(storable(rec->status) && storable(rec->class_code),
          "a stored status or class is not storable text");
}

// As source/map_page.cpp does for each resource of a page, by the type it claims.
void map_resource(const rapidjson::Value& r) {
  auto type = fhir::resource_type_of(r);
  if (type == "Patient")
    map_patient(r);
  else if (type == "Observation")
    map_observation(r);
  else if (type == "Encounter")
    map_encounter(r);
  else if (type == "Condition")
    map_condition(r);
}

void check_datetime(std::string_view text) {
  auto t = fhir::parse_datetime(text);
  if (!t) return;
  int year = fhir::year_of(*t);
  if (year < 1 || year > 9999) return;  // four-digit years only, after the offset is applied
  auto again = fhir::parse_datetime(fhir::format_instant(*t));
  require(again && *again == *t, "a parsed instant does not format back to itself");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  if (size <= 64) check_datetime(body);

  // A search page, and each of its resources mapped.
  std::size_t entries = 0;
  auto page = fhir::parse_search_page(body);
  if (!page) {
    check_error(page.error());
  } else {
    for (const auto* r : page->resources) map_resource(*r);
    const rapidjson::Value& bundle = *page->doc;
    if (auto it = bundle.FindMember("entry"); it != bundle.MemberEnd() && it->value.IsArray())
      entries = it->value.Size();
  }

  // One resource, as a Bulk Data ndjson line is read (source/ndjson_files.cpp): every view is
  // tried, whatever the resourceType says.
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (!doc.HasParseError() && doc.IsObject()) {
    map_patient(doc);
    map_observation(doc);
    map_encounter(doc);
    map_condition(doc);
  }

  if (auto h = fhir::parse_history_page(body, "Observation"); !h) check_error(h.error());
  if (auto b = fhir::parse_batch_response(body, entries); !b) check_error(b.error());
  (void)fhir::operation_outcome_text(body);
  return 0;
}
