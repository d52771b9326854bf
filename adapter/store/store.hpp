#pragma once
// The PostgreSQL feature store: one class, one connection, each method one transaction.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/datetime.hpp"
#include "mapping/features.hpp"
#include "mapping/rows.hpp"

namespace fra::store {

/// The database refused or could not be reached. One line, no credentials.
class StoreError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// A resource that could not be mapped: kept by type, pseudonym and reason only.
struct DeadLetter {
  std::string resource_type;
  std::optional<mapping::Pseudonym> key;
  std::string version_id;
  fra::Error error;
  std::vector<std::uint8_t> sealed;  ///< "<type>/<id>" sealed, for `rekey`; empty without an id
};

/// Everything one search page produced, mapped.
struct Page {
  std::string resource_type;
  std::vector<mapping::PatientRecord> patients;
  std::vector<mapping::ObservationRecord> observations;
  std::vector<mapping::EncounterRecord> encounters;
  std::vector<DeadLetter> dead_letters;
  fhir::Micros max_last_updated = 0;  ///< the cursor this page lets us reach
};

struct PageCounts {
  int stored = 0;     ///< new resources or new versions
  int unchanged = 0;  ///< versions already stored (overlap, re-fetch)
  int dead_lettered = 0;
  int enqueued = 0;  ///< patients newly put on the scoring queue
};

/// The model a score comes from.
struct ModelInfo {
  std::string name;
  std::string version;
  std::string sha256;
  std::vector<std::string> feature_names;
};

/// One patient's score, as the scorer returns it.
struct Scored {
  double probability = 0;
  std::string band;
  std::vector<float> features;
  std::string
      contributions_json;  ///< [{"feature": name, "value": v | null, "contribution": c}, ...]
};

/// Scores a batch of patients' inputs: one Scored per input, in order.
using BatchScorer = std::function<std::vector<Scored>(const std::vector<mapping::PatientInputs>&)>;
/// Receives patients' pseudonyms and their stored inputs, in the same order.
using PatientVisitor = std::function<void(const std::vector<std::string>&,
                                          const std::vector<mapping::PatientInputs>&)>;

struct ScoreCounts {
  int scored = 0;
  int to_write = 0;  ///< scores whose probability or band differ from what the server has
  int waiting = 0;   ///< queued patients whose Patient resource has not arrived yet
};

/// A RiskAssessment to write.
struct PendingWrite {
  std::string patient_key;
  std::string identifier;
  std::vector<std::uint8_t> sealed_ref;
  std::int64_t score_id = 0;
  double probability = 0;
  std::string band;
  fhir::Micros as_of = 0;
  std::string features_json;       ///< {"name": value | null}
  std::string contributions_json;  ///< as in Scored
};

/// The first row of the audit log that does not hold, by its position in the chain.
struct AuditProblem {
  std::int64_t id = 0;
  std::string message;
};

struct AuditCheck {
  std::int64_t rows = 0;                ///< rows checked and found whole
  std::optional<AuditProblem> problem;  ///< the first that is not
  std::string head_hash;                ///< the last row's hash, when the whole chain holds
};

/// The canonical form of an audit row's fields (id, at, actor, action, object, details,
/// prev_hash): each as <byte length>:<text> and a newline. sql/004_audit.sql computes the same.
std::string audit_canonical(const std::vector<std::string>& fields);

/// A stored score, as the auditor's view shows it.
struct StoredScore {
  std::int64_t id = 0;
  std::string model_sha256;
  double probability = 0;
  std::string features_json;  ///< feature name -> value, null when missing
};

/// What a retention purge removed.
struct PurgeCounts {
  std::int64_t observation_values = 0;
  std::int64_t encounters = 0;
  std::int64_t dead_letters = 0;
};

/// What `rekey` re-derived.
struct RekeyCounts {
  std::int64_t resources = 0;  ///< stored versions, patients among them
  std::int64_t patients = 0;
  std::int64_t dead_letters = 0;
  std::int64_t dropped_tombstones =
      0;  ///< deletions of resources never stored, with no sealed reference
};

class Store {
 public:
  /// Connects. Throws StoreError with the server's first line of complaint.
  explicit Store(const std::string& url);
  ~Store();

  /// Applies the migrations not yet recorded; returns the names applied (empty: up to date).
  std::vector<std::string> migrate();
  /// The highest migration applied, 0 for an empty database.
  int schema_version();
  /// The highest migration this binary knows.
  static int latest_schema_version();

  /// The cursor of a resource type, nullopt before the first sync.
  std::optional<fhir::Micros> cursor(std::string_view resource_type);
  /// Moves the cursor of a type forward to `t` (never back): after a bulk export that reflects
  /// the server as of `t`.
  void advance_cursor(std::string_view resource_type, fhir::Micros t);
  /// Removes deleted resources of a type (their rows, keeping a tombstone version so that an
  /// older copy seen later is not taken back), queues their patients, and moves `cursor_key` to
  /// `cursor`, in one transaction. Returns how many of them the store held.
  int delete_resources(std::string_view resource_type,
                       const std::vector<std::pair<mapping::Pseudonym, fhir::Micros>>& gone,
                       std::string_view cursor_key, fhir::Micros cursor);
  /// Stores a page and advances the cursor in the same transaction.
  PageCounts store_page(const Page& page);

  /// Takes up to `limit` queued patients (FOR UPDATE SKIP LOCKED), scores them with `score`
  /// as of `as_of`, stores each score and marks changed ones for write-back, in one
  /// transaction. `identifier_of` derives the RiskAssessment identifier of a patient key.
  ScoreCounts score_batch(int limit, const ModelInfo& model, fhir::Micros as_of,
                          const BatchScorer& score,
                          const std::function<std::string(const std::string&)>& identifier_of);
  /// Every stored patient's inputs, in pseudonym order, `batch` patients at a time (each batch
  /// read in its own transaction).
  void for_each_patient(int batch, const PatientVisitor& visit);
  /// The latest start or end of a stored encounter that counts; nullopt when there is none.
  std::optional<fhir::Micros> newest_encounter_time();
  /// RiskAssessments waiting to be written for a model, in score order, of scores after
  /// `after_score_id` (a write-back pass reads on while earlier ones are in flight).
  std::vector<PendingWrite> pending_writes(const std::string& model_name, int limit,
                                           std::int64_t after_score_id = 0);
  /// Records that the server holds the given scores now (each a no-op if a newer score is
  /// pending), in one transaction.
  void mark_written(const std::string& model_name, const std::vector<PendingWrite>& written);

  /// Patients on the scoring queue.
  std::int64_t queue_depth();
  /// Who the audit log names for what this store does ("fhir-risk-adapter sync", say); the
  /// database user is added to it by the log itself.
  void set_actor(std::string actor) { actor_ = std::move(actor); }
  /// Appends one event to the audit log in a transaction of its own. `details` is a JSON object.
  void audit(std::string_view action, std::string_view object, const std::string& details);
  /// Walks the audit log (through the auditor's views, so an auditor's login can run it) and
  /// recomputes each row's hash and link; `progress` gets the rows checked so far.
  AuditCheck verify_audit(const std::function<void(std::int64_t)>& progress = {});
  /// Stored scores (through the auditor's view), in id order: all, or a random sample of `sample`.
  std::vector<StoredScore> stored_scores(std::optional<int> sample);
  /// Records `fingerprint` as the store's pseudonym key when none is recorded (audited), and
  /// says whether it is the one recorded.
  bool pseudonym_key_matches(const std::string& fingerprint);
  /// Moves every pseudonym from the key of `from` to the key of `to`, in one transaction,
  /// audited: each "<type>/<id>" is opened from its sealed reference with `from`, its pseudonym
  /// derived with `to` and sealed again with `to`, in every table; RiskAssessment identifiers
  /// stay as they are (the server knows them). Refused (StoreError) while another adapter
  /// process is connected, when `from` is not the store's key, or when a stored version has no
  /// sealed reference.
  RekeyCounts rekey(const mapping::Pseudonymizer& from, const mapping::Pseudonymizer& to);
  /// Removes raw inputs older than `cutoff` in one transaction, audited: observation values
  /// effective before it, encounters that ended (or, open, started) before it, dead letters
  /// seen before it. Scores, their feature vectors, patients and resource versions stay (a
  /// purged version fetched again is recognised and not stored again).
  PurgeCounts purge_raw_inputs(fhir::Micros cutoff);

 private:
  struct Connection;  // wraps pqxx::connection, kept out of this header
  std::unique_ptr<Connection> conn_;
  std::string actor_ = "fhir-risk-adapter";
};

}  // namespace fra::store
