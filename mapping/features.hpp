#pragma once
// Point-in-time feature vectors: what a patient's stored inputs say as of a given time.
// Pure: the same inputs and as-of time give the same vector, and nothing after as-of counts.

#include <optional>
#include <string>
#include <vector>

#include "fhir/datetime.hpp"
#include "fhir/result.hpp"

namespace fra::mapping {

/// One stored measurement as the feature code reads it.
struct TimedValue {
  std::string code;  ///< LOINC
  double value = 0;  ///< canonical unit
  fhir::Micros effective = 0;
};

/// One stored encounter that counts (not cancelled, not entered-in-error).
struct Stay {
  std::string class_code;
  std::optional<fhir::Micros> start;
  std::optional<fhir::Micros> end;
};

/// Everything the features of one patient are computed from.
struct PatientInputs {
  std::optional<int> birth_year;
  std::optional<std::string> sex;
  std::vector<TimedValue> measurements;
  std::vector<Stay> stays;
};

/// How a feature is computed.
struct FeatureDefinition {
  enum class Kind { age_years, sex_female, last_value, inpatient_admissions };
  std::string name;
  Kind kind;
  std::string code;         ///< LOINC for last_value
  std::string unit;         ///< the unit the feature is in (UCUM)
  std::string label;        ///< plain words for a clinician
  fhir::Micros lookback = 0;  ///< window before as-of; 0 for none
};

/// The feature definitions, in the order of `names`. Fails naming the first unknown feature.
Result<std::vector<FeatureDefinition>> bind_features(const std::vector<std::string>& names);

/// Every feature the adapter can compute.
const std::vector<FeatureDefinition>& known_features();

/// The feature vector as of `as_of`: NaN for a feature with no data in its window.
std::vector<float> compute_features(const std::vector<FeatureDefinition>& defs, const PatientInputs& in,
                                    fhir::Micros as_of);

}  // namespace fra::mapping
