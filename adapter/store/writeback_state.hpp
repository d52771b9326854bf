#pragma once
// The write-back state repository: which scores a sink still has to deliver, and which the
// server holds now. The sinks in adapter/writeback/ read and mark it.

#include <cstdint>
#include <string>
#include <vector>

#include "adapter/store/audit_log.hpp"
#include "adapter/store/session.hpp"
#include "fhir/datetime.hpp"

namespace fra::store {

/// A score to deliver.
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
  /// The resource the server holds for the patient and model, for sinks that write by id:
  /// "RiskAssessment" or "Observation" ("" for none), its sealed "<type>/<id>" and version.
  std::string target_type;
  std::vector<std::uint8_t> target_ref;
  std::string target_version;
};

class WritebackState {
 public:
  WritebackState(Session& session, AuditLog& audit) : session_(session), audit_(audit) {}

  /// Scores waiting to be written for a model, in score order, of scores after
  /// `after_score_id` (a write-back pass reads on while earlier ones are in flight).
  std::vector<PendingWrite> pending(const std::string& model_name, int limit,
                                    std::int64_t after_score_id = 0);
  /// Records that the server holds the given scores now (each a no-op if a newer score is
  /// pending), audited, in one transaction.
  void mark_written(const std::string& model_name, const std::vector<PendingWrite>& written);
  /// Makes this session the model's only writer until unlock() or the end of the connection;
  /// false when another process is writing.
  bool try_lock(const std::string& model_name);
  void unlock(const std::string& model_name);

 private:
  Session& session_;
  AuditLog& audit_;
};

}  // namespace fra::store
