#pragma once
// The alert sink: for each alert the scoring raised (a score that entered the alert band), one
// FHIR Communication to the care team, written with a conditional update on an identifier
// derived from the patient's pseudonym and the alert's number, so a send repeated after a crash
// updates the same Communication instead of making a second.

#include <string>
#include <vector>

#include "adapter/score/manifest.hpp"
#include "adapter/store/alerts.hpp"
#include "adapter/writeback/sink.hpp"
#include "fhir/client.hpp"
#include "mapping/features.hpp"
#include "mapping/pseudonym.hpp"

namespace fra::writeback {

struct AlertOptions {
  std::string recipient;  ///< "Group/<id>", "Practitioner/<id>" or "CareTeam/<id>"
  /// The identifier system of the RiskAssessments this adapter writes (what an alert is about).
  std::string ra_identifier_system = "urn:fhir-risk-adapter:risk-assessment";
};

class AlertSink : public Sink {
 public:
  AlertSink(fhir::Client& client, store::Alerts& alerts, const mapping::Pseudonymizer& ps,
            const score::ModelPackage& model,
            const std::vector<mapping::FeatureDefinition>& definitions, AlertOptions options);
  std::string_view name() const override { return "alert"; }
  /// Sends every pending alert, in score order; `created` counts the alerts sent.
  WriteReport deliver(const std::atomic<bool>* stop) override;

 private:
  bool send(const store::PendingAlert& a, WriteReport& rep);

  fhir::Client& client_;
  store::Alerts& alerts_;
  const mapping::Pseudonymizer& ps_;
  const score::ModelPackage& model_;
  const std::vector<mapping::FeatureDefinition>& definitions_;
  AlertOptions options_;
};

/// The alert's identifier: derived (HMAC under the pseudonym key) from the patient's pseudonym,
/// the model and the alert's number; no patient identity in it.
std::string alert_identifier(const mapping::Pseudonymizer& ps, const std::string& model_name,
                             const std::string& patient_key, int episode);

}  // namespace fra::writeback
