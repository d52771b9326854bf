#pragma once
// The scores repository: the scoring queue, patients' stored inputs, and the scores made of them.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "adapter/store/audit_log.hpp"
#include "adapter/store/session.hpp"
#include "fhir/datetime.hpp"
#include "mapping/features.hpp"

namespace fra::store {

/// The model a score comes from.
struct ModelInfo {
  std::string name;
  std::string version;
  std::string sha256;
  std::vector<std::string> feature_names;
  /// Alerts: the bands at or above the alert band (empty: no alerts), and how long a score must
  /// have been out of them before coming back raises another.
  std::vector<std::string> alert_bands;
  int rearm_seconds = 0;
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
/// The RiskAssessment identifier of a patient key.
using IdentifierOf = std::function<std::string(const std::string&)>;

struct ScoreCounts {
  int scored = 0;
  int to_write = 0;  ///< scores whose probability or band differ from what the server has
  int waiting = 0;   ///< queued patients whose Patient resource has not arrived yet
  int alerts = 0;    ///< alerts raised: scores that entered the alert band
};

class Scores {
 public:
  Scores(Session& session, AuditLog& audit) : session_(session), audit_(audit) {}

  /// Takes up to `limit` queued patients (FOR UPDATE SKIP LOCKED), scores them with `score`
  /// as of `as_of`, stores each score (audited) and marks changed ones for write-back, in one
  /// transaction. `identifier_of` derives the RiskAssessment identifier of a patient key.
  ScoreCounts score_batch(int limit, const ModelInfo& model, fhir::Micros as_of,
                          const BatchScorer& score, const IdentifierOf& identifier_of);
  /// Every stored patient's inputs, in pseudonym order, `batch` patients at a time (each batch
  /// read in its own transaction).
  void for_each_patient(int batch, const PatientVisitor& visit);
  /// The latest start or end of a stored encounter that counts; nullopt when there is none.
  std::optional<fhir::Micros> newest_encounter_time();
  /// Patients on the scoring queue.
  std::int64_t queue_depth();

 private:
  Session& session_;
  AuditLog& audit_;
};

}  // namespace fra::store
