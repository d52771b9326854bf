#pragma once
// The clinician's words for a score's factors: feature labels, values and units in words.

#include <string>
#include <vector>

#include "fhir/risk_assessment.hpp"
#include "mapping/features.hpp"

namespace fra::writeback {

/// How a value's UCUM unit reads after the number in a note ("a" → "years", "1" → "").
std::string unit_words(const std::string& ucum);

/// The factors a score keeps (its contributions JSON: [{"feature", "value", "contribution"}]),
/// in the clinician's words, by the features' definitions; an unknown feature or a malformed
/// entry is left out.
std::vector<fhir::RiskFactor> factors_in_words(
    const std::string& contributions_json,
    const std::vector<mapping::FeatureDefinition>& definitions);

}  // namespace fra::writeback
