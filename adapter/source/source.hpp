#pragma once
// Where resources come from. A source brings what the FHIR server (or a folder of its files) has
// that the store lacks into the store, a page at a time, each page committed whole with the
// cursor it reaches, through the same mapping (map_page) and the same store (store::Ingest).
//
// Implementations: SystemSearch (system-wide `_lastUpdated` searches, then each type's
// `_history` for deletes, through HistoryDeletions), NdjsonFiles (Bulk Data ndjson on disk) and
// BulkExport (a `$export` run on the server, then its files). A new way of reaching a server is a
// new implementation beside these.

#include <atomic>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adapter/store/ingest.hpp"
#include "fhir/datetime.hpp"

namespace fra::source {

/// What a source brought into the store from one origin.
struct PullReport {
  std::string origin;  ///< what was read: the resource type searched, or the file
  std::string resource_type;
  int pages = 0;     ///< pages (or batches) committed
  long fetched = 0;  ///< resources (or lines) read
  store::PageCounts counts;
  int deleted = 0;  ///< resources the server deleted that the store held
  std::optional<fhir::Micros> cursor_before;
  std::optional<fhir::Micros> cursor_after;
  double seconds = 0;
  bool skipped = false;  ///< a resource type the adapter does not read: nothing was loaded
};

class Source {
 public:
  virtual ~Source() = default;
  /// How logs and reports name it ("system search").
  virtual std::string_view name() const = 0;
  /// Brings into the store what the store lacks. When `stop` turns true it returns after the
  /// page in hand is committed; the cursors keep the last page committed. Throws
  /// fhir::FhirError, fhir::SmartError or store::StoreError (environment), std::runtime_error
  /// (a file that cannot be read).
  virtual std::vector<PullReport> pull(const std::atomic<bool>* stop) = 0;
};

/// True when `stop` is set and has turned true.
inline bool stopping(const std::atomic<bool>* stop) { return stop != nullptr && stop->load(); }

}  // namespace fra::source
