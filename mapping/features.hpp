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
  std::string coded;  ///< "system|code" of a coded value; "" for a number
};

/// One stored encounter that counts (not cancelled, not entered-in-error).
struct Stay {
  std::string class_code;
  std::optional<fhir::Micros> start;
  std::optional<fhir::Micros> end;
  bool emergent = false;  ///< priority EM or admitted from the emergency department
};

/// One coding of a stored Condition that counts (not refuted, not entered-in-error).
struct ConditionCoding {
  std::string resource;  ///< the Condition's key: one Condition may carry several codings
  std::string code;      ///< "system|code"
  bool active = false;   ///< clinicalStatus active, recurrence or relapse
  std::optional<fhir::Micros> onset;      ///< onset, else recorded date
  std::optional<fhir::Micros> abatement;  ///< when it ended, if it did
};

/// A named group of codes: a comorbidity of an index, with its weight.
struct CodeCategory {
  std::string name;
  std::string label;
  int weight = 0;
  std::vector<std::string> codes;  ///< "system|code" or a prefix "system|I50*"
  std::string superseded_by;       ///< a category that, when present, replaces this one
};

/// Everything the features of one patient are computed from.
struct PatientInputs {
  std::optional<int> birth_year;
  std::optional<std::string> sex;
  std::vector<TimedValue> measurements;
  std::vector<Stay> stays;
  std::vector<ConditionCoding> conditions;
};

/// How one feature is computed: parsed from a `[[feature]]` table.
struct FeatureDefinition {
  enum class Source { observation, encounter, patient, condition };
  enum class Aggregation { last, min, max, mean, count, delta, slope, last_code };
  enum class Measure {
    // encounter
    admissions,
    length_of_stay,
    days_since_discharge,
    acuity,
    emergency_visits,
    // condition
    present,
    count,
    charlson
  };
  enum class Attribute { age, sex };

  std::string name;
  std::string label;  ///< plain words for a clinician
  Source source = Source::observation;
  std::string unit;         ///< UCUM unit of the value
  fhir::Micros window = 0;  ///< look-back before as-of; 0 for all history
  // observation; condition (where a code may be a prefix "system|I50*")
  std::vector<std::string> codes;  ///< "system|code"
  Aggregation aggregation = Aggregation::last;
  std::vector<std::string> answers;                    ///< last_code: the coded values that give 1
  std::optional<double> plausible_min, plausible_max;  ///< in `unit`
  // condition, measure charlson: the index's categories
  std::vector<CodeCategory> categories;
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
/// plausible range in that unit; or, read as coded values, the codes some feature looks for.
struct CodeRule {
  std::string unit;
  double min_plausible = -1e300;
  double max_plausible = 1e300;
  bool coded = false;                ///< values are valueCodeableConcept
  std::vector<std::string> answers;  ///< coded: the codes the features compare with
};

/// What the store keeps, from the definitions: the Observation codes some feature reads, keyed
/// "system|code", and whether any feature reads Conditions (then they are fetched and stored).
struct ObservationCatalog : std::map<std::string, CodeRule, std::less<>> {
  using std::map<std::string, CodeRule, std::less<>>::map;
  bool conditions = false;
};

/// True when `code` ("system|code") matches `pattern`: the same, or, for a pattern ending in
/// `*`, the same system and a code that starts with the rest (dots ignored on both sides, so
/// "I50*" matches "I50.9" and "I509").
bool code_matches(std::string_view pattern, std::string_view code);

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
