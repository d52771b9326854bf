#pragma once
// One page of a FHIR search result (a searchset Bundle).

#include <rapidjson/document.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/datetime.hpp"
#include "fhir/result.hpp"

namespace fra::fhir {

/// A parsed search page. `resources` point into `doc` and live as long as the page.
struct SearchPage {
  std::unique_ptr<rapidjson::Document> doc;
  std::vector<const rapidjson::Value*> resources;  ///< entry.resource, search.mode "match" only
  std::optional<std::string> next;                 ///< the `next` link, an opaque URL
};

/// Parses a searchset Bundle. Fails when the body is not JSON or not a Bundle.
Result<SearchPage> parse_search_page(std::string_view body);

/// A delete seen in a history Bundle.
struct HistoryDelete {
  std::string id;  ///< the logical id of the deleted resource
  Micros at = 0;   ///< response.lastModified (0 when absent)
};

/// The deletes of one page of a type-level `_history` Bundle, the newest lastModified of any
/// entry, and the `next` link.
struct HistoryPage {
  std::vector<HistoryDelete> deletes;
  Micros newest = 0;
  std::optional<std::string> next;
};

/// Parses a history Bundle of `resource_type`. Fails when the body is not JSON or not a Bundle.
Result<HistoryPage> parse_history_page(std::string_view body, std::string_view resource_type);

/// The text of an OperationOutcome body (diagnostics or details.text of its issues), or ""
/// when the body is not one.
std::string operation_outcome_text(std::string_view body);
/// Text a server sent, fit for a log line: quoted parts, the ids of references (`Patient/...`)
/// and runs of 4 or more digits are left out, since a server may echo the request's data.
std::string scrub_server_text(std::string_view text);

/// One entry of a batch Bundle: a request and the JSON of its resource.
struct BatchEntry {
  std::string method;  ///< "PUT", "POST"
  std::string url;     ///< e.g. "RiskAssessment?identifier=system%7Cvalue"
  std::string resource_json;
};

/// A batch Bundle (each entry applied on its own) of the given entries.
std::string batch_bundle(const std::vector<BatchEntry>& entries);

/// What the server did with one batch entry.
struct EntryOutcome {
  int status = 0;       ///< HTTP status of the entry (201, 200, 400, ...)
  std::string problem;  ///< OperationOutcome text when it failed
};

/// The entries of a batch-response Bundle, in request order. Fails when the body is not a
/// Bundle with `expected` entries.
Result<std::vector<EntryOutcome>> parse_batch_response(std::string_view body, std::size_t expected);

}  // namespace fra::fhir
