#pragma once
// Who the cohort is: the members of a FHIR Group and/or the patients listed in a file, as
// pseudonyms with their sealed references. Nothing read here reaches a log: messages name the
// line number or the count, never an id or an identifier.

#include <optional>
#include <string>
#include <vector>

#include "adapter/store/cohort.hpp"
#include "fhir/client.hpp"
#include "mapping/pseudonym.hpp"

namespace fra::source {

struct CohortSpec {
  std::string group_id;       ///< "" for none
  std::string patients_file;  ///< "" for none; `Patient/<id>` or `system|value` a line
};

struct CohortReading {
  std::vector<store::Member> members;  ///< each patient once
  int unresolved = 0;                  ///< file lines no single Patient answered
};

/// What is wrong with a patients file (unreadable, a malformed line, named by number); nullopt
/// when nothing is.
std::optional<std::string> check_patients_file(const std::string& path);

/// Reads the Group (`GET Group/<id>`, members not `inactive`) and resolves the file's lines
/// (`Patient?identifier=system|value` for identifiers). Throws fhir::FhirError when the Group
/// cannot be read, std::runtime_error when the file cannot be read or a line is malformed
/// (naming the line number).
CohortReading read_cohort(fhir::Client& client, const CohortSpec& spec,
                          const mapping::Pseudonymizer& ps);

}  // namespace fra::source
