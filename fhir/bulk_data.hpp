#pragma once
// FHIR Bulk Data export (HL7 Bulk Data Access 2.0): kick off an asynchronous `$export`, poll its
// status (honouring Retry-After, reporting X-Progress), download the ndjson files it lists into a
// folder, streaming, and hand them to the backfill.

#include <functional>
#include <string>
#include <vector>

#include "fhir/client.hpp"
#include "fhir/datetime.hpp"

namespace fra::fhir {

struct ExportedFile {
  std::string resource_type;
  std::string path;
};

struct ExportResult {
  Micros transaction_time = 0;  ///< the server's time the export reflects
  std::vector<ExportedFile> files;
  int polls = 0;
};

/// The scheme, host and port of a URL, lower-cased ("" when it has none).
std::string origin_of(const std::string& url);

/// Runs `kickoff` (e.g. "Patient/$export", "$export", "Group/42/$export") for `types` and
/// downloads every output file into `dir`. `progress` receives each X-Progress text. Throws
/// FhirError (refused, failed, or not finished after `max_wait_seconds`).
ExportResult run_bulk_export(Client& client, const std::string& kickoff,
                             const std::vector<std::string>& types, const std::string& dir,
                             long max_wait_seconds,
                             const std::function<void(const std::string&)>& progress);

}  // namespace fra::fhir
