#pragma once
// The by-id sink, for servers without conditional update (Epic, Oracle Health): one resource per
// patient and model, a RiskAssessment or a score Observation, written one at a time.
//   - The first write looks for the resource a run before may have created (by the patient and
//     the identifier) before creating one, so a crash between create and record never makes a
//     second; the id the server gives is kept, sealed, with its version.
//   - Later writes update it in place with `If-Match: W/"<version>"`, reading the current
//     version again on 412. Where the server declares no update for the type (Epic's flowsheet
//     Observations), a changed score is a new resource: the next reading of the row.
//   - A refusal of the target itself (403, 405 or 501) stops the sink with the server's reason;
//     the scores stay pending. A refusal of one resource (400, 422) leaves that score pending
//     and the others go on.

#include <string>
#include <vector>

#include "adapter/score/manifest.hpp"
#include "adapter/store/writeback_state.hpp"
#include "adapter/writeback/sink.hpp"
#include "fhir/client.hpp"
#include "fhir/resources.hpp"
#include "mapping/features.hpp"
#include "mapping/pseudonym.hpp"

namespace fra::writeback {

struct ResourceSinkOptions {
  std::string resource_type = "Observation";  ///< or "RiskAssessment"
  std::string identifier_system = "urn:fhir-risk-adapter:risk-assessment";
  fhir::Coding observation_code;  ///< the score Observation's code
  bool update_in_place = true;    ///< the server declares `update` for the type
};

class ResourceSink : public Sink {
 public:
  ResourceSink(fhir::Client& client, store::WritebackState& state, const mapping::Pseudonymizer& ps,
               const score::ModelPackage& model,
               const std::vector<mapping::FeatureDefinition>& definitions,
               ResourceSinkOptions options);
  std::string_view name() const override {
    return options_.resource_type == "Observation" ? "observation" : "risk-assessment by id";
  }
  WriteReport deliver(const std::atomic<bool>* stop) override;

 private:
  struct Held;
  /// Writes one score; returns false when the server refused the target (rep.refused set).
  bool write(store::PendingWrite& pw, WriteReport& rep);
  Held find_existing(const std::string& patient_id, const std::string& identifier);
  std::string body(const store::PendingWrite& pw, const std::string& patient_ref,
                   const std::string& id) const;

  fhir::Client& client_;
  store::WritebackState& state_;
  const mapping::Pseudonymizer& ps_;
  const score::ModelPackage& model_;
  const std::vector<mapping::FeatureDefinition>& definitions_;
  ResourceSinkOptions options_;
};

/// "<type>/<id>" of a Location header or a resource's `id` ("" when neither says).
std::string created_id(const fhir::Response& resp);
/// The version of a response: its ETag (W/"3" -> "3"), else the body's meta.versionId.
std::string response_version(const fhir::Response& resp);
/// True when a write's answer refuses the target itself rather than this one resource.
bool refuses_target(const fhir::Response& resp);

}  // namespace fra::writeback
