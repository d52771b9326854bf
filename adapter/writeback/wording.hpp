#pragma once
// The clinician's words for a score's factors: feature labels, values and units in words.

#include <string>
#include <vector>

#include "adapter/score/manifest.hpp"
#include "adapter/store/writeback_state.hpp"
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

/// What a clinician is shown of a score, whichever resource carries it: the model, the outcome,
/// the probability and its band, the factors in words; `resource_id` for an update by id.
fhir::RiskAssessmentInput score_in_words(const store::PendingWrite& pw, const score::Manifest& m,
                                         const std::vector<mapping::FeatureDefinition>& definitions,
                                         const std::string& identifier_system,
                                         const std::string& patient_reference,
                                         const std::string& resource_id = "");

}  // namespace fra::writeback
