#pragma once
// Deletions: a search never shows a deleted resource; the type's `_history` does. Each deletion
// followed removes the resource's rows (keeping a tombstone) and rescores its patient. Part of
// SystemSearch, which follows a type's history where a complete search of it ended.

#include "adapter/source/search_options.hpp"
#include "adapter/store/ingest.hpp"
#include "fhir/client.hpp"
#include "mapping/pseudonym.hpp"

namespace fra::source {

class HistoryDeletions {
 public:
  HistoryDeletions(fhir::Client& client, store::Ingest& ingest, const mapping::Pseudonymizer& ps,
                   SearchOptions options)
      : client_(client), ingest_(ingest), ps_(ps), options_(options) {}
  /// Follows one type's history; the first time (no history cursor yet) it only starts the
  /// cursor at `searched_up_to`, where a complete search of the type ended. Returns how many
  /// resources the store held that the server deleted. A server without `_history` (400, 404,
  /// 405, 501) is logged once and not asked again.
  int follow(const std::string& type, std::optional<fhir::Micros> searched_up_to);

 private:
  fhir::Client& client_;
  store::Ingest& ingest_;
  const mapping::Pseudonymizer& ps_;
  SearchOptions options_;
  bool unavailable_ = false;
};

}  // namespace fra::source
