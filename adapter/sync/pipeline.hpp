#pragma once
// One pass of the data flow: a source brings each resource type into the store from its
// cursor, the queue is scored, a sink writes back the scores that changed.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "adapter/score/manifest.hpp"
#include "adapter/source/cohort_reader.hpp"
#include "adapter/source/patient_sync.hpp"
#include "adapter/source/system_search.hpp"
#include "adapter/store/store.hpp"
#include "adapter/writeback/alert_sink.hpp"
#include "adapter/writeback/resource_sink.hpp"
#include "adapter/writeback/risk_assessment_sink.hpp"
#include "fhir/client.hpp"
#include "mapping/features.hpp"
#include "mapping/pseudonym.hpp"

namespace fra::sync {

using IngestReport = source::PullReport;
using WriteReport = writeback::WriteReport;

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
  WriteReport alerted;  ///< alerts sent (`created` new, `updated` repeated after a crash)
  double score_seconds = 0;
  double write_seconds = 0;
  std::string sink;  ///< where the scores went ("risk-assessment", "observation", ...)
  /// Per-patient sync: patients refreshed and the FHIR requests it took.
  long refreshed = 0;
  long requests = 0;
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
  /// Where resources come from: system-wide searches, or per patient of the cohort.
  bool per_patient = false;
  source::CohortSpec cohort;
  int patient_interval_seconds = 900;
  /// Where scores go: "risk-assessment" or "observation"; how the server takes them.
  std::string target = "risk-assessment";
  bool conditional_update = true;  ///< RiskAssessment: the server declares conditional update
  bool update_in_place = true;     ///< the server declares update (by id) for the target's type
  fhir::Coding observation_code;
  /// Alerts (empty `alert_bands`: none): the bands that alert, the recipient, the rearm time.
  std::vector<std::string> alert_bands;
  std::string alert_recipient;
  int alert_rearm_seconds = 0;
};

/// The model's features bound to their definitions, in the model's order and units. Throws
/// std::invalid_argument naming the first feature the model needs that has no definition in a
/// convertible unit: the daemon refuses to start on it.
mapping::FeatureComputer bind_model(const score::ModelPackage& model,
                                    const std::vector<mapping::FeatureDefinition>& defined,
                                    const mapping::ObservationCatalog& catalog);

/// Scores patients' inputs as of `as_of`: each one's feature vector, probability, band and its
/// `top_factors` largest contributions (TreeSHAP), as the sync stores them; where the time went is
/// added to `timing` when given. The CDS Hooks service scores a prefetch through it too.
std::vector<store::Scored> score_all(const mapping::FeatureComputer& features,
                                     const score::ModelPackage& package,
                                     const std::vector<mapping::PatientInputs>& in,
                                     fhir::Micros as_of, int top_factors,
                                     ScoreTiming* timing = nullptr);

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
  /// Sends every pending alert (none when alerts are off).
  WriteReport send_alerts();
  bool alerts_enabled() const { return alerts_ != nullptr; }
  /// Per-patient sync: reads the cohort (Group and file) into the store. Returns its size.
  std::size_t refresh_cohort();
  /// Brings what the store lacks in: every type (system search) or every patient due (per
  /// patient).
  std::vector<IngestReport> pull();
  bool per_patient() const { return options_.per_patient; }
  /// The sink scores go to ("risk-assessment", "observation", ...).
  std::string_view sink_name() const { return sink_->name(); }
  /// Per-patient sync: FHIR requests and patients refreshed so far.
  long patient_requests() const { return patients_ ? patients_->requests() : 0; }
  long patients_refreshed() const { return patients_ ? patients_->refreshed() : 0; }
  /// (per patient: the cohort first) pull; score; write back.
  Report run_once();

 private:
  std::vector<store::Scored> score_inputs(const std::vector<mapping::PatientInputs>& in,
                                          fhir::Micros as_of);

  store::Store& store_;
  const mapping::Pseudonymizer& ps_;
  const score::ModelPackage& model_;
  mapping::FeatureComputer features_;
  store::ModelInfo info_;
  Options options_;
  fhir::Client& client_;
  const mapping::ObservationCatalog& catalog_;
  source::SystemSearch search_;
  std::unique_ptr<source::PatientSync> patients_;  // per patient only
  std::unique_ptr<writeback::Sink> sink_;
  std::unique_ptr<writeback::Sink> alerts_;  // alerts only
  ScoreTiming timing_;
  BandCounts bands_;
  bool stopping() const { return options_.stop != nullptr && options_.stop->load(); }
};

}  // namespace fra::sync
