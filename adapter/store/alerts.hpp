#pragma once
// The alerts repository: which patients' scores entered the alert band and still have an alert
// to send, and which were sent. Scores::score_batch raises them (alert_track.sql) in the scoring
// transaction; the alert sink (adapter/writeback/alert_sink) reads and marks them.

#include <cstdint>
#include <string>
#include <vector>

#include "adapter/store/audit_log.hpp"
#include "adapter/store/session.hpp"
#include "fhir/datetime.hpp"

namespace fra::store {

/// An alert to send.
struct PendingAlert {
  std::string patient_key;
  std::vector<std::uint8_t> sealed_ref;  ///< the patient's "Patient/<id>", sealed
  int episode = 0;                       ///< the alert's number for the patient and model
  std::int64_t score_id = 0;
  double probability = 0;
  std::string band;
  fhir::Micros as_of = 0;
  std::string contributions_json;
  /// What the write-back holds for the patient: the RiskAssessment identifier, and the resource
  /// written by id ("" when none), sealed.
  std::string ra_identifier;
  std::string target_type;
  std::vector<std::uint8_t> target_ref;
};

class Alerts {
 public:
  Alerts(Session& session, AuditLog& audit) : session_(session), audit_(audit) {}

  /// Alerts waiting to be sent for a model, in score order, of scores after `after_score_id`.
  std::vector<PendingAlert> pending(const std::string& model_name, int limit,
                                    std::int64_t after_score_id = 0);
  /// Records that the server holds the given alerts (a no-op for one superseded meanwhile), one
  /// 'alert' audit event each, in one transaction.
  void mark_sent(const std::string& model_name, const std::vector<PendingAlert>& sent);

 private:
  Session& session_;
  AuditLog& audit_;
};

}  // namespace fra::store
