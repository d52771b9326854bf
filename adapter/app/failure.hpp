#pragma once
// What went wrong, by whose fault: the FHIR server, its authorisation server, the database, or
// this program. One classification for the one-shot commands and the daemon.

#include <exception>
#include <string>

namespace fra::app {

enum class FailureKind {
  fhir,      ///< the FHIR server: unreachable, refusing, or answering what cannot be read
  auth,      ///< the token endpoint (SMART Backend Services) refused or could not be reached
  database,  ///< PostgreSQL (store::StoreError, whatever its kind)
  bug,       ///< anything else: a defect of this program
};

struct Failure {
  FailureKind kind;
  std::string message;  ///< one line, no credentials
};

/// The failure `e` stands for. `e` must hold an exception.
Failure classify(std::exception_ptr e);

/// The exit code of a failure: 69 (unavailable) for the environment, 70 for a bug.
int exit_code(FailureKind kind);

/// Prints the failure of `e` as one error line ("FHIR server <url>: ..." for the FHIR server,
/// "internal error: ..." for a bug) and returns its exit code.
int report_failure(std::exception_ptr e, const std::string& fhir_base_url = "");

}  // namespace fra::app
