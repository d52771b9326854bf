#include "adapter/store/store.hpp"

#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <map>
#include <pqxx/pqxx>
#include <set>
#include <tuple>
#include <utility>

#include "adapter/store/connection.hpp"

namespace fra::store {
std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

std::string to_hex(const std::vector<std::uint8_t>& b) {
  return mapping::to_hex(b.data(), b.size());
}

std::vector<std::uint8_t> from_hex(const std::string& hex) {
  std::vector<std::uint8_t> out(hex.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<std::uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  return out;
}

namespace {

using fhir::Micros;

// Timestamps cross the boundary as epoch microseconds, so no time zone setting can shift them:
// the instant `micros` microseconds (an expression) after the epoch, and the same of parameter N.
std::string at_micros(const std::string& micros) {
  return "(timestamptz 'epoch' + " + micros + " * interval '1 microsecond')";
}
std::string ts(int param) { return at_micros(fmt::format("${}::bigint", param)); }
std::string micros_of(const char* column) {
  return fmt::format("(extract(epoch from {}) * 1000000)::bigint", column);
}

// The statement that moves a cursor forward to `t`, never back. As text with literals quoted
// by the connection, so that a page can send it with others in one round trip.
std::string cursor_sql(pqxx::work& w, const std::string& key, Micros t) {
  return fmt::format(
      "INSERT INTO sync_cursor (resource_type, last_updated) VALUES ({}, {}) ON CONFLICT "
      "(resource_type) DO UPDATE "
      "SET last_updated = greatest(sync_cursor.last_updated, EXCLUDED.last_updated), updated_at = "
      "now();",
      w.quote(key), at_micros(std::to_string(t)));
}

// Moves a cursor forward to `t`, never back, inside the caller's transaction.
void move_cursor_forward(pqxx::work& w, const std::string& key, Micros t) {
  w.exec(cursor_sql(w, key, t));
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
    // Named, so that `rekey` can tell whether another adapter process is connected.
    pqxx::nontransaction(conn_->c).exec("SET application_name = 'fhir-risk-adapter'");
  } catch (const std::exception& e) {
    throw StoreError("cannot connect to the database: " + first_line(e.what()));
  }
}

Store::~Store() = default;

std::optional<Micros> Store::cursor(std::string_view type) {
  pqxx::work w(conn_->c);
  auto r = w.exec_params(
      "SELECT " + micros_of("last_updated") + " FROM sync_cursor WHERE resource_type = $1",
      std::string(type));
  if (r.empty()) return std::nullopt;
  return r[0][0].as<Micros>();
}

namespace {

// Staging tables, one set per connection, emptied at every commit. A page is copied into them
// with COPY and merged into the store with a handful of statements, whatever its size.
constexpr const char* kStagingTables = R"sql(
CREATE TEMP TABLE IF NOT EXISTS stage_version (
  ord integer, resource_type text, resource_key text, version_id text, source_updated bigint, sealed_ref text,
  patient_key text, has_values boolean
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_patient (
  resource_key text, version_id text, birth_year integer, sex text, sealed_ref text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_encounter (
  resource_key text, version_id text, patient_key text, status text, counts boolean, class_code text,
  period_start bigint, period_end bigint
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_claimed (
  resource_type text, resource_key text, version_id text, first_seen boolean, patient_key text, has_values boolean
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_touched (patient_key text) ON COMMIT DELETE ROWS;
)sql";

// NULL crosses COPY as these stand-ins (libpqxx 6.4's stream_to has no optional).
constexpr std::int32_t kNoYear = std::numeric_limits<std::int32_t>::min();
constexpr std::int64_t kNoTime = std::numeric_limits<std::int64_t>::min();

std::string at_micros_or_null(const std::string& column) {
  return fmt::format("CASE WHEN {0} = {1} THEN NULL ELSE {2} END", column, kNoTime,
                     at_micros(column));
}

// The rows of a page's chosen versions: the newest of each resource in the page that is newer
// than, or not yet in, the store. In the same statement (each statement is a round trip, and a
// page's round trips were most of its time): their lineage, the claimed versions becoming
// inputs of their patient from now on and the versions they replace ceasing to be inputs now
// (the UPDATE sees the table as it was before this statement, so not the new rows); and the
// retraction of the rows of the versions they replace (a new version replaces every value of
// the old one, and may move to another patient; a resource seen for the first time has
// nothing to retract).
const std::string kClaim =
    "WITH incoming AS ("
    " SELECT DISTINCT ON (resource_type, resource_key) resource_type, resource_key, version_id, "
    "source_updated,"
    " sealed_ref, patient_key, has_values FROM stage_version"
    " ORDER BY resource_type, resource_key, source_updated DESC, ord DESC),"
    " up AS ("
    " INSERT INTO resource_version (resource_type, resource_key, version_id, source_updated, "
    "sealed_ref)"
    " SELECT resource_type, resource_key, version_id, " +
    at_micros("source_updated") +
    ", decode(sealed_ref, 'hex')"
    " FROM incoming"
    " ON CONFLICT (resource_type, resource_key) DO UPDATE"
    " SET version_id = EXCLUDED.version_id, source_updated = EXCLUDED.source_updated, stored_at = "
    "now(),"
    " sealed_ref = EXCLUDED.sealed_ref"
    " WHERE resource_version.version_id <> EXCLUDED.version_id"
    " AND resource_version.source_updated <= EXCLUDED.source_updated"
    " RETURNING resource_type, resource_key, version_id, xmax = 0 AS first_seen)"  // xmax 0:
                                                                                   // inserted
    " , claimed AS (INSERT INTO stage_claimed SELECT u.resource_type, u.resource_key, "
    "u.version_id, u.first_seen,"
    " i.patient_key, i.has_values FROM up u"
    " JOIN incoming i ON i.resource_type = u.resource_type AND i.resource_key = u.resource_key "
    "RETURNING *)"
    " , superseded AS (UPDATE input_version v SET superseded_at = now() FROM claimed c"
    " WHERE NOT c.first_seen AND v.resource_key = c.resource_key AND v.superseded_at IS NULL)"
    " , lineage AS (INSERT INTO input_version (resource_type, resource_key, version_id, "
    "patient_key)"
    " SELECT resource_type, resource_key, version_id, patient_key FROM claimed ON CONFLICT DO "
    "NOTHING)"
    " , gone_values AS (DELETE FROM observation_value o USING claimed c"
    " WHERE c.resource_type = 'Observation' AND NOT c.first_seen AND o.resource_key = "
    "c.resource_key"
    " RETURNING o.patient_key)"
    " , gone_encounters AS (DELETE FROM encounter e USING claimed c"
    " WHERE c.resource_type = 'Encounter' AND NOT c.first_seen AND e.resource_key = c.resource_key"
    " RETURNING e.patient_key)"
    " , touched AS (INSERT INTO stage_touched SELECT patient_key FROM gone_values"
    " UNION ALL SELECT patient_key FROM gone_encounters)"
    " SELECT resource_type, resource_key, version_id FROM claimed";

const std::string kMergePatients =
    "WITH up AS (INSERT INTO patient (patient_key, birth_year, sex, sealed_ref)"
    " SELECT s.resource_key, NULLIF(s.birth_year, " +
    std::to_string(kNoYear) +
    "), NULLIF(s.sex, ''),"
    " decode(s.sealed_ref, 'hex') FROM stage_patient s JOIN stage_claimed c"
    " ON c.resource_type = 'Patient' AND c.resource_key = s.resource_key AND c.version_id = "
    "s.version_id"
    " ON CONFLICT (patient_key) DO UPDATE SET birth_year = EXCLUDED.birth_year, sex = EXCLUDED.sex,"
    " sealed_ref = EXCLUDED.sealed_ref, stored_at = now() RETURNING patient_key)"
    " INSERT INTO stage_touched SELECT patient_key FROM up";

const std::string kMergeEncounters =
    "WITH up AS (INSERT INTO encounter (resource_key, patient_key, status, counts, class_code, "
    "period_start,"
    " period_end) SELECT s.resource_key, s.patient_key, s.status, s.counts, s.class_code, " +
    at_micros_or_null("s.period_start") + ", " + at_micros_or_null("s.period_end") +
    " FROM stage_encounter s JOIN stage_claimed c"
    " ON c.resource_type = 'Encounter' AND c.resource_key = s.resource_key AND c.version_id = "
    "s.version_id"
    " RETURNING patient_key)"
    " INSERT INTO stage_touched SELECT patient_key FROM up";

// The patients whose inputs this page changed (retracted rows were added by kClaim, merged
// patients and encounters by theirs) go on the scoring queue; the count comes back.
const std::string kEnqueue =
    "INSERT INTO stage_touched SELECT patient_key FROM stage_claimed WHERE resource_type = "
    "'Observation'"
    " AND has_values;"
    " WITH q AS (INSERT INTO scoring_queue (patient_key) SELECT DISTINCT patient_key FROM "
    "stage_touched"
    " ON CONFLICT DO NOTHING RETURNING 1) SELECT count(*) FROM q";

}  // namespace

// The statement that appends one event to the audit log (the chaining trigger fills in the
// position, time, database user and hashes); `details` is a JSON object. As text with quoted
// literals, like cursor_sql.
std::string audit_sql(pqxx::work& w, const std::string& actor, std::string_view action,
                      std::string_view object, const std::string& details) {
  return fmt::format(
      "INSERT INTO audit_log (actor, action, object, details) VALUES ({}, {}, {}, {}::jsonb);",
      w.quote(actor), w.quote(std::string(action)), w.quote(std::string(object)), w.quote(details));
}

// Appends one event to the audit log in the transaction `w`.
void audit_in(pqxx::work& w, const std::string& actor, std::string_view action,
              std::string_view object, const std::string& details) {
  w.exec(audit_sql(w, actor, action, object, details));
}

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
      pqxx::stream_to versions(
          w, "stage_version",
          std::vector<std::string>{"ord", "resource_type", "resource_key", "version_id",
                                   "source_updated", "sealed_ref", "patient_key", "has_values"});
      for (const auto& p : page.patients)
        versions << std::make_tuple(ord++, std::string("Patient"), p.version.key.hex,
                                    version_of(p.version), p.version.last_updated,
                                    to_hex(p.version.sealed), p.version.key.hex, false);
      for (const auto& o : page.observations)
        versions << std::make_tuple(ord++, std::string("Observation"), o.version.key.hex,
                                    version_of(o.version), o.version.last_updated,
                                    to_hex(o.version.sealed), o.patient.hex, !o.values.empty());
      for (const auto& e : page.encounters)
        versions << std::make_tuple(ord++, std::string("Encounter"), e.version.key.hex,
                                    version_of(e.version), e.version.last_updated,
                                    to_hex(e.version.sealed), e.patient.hex, false);
      versions.complete();
    }
    if (!page.patients.empty()) {
      pqxx::stream_to s(w, "stage_patient",
                        std::vector<std::string>{"resource_key", "version_id", "birth_year", "sex",
                                                 "sealed_ref"});
      for (const auto& p : page.patients)
        s << std::make_tuple(p.version.key.hex, version_of(p.version),
                             p.birth_year.value_or(kNoYear), p.sex.value_or(""),
                             to_hex(p.sealed_reference));
      s.complete();
    }
    if (!page.encounters.empty()) {
      pqxx::stream_to s(
          w, "stage_encounter",
          std::vector<std::string>{"resource_key", "version_id", "patient_key", "status", "counts",
                                   "class_code", "period_start", "period_end"});
      for (const auto& e : page.encounters)
        s << std::make_tuple(e.version.key.hex, version_of(e.version), e.patient.hex, e.status,
                             e.counts, e.class_code, e.start.value_or(kNoTime),
                             e.end.value_or(kNoTime));
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
      pqxx::stream_to values(w, "observation_value",
                             std::vector<std::string>{"resource_key", "code", "patient_key",
                                                      "value", "unit", "effective"});
      for (const auto& o : page.observations) {
        if (o.values.empty() ||
            !claimed_observations.count({o.version.key.hex, version_of(o.version)}))
          continue;
        const std::string effective = fhir::format_instant(o.effective);
        for (const auto& v : o.values)
          values << std::make_tuple(o.version.key.hex, v.code, o.patient.hex, v.value, v.unit,
                                    effective);
      }
      values.complete();
    }
    if (!page.encounters.empty()) w.exec(kMergeEncounters);
    for (const auto& d : page.dead_letters) {
      std::optional<std::string> key;
      if (d.key) key = d.key->hex;
      std::optional<std::string> sealed;
      if (!d.sealed.empty()) sealed = to_hex(d.sealed);
      auto r = w.exec_params(
          "INSERT INTO dead_letter (resource_type, resource_key, version_id, reason_code, reason, "
          "json_pointer, "
          "sealed_ref) VALUES ($1, $2, $3, $4, $5, $6, decode($7, 'hex')) ON CONFLICT DO NOTHING "
          "RETURNING 1",
          d.resource_type, key, d.version_id, d.error.code, d.error.message, d.error.pointer,
          sealed);
      if (r.empty()) {
        ++c.unchanged;
      } else {
        ++c.dead_lettered;
        w.exec_params(
            "INSERT INTO audit_log (actor, action, object, details) VALUES ($1, 'dead-letter', $2, "
            "jsonb_build_object('version', $3::text, 'reason_code', $4::text, 'json_pointer', "
            "$5::text))",
            actor_, d.resource_type + "/" + key.value_or("(no id)"), d.version_id, d.error.code,
            d.error.pointer);
      }
    }
    // The cursor, the page's audit event and the queue in one round trip (so with literals,
    // quoted by the connection, instead of parameters).
    std::string finish;
    if (page.max_last_updated > 0)
      finish += cursor_sql(w, page.resource_type, page.max_last_updated);
    finish += audit_sql(
        w, actor_, "ingest", page.resource_type,
        fmt::format(
            R"({{"resources": {}, "stored": {}, "unchanged": {}, "dead_lettered": {}, "cursor": "{}"}})",
            ord + static_cast<int>(page.dead_letters.size()), c.stored, c.unchanged,
            c.dead_lettered,
            page.max_last_updated > 0 ? fhir::format_instant(page.max_last_updated) : ""));
    c.enqueued = static_cast<int>(w.exec(finish + kEnqueue)[0][0].as<long>());
    w.commit();
  } catch (const pqxx::sql_error& e) {
    throw StoreError(
        fmt::format("storing a {} page: {}", page.resource_type, first_line(e.what())));
  }
  return c;
}

int Store::delete_resources(std::string_view type,
                            const std::vector<std::pair<mapping::Pseudonym, Micros>>& gone,
                            std::string_view cursor_key, Micros cursor) {
  int held = 0;
  const std::string t(type);
  const char* table = t == "Observation" ? "observation_value"
                      : t == "Encounter" ? "encounter"
                                         : nullptr;
  try {
    pqxx::work w(conn_->c);
    for (const auto& [key, at] : gone) {
      auto tomb = w.exec_params(
          "INSERT INTO resource_version (resource_type, resource_key, version_id, source_updated) "
          "VALUES ($1, $2, 'deleted', " +
              ts(3) +
              ") ON CONFLICT (resource_type, resource_key) DO UPDATE "
              "SET version_id = 'deleted', source_updated = EXCLUDED.source_updated, stored_at = "
              "now() "
              "WHERE resource_version.version_id <> 'deleted' AND resource_version.source_updated "
              "<= EXCLUDED.source_updated "
              "RETURNING xmax <> 0",
          t, key.hex, at);
      if (tomb.empty() || !tomb[0][0].as<bool>()) continue;  // unknown here, or already gone
      ++held;
      w.exec_params(
          "UPDATE input_version SET superseded_at = now() WHERE resource_key = $1 AND "
          "superseded_at IS NULL",
          key.hex);
      if (table == nullptr) continue;
      for (const auto& row : w.exec_params(
               fmt::format("DELETE FROM {} WHERE resource_key = $1 RETURNING patient_key", table),
               key.hex))
        w.exec_params("INSERT INTO scoring_queue (patient_key) VALUES ($1) ON CONFLICT DO NOTHING",
                      row[0].as<std::string>());
    }
    if (cursor > 0) move_cursor_forward(w, std::string(cursor_key), cursor);
    if (held > 0) audit_in(w, actor_, "delete", t, fmt::format(R"({{"deleted": {}}})", held));
    w.commit();
  } catch (const pqxx::sql_error& e) {
    throw StoreError(fmt::format("removing deleted {} resources: {}", t, first_line(e.what())));
  }
  return held;
}

void Store::advance_cursor(std::string_view type, Micros t) {
  try {
    // A cursor set without a page (after a bulk export, or where a type's history starts) is
    // an event of its own: the search skips what is before it.
    pqxx::work w(conn_->c);
    move_cursor_forward(w, std::string(type), t);
    audit_in(w, actor_, "cursor", type,
             fmt::format(R"({{"cursor": "{}"}})", fhir::format_instant(t)));
    w.commit();
  } catch (const pqxx::sql_error& e) {
    throw StoreError("moving the cursor: " + first_line(e.what()));
  }
}

namespace {

// The stored inputs of the given patients, in the order of `keys` (whose birth year and sex are
// filled by the caller's query).
void load_inputs(pqxx::work& w, const std::vector<std::string>& keys,
                 std::vector<mapping::PatientInputs>& inputs) {
  std::map<std::string, std::size_t, std::less<>> at;
  for (std::size_t i = 0; i < keys.size(); ++i) at.emplace(keys[i], i);
  const std::string arr = key_array(keys);
  for (const auto& row :
       w.exec_params("SELECT patient_key, code, value, " + micros_of("effective") +
                         " FROM observation_value WHERE patient_key = ANY($1::text[])",
                     arr))
    inputs[at.at(row[0].as<std::string>())].measurements.push_back(
        {row[1].as<std::string>(), row[2].as<double>(), row[3].as<Micros>()});
  for (const auto& row :
       w.exec_params("SELECT patient_key, class_code, " + micros_of("period_start") + ", " +
                         micros_of("period_end") +
                         " FROM encounter WHERE counts AND patient_key = ANY($1::text[])",
                     arr))
    inputs[at.at(row[0].as<std::string>())].stays.push_back(
        {row[1].as<std::string>(), opt<Micros>(row[2]), opt<Micros>(row[3])});
}

// A text array literal of arbitrary strings: each element quoted, `"` and `\` escaped.
std::string text_array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    out += i ? ",\"" : "\"";
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

}  // namespace

ScoreCounts Store::score_batch(
    int limit, const ModelInfo& model, Micros as_of, const BatchScorer& score,
    const std::function<std::string(const std::string&)>& identifier_of) {
  ScoreCounts c;
  try {
    pqxx::work w(conn_->c);
    // Patients whose Patient resource has arrived; the others wait on the queue.
    auto queued = w.exec_params(
        "SELECT q.patient_key, p.birth_year, p.sex FROM scoring_queue q JOIN patient p USING "
        "(patient_key) "
        "ORDER BY q.enqueued_at, q.patient_key LIMIT $1 FOR UPDATE OF q SKIP LOCKED",
        limit);
    std::vector<std::string> keys;
    std::vector<mapping::PatientInputs> inputs(queued.size());
    for (const auto& row : queued) {
      inputs[keys.size()].birth_year = opt<int>(row[1]);
      inputs[keys.size()].sex = opt<std::string>(row[2]);
      keys.push_back(row[0].as<std::string>());
    }
    c.waiting = static_cast<int>(
        w.exec("SELECT count(*) FROM scoring_queue q WHERE NOT EXISTS "
               "(SELECT 1 FROM patient p WHERE p.patient_key = q.patient_key)")[0][0]
            .as<long>());
    if (keys.empty()) {
      w.commit();
      return c;
    }
    load_inputs(w, keys, inputs);
    std::vector<Scored> scored = score(inputs);

    // Every score in one statement, then every RiskAssessment row in one more.
    std::vector<std::string> probs, bands, features, contributions, identifiers;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      probs.push_back(fmt::format("{:.17g}", scored[i].probability));
      bands.push_back(scored[i].band);
      features.push_back(features_json(model.feature_names, scored[i].features));
      contributions.push_back(scored[i].contributions_json);
      identifiers.push_back(identifier_of(keys[i]));
    }
    const std::string arr = key_array(keys);
    auto ids = w.exec_params(
        "INSERT INTO score (patient_key, model_name, model_version, model_sha256, as_of, "
        "probability, band, features, "
        "contributions) SELECT u.k, $2, $3, $4, " +
            ts(5) +
            ", u.p, u.b, u.f::jsonb, u.c::jsonb "
            "FROM unnest($1::text[], $6::float8[], $7::text[], $8::text[], $9::text[]) WITH "
            "ORDINALITY AS u(k, p, b, f, c, n) "
            "ORDER BY u.n RETURNING patient_key, id",
        arr, model.name, model.version, model.sha256, as_of, key_array(probs), text_array(bands),
        text_array(features), text_array(contributions));
    std::map<std::string, std::string, std::less<>> id_of;
    for (const auto& row : ids) id_of.emplace(row[0].as<std::string>(), row[1].as<std::string>());
    std::vector<std::string> id_text;
    for (const auto& k : keys) id_text.push_back(id_of.at(k));
    // Marked for write-back; then unmarked again where the server already shows this
    // probability and band (what the clinician sees did not change).
    w.exec_params(
        "INSERT INTO risk_assessment (patient_key, model_name, identifier, pending_score_id) "
        "SELECT u.k, $2, u.i, u.s FROM unnest($1::text[], $3::text[], $4::bigint[]) AS u(k, i, s) "
        "ON CONFLICT (patient_key, model_name) DO UPDATE SET pending_score_id = "
        "EXCLUDED.pending_score_id",
        arr, model.name, key_array(identifiers), key_array(id_text));
    auto unchanged = w.exec_params(
        "UPDATE risk_assessment ra SET pending_score_id = NULL FROM score s "
        "WHERE ra.model_name = $2 AND ra.patient_key = ANY($1::text[]) AND s.id = "
        "ra.pending_score_id "
        "AND ra.written_probability = s.probability AND ra.written_band = s.band",
        arr, model.name);
    c.scored = static_cast<int>(keys.size());
    c.to_write = c.scored - static_cast<int>(unchanged.affected_rows());
    // One audit event per score, carrying what it says and a hash of its feature vector, so that
    // a score altered afterwards no longer matches the chain.
    w.exec_params(
        "INSERT INTO audit_log (actor, action, object, details) "
        "SELECT $1, 'score', 'Patient/' || patient_key, jsonb_build_object('score_id', id, "
        "'model', model_name, "
        "'model_version', model_version, 'model_sha256', model_sha256, 'as_of', as_of, "
        "'probability', probability, "
        "'band', band, 'features_sha256', encode(sha256(convert_to(features::text, 'UTF8')), "
        "'hex'), "
        "'contributions_sha256', encode(sha256(convert_to(contributions::text, 'UTF8')), 'hex'), "
        "'scored_at', scored_at) "
        "FROM score WHERE id = ANY($2::bigint[]) ORDER BY id",
        actor_, key_array(id_text));
    w.exec_params("DELETE FROM scoring_queue WHERE patient_key = ANY($1::text[])", arr);
    w.commit();
  } catch (const pqxx::sql_error& e) {
    throw StoreError("scoring: " + first_line(e.what()));
  }
  return c;
}

void Store::for_each_patient(int batch, const PatientVisitor& visit) {
  std::string after;
  for (;;) {
    std::vector<std::string> keys;
    std::vector<mapping::PatientInputs> inputs;
    try {
      pqxx::work w(conn_->c);
      auto rows = w.exec_params(
          "SELECT patient_key, birth_year, sex FROM patient WHERE patient_key > $1 "
          "ORDER BY patient_key LIMIT $2",
          after, batch);
      inputs.resize(rows.size());
      for (const auto& row : rows) {
        inputs[keys.size()].birth_year = opt<int>(row[1]);
        inputs[keys.size()].sex = opt<std::string>(row[2]);
        keys.push_back(row[0].as<std::string>());
      }
      if (!keys.empty()) load_inputs(w, keys, inputs);
      w.commit();
    } catch (const pqxx::sql_error& e) {
      throw StoreError("reading patients: " + first_line(e.what()));
    }
    if (keys.empty()) return;
    visit(keys, inputs);
    after = keys.back();
  }
}

std::optional<Micros> Store::newest_encounter_time() {
  pqxx::work w(conn_->c);
  auto r = w.exec("SELECT " + micros_of("max(greatest(period_start, period_end))") +
                  " FROM encounter WHERE counts");
  return opt<Micros>(r[0][0]);
}

std::vector<PendingWrite> Store::pending_writes(const std::string& model_name, int limit,
                                                std::int64_t after_score_id) {
  std::vector<PendingWrite> out;
  pqxx::work w(conn_->c);
  for (const auto& row : w.exec_params(
           "SELECT ra.patient_key, ra.identifier, encode(p.sealed_ref, 'hex'), s.id, "
           "s.probability, s.band, " +
               micros_of("s.as_of") +
               ", s.features::text, s.contributions::text "
               "FROM risk_assessment ra JOIN score s ON s.id = ra.pending_score_id "
               "JOIN patient p ON p.patient_key = ra.patient_key "
               "WHERE ra.model_name = $1 AND ra.pending_score_id > $3 ORDER BY s.id LIMIT $2",
           model_name, limit, after_score_id)) {
    out.push_back({row[0].as<std::string>(), row[1].as<std::string>(),
                   from_hex(row[2].as<std::string>()), row[3].as<std::int64_t>(),
                   row[4].as<double>(), row[5].as<std::string>(), row[6].as<Micros>(),
                   row[7].as<std::string>(), row[8].as<std::string>()});
  }
  w.commit();
  return out;
}

void Store::mark_written(const std::string& model_name, const std::vector<PendingWrite>& written) {
  if (written.empty()) return;
  std::vector<std::string> keys, ids, probs, bands;
  for (const auto& pw : written) {
    keys.push_back(pw.patient_key);
    ids.push_back(std::to_string(pw.score_id));
    probs.push_back(fmt::format("{:.17g}", pw.probability));
    bands.push_back(pw.band);
  }
  pqxx::work w(conn_->c);
  w.exec_params(
      "UPDATE risk_assessment ra SET written_score_id = u.s, written_probability = u.p, "
      "written_band = u.b, "
      "written_at = now(), pending_score_id = NULL "
      "FROM unnest($2::text[], $3::bigint[], $4::float8[], $5::text[]) AS u(k, s, p, b) "
      "WHERE ra.patient_key = u.k AND ra.model_name = $1 AND ra.pending_score_id = u.s",
      model_name, key_array(keys), key_array(ids), key_array(probs), text_array(bands));
  audit_in(w, actor_, "write-back", model_name,
           fmt::format(R"({{"risk_assessments": {}, "score_ids": [{}]}})", ids.size(),
                       fmt::join(ids, ", ")));
  w.commit();
}

std::int64_t Store::queue_depth() {
  pqxx::work w(conn_->c);
  return w.exec("SELECT count(*) FROM scoring_queue")[0][0].as<std::int64_t>();
}

void Store::audit(std::string_view action, std::string_view object, const std::string& details) {
  try {
    pqxx::work w(conn_->c);
    audit_in(w, actor_, action, object, details);
    w.commit();
  } catch (const pqxx::sql_error& e) {
    throw StoreError("writing the audit log: " + first_line(e.what()));
  }
}

PurgeCounts Store::purge_raw_inputs(fhir::Micros cutoff) {
  PurgeCounts c;
  try {
    pqxx::work w(conn_->c);
    const std::string at = ts(1);
    c.observation_values = static_cast<std::int64_t>(
        w.exec_params("DELETE FROM observation_value WHERE effective < " + at, cutoff)
            .affected_rows());
    c.encounters = static_cast<std::int64_t>(
        w.exec_params("DELETE FROM encounter WHERE coalesce(period_end, period_start) < " + at,
                      cutoff)
            .affected_rows());
    c.dead_letters = static_cast<std::int64_t>(
        w.exec_params("DELETE FROM dead_letter WHERE seen_at < " + at, cutoff).affected_rows());
    audit_in(
        w, actor_, "purge", "raw inputs",
        fmt::format(
            R"({{"cutoff": "{}", "observation_values": {}, "encounters": {}, "dead_letters": {}}})",
            fhir::format_instant(cutoff), c.observation_values, c.encounters, c.dead_letters));
    w.commit();
  } catch (const pqxx::sql_error& e) {
    throw StoreError("purging raw inputs: " + first_line(e.what()));
  }
  return c;
}

bool Store::pseudonym_key_matches(const std::string& fingerprint) {
  try {
    pqxx::work w(conn_->c);
    auto set = w.exec_params(
        "INSERT INTO pseudonym_key (fingerprint) VALUES ($1) ON CONFLICT DO NOTHING RETURNING 1",
        fingerprint);
    if (!set.empty())
      audit_in(w, actor_, "key-fingerprint", "pseudonym key", R"({"recorded": true})");
    const bool same =
        w.exec("SELECT fingerprint FROM pseudonym_key")[0][0].as<std::string>() == fingerprint;
    w.commit();
    return same;
  } catch (const pqxx::sql_error& e) {
    throw StoreError("reading the pseudonym key's fingerprint: " + first_line(e.what()));
  }
}

}  // namespace fra::store
