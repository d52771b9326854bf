#include "adapter/source/patient_sync.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <set>

#include "adapter/source/fetch_page.hpp"
#include "adapter/source/map_page.hpp"
#include "adapter/source/search_options.hpp"

namespace fra::source {
namespace {

// Blood pressure panels: servers file systolic and diastolic as their components, and a `code`
// search matches the panel's code only.
const std::vector<std::pair<std::string, std::vector<std::string>>> kPanels{
    {"http://loinc.org|85354-9", {"http://loinc.org|8480-6", "http://loinc.org|8462-4"}},
    {"http://loinc.org|55284-4", {"http://loinc.org|8480-6", "http://loinc.org|8462-4"}},
};

// A record without a time of its own (no meta.lastUpdated) is stored as of the refresh.
template <typename Record>
void stored_as_of(std::vector<Record>& records, std::size_t from, fhir::Micros fetched_at) {
  for (std::size_t i = from; i < records.size(); ++i)
    if (records[i].version.last_updated == 0) records[i].version.last_updated = fetched_at;
}

}  // namespace

std::vector<std::string> observation_search_codes(const mapping::ObservationCatalog& catalog) {
  std::set<std::string> codes;
  for (const auto& [code, rule] : catalog) codes.insert(code);
  for (const auto& [panel, parts] : kPanels)
    if (std::any_of(parts.begin(), parts.end(), [&](const auto& p) { return catalog.contains(p); }))
      codes.insert(panel);
  return {codes.begin(), codes.end()};
}

fhir::Micros longest_window(const std::vector<mapping::FeatureDefinition>& defs) {
  fhir::Micros longest = 0;
  using Def = mapping::FeatureDefinition;
  for (const auto& d : defs) {
    // Conditions are searched without a date: a comorbidity counts however long ago it began.
    if (d.source == Def::Source::patient || d.source == Def::Source::condition) continue;
    if (d.window == 0) return 0;
    // Emergency visits are counted in the window before an index stay that itself ended inside
    // the window: they reach back about twice as far.
    longest = std::max(
        longest, d.measure == Def::Measure::emergency_visits && d.source == Def::Source::encounter
                     ? 2 * d.window
                     : d.window);
  }
  return longest;
}

struct PatientSync::Fetched {
  store::Page page;
  std::vector<std::string> returned;
  int requests = 0;
  fhir::Micros at = 0;
};

PatientSync::PatientSync(fhir::Client& client, store::Ingest& ingest, store::Cohort& cohort,
                         const mapping::Pseudonymizer& ps,
                         const mapping::ObservationCatalog& catalog, PatientSyncOptions options)
    : client_(client),
      ingest_(ingest),
      cohort_(cohort),
      ps_(ps),
      catalog_(catalog),
      options_(options) {
  std::string codes;
  for (const auto& c : observation_search_codes(catalog))
    codes += (codes.empty() ? "" : ",") + fhir::url_encode(c);
  code_param_ = "code=" + codes;
}

void PatientSync::fetch_all(const std::string& first_url, const std::string& type, Fetched& f) {
  std::string url = first_url;
  while (!url.empty()) {
    auto page = fetch_page(client_, url);
    ++f.requests;
    for (const rapidjson::Value* r : page.resources) {
      const auto obs = f.page.observations.size(), enc = f.page.encounters.size(),
                 pat = f.page.patients.size(), cond = f.page.conditions.size();
      map_resource(type, *r, ps_, catalog_, f.page);
      stored_as_of(f.page.observations, obs, f.at);
      stored_as_of(f.page.encounters, enc, f.at);
      stored_as_of(f.page.patients, pat, f.at);
      stored_as_of(f.page.conditions, cond, f.at);
      if (type != "Patient")
        if (auto id = fhir::resource_id_of(*r); !id.empty())
          f.returned.push_back(ps_.of(type, fhir::FhirId{id}).hex);
    }
    url = page.next.value_or("");
  }
}

store::RefreshCounts PatientSync::refresh(const store::Member& m, const std::string& id) {
  Fetched f;
  f.at = fhir::now_micros();
  f.page.resource_type = "Patient refresh";
  const std::string patient = "patient=" + fhir::url_encode(id);
  const fhir::Micros start = options_.window > 0 ? f.at - options_.window : 0;
  const std::string since = start > 0 ? "&date=ge" + search_instant(start) : "";
  const std::string count = fmt::format("&_count={}", options_.page_size);
  fetch_all("Patient?_id=" + fhir::url_encode(id), "Patient", f);
  fetch_all("Observation?" + patient + "&" + code_param_ + since + count, "Observation", f);
  fetch_all("Encounter?" + patient + since + count, "Encounter", f);
  // Conditions whatever their date: a comorbidity counts however long ago it began.
  if (catalog_.conditions) fetch_all("Condition?" + patient + count, "Condition", f);
  store::PatientRefresh r{std::move(f.page),     m.key,      start,
                          std::move(f.returned), f.requests, options_.patient_interval_seconds};
  requests_ += f.requests;
  return ingest_.refresh_patient(r);
}

std::vector<PullReport> PatientSync::pull(const std::atomic<bool>* stop) {
  const auto t0 = std::chrono::steady_clock::now();
  PullReport rep;
  rep.origin = "cohort";
  rep.resource_type = "Patient";
  const fhir::Micros started = fhir::now_micros();  // each patient due now, once
  while (!stopping(stop)) {
    auto due = cohort_.claim(options_.claim, options_.lease_seconds, started);
    if (due.empty()) break;
    for (std::size_t i = 0; i < due.size(); ++i) {
      const auto& m = due[i];
      if (stopping(stop)) {  // not started: due again at once, for this or another process
        for (std::size_t j = i; j < due.size(); ++j) cohort_.release(due[j].key, 0);
        break;
      }
      auto ref = ps_.open(m.sealed);
      if (!ref || !ref.value().starts_with("Patient/")) {
        spdlog::error("cohort member {}: its sealed reference does not open under this key",
                      m.key.hex.substr(0, 12));
        cohort_.release(m.key, options_.patient_interval_seconds);
        continue;
      }
      try {
        auto c = refresh(m, ref.value().substr(8));
        ++refreshed_;
        ++rep.pages;
        rep.counts.stored += c.page.stored;
        rep.counts.unchanged += c.page.unchanged;
        rep.counts.dead_lettered += c.page.dead_lettered;
        rep.counts.ignored += c.page.ignored;
        rep.counts.enqueued += c.page.enqueued;
        rep.deleted += c.deleted;
        rep.fetched += c.page.stored + c.page.unchanged + c.page.dead_lettered;
      } catch (const fhir::FhirError& e) {
        // The server is down or refuses: this patient again in a minute, the rest at once (by
        // this process's next pass or another's), and the caller reports it.
        cohort_.release(m.key, 60);
        for (std::size_t j = i + 1; j < due.size(); ++j) cohort_.release(due[j].key, 0);
        throw;
      }
    }
  }
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return {rep};
}

}  // namespace fra::source
