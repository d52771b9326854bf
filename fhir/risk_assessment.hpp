#pragma once
// Builds the RiskAssessment the adapter writes back: what a clinician sees in the chart.

#include <string>
#include <vector>

#include "fhir/datetime.hpp"
#include "fhir/resources.hpp"

namespace fra::fhir {

/// A contributing factor shown to the clinician: a feature, its value, and its weight.
struct RiskFactor {
  std::string feature;      ///< the model's feature name, e.g. "heart_rate"
  std::string name;         ///< plain words, e.g. "Heart rate"
  double value = 0;         ///< NaN when missing
  std::string unit;         ///< shown after the value; "" for none
  std::string ucum;         ///< the value's UCUM code ("1" for counts and flags)
  std::string text;         ///< shown instead of value and unit when set (e.g. "female")
  double contribution = 0;  ///< its share of the score's margin (TreeSHAP): > 0 raises the risk
};

struct RiskAssessmentInput {
  std::string identifier_system;  ///< where the adapter's identifiers live
  std::string identifier_value;   ///< derived, not the store's patient key
  std::string patient_reference;  ///< "Patient/<id>"
  Micros occurrence = 0;          ///< the as-of time of the score
  std::string model_name;
  std::string model_version;
  std::string model_sha256;
  Coding outcome;
  std::string outcome_display;
  double probability = 0;  ///< or, when `points`, the score's points
  std::string band_code;   ///< risk-probability code: low, moderate, high, ...
  std::string band_display;
  std::vector<RiskFactor> factors;  ///< the main factors, largest contribution first
  std::string resource_id;          ///< the server's id, for an update by id; "" to create
  bool points = false;  ///< the score is the points of a validated index, not a probability
};

/// The system of the qualitativeRisk coding.
inline constexpr const char* kRiskProbabilitySystem =
    "http://terminology.hl7.org/CodeSystem/risk-probability";
/// The extension on `prediction` that carries the points of an index (a RiskAssessment has no
/// element for a score that is not a probability).
inline constexpr const char* kScorePointsExtension = "urn:fhir-risk-adapter:extension:score-points";
/// The UCUM unit of points: an arbitrary unit.
inline constexpr const char* kPointsUnit = "{score}";
/// The score as the clinician reads it: "4.2%" or "12 points".
std::string score_text(const RiskAssessmentInput& in);
/// The system of the method coding that names the model.
inline constexpr const char* kModelSystem = "urn:fhir-risk-adapter:model";
/// The extension on `prediction` that carries one contributing factor as data
/// (docs/risk-assessment.md).
inline constexpr const char* kRiskFactorExtension = "urn:fhir-risk-adapter:extension:risk-factor";

/// The clinician's sentence: "<outcome> risk: 4.2% (Low likelihood), <model> <version>. Main
/// factors: ...".
std::string score_note(const RiskAssessmentInput& in);

/// Serialises a final RiskAssessment as FHIR R4 JSON.
std::string build_risk_assessment(const RiskAssessmentInput& in);

/// Serialises the score as a final Observation coded `code` (the flowsheet row): the
/// probability in percent (UCUM `%`), effective at the as-of time, the band as interpretation,
/// the model as method, the note, and the same identifier as the RiskAssessment.
std::string build_score_observation(const RiskAssessmentInput& in, const Coding& code);

/// The conditional-update path for the assessment's identifier: "RiskAssessment?identifier=s|v".
std::string conditional_path(const RiskAssessmentInput& in);

}  // namespace fra::fhir
