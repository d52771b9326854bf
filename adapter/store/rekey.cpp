// `fhir-risk-adapter rekey`: every pseudonym derived again under a new key, in one transaction.

#include <fmt/format.h>

#include <map>
#include <pqxx/pqxx>

#include "adapter/store/admin.hpp"
#include "adapter/store/sql_values.hpp"

namespace fra::store {

namespace {
using detail::from_hex;
using detail::to_hex;

StoreError refused(const std::string& why) { return StoreError(StoreErrorKind::refused, why); }

// The one number a SELECT count(*) returns.
long count(pqxx::work& w, const char* select_count) {
  return w.exec(select_count)[0][0].as<long>();
}

void refuse_while_others_connected(pqxx::work& w) {
  const auto others =
      count(w,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() "
            "AND application_name = 'fhir-risk-adapter'");
  if (others > 0)
    throw refused(
        fmt::format("{} other adapter connection{} to this database: stop every fhir-risk-adapter "
                    "process first",
                    others, others == 1 ? " is open" : "s are open"));
}

// Refuses unless `from` is the store's key and every stored version can be opened with it.
void refuse_unless_rekeyable(pqxx::work& w, const mapping::Pseudonymizer& from) {
  auto fp = w.exec("SELECT fingerprint FROM pseudonym_key");
  if (fp.empty() || fp[0][0].as<std::string>() != from.fingerprint())
    throw refused("pseudonym.key_file is not the key this database's pseudonyms were made with");
  const auto unsealed = count(w,
                              "SELECT count(*) FROM resource_version WHERE sealed_ref IS NULL AND "
                              "version_id <> 'deleted'");
  if (unsealed > 0)
    throw refused(
        fmt::format("{} stored versions predate sealed references (schema version 6) and cannot be "
                    "derived again: rekey is not possible for this database",
                    unsealed));
}

// The id that a stored version's sealed reference "<type>/<id>" names.
std::string open_sealed(const mapping::Pseudonymizer& from, const std::string& type,
                        const std::string& sealed_hex) {
  auto text = from.open(from_hex(sealed_hex));
  if (!text)
    throw refused(
        fmt::format("a sealed {} reference does not open: {}", type, text.error().message));
  const auto slash = text.value().find('/');
  if (slash == std::string::npos || text.value().substr(0, slash) != type)
    throw refused(fmt::format("a sealed reference of a {} names something else", type));
  return text.value().substr(slash + 1);
}

// Copies into rekey_map a row per sealed reference of a stored version, then of a dead letter
// whose resource was never stored; returns the stored versions mapped.
std::int64_t copy_rekey_map(pqxx::work& w, const mapping::Pseudonymizer& from,
                            const mapping::Pseudonymizer& to) {
  // Both read before the COPY starts: no other statement runs on the connection during it.
  const auto versions = w.exec(
      "SELECT resource_type, resource_key, encode(sealed_ref, 'hex') FROM resource_version "
      "WHERE sealed_ref IS NOT NULL");
  const auto letters = w.exec(
      "SELECT d.resource_type, d.resource_key, encode(d.sealed_ref, 'hex') FROM dead_letter d "
      "WHERE d.sealed_ref IS NOT NULL AND NOT EXISTS (SELECT 1 FROM resource_version v "
      "WHERE v.resource_key = d.resource_key)");
  pqxx::stream_to map(
      w, "rekey_map",
      std::vector<std::string>{"resource_type", "old_key", "new_key", "new_sealed"});
  std::int64_t resources = 0;
  for (const auto& r : versions) {
    const auto type = r[0].as<std::string>();
    const auto id = open_sealed(from, type, r[2].as<std::string>());
    map << std::make_tuple(type, r[1].as<std::string>(), to.of(type, fhir::FhirId{id}).hex,
                           to_hex(to.seal(type + "/" + id)));
    ++resources;
  }
  for (const auto& r : letters) {
    const auto sealed = from.open(from_hex(r[2].as<std::string>()));
    if (!sealed)
      throw refused("a sealed dead-letter reference does not open: " + sealed.error().message);
    const auto slash = sealed.value().find('/');
    const auto type = sealed.value().substr(0, slash), id = sealed.value().substr(slash + 1);
    map << std::make_tuple(type, r[1].as<std::string>(), to.of(type, fhir::FhirId{id}).hex,
                           to_hex(to.seal(sealed.value())));
  }
  map.complete();
  return resources;
}

// The map: (type, old key) -> (new key, new seal), from each sealed reference. Returns the
// stored versions mapped.
std::int64_t build_rekey_map(pqxx::work& w, const mapping::Pseudonymizer& from,
                             const mapping::Pseudonymizer& to) {
  w.exec(
      "CREATE TEMP TABLE rekey_map (resource_type text, old_key text, new_key text, new_sealed "
      "text) "
      "ON COMMIT DROP");
  const auto resources = copy_rekey_map(w, from, to);
  w.exec("CREATE INDEX ON rekey_map (old_key)");
  return resources;
}

// Moves stored versions, patients and the rows that refer to them to their new keys; counts
// the patients and the tombstones dropped.
void move_resource_keys(pqxx::work& w, RekeyCounts& c) {
  c.dropped_tombstones = static_cast<std::int64_t>(
      w.exec("DELETE FROM resource_version WHERE sealed_ref IS NULL").affected_rows());
  w.exec(
      "UPDATE resource_version v SET resource_key = m.new_key, sealed_ref = decode(m.new_sealed, "
      "'hex') "
      "FROM rekey_map m WHERE v.resource_key = m.old_key AND v.resource_type = m.resource_type");
  c.patients = static_cast<std::int64_t>(
      w.exec("UPDATE patient p SET patient_key = m.new_key, sealed_ref = decode(m.new_sealed, "
             "'hex') FROM rekey_map m "
             "WHERE p.patient_key = m.old_key AND m.resource_type = 'Patient'")
          .affected_rows());
  w.exec(
      "UPDATE observation_value o SET resource_key = m.new_key FROM rekey_map m "
      "WHERE o.resource_key = m.old_key AND m.resource_type = 'Observation'");
  w.exec(
      "UPDATE encounter e SET resource_key = m.new_key FROM rekey_map m "
      "WHERE e.resource_key = m.old_key AND m.resource_type = 'Encounter'");
  w.exec(
      "UPDATE condition_code k SET resource_key = m.new_key FROM rekey_map m "
      "WHERE k.resource_key = m.old_key AND m.resource_type = 'Condition'");
  w.exec(
      "UPDATE input_version i SET resource_key = m.new_key FROM rekey_map m "
      "WHERE i.resource_key = m.old_key AND i.resource_type = m.resource_type");
  for (const char* table : {"observation_value", "encounter", "condition_code", "scoring_queue",
                            "alert", "score", "risk_assessment", "input_version"})
    w.exec(
        fmt::format("UPDATE {} t SET patient_key = m.new_key FROM rekey_map m "
                    "WHERE t.patient_key = m.old_key AND m.resource_type = 'Patient'",
                    table));
}

// Moves dead letters to their new keys; returns how many moved.
std::int64_t move_dead_letter_keys(pqxx::work& w) {
  const auto moved =
      static_cast<std::int64_t>(w.exec("UPDATE dead_letter d SET resource_key = m.new_key, "
                                       "sealed_ref = decode(m.new_sealed, 'hex') "
                                       "FROM rekey_map m WHERE d.resource_key = m.old_key AND "
                                       "d.resource_type = m.resource_type")
                                    .affected_rows());
  // A dead letter whose reference was never sealed cannot follow: it keeps no pseudonym.
  w.exec(
      "UPDATE dead_letter d SET resource_key = NULL WHERE d.sealed_ref IS NULL AND "
      "d.resource_key IS NOT NULL");
  return moved;
}

// The cohort's members (some not stored yet) and the resources the write-back keeps by id: their
// sealed references opened and sealed again, the members under their new pseudonyms; copied
// into a temporary table, then moved with one statement each.
void move_cohort_and_targets(pqxx::work& w, const mapping::Pseudonymizer& from,
                             const mapping::Pseudonymizer& to) {
  // Both read before the COPY starts: no other statement runs on the connection during it.
  const auto members = w.exec("SELECT patient_key, encode(sealed_ref, 'hex') FROM cohort_member");
  const auto targets = w.exec(
      "SELECT patient_key, model_name, target_type, encode(target_ref, 'hex') FROM "
      "risk_assessment WHERE target_ref IS NOT NULL");
  w.exec(
      "CREATE TEMP TABLE rekey_refs (kind text, old_key text, model text, new_key text, "
      "new_sealed text) ON COMMIT DROP");
  pqxx::stream_to copy(
      w, "rekey_refs",
      std::vector<std::string>{"kind", "old_key", "model", "new_key", "new_sealed"});
  for (const auto& r : members) {
    const auto id = open_sealed(from, "Patient", r[1].as<std::string>());
    copy << std::make_tuple(std::string("member"), r[0].as<std::string>(), std::string(),
                            to.of("Patient", fhir::FhirId{id}).hex,
                            to_hex(to.seal("Patient/" + id)));
  }
  for (const auto& r : targets) {  // keyed by the patient's new pseudonym: the patients moved first
    const auto type = r[2].as<std::string>();
    const auto id = open_sealed(from, type, r[3].as<std::string>());
    copy << std::make_tuple(std::string("target"), r[0].as<std::string>(), r[1].as<std::string>(),
                            std::string(), to_hex(to.seal(type + "/" + id)));
  }
  copy.complete();
  w.exec(
      "UPDATE cohort_member m SET patient_key = r.new_key, sealed_ref = decode(r.new_sealed, "
      "'hex') FROM rekey_refs r WHERE r.kind = 'member' AND m.patient_key = r.old_key");
  w.exec(
      "UPDATE risk_assessment ra SET target_ref = decode(r.new_sealed, 'hex') FROM rekey_refs r "
      "WHERE r.kind = 'target' AND ra.patient_key = r.old_key AND ra.model_name = r.model");
}

}  // namespace

RekeyCounts Admin::rekey(const mapping::Pseudonymizer& from, const mapping::Pseudonymizer& to) {
  return session_.transact("rekey", [&](pqxx::work& w) {
    RekeyCounts c;
    refuse_while_others_connected(w);
    // Taken whole: nothing else writes while the keys move.
    w.exec(
        "LOCK TABLE resource_version, patient, observation_value, encounter, condition_code, "
        "alert, dead_letter, "
        "scoring_queue, score, "
        "risk_assessment, pseudonym_key, input_version, cohort_member IN EXCLUSIVE MODE");
    refuse_unless_rekeyable(w, from);
    c.resources = build_rekey_map(w, from, to);
    move_resource_keys(w, c);
    c.dead_letters = move_dead_letter_keys(w);
    move_cohort_and_targets(w, from, to);
    w.exec_params("UPDATE pseudonym_key SET fingerprint = $1, set_at = now()", to.fingerprint());
    audit_.append(w, "rekey", "pseudonym key",
                  fmt::format(R"({{"resources": {}, "patients": {}, "dead_letters": {}, )"
                              R"("dropped_tombstones": {}}})",
                              c.resources, c.patients, c.dead_letters, c.dropped_tombstones));
    return c;
  });
}

}  // namespace fra::store
