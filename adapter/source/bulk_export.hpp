#pragma once
// Backfill through the server's Bulk Data export: `$export` run on the server (fhir/bulk_data),
// its files downloaded to a scratch folder and loaded as NdjsonFiles, then each read type's
// cursor moved to the export's transactionTime, so the next sync starts where it ends.

#include <functional>
#include <optional>
#include <string>

#include "adapter/source/ndjson_files.hpp"
#include "fhir/bulk_data.hpp"
#include "fhir/client.hpp"

namespace fra::source {

class BulkExport : public Source {
 public:
  /// `kickoff`: "Patient/$export", "$export" or "Group/ID/$export".
  /// `writers`: as NdjsonFiles'; the first also moves the cursors.
  BulkExport(fhir::Client& client, std::string kickoff, std::vector<store::Ingest*> writers,
             const mapping::Pseudonymizer& ps, const mapping::ObservationCatalog& catalog,
             std::size_t batch, BackfillProgress progress = {})
      : client_(client),
        kickoff_(std::move(kickoff)),
        writers_(std::move(writers)),
        ps_(ps),
        catalog_(catalog),
        batch_(batch),
        progress_(std::move(progress)) {}
  std::string_view name() const override { return "bulk data export"; }
  /// Runs the export (waiting up to an hour), loads its files, moves the cursors; the scratch
  /// folder is removed whatever happens. Throws fhir::FhirError when the export fails,
  /// std::runtime_error when no scratch folder can be made.
  std::vector<PullReport> pull(const std::atomic<bool>* stop) override;
  /// The export's result, once pull() has run it.
  const std::optional<fhir::ExportResult>& exported() const { return exported_; }

 private:
  fhir::Client& client_;
  std::string kickoff_;
  std::vector<store::Ingest*> writers_;
  const mapping::Pseudonymizer& ps_;
  const mapping::ObservationCatalog& catalog_;
  std::size_t batch_;
  BackfillProgress progress_;
  std::optional<fhir::ExportResult> exported_;
};

}  // namespace fra::source
