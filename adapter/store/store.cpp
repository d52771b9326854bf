#include "adapter/store/store.hpp"
#include "adapter/store/connection.hpp"

#include <fmt/format.h>
#include <pqxx/pqxx>

#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <tuple>
#include <utility>

namespace fra::store {
namespace {

using fhir::Micros;

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

// Timestamps cross the boundary as epoch microseconds, so no time zone setting can shift them.
std::string ts(int param) { return fmt::format("(timestamptz 'epoch' + ${}::bigint * interval '1 microsecond')", param); }
std::string micros_of(const char* column) {
  return fmt::format("(extract(epoch from {}) * 1000000)::bigint", column);
}

// Moves a cursor forward to `t`, never back, inside the caller's transaction.
void move_cursor_forward(pqxx::work& w, const std::string& key, Micros t) {
  w.exec_params("INSERT INTO sync_cursor (resource_type, last_updated) VALUES ($1, " + ts(2) + ") "
                "ON CONFLICT (resource_type) DO UPDATE "
                "SET last_updated = greatest(sync_cursor.last_updated, EXCLUDED.last_updated), updated_at = now()",
                key, t);
}

std::string version_of(const mapping::Version& v) {
  return v.version_id.empty() ? fhir::format_instant(v.last_updated) : v.version_id;
}

// A pseudonym array literal: pseudonyms are hex, so no quoting is needed.
std::string key_array(const std::vector<std::string>& keys) {
  std::string out = "{";
  for (std::size_t i = 0; i < keys.size(); ++i) out += (i ? "," : "") + keys[i];
  return out + "}";
}

// libpqxx 6.4 reads std::optional only when built with it; read NULL explicitly instead.
template <typename T>
std::optional<T> opt(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<T>();
}

std::string to_hex(const std::vector<std::uint8_t>& b) {
  return mapping::to_hex(b.data(), b.size());
}

std::vector<std::uint8_t> from_hex(const std::string& hex) {
  std::vector<std::uint8_t> out(hex.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  return out;
}

std::string features_json(const std::vector<std::string>& names, const std::vector<float>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < names.size(); ++i) {
    out += fmt::format("{}\"{}\": ", i ? ", " : "", names[i]);
    out += std::isnan(values[i]) ? "null" : fmt::format("{:.9g}", values[i]);
  }
  return out + "}";
}

}  // namespace

Store::Store(const std::string& url) {
  try {
    conn_ = std::make_unique<Connection>(url);
  } catch (const std::exception& e) {
    throw StoreError("cannot connect to the database: " + first_line(e.what()));
  }
}

Store::~Store() = default;

std::optional<Micros> Store::cursor(std::string_view type) {
  pqxx::work w(conn_->c);
  auto r = w.exec_params("SELECT " + micros_of("last_updated") + " FROM sync_cursor WHERE resource_type = $1",
                         std::string(type));
  if (r.empty()) return std::nullopt;
  return r[0][0].as<Micros>();
}

namespace {

// Staging tables, one set per connection, emptied at every commit. A page is copied into them
// with COPY and merged into the store with a handful of statements, whatever its size.
constexpr const char* kStagingTables = R"sql(
CREATE TEMP TABLE IF NOT EXISTS stage_version (
  ord integer, resource_type text, resource_key text, version_id text, source_updated bigint
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_patient (
  resource_key text, version_id text, birth_year integer, sex text, sealed_ref text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_encounter (
  resource_key text, version_id text, patient_key text, status text, counts boolean, class_code text,
  period_start bigint, period_end bigint
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_claimed (
  resource_type text, resource_key text, version_id text, first_seen boolean
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_touched (patient_key text) ON COMMIT DELETE ROWS;
)sql";

// NULL crosses COPY as these stand-ins (libpqxx 6.4's stream_to has no optional).
constexpr std::int32_t kNoYear = std::numeric_limits<std::int32_t>::min();
constexpr std::int64_t kNoTime = std::numeric_limits<std::int64_t>::min();

std::string at_micros(const std::string& column) {
  return "(timestamptz 'epoch' + " + column + " * interval '1 microsecond')";
}
std::string at_micros_or_null(const std::string& column) {
  return fmt::format("CASE WHEN {0} = {1} THEN NULL ELSE {2} END", column, kNoTime, at_micros(column));
}

// The rows of a page's chosen versions: the newest of each resource in the page that is newer
// than, or not yet in, the store.
const std::string kClaim =
    "WITH incoming AS ("
    " SELECT DISTINCT ON (resource_type, resource_key) resource_type, resource_key, version_id, source_updated"
    " FROM stage_version ORDER BY resource_type, resource_key, source_updated DESC, ord DESC),"
    " up AS ("
    " INSERT INTO resource_version (resource_type, resource_key, version_id, source_updated)"
    " SELECT resource_type, resource_key, version_id, " + at_micros("source_updated") + " FROM incoming"
    " ON CONFLICT (resource_type, resource_key) DO UPDATE"
    " SET version_id = EXCLUDED.version_id, source_updated = EXCLUDED.source_updated, stored_at = now()"
    " WHERE resource_version.version_id <> EXCLUDED.version_id"
    " AND resource_version.source_updated <= EXCLUDED.source_updated"
    " RETURNING resource_type, resource_key, version_id, xmax = 0)"  // xmax 0: inserted, not updated
    " INSERT INTO stage_claimed SELECT * FROM up RETURNING resource_type, resource_key, version_id";

const std::string kMergePatients =
    "WITH up AS (INSERT INTO patient (patient_key, birth_year, sex, sealed_ref)"
    " SELECT s.resource_key, NULLIF(s.birth_year, " + std::to_string(kNoYear) + "), NULLIF(s.sex, ''),"
    " decode(s.sealed_ref, 'hex') FROM stage_patient s JOIN stage_claimed c"
    " ON c.resource_type = 'Patient' AND c.resource_key = s.resource_key AND c.version_id = s.version_id"
    " ON CONFLICT (patient_key) DO UPDATE SET birth_year = EXCLUDED.birth_year, sex = EXCLUDED.sex,"
    " sealed_ref = EXCLUDED.sealed_ref, stored_at = now() RETURNING patient_key)"
    " INSERT INTO stage_touched SELECT patient_key FROM up";

// A new version replaces every value of the old one (and may move to another patient); a
// resource seen for the first time has nothing to retract.
const std::string kRetractObservations =
    "WITH gone AS (DELETE FROM observation_value o USING stage_claimed c"
    " WHERE c.resource_type = 'Observation' AND NOT c.first_seen AND o.resource_key = c.resource_key"
    " RETURNING o.patient_key)"
    " INSERT INTO stage_touched SELECT patient_key FROM gone";
const std::string kRetractEncounters =
    "WITH gone AS (DELETE FROM encounter e USING stage_claimed c"
    " WHERE c.resource_type = 'Encounter' AND NOT c.first_seen AND e.resource_key = c.resource_key"
    " RETURNING e.patient_key)"
    " INSERT INTO stage_touched SELECT patient_key FROM gone";
const std::string kMergeEncounters =
    "WITH up AS (INSERT INTO encounter (resource_key, patient_key, status, counts, class_code, period_start,"
    " period_end) SELECT s.resource_key, s.patient_key, s.status, s.counts, s.class_code, " +
    at_micros_or_null("s.period_start") + ", " + at_micros_or_null("s.period_end") +
    " FROM stage_encounter s JOIN stage_claimed c"
    " ON c.resource_type = 'Encounter' AND c.resource_key = s.resource_key AND c.version_id = s.version_id"
    " RETURNING patient_key)"
    " INSERT INTO stage_touched SELECT patient_key FROM up";

const std::string kEnqueue =
    "WITH q AS (INSERT INTO scoring_queue (patient_key) SELECT DISTINCT patient_key FROM stage_touched"
    " ON CONFLICT DO NOTHING RETURNING 1) SELECT count(*) FROM q";

}  // namespace

PageCounts Store::store_page(const Page& page) {
  PageCounts c;
  try {
    pqxx::work w(conn_->c);
    if (!conn_->staging_ready) {
      w.exec(kStagingTables);
      conn_->staging_ready = true;
    }
    int ord = 0;
    {
      pqxx::stream_to versions(w, "stage_version",
                               std::vector<std::string>{"ord", "resource_type", "resource_key", "version_id",
                                                        "source_updated"});
      for (const auto& p : page.patients)
        versions << std::make_tuple(ord++, std::string("Patient"), p.version.key.hex, version_of(p.version),
                                    p.version.last_updated);
      for (const auto& o : page.observations)
        versions << std::make_tuple(ord++, std::string("Observation"), o.version.key.hex, version_of(o.version),
                                    o.version.last_updated);
      for (const auto& e : page.encounters)
        versions << std::make_tuple(ord++, std::string("Encounter"), e.version.key.hex, version_of(e.version),
                                    e.version.last_updated);
      versions.complete();
    }
    if (!page.patients.empty()) {
      pqxx::stream_to s(w, "stage_patient",
                        std::vector<std::string>{"resource_key", "version_id", "birth_year", "sex", "sealed_ref"});
      for (const auto& p : page.patients)
        s << std::make_tuple(p.version.key.hex, version_of(p.version), p.birth_year.value_or(kNoYear),
                             p.sex.value_or(""), to_hex(p.sealed_reference));
      s.complete();
    }
    if (!page.encounters.empty()) {
      pqxx::stream_to s(w, "stage_encounter",
                        std::vector<std::string>{"resource_key", "version_id", "patient_key", "status", "counts",
                                                 "class_code", "period_start", "period_end"});
      for (const auto& e : page.encounters)
        s << std::make_tuple(e.version.key.hex, version_of(e.version), e.patient.hex, e.status, e.counts,
                             e.class_code, e.start.value_or(kNoTime), e.end.value_or(kNoTime));
      s.complete();
    }

    // The versions this page brings that the store takes, back to us: the bulk of the page,
    // observation values, then goes straight into its table with COPY, no staging.
    std::set<std::pair<std::string, std::string>> claimed_observations;
    for (const auto& row : w.exec(kClaim)) {
      ++c.stored;
      if (row[0].as<std::string>() == "Observation")
        claimed_observations.emplace(row[1].as<std::string>(), row[2].as<std::string>());
    }
    c.unchanged = ord - c.stored;
    if (!page.patients.empty()) w.exec(kMergePatients);
    if (!claimed_observations.empty()) {
      w.exec(kRetractObservations);
      std::set<std::string> patients;
      pqxx::stream_to values(w, "observation_value",
                             std::vector<std::string>{"resource_key", "code", "patient_key", "value", "unit",
                                                      "effective"});
      for (const auto& o : page.observations) {
        if (o.values.empty() || !claimed_observations.count({o.version.key.hex, version_of(o.version)})) continue;
        const std::string effective = fhir::format_instant(o.effective);
        for (const auto& v : o.values)
          values << std::make_tuple(o.version.key.hex, v.code, o.patient.hex, v.value, v.unit, effective);
        patients.insert(o.patient.hex);
      }
      values.complete();
      pqxx::stream_to touched(w, "stage_touched", std::vector<std::string>{"patient_key"});
      for (const auto& p : patients) touched << std::make_tuple(p);
      touched.complete();
    }
    if (!page.encounters.empty()) {
      w.exec(kRetractEncounters);
      w.exec(kMergeEncounters);
    }
    for (const auto& d : page.dead_letters) {
      std::optional<std::string> key;
      if (d.key) key = d.key->hex;
      auto r = w.exec_params(
          "INSERT INTO dead_letter (resource_type, resource_key, version_id, reason_code, reason, json_pointer) "
          "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING 1",
          d.resource_type, key, d.version_id, d.error.code, d.error.message, d.error.pointer);
      if (r.empty()) ++c.unchanged; else ++c.dead_lettered;
    }
    c.enqueued = static_cast<int>(w.exec(kEnqueue)[0][0].as<long>());
    if (page.max_last_updated > 0)
      move_cursor_forward(w, page.resource_type, page.max_last_updated);
    w.commit();
  } catch (const pqxx::sql_error& e) {
    throw StoreError(fmt::format("storing a {} page: {}", page.resource_type, first_line(e.what())));
  }
  return c;
}

int Store::delete_resources(std::string_view type, const std::vector<std::pair<mapping::Pseudonym, Micros>>& gone,
                            std::string_view cursor_key, Micros cursor) {
  int held = 0;
  const std::string t(type);
  const char* table = t == "Observation" ? "observation_value" : t == "Encounter" ? "encounter" : nullptr;
  try {
    pqxx::work w(conn_->c);
    for (const auto& [key, at] : gone) {
      auto tomb = w.exec_params(
          "INSERT INTO resource_version (resource_type, resource_key, version_id, source_updated) "
          "VALUES ($1, $2, 'deleted', " + ts(3) + ") ON CONFLICT (resource_type, resource_key) DO UPDATE "
          "SET version_id = 'deleted', source_updated = EXCLUDED.source_updated, stored_at = now() "
          "WHERE resource_version.version_id <> 'deleted' AND resource_version.source_updated <= EXCLUDED.source_updated "
          "RETURNING xmax <> 0",
          t, key.hex, at);
      if (tomb.empty() || !tomb[0][0].as<bool>()) continue;  // unknown here, or already gone
      ++held;
      if (table == nullptr) continue;
      for (const auto& row : w.exec_params(fmt::format("DELETE FROM {} WHERE resource_key = $1 RETURNING patient_key", table),
                                           key.hex))
        w.exec_params("INSERT INTO scoring_queue (patient_key) VALUES ($1) ON CONFLICT DO NOTHING",
                      row[0].as<std::string>());
    }
    if (cursor > 0)
      move_cursor_forward(w, std::string(cursor_key), cursor);
    w.commit();
  } catch (const pqxx::sql_error& e) {
    throw StoreError(fmt::format("removing deleted {} resources: {}", t, first_line(e.what())));
  }
  return held;
}

void Store::advance_cursor(std::string_view type, Micros t) {
  try {
    pqxx::work w(conn_->c);
    move_cursor_forward(w, std::string(type), t);
    w.commit();
  } catch (const pqxx::sql_error& e) {
    throw StoreError("moving the cursor: " + first_line(e.what()));
  }
}

ScoreCounts Store::score_batch(int limit, const ModelInfo& model, Micros as_of,
                               const std::function<Scored(const mapping::PatientInputs&)>& score,
                               const std::function<std::string(const std::string&)>& identifier_of) {
  ScoreCounts c;
  try {
    pqxx::work w(conn_->c);
    // Patients whose Patient resource has arrived; the others wait on the queue.
    auto queued = w.exec_params(
        "SELECT q.patient_key, p.birth_year, p.sex FROM scoring_queue q JOIN patient p USING (patient_key) "
        "ORDER BY q.enqueued_at, q.patient_key LIMIT $1 FOR UPDATE OF q SKIP LOCKED", limit);
    std::vector<std::string> keys;
    std::map<std::string, mapping::PatientInputs> inputs;
    for (const auto& row : queued) {
      auto key = row[0].as<std::string>();
      keys.push_back(key);
      auto& in = inputs[key];
      in.birth_year = opt<int>(row[1]);
      in.sex = opt<std::string>(row[2]);
    }
    c.waiting = static_cast<int>(w.exec("SELECT count(*) FROM scoring_queue q WHERE NOT EXISTS "
                                        "(SELECT 1 FROM patient p WHERE p.patient_key = q.patient_key)")[0][0].as<long>());
    if (keys.empty()) {
      w.commit();
      return c;
    }
    std::string arr = key_array(keys);
    for (const auto& row : w.exec_params("SELECT patient_key, code, value, " + micros_of("effective") +
                                         " FROM observation_value WHERE patient_key = ANY($1::text[])", arr))
      inputs[row[0].as<std::string>()].measurements.push_back(
          {row[1].as<std::string>(), row[2].as<double>(), row[3].as<Micros>()});
    for (const auto& row : w.exec_params("SELECT patient_key, class_code, " + micros_of("period_start") + ", " +
                                         micros_of("period_end") +
                                         " FROM encounter WHERE counts AND patient_key = ANY($1::text[])", arr))
      inputs[row[0].as<std::string>()].stays.push_back(
          {row[1].as<std::string>(), opt<Micros>(row[2]), opt<Micros>(row[3])});

    for (const auto& key : keys) {
      Scored s = score(inputs[key]);
      auto id = w.exec_params(
          "INSERT INTO score (patient_key, model_name, model_version, model_sha256, as_of, probability, band, features) "
          "VALUES ($1, $2, $3, $4, " + ts(5) + ", $6, $7, $8::jsonb) RETURNING id",
          key, model.name, model.version, model.sha256, as_of, s.probability, s.band,
          features_json(model.feature_names, s.features))[0][0].as<std::int64_t>();
      // Write back only what changed what the clinician sees: the probability or the band.
      auto marked = w.exec_params(
          "INSERT INTO risk_assessment (patient_key, model_name, identifier, pending_score_id) VALUES ($1, $2, $3, $4) "
          "ON CONFLICT (patient_key, model_name) DO UPDATE SET pending_score_id = EXCLUDED.pending_score_id "
          "WHERE risk_assessment.written_probability IS DISTINCT FROM $5 "
          "OR risk_assessment.written_band IS DISTINCT FROM $6 "
          "RETURNING 1",
          key, model.name, identifier_of(key), id, s.probability, s.band);
      if (marked.empty())  // unchanged: drop a write still pending from an older score
        w.exec_params("UPDATE risk_assessment SET pending_score_id = NULL WHERE patient_key = $1 AND model_name = $2",
                      key, model.name);
      else
        ++c.to_write;
      ++c.scored;
    }
    w.exec_params("DELETE FROM scoring_queue WHERE patient_key = ANY($1::text[])", arr);
    w.commit();
  } catch (const pqxx::sql_error& e) {
    throw StoreError("scoring: " + first_line(e.what()));
  }
  return c;
}

std::vector<PendingWrite> Store::pending_writes(const std::string& model_name, int limit) {
  std::vector<PendingWrite> out;
  pqxx::work w(conn_->c);
  for (const auto& row : w.exec_params(
           "SELECT ra.patient_key, ra.identifier, encode(p.sealed_ref, 'hex'), s.id, s.probability, s.band, " +
               micros_of("s.as_of") + ", s.features::text "
               "FROM risk_assessment ra JOIN score s ON s.id = ra.pending_score_id "
               "JOIN patient p ON p.patient_key = ra.patient_key "
               "WHERE ra.model_name = $1 AND ra.pending_score_id IS NOT NULL ORDER BY s.id LIMIT $2",
           model_name, limit)) {
    out.push_back({row[0].as<std::string>(), row[1].as<std::string>(), from_hex(row[2].as<std::string>()),
                   row[3].as<std::int64_t>(), row[4].as<double>(), row[5].as<std::string>(), row[6].as<Micros>(),
                   row[7].as<std::string>()});
  }
  w.commit();
  return out;
}

void Store::mark_written(const std::string& model_name, const PendingWrite& pw) {
  pqxx::work w(conn_->c);
  w.exec_params(
      "UPDATE risk_assessment SET written_score_id = $3, written_probability = $4, written_band = $5, "
      "written_at = now(), pending_score_id = NULL "
      "WHERE patient_key = $1 AND model_name = $2 AND pending_score_id = $3",
      pw.patient_key, model_name, pw.score_id, pw.probability, pw.band);
  w.commit();
}

std::int64_t Store::queue_depth() {
  pqxx::work w(conn_->c);
  return w.exec("SELECT count(*) FROM scoring_queue")[0][0].as<std::int64_t>();
}

}  // namespace fra::store
