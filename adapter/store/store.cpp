#include "adapter/store/store.hpp"
#include "adapter/store/connection.hpp"

#include <fmt/format.h>
#include <pqxx/pqxx>

#include <cmath>
#include <map>
#include <set>

namespace fra::store {
namespace {

using fhir::Micros;

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

// Timestamps cross the boundary as epoch microseconds, so no time zone setting can shift them.
std::string ts(int param) { return fmt::format("(timestamptz 'epoch' + ${}::bigint * interval '1 microsecond')", param); }
std::string micros_of(const char* column) {
  return fmt::format("(extract(epoch from {}) * 1000000)::bigint", column);
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

// True when this version is new or newer than the one stored; records it.
bool claim_version(pqxx::work& w, const std::string& type, const mapping::Version& v) {
  auto r = w.exec_params(
      "INSERT INTO resource_version (resource_type, resource_key, version_id, source_updated) "
      "VALUES ($1, $2, $3, " + ts(4) + ") "
      "ON CONFLICT (resource_type, resource_key) DO UPDATE "
      "SET version_id = EXCLUDED.version_id, source_updated = EXCLUDED.source_updated, stored_at = now() "
      "WHERE resource_version.version_id <> EXCLUDED.version_id "
      "AND resource_version.source_updated <= EXCLUDED.source_updated "
      "RETURNING 1",
      type, v.key.hex, version_of(v), v.last_updated);
  return !r.empty();
}

int enqueue(pqxx::work& w, const std::set<std::string>& patients) {
  int n = 0;
  for (const auto& p : patients)
    n += static_cast<int>(w.exec_params("INSERT INTO scoring_queue (patient_key) VALUES ($1) "
                                        "ON CONFLICT DO NOTHING RETURNING 1", p).size());
  return n;
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

PageCounts Store::store_page(const Page& page) {
  PageCounts c;
  std::set<std::string> touched;
  try {
    pqxx::work w(conn_->c);
    for (const auto& p : page.patients) {
      if (!claim_version(w, "Patient", p.version)) { ++c.unchanged; continue; }
      w.exec_params(
          "INSERT INTO patient (patient_key, birth_year, sex, sealed_ref) VALUES ($1, $2, $3, decode($4, 'hex')) "
          "ON CONFLICT (patient_key) DO UPDATE SET birth_year = EXCLUDED.birth_year, sex = EXCLUDED.sex, "
          "sealed_ref = EXCLUDED.sealed_ref, stored_at = now()",
          p.version.key.hex, p.birth_year, p.sex, to_hex(p.sealed_reference));
      touched.insert(p.version.key.hex);
      ++c.stored;
    }
    for (const auto& o : page.observations) {
      if (!claim_version(w, "Observation", o.version)) { ++c.unchanged; continue; }
      // A new version replaces every value of the old one (and may move to another patient).
      for (const auto& row : w.exec_params("DELETE FROM observation_value WHERE resource_key = $1 RETURNING patient_key",
                                           o.version.key.hex))
        touched.insert(row[0].as<std::string>());
      for (const auto& v : o.values)
        w.exec_params("INSERT INTO observation_value (resource_key, code, patient_key, value, unit, effective) "
                      "VALUES ($1, $2, $3, $4, $5, " + ts(6) + ")",
                      o.version.key.hex, v.code, o.patient.hex, v.value, v.unit, o.effective);
      if (!o.values.empty()) touched.insert(o.patient.hex);
      ++c.stored;
    }
    for (const auto& e : page.encounters) {
      if (!claim_version(w, "Encounter", e.version)) { ++c.unchanged; continue; }
      for (const auto& row : w.exec_params("DELETE FROM encounter WHERE resource_key = $1 RETURNING patient_key",
                                           e.version.key.hex))
        touched.insert(row[0].as<std::string>());
      std::optional<Micros> start = e.start, end = e.end;
      w.exec_params("INSERT INTO encounter (resource_key, patient_key, status, counts, class_code, period_start, period_end) "
                    "VALUES ($1, $2, $3, $4, $5, " + ts(6) + ", " + ts(7) + ")",
                    e.version.key.hex, e.patient.hex, e.status, e.counts, e.class_code, start, end);
      touched.insert(e.patient.hex);
      ++c.stored;
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
    c.enqueued = enqueue(w, touched);
    if (page.max_last_updated > 0)
      w.exec_params("INSERT INTO sync_cursor (resource_type, last_updated) VALUES ($1, " + ts(2) + ") "
                    "ON CONFLICT (resource_type) DO UPDATE "
                    "SET last_updated = greatest(sync_cursor.last_updated, EXCLUDED.last_updated), updated_at = now()",
                    page.resource_type, page.max_last_updated);
    w.commit();
  } catch (const pqxx::sql_error& e) {
    throw StoreError(fmt::format("storing a {} page: {}", page.resource_type, first_line(e.what())));
  }
  return c;
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
