// What the adapter reads of a server's CapabilityStatement, how it keeps to its request budget,
// and what it reads of a write's answer (the id and version of a resource it created).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "adapter/source/patient_sync.hpp"
#include "adapter/writeback/resource_sink.hpp"
#include "fhir/capability.hpp"
#include "fhir/rate_gate.hpp"
#include "fhir/risk_assessment.hpp"

using namespace fra;

TEST_CASE("a CapabilityStatement: interactions, search parameters, conditional update") {
  const char* json =
      R"({"resourceType": "CapabilityStatement", "rest": [{"mode": "server", "resource": [
      {"type": "Observation", "interaction": [{"code": "read"}, {"code": "search-type"}, {"code": "create"}],
       "searchParam": [{"name": "patient"}, {"name": "code"}, {"name": "date"}]},
      {"type": "Encounter", "interaction": [{"code": "search-type"}],
       "searchParam": [{"name": "patient"}, {"name": "_lastUpdated"}]},
      {"type": "RiskAssessment", "interaction": [{"code": "update"}], "conditionalUpdate": true}]}]})";
  auto cap = fhir::parse_capability(json);
  REQUIRE(cap);
  CHECK(cap->can("Observation", "create"));
  CHECK_FALSE(cap->can("Observation", "update"));
  CHECK_FALSE(cap->searches_by("Observation", "_lastUpdated"));
  CHECK(cap->searches_by("Encounter", "_lastUpdated"));
  CHECK(cap->updates_conditionally("RiskAssessment"));
  CHECK_FALSE(cap->updates_conditionally("Observation"));
  CHECK_FALSE(cap->declares("Subscription"));
  CHECK_FALSE(fhir::parse_capability(R"({"resourceType": "Bundle"})"));
}

TEST_CASE("the request budget: no more than the rate, no more than the places in flight") {
  fhir::RateGate gate(50, 2);  // 50 a second: one every 20 ms
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 6; ++i) auto slot = gate.enter();
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(took >= std::chrono::milliseconds(5 * 20 - 2));  // the first goes at once
  CHECK(gate.passed() == 6);

  fhir::RateGate narrow(0, 2);
  std::atomic<int> inside{0}, most{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i)
    threads.emplace_back([&] {
      auto slot = narrow.enter();
      int now = ++inside;
      int seen = most.load();
      while (now > seen && !most.compare_exchange_weak(seen, now)) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      --inside;
    });
  for (auto& t : threads) t.join();
  CHECK(most.load() <= 2);
  CHECK(most.load() >= 1);
}

TEST_CASE("a hold (429 Retry-After) delays every request that has not started") {
  fhir::RateGate gate(0, 4);
  gate.hold_for(std::chrono::milliseconds(60));
  const auto t0 = std::chrono::steady_clock::now();
  auto slot = gate.enter();
  CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(55));
}

TEST_CASE("the id and version of a created resource") {
  fhir::Response r;
  r.location = "http://ehr/fhir/R4/Observation/abc-1/_history/7";
  r.etag = "W/\"7\"";
  CHECK(writeback::created_id(r) == "abc-1");
  CHECK(writeback::response_version(r) == "7");
  fhir::Response epic;  // no Location version, no ETag, no meta: the id from the body
  epic.body = R"({"resourceType": "Observation", "id": "e42"})";
  CHECK(writeback::created_id(epic) == "e42");
  CHECK(writeback::response_version(epic).empty());
  fhir::Response meta;
  meta.body = R"({"resourceType": "Observation", "id": "x", "meta": {"versionId": "3"}})";
  CHECK(writeback::response_version(meta) == "3");
}

TEST_CASE("a score Observation: percent, band, model, identifier") {
  fhir::RiskAssessmentInput in{"urn:fhir-risk-adapter:risk-assessment",
                               "abc",
                               "Patient/p1",
                               1764547200000000LL,
                               "readmission-risk",
                               "2.0.0",
                               "00ff",
                               {"http://snomed.info/sct", "417005"},
                               "Hospital re-admission",
                               0.125,
                               "moderate",
                               "Moderate likelihood",
                               {},
                               "obs-9"};
  const std::string obs = fhir::build_score_observation(in, {"http://example.org/rows", "R1"});
  CHECK(obs.find(R"("id":"obs-9")") != std::string::npos);
  CHECK(
      obs.find(
          R"("valueQuantity":{"value":12.5,"unit":"%","system":"http://unitsofmeasure.org","code":"%"})") !=
      std::string::npos);
  CHECK(obs.find(R"("code":"moderate")") != std::string::npos);
  CHECK(obs.find(R"("system":"http://example.org/rows","code":"R1")") != std::string::npos);
  CHECK(obs.find(R"("value":"abc")") != std::string::npos);
  CHECK(obs.find("Hospital re-admission risk: 12.5% (Moderate likelihood)") != std::string::npos);
}

TEST_CASE("per-patient searches ask for the codes the features read and their panels") {
  mapping::ObservationCatalog catalog{
      {"http://loinc.org|8480-6", mapping::CodeRule{.unit = "mm[Hg]", .answers = {}}},
      {"http://loinc.org|8867-4", mapping::CodeRule{.unit = "/min", .answers = {}}}};
  auto codes = source::observation_search_codes(catalog);
  CHECK(codes == std::vector<std::string>{"http://loinc.org|55284-4", "http://loinc.org|8480-6",
                                          "http://loinc.org|85354-9", "http://loinc.org|8867-4"});
  mapping::FeatureDefinition a, b, age;
  a.window = 10;
  b.window = 30;
  age.source = mapping::FeatureDefinition::Source::patient;
  CHECK(source::longest_window({a, b, age}) == 30);
  b.window = 0;  // all history
  CHECK(source::longest_window({a, b}) == 0);
}
