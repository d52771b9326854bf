#pragma once
// Resource → rows: the pure mapping from FHIR views to what the feature store keeps. No I/O.
// Every row is keyed by pseudonyms; plaintext identity never leaves this function except
// sealed.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/resources.hpp"
#include "fhir/result.hpp"
#include "mapping/features.hpp"
#include "mapping/pseudonym.hpp"

namespace fra::mapping {

/// What every stored resource carries: its pseudonymised key and the version seen.
struct Version {
  Pseudonym key;
  std::string version_id;
  fhir::Micros last_updated = 0;
  /// "<type>/<id>" sealed under the sealing key: what lets `rekey` derive the pseudonym again.
  std::vector<std::uint8_t> sealed;
};

struct PatientRecord {
  Version version;
  std::optional<int> birth_year;
  std::optional<std::string> sex;
  std::vector<std::uint8_t> sealed_reference;  ///< "Patient/<id>", sealed
};

/// One measured value, in the canonical unit of its code; or, for a code read as coded values,
/// the coded value ("system|code") and no number.
struct Measurement {
  std::string code;  ///< "system|code"
  double value = 0;
  std::string unit;        ///< UCUM: the unit the catalog keeps for the code; "" when coded
  std::string value_code;  ///< "system|code" of a valueCodeableConcept; "" for a quantity
};

struct ObservationRecord {
  Version version;
  Pseudonym patient;
  std::string status;
  fhir::Micros effective = 0;
  /// Usable values: empty when the observation does not count (entered-in-error, cancelled,
  /// no value, a code the adapter does not use), so a new version can retract an old one.
  std::vector<Measurement> values;
  /// False when no feature reads any of its codes: counted as ignored, never a dead letter;
  /// stored (without values) only when it names its patient.
  bool read = true;
};

struct EncounterRecord {
  Version version;
  Pseudonym patient;
  std::string status;
  bool counts = false;     ///< false for cancelled and entered-in-error
  std::string class_code;  ///< v3 ActCode: IMP, AMB, EMER, ...
  std::optional<fhir::Micros> start;
  std::optional<fhir::Micros> end;
  /// An emergency admission by the record itself: priority EM, or admitted from the emergency
  /// department (admitSource emd).
  bool emergent = false;
};

struct ConditionRecord {
  Version version;
  Pseudonym patient;
  std::vector<std::string> codes;  ///< "system|code" of each coding of Condition.code
  bool counts = false;             ///< not refuted or entered-in-error; a clinicalStatus known
  bool active = false;  ///< clinicalStatus active, recurrence or relapse (or absent, not abated)
  std::optional<fhir::Micros> onset;  ///< onset, else recordedDate
  std::optional<fhir::Micros> abatement;
};

/// True when `s` is well-formed UTF-8 (RFC 3629: no overlongs, surrogates or code points past
/// U+10FFFF). PostgreSQL refuses anything else, so nothing else may reach the store.
bool valid_utf8(std::string_view s);

/// Maps a Patient: keeps birth year and sex, seals the reference.
Result<PatientRecord> map_patient(const fhir::Patient& p, const Pseudonymizer& ps);
/// Maps an Observation: the values of codes some feature reads (the catalog), converted to the
/// unit kept for the code. Errors: missing-subject, missing-effective, unknown-unit,
/// implausible-value.
Result<ObservationRecord> map_observation(const fhir::Observation& o, const Pseudonymizer& ps,
                                          const ObservationCatalog& catalog);
/// Maps an Encounter. Errors: missing-subject.
Result<EncounterRecord> map_encounter(const fhir::Encounter& e, const Pseudonymizer& ps);
/// Maps a Condition: every coding of its code. Errors: missing-subject, invalid-utf8.
Result<ConditionRecord> map_condition(const fhir::Condition& c, const Pseudonymizer& ps);

}  // namespace fra::mapping
