#include "adapter/source/fetch_page.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <thread>

#include "fhir/retry.hpp"

namespace fra::source {

fhir::SearchPage fetch_page(fhir::Client& client, const std::string& url) {
  const std::string where = fhir::path_without_query(url);
  for (int attempt = 1;; ++attempt) {
    fhir::Response resp = client.get(url);
    if (resp.status != 200)  // (the query, which may name a patient, stays out of the message)
      throw fhir::FhirError(fmt::format("GET {}: HTTP {}", where, resp.status), resp.status);
    auto page = fhir::parse_search_page(resp.body);
    if (page) return std::move(page).value();
    if (attempt >= client.options().max_attempts)
      throw fhir::FhirError(
          fmt::format("GET {}: {} ({} attempts); the cursor stays where the last stored page left "
                      "it",
                      where, page.error().message, attempt),
          resp.status);
    auto delay = fhir::backoff(attempt, client.options().backoff_base, client.options().backoff_cap,
                               1.0, std::nullopt);
    spdlog::warn("GET {}: {}; retry in {} ms", where, page.error().message, delay.count());
    std::this_thread::sleep_for(delay);
  }
}

}  // namespace fra::source
