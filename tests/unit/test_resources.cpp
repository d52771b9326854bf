#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include <string>

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
  auto d = parse(
      R"({"resourceType":"Observation","id":"bp1","meta":{"versionId":"2","lastUpdated":"2026-01-02T03:04:05.678Z"},
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
    std::string json =
        std::string(
            R"({"resourceType":"Observation","id":"o","status":"final","subject":{"reference":")") +
        ref + "\"}}";
    auto d = parse(json.c_str());
    return fra::fhir::read_observation(d)->subject;
  };
  CHECK(subject_of("Patient/abc")->value == "abc");
  CHECK(subject_of("https://ehr.example.org/fhir/R4/Patient/abc")->value == "abc");
  CHECK(subject_of("Patient/abc/_history/3")->value == "abc");
  CHECK(!subject_of("Group/abc"));
  CHECK(!subject_of("NotPatient/abc"));
}

TEST_CASE("a value of another type is kept as a problem with a pointer to it, not a failure") {
  // Whether it matters is the mapping's to say: only where a feature reads the code.
  auto d =
      parse(R"({"resourceType":"Observation","id":"o","status":"final","valueString":"high"})");
  auto o = fra::fhir::read_observation(d);
  REQUIRE(o.ok());
  REQUIRE(o->value_problem);
  CHECK(o->value_problem->code == "bad-value");
  CHECK(o->value_problem->pointer == "/valueString");
  CHECK(!o->value);
  auto d2 = parse(
      R"({"resourceType":"Observation","id":"o","status":"final","valueQuantity":{"value":"12"}})");
  CHECK(fra::fhir::read_observation(d2)->value_problem->pointer == "/valueQuantity/value");
}

TEST_CASE(
    "a value member whose name is not UTF-8 is refused without echoing the name (fuzz_resource)") {
  // PostgreSQL refuses a dead letter holding invalid UTF-8 or NUL, failing the page's transaction.
  rapidjson::Document d;
  const std::string json =
      "{\"resourceType\":\"Observation\",\"id\":\"o\",\"component\":[{},{\"valueQ\xf7"
      "antity\":1}]}";
  d.Parse(json.c_str());
  REQUIRE(!d.HasParseError());
  auto o = fra::fhir::read_observation(d);
  REQUIRE(o.ok());
  REQUIRE(o->components.size() == 2);
  REQUIRE(o->components[1].value_problem);
  CHECK(o->components[1].value_problem->code == "bad-value");
  CHECK(o->components[1].value_problem->message == "value[x] is not a Quantity");
  CHECK(o->components[1].value_problem->pointer == "/component/1/value[x]");
  auto nul = parse(R"({"resourceType":"Observation","id":"o","value\u0000String":"high"})");
  CHECK(fra::fhir::read_observation(nul)->value_problem->pointer == "/value[x]");
}

TEST_CASE("an unparseable date is refused, and the message holds no field value") {
  auto d = parse(R"({"resourceType":"Patient","id":"p","birthDate":"1960-02-31"})");
  auto p = fra::fhir::read_patient(d);
  REQUIRE(!p.ok());
  CHECK(p.error().code == "bad-date");
  CHECK(p.error().message.find("1960") == std::string::npos);
}

TEST_CASE("a patient keeps only the birth year") {
  auto d =
      parse(R"({"resourceType":"Patient","id":"p","gender":"female","birthDate":"1960-02-11"})");
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
  CHECK(
      fra::fhir::operation_outcome_text(
          R"({"resourceType":"OperationOutcome","issue":[{"diagnostics":"bad"},{"details":{"text":"worse"}}]})") ==
      "bad; worse");
  CHECK(fra::fhir::operation_outcome_text("not json").empty());
}

TEST_CASE(
    "an OperationOutcome nested a million deep, alone or in a batch response, keeps the stack "
    "(fuzz_resource)") {
  const std::string deep = std::string(1000000, '[') + std::string(1000000, ']');
  CHECK(fra::fhir::operation_outcome_text(deep).empty());
  auto batch = fra::fhir::parse_batch_response(
      R"({"resourceType":"Bundle","entry":[{"response":{"status":"400","outcome":)" + deep + "}}]}",
      1);
  REQUIRE(batch.ok());
  CHECK((*batch)[0].status == 400);
  CHECK((*batch)[0].problem.empty());
  auto named = fra::fhir::parse_batch_response(
      R"({"resourceType":"Bundle","entry":[{"response":{"status":"400","outcome":{"resourceType":"OperationOutcome",)"
      R"("issue":[{"diagnostics":"bad"}]}}}]})",
      1);
  CHECK((*named)[0].problem == "bad");
}

TEST_CASE(
    "text a server sends back is scrubbed of what could identify a patient before it is logged") {
  using fra::fhir::scrub_server_text;
  CHECK(scrub_server_text("Resource Patient/8f3a-11 not found") ==
        "Resource Patient/... not found");
  CHECK(scrub_server_text("identifier 'MRN-4471234' matched 2 resources") ==
        "identifier '...' matched 2 resources");
  CHECK(scrub_server_text("Invalid birthDate 1980-05-12 for \"Jane Doe\"") ==
        "Invalid birthDate # for \"...\"");
  CHECK(scrub_server_text("call 555-0142 about line 3") == "call # about line 3");
  CHECK(scrub_server_text("Missing required property (RiskAssessment.status)") ==
        "Missing required property (RiskAssessment.status)");
  CHECK(scrub_server_text("a/b and x/2") == "a/b and x/2");
  CHECK(scrub_server_text(std::string(1000, 'x')).size() <= 300);
  CHECK(scrub_server_text("unterminated 'quote") == "unterminated '...'");
}
