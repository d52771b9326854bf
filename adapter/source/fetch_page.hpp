#pragma once
// One search page, asked for again when what comes back is not a Bundle.

#include <string>

#include "fhir/bundle.hpp"
#include "fhir/client.hpp"

namespace fra::source {

/// GET a search page (a path or a `next` link). A body that is not a Bundle (a proxy's error
/// page, a truncated body) is asked for again, up to the client's attempts. Throws
/// fhir::FhirError on any status but 200 and when the body stays unreadable.
fhir::SearchPage fetch_page(fhir::Client& client, const std::string& url);

}  // namespace fra::source
