#include "adapter/sync/pipeline.hpp"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <future>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <thread>

#include "adapter/score/explain.hpp"
#include "adapter/sync/map_page.hpp"
#include "fhir/bundle.hpp"
#include "fhir/retry.hpp"
#include "fhir/risk_assessment.hpp"

namespace fra::sync {
namespace {

// Search values are instants at millisecond precision, rounded down so `ge` covers the cursor.
std::string search_instant(fhir::Micros t) {
  std::string s = fhir::format_instant(t - (t % 1000 + 1000) % 1000);
  return s.substr(0, 23) + "Z";
}

// The few features that moved this patient's score the most (TreeSHAP), in plain words, with
// their values: what the clinician reads in the RiskAssessment.
std::vector<fhir::RiskFactor> main_factors(const std::string& features_json,
                                           const std::vector<mapping::FeatureDefinition>& defs,
                                           const score::Model& model, std::size_t k) {
  std::vector<fhir::RiskFactor> out;
  rapidjson::Document doc;
  doc.Parse(features_json.c_str());
  if (doc.HasParseError() || !doc.IsObject()) return out;
  std::vector<float> row;
  for (const auto& d : defs) {
    auto it = doc.FindMember(d.name.c_str());
    row.push_back(it != doc.MemberEnd() && it->value.IsNumber() ? static_cast<float>(it->value.GetDouble())
                                                                : std::numeric_limits<float>::quiet_NaN());
  }
  std::vector<float> contributions(row.size() + 1);
  model.contributions(row.data(), contributions.data());
  for (const auto& f : score::top_contributions(row.data(), contributions.data(), row.size(), k)) {
    const auto& d = defs[f.feature];
    double v = f.value;
    fhir::RiskFactor factor{d.label, v, d.unit == "1" ? "" : d.unit == "a" ? "years" : d.unit, "", f.contribution};
    if (d.kind == mapping::FeatureDefinition::Kind::sex_female && !std::isnan(v)) {
      factor.name = "Sex";
      factor.text = v == 1.0 ? "female" : "not female";
    }
    out.push_back(factor);
  }
  return out;
}

}  // namespace

Pipeline::Pipeline(fhir::Client& client, store::Store& store, const mapping::Pseudonymizer& ps,
                   const score::ModelPackage& model, Options options)
    : client_(client),
      ahead_(std::make_unique<fhir::Client>(client.options())),
      store_(store),
      ps_(ps),
      model_(model),
      options_(std::move(options)) {
  ahead_->on_retry(client.on_retry());
  auto bound = mapping::bind_features(model.manifest.feature_names());
  if (!bound) throw std::invalid_argument(bound.error().message);
  features_ = std::move(bound).value();
  for (std::size_t i = 0; i < features_.size(); ++i)
    if (features_[i].unit != model.manifest.features[i].unit)
      throw std::invalid_argument(fmt::format("the model wants feature '{}' in '{}', the adapter computes it in '{}'",
                                              features_[i].name, model.manifest.features[i].unit, features_[i].unit));
  info_ = {model.manifest.name, model.manifest.version, model.manifest.model_sha256, model.manifest.feature_names()};
}

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

IngestReport Pipeline::ingest(const std::string& type) {
  const auto t0 = std::chrono::steady_clock::now();
  IngestReport rep;
  rep.resource_type = type;
  rep.cursor_before = store_.cursor(type);
  std::string url = fmt::format("{}?_sort=_lastUpdated&_count={}", type, options_.page_size);
  // Search from a little before the cursor: a server whose clock or commit order lags can give a
  // resource an earlier lastUpdated than one already seen. Versions already stored are skipped.
  if (rep.cursor_before)
    url += "&_lastUpdated=ge" + search_instant(*rep.cursor_before - options_.overlap_seconds * 1000000LL);
  fhir::SearchPage page = fetch_page(client_, url);
  for (;;) {
    // Download the next page while this one is mapped and stored.
    const std::string next = page.next.value_or("");
    std::future<fhir::SearchPage> ahead;
    if (!next.empty()) ahead = std::async(std::launch::async, [this, next] { return fetch_page(*ahead_, next); });
    store::Page rows = map_page(type, page, ps_);
    store::PageCounts c = store_.store_page(rows);
    ++rep.pages;
    rep.fetched += static_cast<int>(page.resources.size());
    rep.counts.stored += c.stored;
    rep.counts.unchanged += c.unchanged;
    rep.counts.dead_lettered += c.dead_lettered;
    rep.counts.enqueued += c.enqueued;
    spdlog::debug("{} page {}: {} resources, {} stored, {} unchanged, {} dead-lettered", type, rep.pages,
                  page.resources.size(), c.stored, c.unchanged, c.dead_lettered);
    if (next.empty()) break;
    page = ahead.get();
  }
  rep.cursor_after = store_.cursor(type);
  rep.deleted = follow_deletions(type, rep.cursor_after);
  rep.seconds = seconds_since(t0);
  return rep;
}

int Pipeline::follow_deletions(const std::string& type, std::optional<fhir::Micros> searched_up_to) {
  // A search never shows a deleted resource; the type's history does. Patients are not
  // removed (their scores and RiskAssessments stay until the EHR retires them).
  if (!options_.track_deletions || history_unavailable_ || type == "Patient") return 0;
  const std::string key = type + "/_history";
  auto since = store_.cursor(key);
  if (!since) {
    // First time: the store holds what the searches found, so only later deletes matter.
    if (searched_up_to) store_.advance_cursor(key, *searched_up_to);
    return 0;
  }
  std::string url = fmt::format("{}/_history?_since={}&_count={}", type,
                                search_instant(*since - options_.overlap_seconds * 1000000LL), options_.page_size);
  std::vector<std::pair<mapping::Pseudonym, fhir::Micros>> gone;
  fhir::Micros newest = 0;
  try {
    while (!url.empty()) {
      fhir::Response resp = client_.get(url);
      if (resp.status != 200) throw fhir::FhirError(fmt::format("HTTP {}", resp.status), resp.status);
      auto page = fhir::parse_history_page(resp.body, type);
      if (!page) throw fhir::FhirError(page.error().message, resp.status);
      for (const auto& d : page->deletes) gone.emplace_back(ps_.of(type, fhir::FhirId{d.id}), d.at > 0 ? d.at : *since);
      newest = std::max(newest, page->newest);
      url = page->next.value_or("");
    }
  } catch (const fhir::FhirError& e) {
    if (e.status() != 400 && e.status() != 404 && e.status() != 405 && e.status() != 501) throw;
    spdlog::warn("the FHIR server does not offer {}/_history ({}): deletions are not followed", type, e.what());
    history_unavailable_ = true;
    return 0;
  }
  return store_.delete_resources(type, gone, key, newest);
}

fhir::SearchPage Pipeline::fetch_page(fhir::Client& client, const std::string& url) {
  // A page that is not a Bundle (a proxy's error page, a truncated body) is asked for again;
  // if it stays so, the run stops with the cursor where the last stored page left it.
  const std::string where = fhir::path_without_query(url);
  for (int attempt = 1;; ++attempt) {
    fhir::Response resp = client.get(url);
    if (resp.status != 200) throw fhir::FhirError(fmt::format("GET {}: HTTP {}", where, resp.status), resp.status);
    auto page = fhir::parse_search_page(resp.body);
    if (page) return std::move(page).value();
    if (attempt >= client.options().max_attempts)
      throw fhir::FhirError(fmt::format("GET {}: {} ({} attempts); the cursor stays where the last stored page left "
                                        "it", where, page.error().message, attempt),
                            resp.status);
    auto delay = fhir::backoff(attempt, client.options().backoff_base, client.options().backoff_cap, 1.0,
                               std::nullopt);
    spdlog::warn("GET {}: {}; retry in {} ms", where, page.error().message, delay.count());
    std::this_thread::sleep_for(delay);
  }
}

store::Scored Pipeline::score_one(const mapping::PatientInputs& in, fhir::Micros as_of) const {
  store::Scored s;
  s.features = mapping::compute_features(features_, in, as_of);
  s.probability = model_.model.predict(s.features.data());
  s.band = model_.manifest.band_for(s.probability).code;
  return s;
}

store::ScoreCounts Pipeline::score_queue(fhir::Micros as_of) {
  store::ScoreCounts total;
  auto identifier_of = [this](const std::string& patient_key) {
    return ps_.derive("risk-assessment/" + model_.manifest.name, patient_key).hex;
  };
  auto scorer = [&](const mapping::PatientInputs& in) { return score_one(in, as_of); };
  for (;;) {
    auto c = store_.score_batch(options_.score_batch, info_, as_of, scorer, identifier_of);
    total.scored += c.scored;
    total.to_write += c.to_write;
    total.waiting = c.waiting;
    if (c.scored == 0) break;
  }
  return total;
}

WriteReport Pipeline::write_back() {
  WriteReport rep;
  const auto& m = model_.manifest;
  for (;;) {
    auto batch = store_.pending_writes(m.name, 200);
    if (batch.empty()) break;
    int progressed = 0;
    for (const auto& pw : batch) {
      auto ref = ps_.open(pw.sealed_ref);
      if (!ref) {
        spdlog::error("patient {}: {}", pw.patient_key.substr(0, 12), ref.error().message);
        ++rep.failed;
        continue;
      }
      const score::Band& band = m.band_for(pw.probability);
      fhir::RiskAssessmentInput in{options_.identifier_system, pw.identifier, ref.value(), pw.as_of,
                                   m.name, m.version, m.model_sha256,
                                   {m.outcome_system, m.outcome_code}, m.outcome_display, pw.probability,
                                   band.code, band.display, main_factors(pw.features_json, features_, model_.model, 3)};
      auto resp = client_.put(fhir::conditional_path(in), fhir::build_risk_assessment(in));
      if (resp.status == 200 || resp.status == 201) {
        store_.mark_written(m.name, pw);
        (resp.status == 201 ? rep.created : rep.updated) += 1;
        ++progressed;
      } else {
        spdlog::error("RiskAssessment for patient {}: HTTP {} {}", pw.patient_key.substr(0, 12), resp.status,
                      fhir::operation_outcome_text(resp.body));
        ++rep.failed;
      }
    }
    if (progressed == 0) break;  // every remaining write failed: leave them pending for the next run
  }
  return rep;
}

Report Pipeline::run_once() {
  Report r;
  for (const char* type : {"Patient", "Encounter", "Observation"}) r.ingested.push_back(ingest(type));
  auto t0 = std::chrono::steady_clock::now();
  r.scored = score_queue(fhir::now_micros());
  r.score_seconds = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  r.written = write_back();
  r.write_seconds = seconds_since(t0);
  return r;
}

}  // namespace fra::sync
