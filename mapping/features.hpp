#pragma once
// Feature definitions (declared in the configuration, see docs/features.md) and the
// point-in-time feature vector they give. Pure: the same inputs and as-of time give the same
// vector, and nothing effective after the as-of time counts.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/datetime.hpp"
#include "fhir/result.hpp"

namespace fra::mapping {

/// One stored measurement as the feature code reads it.
struct TimedValue {
  std::string code;  ///< "system|code"
  double value = 0;  ///< in the unit the store keeps for the code (ObservationCatalog)
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

/// How one feature is computed: parsed from a `[[feature]]` table.
struct FeatureDefinition {
  enum class Source { observation, encounter, patient };
  enum class Aggregation { last, min, max, mean, count, delta, slope };
  enum class Measure { admissions, length_of_stay, days_since_discharge };
  enum class Attribute { age, sex };

  std::string name;
  std::string label;  ///< plain words for a clinician
  Source source = Source::observation;
  std::string unit;         ///< UCUM unit of the value
  fhir::Micros window = 0;  ///< look-back before as-of; 0 for all history
  // observation
  std::vector<std::string> codes;  ///< "system|code"
  Aggregation aggregation = Aggregation::last;
  std::optional<double> plausible_min, plausible_max;  ///< in `unit`
  // encounter
  std::vector<std::string> classes;
  Measure measure = Measure::admissions;
  // patient
  Attribute attribute = Attribute::age;
  std::string equals;  ///< sex: the code that gives 1
};

/// Parses an ISO 8601 duration of weeks, days, hours, minutes and seconds ("P365D", "PT48H").
/// Years and months are refused: their length varies.
Result<fhir::Micros> parse_window(std::string_view text);

/// What the store keeps of an Observation code: the unit its values are converted to and the
/// plausible range in that unit.
struct CodeRule {
  std::string unit;
  double min_plausible = -1e300;
  double max_plausible = 1e300;
};

/// The Observation codes some feature reads, keyed "system|code".
using ObservationCatalog = std::map<std::string, CodeRule, std::less<>>;

/// The catalog of a set of definitions: each code takes the unit of the first feature that reads
/// it. Fails when two features read one code in units that do not convert.
Result<ObservationCatalog> catalog_of(const std::vector<FeatureDefinition>& defs);

/// Checks a set of definitions: names unique and well-formed, units known for the source,
/// codes `system|code`. The error names the feature.
std::optional<Error> check_definitions(const std::vector<FeatureDefinition>& defs);

/// The features a model needs, in its order: each must be defined, in a unit convertible to
/// the one the model wants (`wanted` pairs name and unit). Fails naming the first feature that
/// is not. The returned definitions compute in the model's units.
Result<std::vector<FeatureDefinition>> bind_features(
    const std::vector<FeatureDefinition>& defined,
    const std::vector<std::pair<std::string, std::string>>& wanted);

/// Computes feature vectors: converts stored values from the catalog's unit to each feature's.
class FeatureComputer {
 public:
  FeatureComputer(std::vector<FeatureDefinition> defs, const ObservationCatalog& catalog);
  /// The feature vector as of `as_of`: NaN for a feature with no data in its window.
  std::vector<float> compute(const PatientInputs& in, fhir::Micros as_of) const;
  void compute(const PatientInputs& in, fhir::Micros as_of, float* out) const;
  const std::vector<FeatureDefinition>& definitions() const { return defs_; }

 private:
  struct Affine {
    double scale = 1, offset = 0;
  };
  std::vector<FeatureDefinition> defs_;
  std::vector<std::vector<std::pair<std::string, Affine>>>
      codes_;  // per feature: code, stored → feature unit
};

}  // namespace fra::mapping
