#pragma once
// Monitoring a model in production from the store alone: scores by band and alerts by week,
// each feature's drift against the training reference of the manifest (population stability
// index, missing share), and, over the index events whose outcome window has closed, the
// model's discrimination and calibration for all patients and by sex and age band (local
// validation: the model's prediction as of each discharge against what followed, the labels
// the training export computes).

#include <string>

#include "adapter/monitor/report.hpp"
#include "adapter/score/manifest.hpp"
#include "adapter/store/store.hpp"
#include "adapter/sync/training_export.hpp"
#include "mapping/features.hpp"

namespace fra::monitor {

struct Options {
  fhir::Micros since = 0;  ///< scores (and discharges) from then on
  fhir::Micros now = 0;
  sync::TrainingOptions outcome;  ///< index classes and horizon, as the training export's
};

/// The report. `features` are the model's, bound (sync::bind_model). Throws store::StoreError.
Report compute(store::Store& store, const score::ModelPackage& model,
               const mapping::FeatureComputer& features, const Options& options);

/// The report as JSON: the same figures as the HTML page.
std::string to_json(const Report& r);

}  // namespace fra::monitor
