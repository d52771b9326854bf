#include "adapter/source/history_deletions.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "fhir/bundle.hpp"

namespace fra::source {

std::string search_instant(fhir::Micros t) {
  std::string s = fhir::format_instant(t - (t % 1000 + 1000) % 1000);
  return s.substr(0, 23) + "Z";
}

int HistoryDeletions::follow(const std::string& type, std::optional<fhir::Micros> searched_up_to) {
  // Patients are not removed (their scores and RiskAssessments stay until the EHR retires them).
  if (!options_.track_deletions || unavailable_) return 0;
  const std::string key = type + "/_history";
  auto since = ingest_.cursor(key);
  if (!since) {
    // First time: the store holds what the searches found, so only later deletes matter.
    if (searched_up_to) ingest_.advance_cursor(key, *searched_up_to);
    return 0;
  }
  std::string url = fmt::format("{}/_history?_since={}&_count={}", type,
                                search_instant(*since - options_.overlap_seconds * 1000000LL),
                                options_.page_size);
  std::vector<std::pair<mapping::Pseudonym, fhir::Micros>> gone;
  fhir::Micros newest = 0;
  try {
    while (!url.empty()) {
      fhir::Response resp = client_.get(url);
      if (resp.status != 200)
        throw fhir::FhirError(fmt::format("HTTP {}", resp.status), resp.status);
      auto page = fhir::parse_history_page(resp.body, type);
      if (!page) throw fhir::FhirError(page.error().message, resp.status);
      for (const auto& d : page->deletes)
        gone.emplace_back(ps_.of(type, fhir::FhirId{d.id}), d.at > 0 ? d.at : *since);
      newest = std::max(newest, page->newest);
      url = page->next.value_or("");
    }
  } catch (const fhir::FhirError& e) {
    if (e.status() != 400 && e.status() != 404 && e.status() != 405 && e.status() != 501) throw;
    spdlog::warn("the FHIR server does not offer {}/_history ({}): deletions are not followed",
                 type, e.what());
    unavailable_ = true;
    return 0;
  }
  return ingest_.delete_resources(type, gone, key, newest);
}

}  // namespace fra::source
