#pragma once
// The RiskAssessment sink: one RiskAssessment per patient and model, written with a conditional
// update on a derived identifier (so a retry never makes a second one), in batch Bundles,
// several in flight.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "adapter/score/manifest.hpp"
#include "adapter/store/writeback_state.hpp"
#include "adapter/writeback/sink.hpp"
#include "fhir/client.hpp"
#include "mapping/features.hpp"
#include "mapping/pseudonym.hpp"

namespace fra::writeback {

struct RiskAssessmentOptions {
  /// RiskAssessments per batch Bundle, and batch Bundles in flight at once.
  int batch = 100;
  int in_flight = 4;
  /// The identifier system of the RiskAssessments this adapter writes.
  std::string identifier_system = "urn:fhir-risk-adapter:risk-assessment";
  /// Called after each batch Bundle with its duration and size (metrics).
  std::function<void(double seconds, int entries)> on_batch;
};

class RiskAssessmentSink : public Sink {
 public:
  /// Opens `options.in_flight` connections like `client`'s.
  RiskAssessmentSink(const fhir::Client& client, store::WritebackState& state,
                     const mapping::Pseudonymizer& ps, const score::ModelPackage& model,
                     const std::vector<mapping::FeatureDefinition>& definitions,
                     RiskAssessmentOptions options);
  std::string_view name() const override { return "risk-assessment"; }
  WriteReport deliver(const std::atomic<bool>* stop) override;

 private:
  struct Round;
  Round read_round(std::int64_t after, WriteReport& rep);

  store::WritebackState& state_;
  const mapping::Pseudonymizer& ps_;
  const score::ModelPackage& model_;
  const std::vector<mapping::FeatureDefinition>& definitions_;
  RiskAssessmentOptions options_;
  std::vector<std::unique_ptr<fhir::Client>> writers_;  // one per batch Bundle in flight
};

}  // namespace fra::writeback
