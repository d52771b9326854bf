// Conditions and coded Observation values in the store: every coding kept, a new version's
// codings replacing the old, a deletion retracting them, and each change rescoring the patient.

#include <doctest/doctest.h>
#include <fmt/format.h>

#include "tests/store/fresh.hpp"

namespace fra::store {
namespace {

mapping::ConditionRecord condition(const std::string& id, const std::string& v,
                                   fhir::Micros updated, std::vector<std::string> codes,
                                   bool counts = true) {
  mapping::ConditionRecord c;
  c.version = version("Condition", id, v, updated);
  c.patient = ps().of("Patient", fhir::FhirId{"p1"});
  c.codes = std::move(codes);
  c.counts = counts;
  c.active = true;
  c.onset = 500'000;
  return c;
}

Page conditions(std::vector<mapping::ConditionRecord> cs) {
  Page p;
  p.resource_type = "Condition";
  p.conditions = std::move(cs);
  return p;
}

void empty_queue(Fresh& f) {
  f.db->session.transact("empty the queue",
                         [](pqxx::work& w) { w.exec("DELETE FROM scoring_queue"); });
}

}  // namespace

TEST_CASE("a Condition keeps every coding; a new version replaces them and rescores") {
  Fresh f;
  auto c = f.db->ingest.store_page(conditions(
      {condition("c1", "1", 1'000'000,
                 {"http://snomed.info/sct|88805009", "http://hl7.org/fhir/sid/icd-10-cm|I50.9"})}));
  CHECK(c.stored == 1);
  CHECK(c.enqueued == 1);
  CHECK(f.count("SELECT count(*) FROM condition_code") == 2);
  CHECK(f.count("SELECT count(*) FROM condition_code WHERE counts AND active AND onset = "
                "timestamptz 'epoch' + interval '0.5 second'") == 2);
  CHECK(f.count("SELECT count(*) FROM input_version WHERE resource_type = 'Condition'") == 1);
  empty_queue(f);

  // Version 2: refuted, and coded in SNOMED only.
  c = f.db->ingest.store_page(
      conditions({condition("c1", "2", 2'000'000, {"http://snomed.info/sct|88805009"}, false)}));
  CHECK(c.stored == 1);
  CHECK(f.count("SELECT count(*) FROM condition_code") == 1);
  CHECK(f.count("SELECT count(*) FROM condition_code WHERE NOT counts") == 1);
  CHECK(f.count("SELECT count(*) FROM scoring_queue") == 1);
  empty_queue(f);

  // Deleted at the source: its rows go, the patient is scored again.
  const auto key = ps().of("Condition", fhir::FhirId{"c1"});
  CHECK(f.db->ingest.delete_resources("Condition", {{key, 3'000'000}}, "Condition/_history",
                                      3'000'000) == 1);
  CHECK(f.count("SELECT count(*) FROM condition_code") == 0);
  CHECK(f.count("SELECT count(*) FROM scoring_queue") == 1);
}

TEST_CASE("a coded Observation value is kept as its coding, with no number") {
  Fresh f;
  mapping::Measurement smoking{"http://loinc.org|72166-2", 0, "",
                               "http://snomed.info/sct|449868002"};
  f.db->ingest.store_page(page_of({observation("o1", "1", 1'000'000, "p1", {smoking})}));
  CHECK(f.count("SELECT count(*) FROM observation_value WHERE value IS NULL AND value_code = "
                "'http://snomed.info/sct|449868002'") == 1);
  // A later version with a number for the same code replaces the coding (and the table refuses
  // a row with both or neither).
  f.db->ingest.store_page(page_of(
      {observation("o1", "2", 2'000'000, "p1", {{"http://loinc.org|72166-2", 1, "1", ""}})}));
  CHECK(f.count("SELECT count(*) FROM observation_value WHERE value = 1 AND value_code IS NULL") ==
        1);
  CHECK_THROWS(f.db->session.transact(
      "both", [](pqxx::work& w) { w.exec("UPDATE observation_value SET value_code = 'x|y'"); }));
}

}  // namespace fra::store
