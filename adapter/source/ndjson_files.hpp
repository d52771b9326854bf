#pragma once
// Backfill from FHIR Bulk Data: ndjson files (one resource per line, one resource type per
// file, as `$export` writes them) streamed into the store in batches, through the same
// mapping and merge as a sync. The sync cursors are left alone.

#include <functional>
#include <string>
#include <vector>

#include "adapter/source/source.hpp"
#include "mapping/features.hpp"
#include "mapping/pseudonym.hpp"

namespace fra::source {

/// Progress: the file, its resource type, lines read so far and seconds elapsed.
using BackfillProgress = std::function<void(const std::string&, const std::string&, long, double)>;

class NdjsonFiles : public Source {
 public:
  /// `batch`: lines read into one batch. `writers`: one or more, each on its own connection; a
  /// batch is split among them by lock stripe and each stores its part in one transaction.
  NdjsonFiles(std::string dir, std::vector<store::Ingest*> writers,
              const mapping::Pseudonymizer& ps, const mapping::ObservationCatalog& catalog,
              std::size_t batch, BackfillProgress progress = {})
      : dir_(std::move(dir)),
        writers_(std::move(writers)),
        ps_(ps),
        catalog_(catalog),
        batch_(batch),
        progress_(std::move(progress)) {}
  std::string_view name() const override { return "ndjson files"; }
  /// Loads every `*.ndjson` file of the folder (in name order), one report a file (origin: the
  /// file name, fetched: its lines); the resource type of a file is that of its first resource,
  /// and files of types the adapter does not read are skipped. A line that is not a JSON object,
  /// not UTF-8 where it matters, too deep, too long or unmappable is a dead letter; the load
  /// goes on. Stops between files when `stop` turns true. Throws store::StoreError, or
  /// std::runtime_error when the folder or a file cannot be read.
  std::vector<PullReport> pull(const std::atomic<bool>* stop) override;

 private:
  std::string dir_;
  std::vector<store::Ingest*> writers_;
  const mapping::Pseudonymizer& ps_;
  const mapping::ObservationCatalog& catalog_;
  std::size_t batch_;
  BackfillProgress progress_;
};

}  // namespace fra::source
