#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include <cmath>

#include "adapter/config/config.hpp"
#include "mapping/rows.hpp"
#include "mapping/units.hpp"

using namespace fra;

namespace {
const mapping::Pseudonymizer& ps() {
  static mapping::Pseudonymizer p(std::string(32, 'k'));
  return p;
}

const mapping::ObservationCatalog& catalog() {
  static config::FeatureFile f =
      config::load_features(FRA_SOURCE_DIR "/models/readmission-risk/features.toml");
  REQUIRE(f.problems.empty());
  return f.catalog;
}

Result<mapping::ObservationRecord> map_json(const std::string& json) {
  rapidjson::Document d;
  d.Parse(json.c_str());
  REQUIRE(!d.HasParseError());
  auto o = fhir::read_observation(d);
  REQUIRE(o.ok());
  return mapping::map_observation(o.value(), ps(), catalog());
}

std::string vital(const std::string& code, const std::string& value, const std::string& unit,
                  const std::string& status = "final") {
  return R"({"resourceType":"Observation","id":"o1","status":")" + status +
         R"(","code":{"coding":[{"system":"http://loinc.org","code":")" + code +
         R"("}]},"subject":{"reference":"Patient/p1"},"effectiveDateTime":"2026-01-01T10:00:00Z",
           "valueQuantity":{"value":)" +
         value + R"(,"system":"http://unitsofmeasure.org","code":")" + unit + R"("}})";
}
}  // namespace

TEST_CASE("UCUM conversions between the units vital signs arrive in") {
  CHECK(*mapping::convert_unit(98.6, "[degF]", "Cel") == doctest::Approx(37.0));
  CHECK(*mapping::convert_unit(37.0, "Cel", "[degF]") == doctest::Approx(98.6));
  CHECK(*mapping::convert_unit(154.0, "[lb_av]", "kg") == doctest::Approx(69.8532));
  CHECK(*mapping::convert_unit(70000, "g", "kg") == doctest::Approx(70));
  CHECK(*mapping::convert_unit(70, "[in_i]", "cm") == doctest::Approx(177.8));
  CHECK(!mapping::convert_unit(70, "kg", "cm"));
  CHECK(!mapping::convert_unit(70, "stone", "kg"));
}

TEST_CASE("a temperature in Fahrenheit is stored in Celsius, keyed by pseudonyms") {
  auto r = map_json(vital("8310-5", "100.4", "[degF]"));
  REQUIRE(r.ok());
  REQUIRE(r->values.size() == 1);
  CHECK(r->values[0].value == doctest::Approx(38.0));
  CHECK(r->values[0].unit == "Cel");
  CHECK(r->patient == ps().of("Patient", {"p1"}));
  CHECK(r->version.key == ps().of("Observation", {"o1"}));
}

TEST_CASE("entered-in-error, no value and unknown codes give a record without values") {
  CHECK(map_json(vital("8867-4", "80", "/min", "entered-in-error"))->values.empty());
  CHECK(map_json(vital("99999-9", "80", "/min"))->values.empty());
  auto no_value =
      R"({"resourceType":"Observation","id":"o1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},
                      "subject":{"reference":"Patient/p1"},"dataAbsentReason":{"text":"asked but declined"}})";
  auto r = map_json(no_value);
  REQUIRE(r.ok());
  CHECK(r->values.empty());
}

TEST_CASE("bad observations are refused with a code and pointer") {
  CHECK(map_json(vital("8867-4", "80", "kg")).error().code == "unknown-unit");
  CHECK(map_json(vital("8867-4", "80", "kg")).error().pointer == "/valueQuantity/code");
  CHECK(map_json(vital("8867-4", "4000", "/min")).error().code == "implausible-value");
  auto no_subject =
      R"({"resourceType":"Observation","id":"o1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"valueQuantity":{"value":1}})";
  CHECK(map_json(no_subject).error().code == "missing-subject");
  auto no_time =
      R"({"resourceType":"Observation","id":"o1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},
                     "subject":{"reference":"Patient/p1"},"valueQuantity":{"value":80,"system":"http://unitsofmeasure.org","code":"/min"}})";
  CHECK(map_json(no_time).error().code == "missing-effective");
}

TEST_CASE(
    "what no feature reads is ignored, never a dead letter; what one reads and cannot use is") {
  // Synthea: a cause of death as a coded value, a sexual orientation survey answer as text; no
  // feature here reads either code.
  auto cause =
      R"({"resourceType":"Observation","id":"o1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"69453-9"}]},
          "subject":{"reference":"Patient/p1"},"effectiveDateTime":"2026-01-01T10:00:00+00:00",
          "valueCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"266919005"}]}})";
  auto r = map_json(cause);
  REQUIRE(r.ok());
  CHECK_FALSE(r->read);
  CHECK(r->values.empty());
  CHECK(r->patient == ps().of("Patient", {"p1"}));  // stored without values: retracts a read one
  auto unread_no_subject =
      R"({"resourceType":"Observation","id":"o1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"76690-7"}]},"valueString":"never"})";
  auto n = map_json(unread_no_subject);
  REQUIRE(n.ok());
  CHECK_FALSE(n->read);
  CHECK(n->patient.hex.empty());
  // A heart rate as text is read and unusable: a dead letter, as before.
  auto text_rate =
      R"({"resourceType":"Observation","id":"o1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},
          "subject":{"reference":"Patient/p1"},"effectiveDateTime":"2026-01-01T10:00:00Z","valueString":"fast"})";
  CHECK(map_json(text_rate).error().code == "bad-value");
  CHECK(map_json(text_rate).error().pointer == "/valueString");
  // Entered in error, its value does not matter.
  auto retracted =
      R"({"resourceType":"Observation","id":"o1","status":"entered-in-error","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},
          "subject":{"reference":"Patient/p1"},"valueString":"fast"})";
  CHECK(map_json(retracted)->values.empty());
}

TEST_CASE("cancelled encounters do not count") {
  rapidjson::Document d;
  d.Parse(
      R"({"resourceType":"Encounter","id":"e1","status":"cancelled","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"IMP"},
              "subject":{"reference":"Patient/p1"},"period":{"start":"2026-01-01T00:00:00Z","end":"2026-01-03T00:00:00Z"}})");
  auto e = fhir::read_encounter(d);
  REQUIRE(e.ok());
  auto r = mapping::map_encounter(e.value(), ps());
  REQUIRE(r.ok());
  CHECK(!r->counts);
  CHECK(r->class_code == "IMP");
}

TEST_CASE("a component repeated with the same code keeps its first value, once") {
  auto bp =
      R"({"resourceType":"Observation","id":"bp","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},
    "subject":{"reference":"Patient/p1"},"effectiveDateTime":"2026-01-01T10:00:00Z","component":[
    {"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":120,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}},
    {"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":125,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}},
    {"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},"valueQuantity":{"value":80,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}}]})";
  auto r = map_json(bp);
  REQUIRE(r.ok());
  REQUIRE(r->values.size() == 2);
  CHECK(r->values[0].value == 120);
  CHECK(r->values[1].code == "http://loinc.org|8462-4");
}

TEST_CASE("text the store keeps must be UTF-8: a bad encounter status is a dead letter") {
  for (const char* bad : {"fin\xff", "\xc0\xaf", "\xed\xa0\x80", "\xe2\x82"}) {
    fhir::Encounter e;
    e.id = {"e1"};
    e.status = bad;
    e.subject = fhir::FhirId{"p1"};
    auto r = mapping::map_encounter(e, ps());
    REQUIRE_MESSAGE(!r.ok(), bad);
    CHECK(r.error().code == "invalid-utf8");
    CHECK(r.error().pointer == "/status");
  }
  fhir::Encounter ok;
  ok.id = {"e1"};
  ok.status = "finished \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
  ok.subject = fhir::FhirId{"p1"};
  CHECK(mapping::map_encounter(ok, ps()).ok());
}

TEST_CASE("an empty gender is an unknown sex, as an absent one") {
  for (const char* json :
       {R"({"resourceType":"Patient","id":"p1","gender":"","birthDate":"1950-01-01"})",
        R"({"resourceType":"Patient","id":"p1","birthDate":"1950-01-01"})"}) {
    CAPTURE(json);
    rapidjson::Document d;
    d.Parse(json);
    auto p = fhir::read_patient(d);
    REQUIRE(p.ok());
    auto r = mapping::map_patient(p.value(), ps());
    REQUIRE(r.ok());
    CHECK(!r->sex.has_value());
  }
}
