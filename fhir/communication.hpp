#pragma once
// The alert the adapter sends when a score enters the alert band: a FHIR R4 Communication
// (category alert, priority urgent) to the care team, about the patient's RiskAssessment or score
// Observation, with the risk and its factors in words (docs/operations.md#alerts).

#include <string>

#include "fhir/datetime.hpp"

namespace fra::fhir {

/// The system of the alerts' identifiers.
inline constexpr const char* kAlertSystem = "urn:fhir-risk-adapter:alert";
/// The system of the Communication category `alert`.
inline constexpr const char* kCommunicationCategorySystem =
    "http://terminology.hl7.org/CodeSystem/communication-category";

struct AlertInput {
  std::string identifier_value;   ///< derived from the patient's pseudonym and the alert's number
  std::string patient_reference;  ///< "Patient/<id>"
  std::string recipient;          ///< "Group/<id>", "Practitioner/<id>" or "CareTeam/<id>"
  /// What it is about: a literal reference ("RiskAssessment/<id>") when the server's id is known,
  /// else a logical one, by type and identifier.
  std::string about_reference;
  std::string about_type;
  std::string about_identifier_system;
  std::string about_identifier_value;
  Micros sent = 0;
  std::string text;  ///< the risk and its factors, as the RiskAssessment's note words them
};

/// Serialises the Communication as FHIR R4 JSON.
std::string build_alert_communication(const AlertInput& in);

/// The conditional-update path on the alert's identifier: "Communication?identifier=s|v".
std::string alert_conditional_path(const AlertInput& in);

}  // namespace fra::fhir
