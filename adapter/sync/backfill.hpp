#pragma once
// Backfill from FHIR Bulk Data: ndjson files (one resource per line, one resource type per
// file, as `$export` writes them) streamed into the store in batches, through the same
// mapping and merge as a sync. The sync cursors are left alone.

#include <functional>
#include <string>
#include <vector>

#include "adapter/store/store.hpp"
#include "mapping/features.hpp"
#include "mapping/pseudonym.hpp"

namespace fra::sync {

struct BackfillReport {
  std::string file;
  std::string resource_type;
  long lines = 0;
  store::PageCounts counts;
  double seconds = 0;
  bool skipped = false;  ///< a resource type the adapter does not use: the file was not loaded
};

/// Progress: the file, its resource type, lines read so far and seconds elapsed.
using BackfillProgress = std::function<void(const std::string&, const std::string&, long, double)>;

/// Longest line read: longer ones are dead letters ("too-large"), skipped without being held.
inline constexpr std::size_t kMaxLineBytes = 16u << 20;

/// Loads every `*.ndjson` file of `dir` (in name order); the resource type of a file is that of
/// its first resource, and files of types the adapter does not use are skipped. A line that is not
/// a JSON object, not UTF-8 where it matters, too deep, too long or unmappable is a dead letter;
/// the load goes on. Throws store::StoreError, or std::runtime_error when `dir` cannot be read.
std::vector<BackfillReport> backfill_ndjson(const std::string& dir, store::Store& store,
                                            const mapping::Pseudonymizer& ps,
                                            const mapping::ObservationCatalog& catalog,
                                            std::size_t batch, const BackfillProgress& progress);

}  // namespace fra::sync
