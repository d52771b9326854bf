#pragma once
// One pass of the data flow: ingest each resource type from its cursor, score the queue,
// write back the RiskAssessments that changed.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "adapter/score/manifest.hpp"
#include "adapter/store/store.hpp"
#include "fhir/bundle.hpp"
#include "fhir/client.hpp"
#include "fhir/risk_assessment.hpp"
#include "mapping/features.hpp"
#include "mapping/pseudonym.hpp"

namespace fra::sync {

struct IngestReport {
  std::string resource_type;
  int pages = 0;
  int fetched = 0;
  store::PageCounts counts;
  int deleted = 0;  ///< resources the server deleted that the store held
  std::optional<fhir::Micros> cursor_before;
  std::optional<fhir::Micros> cursor_after;
  double seconds = 0;
};

struct WriteReport {
  int created = 0;
  int updated = 0;
  int failed = 0;
};

/// Where scoring time went, summed over the batches of one score_queue().
struct ScoreTiming {
  double features_seconds = 0;  ///< computing feature vectors from the stored inputs
  double model_seconds = 0;     ///< evaluating the model and its TreeSHAP contributions
};

/// Scores by band, summed over the batches of one score_queue().
using BandCounts = std::map<std::string, int>;

struct Report {
  std::vector<IngestReport> ingested;
  store::ScoreCounts scored;
  ScoreTiming score_timing;
  WriteReport written;
  double score_seconds = 0;
  double write_seconds = 0;
};

struct Options {
  int page_size = 200;
  int score_batch = 1000;
  /// RiskAssessments per batch Bundle, and batch Bundles in flight at once.
  int write_batch = 100;
  int write_in_flight = 4;
  /// Contributing factors kept with each score and shown in its RiskAssessment.
  int top_factors = 3;
  /// How far before the cursor each search starts, for servers whose lastUpdated order lags.
  long overlap_seconds = 5;
  /// Follow each type's `_history` for deletes (Observation and Encounter).
  bool track_deletions = true;
  /// The identifier system of the RiskAssessments this adapter writes.
  std::string identifier_system = "urn:fhir-risk-adapter:risk-assessment";
  /// When set and true, a pass stops at the next boundary: after the page, scoring batch or
  /// write-back round in progress, each committed whole (the daemon's drain on SIGTERM).
  const std::atomic<bool>* stop = nullptr;
  /// Called after each batch Bundle of RiskAssessments with its duration and size (metrics).
  std::function<void(double seconds, int entries)> on_write_batch;
};

/// The model's features bound to their definitions, in the model's order and units. Throws
/// std::invalid_argument naming the first feature the model needs that has no definition in a
/// convertible unit: the daemon refuses to start on it.
mapping::FeatureComputer bind_model(const score::ModelPackage& model,
                                    const std::vector<mapping::FeatureDefinition>& defined,
                                    const mapping::ObservationCatalog& catalog);

class Pipeline {
 public:
  /// Binds the model's features to their definitions; throws std::invalid_argument naming a
  /// feature that has no definition or one in a unit that does not convert.
  Pipeline(fhir::Client& client, store::Store& store, const mapping::Pseudonymizer& ps,
           const score::ModelPackage& model,
           const std::vector<mapping::FeatureDefinition>& features,
           const mapping::ObservationCatalog& catalog, Options options);

  /// Pages through one resource type from its cursor. Throws fhir::FhirError or
  /// store::StoreError; the cursor keeps the last page committed.
  IngestReport ingest(const std::string& resource_type);
  /// Scores every queued patient as of `as_of`.
  store::ScoreCounts score_queue(fhir::Micros as_of);
  /// Where the last score_queue() spent its time.
  const ScoreTiming& score_timing() const { return timing_; }
  /// The bands of the scores of the last score_queue().
  const BandCounts& band_counts() const { return bands_; }
  /// Writes every pending RiskAssessment, in batch Bundles of conditional updates on their
  /// identifiers, several in flight.
  WriteReport write_back();
  /// ingest Patient, Encounter, Observation; score; write back.
  Report run_once();

 private:
  std::vector<store::Scored> score_inputs(const std::vector<mapping::PatientInputs>& in,
                                          fhir::Micros as_of);
  std::vector<fhir::RiskFactor> factors_of(const std::string& contributions_json) const;
  fhir::SearchPage fetch_page(fhir::Client& client, const std::string& url);
  int follow_deletions(const std::string& type, std::optional<fhir::Micros> searched_up_to);
  bool history_unavailable_ = false;

  fhir::Client& client_;
  std::unique_ptr<fhir::Client> ahead_;  // fetches the next search page while this one is stored
  store::Store& store_;
  const mapping::Pseudonymizer& ps_;
  const score::ModelPackage& model_;
  const mapping::ObservationCatalog& catalog_;
  mapping::FeatureComputer features_;
  store::ModelInfo info_;
  Options options_;
  std::vector<std::unique_ptr<fhir::Client>> writers_;  // one per batch Bundle in flight
  ScoreTiming timing_;
  BandCounts bands_;
  bool stopping() const { return options_.stop != nullptr && options_.stop->load(); }
};

}  // namespace fra::sync
