// The cohort repository and a patient's refresh against a real PostgreSQL: who is refreshed,
// that two processes never claim one patient at once, what a refresh removes, and that rekey
// carries the cohort and the write-back's references along.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include "tests/store/fresh.hpp"

namespace fra::store {

namespace {

Member member(const std::string& id) {
  return {ps().of("Patient", fhir::FhirId{id}), ps().seal("Patient/" + id)};
}

std::vector<std::string> keys_of(const std::vector<Member>& ms) {
  std::vector<std::string> out;
  for (const auto& m : ms) out.push_back(m.key.hex);
  std::sort(out.begin(), out.end());
  return out;
}

constexpr fhir::Micros kFar = 4'000'000'000'000'000LL;  // due by: any time before 2096

}  // namespace

TEST_CASE("the cohort: new members due at once, members who leave are not refreshed") {
  Fresh f;
  f.db->cohort.replace({member("a"), member("b"), member("c")});
  CHECK(f.db->cohort.size().members == 3);
  CHECK(f.db->cohort.size().due == 3);
  f.db->cohort.replace({member("a"), member("c")});  // b leaves
  CHECK(f.db->cohort.size().members == 2);
  auto claimed = f.db->cohort.claim(10, 60, kFar);
  CHECK(keys_of(claimed) == keys_of({member("a"), member("c")}));
  CHECK(f.count("SELECT count(*) FROM cohort_member") == 3);  // b's row stays, not refreshed
  CHECK(f.count("SELECT count(*) FROM audit_log WHERE action = 'cohort'") == 2);
}

TEST_CASE("two processes never claim one patient at once; a lease that ran out is taken over") {
  Fresh f;
  std::vector<Member> all;
  for (int i = 0; i < 10; ++i) all.push_back(member("p" + std::to_string(i)));
  f.db->cohort.replace(all);
  Store other(f.url);  // a second process on the same store
  auto mine = f.db->cohort.claim(6, 60, kFar);
  auto theirs = other.cohort.claim(6, 60, kFar);
  CHECK(mine.size() == 6);
  CHECK(theirs.size() == 4);
  auto a = keys_of(mine), b = keys_of(theirs);
  std::vector<std::string> both;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(both));
  CHECK(both.empty());
  CHECK(other.cohort.claim(6, 60, kFar).empty());  // every lease held
  // A process that died: its leases run out and another takes the patients.
  f.db->session.transact("expire", [](pqxx::work& w) {
    w.exec("UPDATE cohort_member SET leased_until = now() - interval '1 second'");
  });
  CHECK(other.cohort.claim(20, 60, kFar).size() == 10);
}

TEST_CASE("a pass claims only patients due at its start") {
  Fresh f;
  f.db->cohort.replace({member("a")});
  CHECK(f.db->cohort.claim(10, 60, 0).empty());  // due after the pass began
  auto claimed = f.db->cohort.claim(10, 60, kFar);
  REQUIRE(claimed.size() == 1);
  f.db->cohort.release(claimed[0].key, 0);
  CHECK(f.db->cohort.size().due == 1);
}

TEST_CASE(
    "a refresh stores the patient, removes what the server no longer returns inside the "
    "window, and releases the lease with the next due time") {
  Fresh f;
  f.db->cohort.replace({member("p1")});
  REQUIRE(f.db->cohort.claim(1, 60, kFar).size() == 1);
  // Stored before: o1 inside the window, o_old before it.
  f.db->ingest.store_page(
      page_of({observation("o1", "c1", 5'000'000, "p1", {{kHeartRate, 80, "/min", ""}}),
               observation("o_old", "c2", 1'000'000, "p1", {{kHeartRate, 70, "/min", ""}})}));
  f.db->session.transact("empty the queue",
                         [](pqxx::work& w) { w.exec("DELETE FROM scoring_queue"); });
  PatientRefresh r;
  r.page.resource_type = "Patient refresh";
  r.page.patients = {patient("p1")};
  r.page.observations = {observation("o2", "c3", 6'000'000, "p1", {{kHeartRate, 90, "/min", ""}})};
  r.patient = ps().of("Patient", fhir::FhirId{"p1"});
  r.window_start = 2'000'000;  // o1 (5 s) is inside and not returned: deleted; o_old is outside
  r.returned = {ps().of("Observation", fhir::FhirId{"o2"}).hex};
  r.requests = 3;
  r.due_in_seconds = 3600;
  auto c = f.db->ingest.refresh_patient(r);
  CHECK(c.page.stored == 2);
  CHECK(c.deleted == 1);
  CHECK(f.count("SELECT count(*) FROM observation_value") == 2);  // o_old and o2
  CHECK(f.count(fmt::format("SELECT count(*) FROM resource_version WHERE version_id = 'deleted' "
                            "AND resource_key = '{}'",
                            ps().of("Observation", fhir::FhirId{"o1"}).hex)) == 1);
  CHECK(f.count("SELECT count(*) FROM scoring_queue") == 1);
  CHECK(f.count("SELECT refreshes FROM cohort_member") == 1);
  CHECK(f.count("SELECT last_requests FROM cohort_member") == 3);
  CHECK(f.count("SELECT count(*) FROM cohort_member WHERE leased_until IS NULL AND due_at > "
                "now() + interval '59 minutes'") == 1);
  // The same refresh again: nothing stored, nothing deleted.
  auto again = f.db->ingest.refresh_patient(r);
  CHECK(again.page.stored == 0);
  CHECK(again.deleted == 0);
}

TEST_CASE("rekey carries the cohort and the write-back's resource references to the new key") {
  Fresh f;
  REQUIRE(f.db->admin.pseudonym_key_matches(ps().fingerprint()));
  Page p;
  p.resource_type = "Patient";
  p.patients = {patient("p1")};
  f.db->ingest.store_page(p);
  f.db->cohort.replace({member("p1"), member("not-stored-yet")});
  const std::string old_key = ps().of("Patient", fhir::FhirId{"p1"}).hex;
  f.db->session.transact("a written score", [&](pqxx::work& w) {
    w.exec_params(
        "INSERT INTO risk_assessment (patient_key, model_name, identifier, target_type, "
        "target_ref, target_version) VALUES ($1, 'm', 'ident', 'Observation', decode($2, 'hex'), "
        "'3')",
        old_key, detail::to_hex(ps().seal("Observation/obs-1")));
  });
  mapping::Pseudonymizer to(std::string(32, 'n'));
  f.db->admin.rekey(ps(), to);
  const std::string new_key = to.of("Patient", fhir::FhirId{"p1"}).hex;
  CHECK(f.count(fmt::format("SELECT count(*) FROM cohort_member WHERE patient_key = '{}'",
                            new_key)) == 1);
  CHECK(f.count(fmt::format("SELECT count(*) FROM cohort_member WHERE patient_key = '{}'",
                            to.of("Patient", fhir::FhirId{"not-stored-yet"}).hex)) == 1);
  auto sealed = f.db->session.transact("read", [&](pqxx::work& w) {
    auto r = w.exec_params(
        "SELECT encode(m.sealed_ref, 'hex'), encode(ra.target_ref, 'hex') FROM cohort_member m "
        "JOIN risk_assessment ra ON ra.patient_key = m.patient_key WHERE m.patient_key = $1",
        new_key);
    return std::pair{r[0][0].as<std::string>(), r[0][1].as<std::string>()};
  });
  CHECK(to.open(detail::from_hex(sealed.first)).value() == "Patient/p1");
  CHECK(to.open(detail::from_hex(sealed.second)).value() == "Observation/obs-1");
}

}  // namespace fra::store
