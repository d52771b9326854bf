#pragma once
// The training export: for each index event (a discharge), the feature vector as of that
// instant and whether a readmission followed, computed by the same code that serves scores.

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "adapter/store/store.hpp"
#include "mapping/features.hpp"

namespace fra::sync {

struct TrainingOptions {
  /// Encounter classes whose discharges are index events and whose admissions are readmissions.
  std::vector<std::string> index_classes{"IMP", "ACUTE", "NONAC"};
  /// The label is 1 when a readmission starts within this long after the discharge.
  fhir::Micros horizon = 30LL * 86400 * 1000000;
};

struct TrainingReport {
  long patients = 0;
  long rows = 0;       ///< index events written
  long positives = 0;  ///< rows labelled 1
  long censored = 0;   ///< discharges left out: their horizon reaches past the newest encounter
};

/// Receives one index event: the patient's pseudonym and stored inputs, the discharge instant,
/// the feature vector as of it and whether a readmission followed within the horizon.
using IndexEventVisitor = std::function<void(
    const std::string& patient_key, const mapping::PatientInputs& inputs, fhir::Micros discharge,
    const std::vector<float>& features, bool readmitted)>;

/// Visits every stored patient's index events whose horizon has closed (before the newest
/// stored encounter), patients in pseudonym order and events in time order; counts in `rep`.
/// The training export writes them; the monitoring scores them (local validation).
void for_each_index_event(store::Store& store, const mapping::FeatureComputer& features,
                          const TrainingOptions& options, const IndexEventVisitor& visit,
                          TrainingReport& rep);

/// Writes the CSV (header: patient, as_of, each feature, label) of every stored patient's index
/// events, patients in pseudonym order and events in time order.
TrainingReport export_training(store::Store& store, const mapping::FeatureComputer& features,
                               const TrainingOptions& options, std::ostream& out);

}  // namespace fra::sync
