#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include "fhir/bundle.hpp"
#include "fhir/resources.hpp"

namespace {
rapidjson::Document parse(const char* json) {
  rapidjson::Document d;
  d.Parse(json);
  REQUIRE(!d.HasParseError());
  return d;
}
}  // namespace

TEST_CASE("a blood-pressure panel is read with its components") {
  auto d = parse(R"({"resourceType":"Observation","id":"bp1","meta":{"versionId":"2","lastUpdated":"2026-01-02T03:04:05.678Z"},
    "status":"final","code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},
    "subject":{"reference":"Patient/p1"},"effectiveDateTime":"2026-01-01T10:00:00Z",
    "component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":130,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}},
                 {"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},"valueQuantity":{"value":85,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}}]})");
  auto o = fra::fhir::read_observation(d);
  REQUIRE(o.ok());
  CHECK(o->id.value == "bp1");
  CHECK(o->meta.version_id == "2");
  CHECK(o->subject->value == "p1");
  CHECK(!o->value);
  REQUIRE(o->components.size() == 2);
  CHECK(o->components[0].value->value == 130);
  CHECK(o->components[1].code[0].code == "8462-4");
}

TEST_CASE("subject references: relative, absolute and versioned name the patient; others do not") {
  auto subject_of = [](const char* ref) {
    std::string json = std::string(R"({"resourceType":"Observation","id":"o","status":"final","subject":{"reference":")") + ref + "\"}}";
    auto d = parse(json.c_str());
    return fra::fhir::read_observation(d)->subject;
  };
  CHECK(subject_of("Patient/abc")->value == "abc");
  CHECK(subject_of("https://ehr.example.org/fhir/R4/Patient/abc")->value == "abc");
  CHECK(subject_of("Patient/abc/_history/3")->value == "abc");
  CHECK(!subject_of("Group/abc"));
  CHECK(!subject_of("NotPatient/abc"));
}

TEST_CASE("a value of the wrong type is refused with a pointer to it") {
  auto d = parse(R"({"resourceType":"Observation","id":"o","status":"final","valueString":"high"})");
  auto o = fra::fhir::read_observation(d);
  REQUIRE(!o.ok());
  CHECK(o.error().code == "bad-value");
  CHECK(o.error().pointer == "/valueString");
  auto d2 = parse(R"({"resourceType":"Observation","id":"o","status":"final","valueQuantity":{"value":"12"}})");
  CHECK(fra::fhir::read_observation(d2).error().pointer == "/valueQuantity/value");
}

TEST_CASE("an unparseable date is refused, and the message holds no field value") {
  auto d = parse(R"({"resourceType":"Patient","id":"p","birthDate":"1960-02-31"})");
  auto p = fra::fhir::read_patient(d);
  REQUIRE(!p.ok());
  CHECK(p.error().code == "bad-date");
  CHECK(p.error().message.find("1960") == std::string::npos);
}

TEST_CASE("a patient keeps only the birth year") {
  auto d = parse(R"({"resourceType":"Patient","id":"p","gender":"female","birthDate":"1960-02-11"})");
  auto p = fra::fhir::read_patient(d);
  REQUIRE(p.ok());
  CHECK(*p->birth_year == 1960);
  CHECK(*p->gender == "female");
}

TEST_CASE("search pages: matches only, the next link, and clear errors for what is not a Bundle") {
  auto page = fra::fhir::parse_search_page(R"({"resourceType":"Bundle","type":"searchset",
    "link":[{"relation":"self","url":"http://x/Patient"},{"relation":"next","url":"http://x/Patient?page=2"}],
    "entry":[{"resource":{"resourceType":"Patient","id":"a"},"search":{"mode":"match"}},
             {"resource":{"resourceType":"OperationOutcome"},"search":{"mode":"outcome"}},
             {"resource":{"resourceType":"Patient","id":"b"}}]})");
  REQUIRE(page.ok());
  CHECK(page->resources.size() == 2);
  CHECK(*page->next == "http://x/Patient?page=2");
  CHECK(fra::fhir::parse_search_page("<html>").error().code == "not-json");
  CHECK(fra::fhir::parse_search_page(R"({"resourceType":"Patient"})").error().code == "not-bundle");
}

TEST_CASE("OperationOutcome text is extracted from diagnostics or details") {
  CHECK(fra::fhir::operation_outcome_text(
            R"({"resourceType":"OperationOutcome","issue":[{"diagnostics":"bad"},{"details":{"text":"worse"}}]})") ==
        "bad; worse");
  CHECK(fra::fhir::operation_outcome_text("not json").empty());
}
