#pragma once
// The vital signs the adapter knows (LOINC), their canonical UCUM unit and plausible range, and
// conversion between the UCUM units they arrive in.

#include <optional>
#include <string_view>

namespace fra::mapping {

inline constexpr std::string_view kLoincSystem = "http://loinc.org";
inline constexpr std::string_view kUcumSystem = "http://unitsofmeasure.org";

/// A LOINC-coded measurement the feature store keeps.
struct VitalSign {
  std::string_view loinc;
  std::string_view canonical_unit;  ///< UCUM
  double min_plausible;             ///< in the canonical unit; outside is "implausible-value"
  double max_plausible;
};

/// The vital sign with this LOINC code, or nullptr when the adapter does not use the code.
const VitalSign* find_vital_sign(std::string_view loinc);

/// LOINC code of the blood-pressure panel, whose values are in components.
inline constexpr std::string_view kBloodPressurePanel = "85354-9";

/// Converts a value between UCUM units of the same dimension. nullopt when they are not
/// convertible or a unit is unknown.
std::optional<double> convert_unit(double value, std::string_view from, std::string_view to);

}  // namespace fra::mapping
