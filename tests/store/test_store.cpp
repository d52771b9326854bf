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
#include <thread>
#include <vector>

#include "adapter/store/statements.hpp"
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

namespace fra::store {

namespace {

// The ids ("<prefix>0", "<prefix>1", ...) of the first `n` Observations whose lock stripe
// satisfies `keep`.
std::vector<std::string> ids_on(const std::string& prefix, std::size_t n, auto keep) {
  std::vector<std::string> ids;
  for (int i = 0; ids.size() < n; ++i) {
    const std::string id = prefix + std::to_string(i);
    if (keep(lock_stripe(ps().of("Observation", fhir::FhirId{id})))) ids.push_back(id);
  }
  return ids;
}

}  // namespace

TEST_CASE("a page split by lock stripe keeps each resource, its versions together and in order") {
  Page p = page_of({});
  for (int i = 0; i < 200; ++i)
    p.observations.push_back(
        observation("o" + std::to_string(i), "1", 1'000'000, "p1", {{kHeartRate, 80, "/min", ""}}));
  p.observations.push_back(observation("o5", "2", 2'000'000, "p1", {{kHeartRate, 90, "/min", ""}}));
  p.dead_letters.push_back(
      {"Observation", ps().of("Observation", fhir::FhirId{"d1"}), "1", {}, {}});
  p.dead_letters.push_back({"Observation", std::nullopt, "file:3", {}, {}});
  p.ignored = 7;
  p.max_last_updated = 2'000'000;

  const auto parts = split_by_stripe(p, 3);
  REQUIRE(parts.size() == 3);
  std::size_t observations = 0, dead = 0;
  for (int part = 0; part < 3; ++part) {
    CHECK(parts[part].resource_type == "Observation");
    for (const auto& o : parts[part].observations) CHECK(lock_stripe(o.version.key) % 3 == part);
    for (const auto& d : parts[part].dead_letters)
      CHECK((d.key ? lock_stripe(*d.key) % 3 : 0) == part);
    observations += parts[part].observations.size();
    dead += parts[part].dead_letters.size();
  }
  CHECK(observations == 201);
  CHECK(dead == 2);
  CHECK(parts[0].ignored == 7);
  CHECK(parts[1].ignored + parts[2].ignored == 0);
  CHECK(parts[0].max_last_updated == 2'000'000);

  // Both versions of o5 in one part, version 1 before version 2.
  const auto o5 = ps().of("Observation", fhir::FhirId{"o5"});
  const auto& home = parts[lock_stripe(o5) % 3].observations;
  std::vector<std::string> versions;
  for (const auto& o : home)
    if (o.version.key == o5) versions.push_back(o.version.version_id);
  CHECK(versions == std::vector<std::string>{"1", "2"});
  CHECK(split_by_stripe(p, 1).front().observations.size() == 201);
}

TEST_CASE("a transaction holding a lock stripe makes pages on it wait, not pages on other ones") {
  Fresh f;
  const int held = lock_stripe(ps().of("Observation", fhir::FhirId{"a0"}));
  const auto same = ids_on("a", 1, [&](int s) { return s == held; });
  const auto other = ids_on("b", 1, [&](int s) { return s != held; });

  pqxx::connection c(f.url);
  c.prepare("lock", statement("ingest_lock"));
  pqxx::work hold(c);
  hold.exec_prepared("lock", fmt::format("{{{}}}", held));

  Store writer(f.url);
  writer.session.outside_transaction(
      "lock timeout", [](pqxx::nontransaction& t) { t.exec("SET lock_timeout = '500ms'"); });
  auto page = [](const std::string& id) {
    return page_of({observation(id, "1", 1'000'000, "p1", {{kHeartRate, 80, "/min", ""}})});
  };
  CHECK(writer.ingest.store_page(page(other[0])).stored == 1);  // another stripe: at once
  CHECK_THROWS_AS(writer.ingest.store_page(page(same[0])), StoreError);
  CHECK_THROWS_AS(writer.ingest.delete_resources("Observation", {}, "", 0), StoreError);  // all
  hold.commit();
  CHECK(writer.ingest.store_page(page(same[0])).stored == 1);
}

TEST_CASE("writers on disjoint stripes store the same patients' pages side by side, no deadlock") {
  Fresh f;
  Store second(f.url);
  // Two writers, each 30 pages of 100 Observations of the same 40 patients, while the queue is
  // emptied again and again (as a scorer would), so that both keep queueing new patients at once.
  std::vector<Page> pages[2];
  int n = 0;
  for (int page = 0; page < 30; ++page) {
    Page p = page_of({});
    for (int i = 0; i < 200; ++i, ++n)
      p.observations.push_back(observation("o" + std::to_string(n), "1", 1'000'000,
                                           "p" + std::to_string(n % 40),
                                           {{kHeartRate, 80, "/min", ""}}));
    // And a dead letter in each part, audited in the page's transaction.
    for (int part = 0; part < 2; ++part) {
      const auto id = ids_on(fmt::format("dead{}-", page), 1, [&](int s) { return s % 2 == part; });
      p.dead_letters.push_back({"Observation",
                                ps().of("Observation", fhir::FhirId{id[0]}),
                                "1",
                                make_error("bad-value", "test"),
                                {}});
    }
    auto parts = split_by_stripe(std::move(p), 2);
    pages[0].push_back(std::move(parts[0]));
    pages[1].push_back(std::move(parts[1]));
  }
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  auto write = [&](Store& db, const std::vector<Page>& mine) {
    try {
      for (const auto& p : mine) db.ingest.store_page(p);
    } catch (const StoreError& e) {
      MESSAGE(e.what());
      ++failures;
    }
  };
  Store scorer(f.url);
  std::thread drain([&] {
    while (!done)
      scorer.session.transact("empty the queue",
                              [](pqxx::work& w) { w.exec("DELETE FROM scoring_queue"); });
  });
  std::thread a([&] { write(*f.db, pages[0]); });
  std::thread b([&] { write(second, pages[1]); });
  a.join();
  b.join();
  done = true;
  drain.join();
  CHECK(failures == 0);
  CHECK(f.count("SELECT count(*) FROM observation_value") == 6000);
  CHECK(f.count("SELECT count(*) FROM input_version") == 6000);
  CHECK(f.count("SELECT count(*) FROM dead_letter") == 60);
}

}  // namespace fra::store
