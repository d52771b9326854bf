#pragma once
// The per-patient sync, for servers that answer only patient-scoped searches (Epic, Oracle
// Health): each patient of the cohort whose refresh is due is claimed from the store's refresh
// queue and read whole within the features' window:
//   Patient?_id=<id>
//   Observation?patient=<id>&code=<the codes the features read>&date=ge<window start>
//   Encounter?patient=<id>&date=ge<window start>
// following `next` links (never a stored one). A resource without meta.versionId is versioned by
// a keyed hash of its content, so an unchanged one is not stored again; a resource the store
// holds inside the window that the server no longer returns is removed. One transaction a
// patient. Request paths never carry the patient's id (it rides in the query), so no log line
// does.

#include <string>
#include <vector>

#include "adapter/source/source.hpp"
#include "adapter/store/cohort.hpp"
#include "fhir/client.hpp"
#include "mapping/features.hpp"
#include "mapping/pseudonym.hpp"

namespace fra::source {

struct PatientSyncOptions {
  int page_size = 200;
  /// How far back the searches reach: the longest feature window (0: all history).
  fhir::Micros window = 0;
  int patient_interval_seconds = 900;  ///< from one refresh of a patient to the next
  int lease_seconds = 600;             ///< a claimed patient is another process's after this
  int claim = 10;                      ///< patients claimed at a time
};

/// The Observation codes to ask for: every code the features read, and the panels whose
/// components they read (blood pressure 85354-9 and 55284-4 for 8480-6 and 8462-4).
std::vector<std::string> observation_search_codes(const mapping::ObservationCatalog& catalog);
/// The longest window of the definitions; 0 when one of them reads all history.
fhir::Micros longest_window(const std::vector<mapping::FeatureDefinition>& defs);

class PatientSync : public Source {
 public:
  PatientSync(fhir::Client& client, store::Ingest& ingest, store::Cohort& cohort,
              const mapping::Pseudonymizer& ps, const mapping::ObservationCatalog& catalog,
              PatientSyncOptions options);
  std::string_view name() const override { return "per-patient sync"; }
  /// Refreshes every member due now, until none is or `stop` turns true. One report, origin
  /// "cohort".
  std::vector<PullReport> pull(const std::atomic<bool>* stop) override;

  /// FHIR requests of the refreshes so far, and refreshes.
  long requests() const { return requests_; }
  long refreshed() const { return refreshed_; }

 private:
  struct Fetched;
  void fetch_all(const std::string& first_url, const std::string& type, Fetched& f);
  store::RefreshCounts refresh(const store::Member& m, const std::string& id);

  fhir::Client& client_;
  store::Ingest& ingest_;
  store::Cohort& cohort_;
  const mapping::Pseudonymizer& ps_;
  const mapping::ObservationCatalog& catalog_;
  PatientSyncOptions options_;
  std::string code_param_;
  long requests_ = 0;
  long refreshed_ = 0;
};

}  // namespace fra::source
