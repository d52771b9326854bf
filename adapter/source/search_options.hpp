#pragma once
// How the search sources read a server.

#include <string>

#include "fhir/datetime.hpp"

namespace fra::source {

struct SearchOptions {
  int page_size = 200;
  /// How far before the cursor each search starts, for servers whose lastUpdated order lags.
  long overlap_seconds = 5;
  /// Follow each type's `_history` for deletes (the types fhir::kReadTypes marks).
  bool track_deletions = true;
};

/// A search value for `t`: an instant at millisecond precision, rounded down so `ge` covers it.
std::string search_instant(fhir::Micros t);

}  // namespace fra::source
