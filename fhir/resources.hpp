#pragma once
// Typed, read-only views of the FHIR R4 resources the adapter consumes. Only the elements the
// adapter uses are kept; std::optional marks what FHIR leaves optional.

#include <rapidjson/document.h>

#include <optional>
#include <string>
#include <vector>

#include "fhir/datetime.hpp"
#include "fhir/result.hpp"

namespace fra::fhir {

/// A FHIR logical id (plaintext, identifying): never stored, logged or counted as is.
struct FhirId {
  std::string value;
  bool operator==(const FhirId&) const = default;
};

/// meta.versionId and meta.lastUpdated.
struct Meta {
  std::string version_id;  ///< "" when the server sends none
  Micros last_updated = 0;
};

struct Coding {
  std::string system;
  std::string code;
};

/// A Quantity whose value may be absent.
struct Quantity {
  std::optional<double> value;
  std::string system;  ///< normally http://unitsofmeasure.org
  std::string code;    ///< UCUM code, e.g. "Cel"
  std::string unit;    ///< display text
};

struct Patient {
  FhirId id;
  Meta meta;
  std::optional<std::string> gender;  ///< administrative gender code
  std::optional<int> birth_year;      ///< only the year is ever kept
};

struct ObservationComponent {
  std::vector<Coding> code;
  std::optional<Quantity> value;
  std::vector<Coding> value_codes;  ///< the codings of a valueCodeableConcept
  bool value_concept = false;       ///< the value is a valueCodeableConcept (coded or not)
  std::string value_pointer;        ///< JSON pointer of the value, for errors
  /// A value that is not a usable Quantity (valueCodeableConcept, valueString, a malformed
  /// valueQuantity): an error only where a feature reads the code (mapping decides).
  std::optional<Error> value_problem;
};

struct Observation {
  FhirId id;
  Meta meta;
  std::string status;
  std::vector<Coding> code;
  std::optional<FhirId> subject;  ///< the Patient id, when subject is Patient/<id>
  std::optional<Micros> effective;
  std::optional<Quantity> value;
  std::vector<Coding> value_codes;     ///< the codings of a valueCodeableConcept
  bool value_concept = false;          ///< the value is a valueCodeableConcept (coded or not)
  std::optional<Error> value_problem;  ///< as ObservationComponent's
  std::vector<ObservationComponent> components;
};

struct Encounter {
  FhirId id;
  Meta meta;
  std::string status;
  std::optional<Coding> class_coding;
  std::optional<FhirId> subject;
  std::optional<Micros> period_start;
  std::optional<Micros> period_end;
  std::optional<Coding> priority;      ///< v3 ActPriority: EM emergency, EL elective, ...
  std::optional<Coding> admit_source;  ///< hospitalization.admitSource: emd, ...
};

/// A Condition: its codes, statuses and when it began and ended.
struct Condition {
  FhirId id;
  Meta meta;
  std::vector<Coding> code;
  std::optional<FhirId> subject;
  std::string clinical_status;      ///< condition-clinical code; "" when absent
  std::string verification_status;  ///< condition-ver-status code; "" when absent
  std::optional<Micros> onset;      ///< onsetDateTime or onsetPeriod.start
  std::optional<Micros> recorded;   ///< recordedDate
  std::optional<Micros> abatement;  ///< abatementDateTime or abatementPeriod.end
};

/// Reads a Patient. Fails on a missing id or an unparseable birthDate.
Result<Patient> read_patient(const rapidjson::Value& json);
/// Reads an Observation. Fails on a missing id, a subject that is not a Patient reference,
/// an unparseable effective time, or a value of a type the adapter does not take.
Result<Observation> read_observation(const rapidjson::Value& json);
/// Reads an Encounter. Fails on a missing id, subject or unparseable period.
Result<Encounter> read_encounter(const rapidjson::Value& json);

/// Reads a Condition. Fails on a missing id or an unparseable date.
Result<Condition> read_condition(const rapidjson::Value& json);

/// The resourceType of a JSON resource, or "" when it has none.
std::string resource_type_of(const rapidjson::Value& json);
/// The id of a JSON resource, or "" when it has none.
std::string resource_id_of(const rapidjson::Value& json);

}  // namespace fra::fhir
