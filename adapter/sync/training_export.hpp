#pragma once
// The training export: for each index event (a discharge), the feature vector as of that
// instant and whether a readmission followed, computed by the same code that serves scores.

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

/// Writes the CSV (header: patient, as_of, each feature, label) of every stored patient's index
/// events, patients in pseudonym order and events in time order.
TrainingReport export_training(store::Store& store, const mapping::FeatureComputer& features,
                               const TrainingOptions& options, std::ostream& out);

}  // namespace fra::sync
