// The store's repositories against a real PostgreSQL: a database of their own per test case,
// migrated by the binary's own migrations (FRA_TEST_DB names the cluster; ctest's postgresql
// fixture starts it). What the integration modules see through the command line, checked here
// one statement at a time: how a page is claimed, replaced and retracted, deletions, and how the
// boundary classifies what the server answers.

#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include "tests/store/fresh.hpp"

namespace fra::store {

TEST_CASE("a page is claimed once: the same page again is unchanged, an older version refused") {
  Fresh f;
  Page patients;
  patients.resource_type = "Patient";
  patients.patients = {patient("p1"), patient("p2")};
  CHECK(f.db->ingest.store_page(patients).stored == 2);

  auto first = f.db->ingest.store_page(
      page_of({observation("o1", "2", 2'000'000, "p1",
                           {{kHeartRate, 80, "/min", ""}, {kWeight, 70, "kg", ""}})},
              2'000'000));
  CHECK(first.stored == 1);
  CHECK(first.enqueued == 0);  // p1 is on the queue already, since its Patient came: once
  CHECK(f.count("SELECT count(*) FROM observation_value") == 2);
  CHECK(f.count("SELECT count(*) FROM input_version") == 3);
  CHECK(*f.db->ingest.cursor("Observation") == 2'000'000);

  auto again = f.db->ingest.store_page(page_of({observation(
      "o1", "2", 2'000'000, "p1", {{kHeartRate, 80, "/min", ""}, {kWeight, 70, "kg", ""}})}));
  CHECK(again.stored == 0);
  CHECK(again.unchanged == 1);

  auto older = f.db->ingest.store_page(
      page_of({observation("o1", "1", 1'500'000, "p1", {{kHeartRate, 99, "/min", ""}})}));
  CHECK(older.stored == 0);
  CHECK(f.count("SELECT count(*) FROM observation_value WHERE value = 80") == 1);
}

TEST_CASE("a new version replaces every value of the old one, and may move to another patient") {
  Fresh f;
  f.db->ingest.store_page(page_of({observation(
      "o1", "1", 1'000'000, "p1", {{kHeartRate, 80, "/min", ""}, {kWeight, 70, "kg", ""}})}));
  f.db->session.transact("empty the queue",
                         [](pqxx::work& w) { w.exec("DELETE FROM scoring_queue"); });

  // Version 2: the weight is gone, the heart rate changed, and it now belongs to p2.
  auto c = f.db->ingest.store_page(
      page_of({observation("o1", "2", 2'000'000, "p2", {{kHeartRate, 90, "/min", ""}})}));
  CHECK(c.stored == 1);
  CHECK(f.count("SELECT count(*) FROM observation_value") == 1);
  CHECK(f.count(fmt::format("SELECT count(*) FROM observation_value WHERE value = 90 AND "
                            "patient_key = '{}'",
                            ps().of("Patient", fhir::FhirId{"p2"}).hex)) == 1);
  // Both patients' inputs changed: both are scored again.
  CHECK(f.count("SELECT count(*) FROM scoring_queue") == 2);
  CHECK(f.count("SELECT count(*) FROM input_version WHERE superseded_at IS NOT NULL") == 1);

  // Version 3 has no usable value (entered-in-error, say): it retracts them all.
  f.db->ingest.store_page(page_of({observation("o1", "3", 3'000'000, "p2", {})}));
  CHECK(f.count("SELECT count(*) FROM observation_value") == 0);
}

TEST_CASE("two versions of one resource in one page: the newer is taken") {
  Fresh f;
  auto c = f.db->ingest.store_page(
      page_of({observation("o1", "2", 2'000'000, "p1", {{kHeartRate, 90, "/min", ""}}),
               observation("o1", "1", 1'000'000, "p1", {{kHeartRate, 80, "/min", ""}})}));
  CHECK(c.stored == 1);
  CHECK(c.unchanged == 1);
  CHECK(f.count("SELECT count(*) FROM observation_value WHERE value = 90") == 1);
}

TEST_CASE("dead letters are stored once and each one audited") {
  Fresh f;
  Page p = page_of({});
  p.dead_letters.push_back({"Observation", ps().of("Observation", fhir::FhirId{"bad"}), "1",
                            make_error("no-subject", "Observation has no subject", "/subject"),
                            ps().seal("Observation/bad")});
  CHECK(f.db->ingest.store_page(p).dead_lettered == 1);
  auto again = f.db->ingest.store_page(p);
  CHECK(again.dead_lettered == 0);
  CHECK(again.unchanged == 1);
  CHECK(f.count("SELECT count(*) FROM dead_letter") == 1);
  CHECK(f.count("SELECT count(*) FROM audit_log WHERE action = 'dead-letter'") == 1);
  CHECK(f.count("SELECT count(*) FROM audit_log WHERE action = 'ingest'") == 2);
}

TEST_CASE("a deletion removes the rows, keeps a tombstone and rescores; an older copy is refused") {
  Fresh f;
  f.db->ingest.store_page(
      page_of({observation("o1", "1", 1'000'000, "p1", {{kHeartRate, 80, "/min", ""}})}));
  f.db->session.transact("empty the queue",
                         [](pqxx::work& w) { w.exec("DELETE FROM scoring_queue"); });
  const auto key = ps().of("Observation", fhir::FhirId{"o1"});
  const auto unknown = ps().of("Observation", fhir::FhirId{"never-stored"});
  CHECK(f.db->ingest.delete_resources("Observation", {{key, 2'000'000}, {unknown, 2'000'000}},
                                      "Observation/_history", 2'000'000) == 1);
  CHECK(f.count("SELECT count(*) FROM observation_value") == 0);
  CHECK(f.count("SELECT count(*) FROM scoring_queue") == 1);
  CHECK(*f.db->ingest.cursor("Observation/_history") == 2'000'000);
  // The copy from before the deletion, fetched again, stays deleted.
  CHECK(f.db->ingest
            .store_page(
                page_of({observation("o1", "1", 1'000'000, "p1", {{kHeartRate, 80, "/min", ""}})}))
            .stored == 0);
  CHECK(f.count("SELECT count(*) FROM observation_value") == 0);
}

TEST_CASE("transact: what the server answers becomes a StoreError of its kind, and rolls back") {
  Fresh f;
  auto kind_of = [&](const std::string& sql) {
    try {
      f.db->session.transact("test", [&](pqxx::work& w) { w.exec(sql); });
    } catch (const StoreError& e) {
      CHECK(std::string(e.what()).rfind("test: ", 0) == 0);
      return e.kind();
    }
    FAIL("no error from: " << sql);
    return StoreErrorKind::refused;
  };
  CHECK(kind_of("SELECT * FROM no_such_table") == StoreErrorKind::refused);
  CHECK(kind_of("SELECT 1/0") == StoreErrorKind::bad_data);
  CHECK(kind_of("INSERT INTO sync_cursor VALUES ('x', now(), now()), ('x', now(), now())") ==
        StoreErrorKind::bad_data);
  CHECK(kind_of("SELECT pg_terminate_backend(pg_backend_pid())") == StoreErrorKind::unavailable);

  Fresh g;
  CHECK_THROWS_AS(
      g.db->session.transact(
          "partial",
          [](pqxx::work& w) {
            w.exec("INSERT INTO sync_cursor (resource_type, last_updated) VALUES ('y', now())");
            throw std::runtime_error("stop here");
          }),
      std::runtime_error);
  CHECK(g.count("SELECT count(*) FROM sync_cursor") == 0);
}

}  // namespace fra::store

namespace fra::store {

TEST_CASE("a Patient whose gender is empty is stored with sex unknown, not as another sex") {
  Fresh f;
  Page p;
  p.resource_type = "Patient";
  rapidjson::Document d;
  d.Parse(R"({"resourceType": "Patient", "id": "p1", "gender": "", "birthDate": "1950-01-01",
              "meta": {"versionId": "1", "lastUpdated": "2026-11-01T00:00:00Z"}})");
  auto read = fhir::read_patient(d);
  REQUIRE(read.ok());
  auto mapped = mapping::map_patient(read.value(), ps());
  REQUIRE(mapped.ok());
  p.patients = {mapped.value()};
  f.db->ingest.store_page(p);
  CHECK(f.count("SELECT count(*) FROM patient WHERE sex IS NULL") == 1);
}

}  // namespace fra::store
