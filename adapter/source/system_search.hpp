#pragma once
// The system-wide search: each type read with `GET <type>?_sort=_lastUpdated&_lastUpdated=ge…`
// from its cursor, page by page, each page stored with the cursor it reaches; then the type's
// deletions from its `_history`. For servers that allow searches without a patient (Medplum,
// HAPI, the cloud FHIR stores).

#include <memory>
#include <string>

#include "adapter/source/history_deletions.hpp"
#include "adapter/source/search_options.hpp"
#include "adapter/source/source.hpp"
#include "fhir/bundle.hpp"
#include "fhir/client.hpp"
#include "mapping/features.hpp"
#include "mapping/pseudonym.hpp"

namespace fra::source {

class SystemSearch : public Source {
 public:
  /// Opens a second connection like `client`'s, to fetch the next page while one is stored.
  SystemSearch(fhir::Client& client, store::Ingest& ingest, const mapping::Pseudonymizer& ps,
               const mapping::ObservationCatalog& catalog, SearchOptions options);
  std::string_view name() const override { return "system search"; }
  /// Every type of fhir::kReadTypes, in order, each followed by its deletions.
  std::vector<PullReport> pull(const std::atomic<bool>* stop) override;
  /// One type from its cursor, then its deletions (when the search was not cut short).
  PullReport pull_type(const std::string& type, const std::atomic<bool>* stop);

 private:
  fhir::Client& client_;
  std::unique_ptr<fhir::Client> ahead_;  // fetches the next search page while this one is stored
  store::Ingest& ingest_;
  const mapping::Pseudonymizer& ps_;
  const mapping::ObservationCatalog& catalog_;
  SearchOptions options_;
  HistoryDeletions deletions_;
};

}  // namespace fra::source
