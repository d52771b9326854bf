#include "adapter/sync/pipeline.hpp"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <future>
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

// How a value's unit reads after the number in a note.
std::string unit_words(const std::string& ucum) {
  if (ucum == "1") return "";
  if (ucum == "a") return "years";
  if (ucum == "d") return "days";
  if (ucum == "h") return "hours";
  if (ucum == "Cel") return "°C";
  if (ucum == "[degF]") return "°F";
  if (ucum == "[lb_av]") return "lb";
  if (ucum == "[in_i]") return "in";
  return ucum;
}

std::string json_number(double v) { return std::isfinite(v) ? fmt::format("{:.9g}", v) : "null"; }

}  // namespace

mapping::FeatureComputer bind_model(const score::ModelPackage& model,
                                    const std::vector<mapping::FeatureDefinition>& defined,
                                    const mapping::ObservationCatalog& catalog) {
  std::vector<std::pair<std::string, std::string>> wanted;
  for (const auto& f : model.manifest.features) wanted.emplace_back(f.name, f.unit);
  auto bound = mapping::bind_features(defined, wanted);
  if (!bound) throw std::invalid_argument(bound.error().message);
  return mapping::FeatureComputer(std::move(bound).value(), catalog);
}

Pipeline::Pipeline(fhir::Client& client, store::Store& store, const mapping::Pseudonymizer& ps,
                   const score::ModelPackage& model,
                   const std::vector<mapping::FeatureDefinition>& features,
                   const mapping::ObservationCatalog& catalog, Options options)
    : client_(client),
      ahead_(std::make_unique<fhir::Client>(client.options())),
      store_(store),
      ps_(ps),
      model_(model),
      catalog_(catalog),
      features_(bind_model(model, features, catalog)),
      options_(std::move(options)) {
  ahead_->on_retry(client.on_retry());
  for (int i = 0; i < std::max(1, options_.write_in_flight); ++i) {
    writers_.push_back(std::make_unique<fhir::Client>(client.options()));
    writers_.back()->on_retry(client.on_retry());
  }
  info_ = {model.manifest.name, model.manifest.version, model.manifest.model_sha256,
           model.manifest.feature_names()};
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
    url += "&_lastUpdated=ge" +
           search_instant(*rep.cursor_before - options_.overlap_seconds * 1000000LL);
  fhir::SearchPage page = fetch_page(client_, url);
  for (;;) {
    // Download the next page while this one is mapped and stored.
    const std::string next = page.next.value_or("");
    std::future<fhir::SearchPage> ahead;
    if (!next.empty())
      ahead = std::async(std::launch::async, [this, next] { return fetch_page(*ahead_, next); });
    store::Page rows = map_page(type, page, ps_, catalog_);
    store::PageCounts c = store_.store_page(rows);
    ++rep.pages;
    rep.fetched += static_cast<int>(page.resources.size());
    rep.counts.stored += c.stored;
    rep.counts.unchanged += c.unchanged;
    rep.counts.dead_lettered += c.dead_lettered;
    rep.counts.enqueued += c.enqueued;
    spdlog::debug("{} page {}: {} resources, {} stored, {} unchanged, {} dead-lettered", type,
                  rep.pages, page.resources.size(), c.stored, c.unchanged, c.dead_lettered);
    if (next.empty()) break;
    page = ahead.get();
    if (stopping()) break;  // the cursor keeps the last page stored; the next run goes on from it
  }
  rep.cursor_after = store_.cursor(type);
  // Deletions are followed from where a complete search ended: a search cut short by a stop
  // would start the history there and bring tombstones of resources never stored.
  if (!stopping()) rep.deleted = follow_deletions(type, rep.cursor_after);
  rep.seconds = seconds_since(t0);
  return rep;
}

int Pipeline::follow_deletions(const std::string& type,
                               std::optional<fhir::Micros> searched_up_to) {
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
    if (resp.status != 200)
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

std::vector<store::Scored> Pipeline::score_inputs(const std::vector<mapping::PatientInputs>& in,
                                                  fhir::Micros as_of) {
  const auto& defs = features_.definitions();
  const std::size_t n = in.size(), width = defs.size();
  auto t0 = std::chrono::steady_clock::now();
  std::vector<float> rows(n * width);
  for (std::size_t i = 0; i < n; ++i) features_.compute(in[i], as_of, rows.data() + i * width);
  timing_.features_seconds += seconds_since(t0);

  t0 = std::chrono::steady_clock::now();
  const score::Model& model = model_.model;
  std::vector<float> probabilities(n), contributions(n * (width + 1));
  model.predict_batch(rows.data(), n, probabilities.data());
  model.contributions_batch(rows.data(), n, contributions.data());
  std::vector<store::Scored> out(n);
  const std::size_t k = static_cast<std::size_t>(std::max(0, options_.top_factors));
  for (std::size_t i = 0; i < n; ++i) {
    const float* row = rows.data() + i * width;
    auto& s = out[i];
    s.probability = probabilities[i];
    s.band = model_.manifest.band_for(s.probability).code;
    s.features.assign(row, row + width);
    s.contributions_json = "[";
    for (const auto& f :
         score::top_contributions(row, contributions.data() + i * (width + 1), width, k))
      s.contributions_json +=
          fmt::format(R"({}{{"feature": "{}", "value": {}, "contribution": {}}})",
                      s.contributions_json.size() > 1 ? ", " : "", defs[f.feature].name,
                      json_number(f.value), json_number(f.contribution));
    s.contributions_json += "]";
  }
  timing_.model_seconds += seconds_since(t0);
  return out;
}

store::ScoreCounts Pipeline::score_queue(fhir::Micros as_of) {
  store::ScoreCounts total;
  timing_ = {};
  auto identifier_of = [this](const std::string& patient_key) {
    return ps_.derive("risk-assessment/" + model_.manifest.name, patient_key).hex;
  };
  bands_.clear();
  auto scorer = [&](const std::vector<mapping::PatientInputs>& in) {
    auto scored = score_inputs(in, as_of);
    for (const auto& s : scored) ++bands_[s.band];
    return scored;
  };
  for (;;) {
    auto c = store_.score_batch(options_.score_batch, info_, as_of, scorer, identifier_of);
    total.scored += c.scored;
    total.to_write += c.to_write;
    total.waiting = c.waiting;
    if (c.scored == 0 || stopping()) break;
  }
  return total;
}

// The factors a score keeps (feature, value, contribution), in the clinician's words.
std::vector<fhir::RiskFactor> Pipeline::factors_of(const std::string& contributions_json) const {
  std::vector<fhir::RiskFactor> out;
  rapidjson::Document doc;
  doc.Parse(contributions_json.c_str());
  if (doc.HasParseError() || !doc.IsArray()) return out;
  const auto& defs = features_.definitions();
  for (const auto& c : doc.GetArray()) {
    if (!c.IsObject() || !c.HasMember("feature") || !c["feature"].IsString()) continue;
    auto d = std::find_if(defs.begin(), defs.end(),
                          [&](const auto& x) { return x.name == c["feature"].GetString(); });
    if (d == defs.end()) continue;
    const double v = c.HasMember("value") && c["value"].IsNumber()
                         ? c["value"].GetDouble()
                         : std::numeric_limits<double>::quiet_NaN();
    const double contribution = c.HasMember("contribution") && c["contribution"].IsNumber()
                                    ? c["contribution"].GetDouble()
                                    : 0;
    fhir::RiskFactor f{d->name, d->label, v, unit_words(d->unit), d->unit, "", contribution};
    if (d->source == mapping::FeatureDefinition::Source::patient &&
        d->attribute == mapping::FeatureDefinition::Attribute::sex && !std::isnan(v))
      f.name = "Sex", f.text = v == 1.0 ? d->equals : "not " + d->equals;
    out.push_back(std::move(f));
  }
  return out;
}

WriteReport Pipeline::write_back() {
  WriteReport rep;
  const auto& m = model_.manifest;
  const std::size_t per = static_cast<std::size_t>(std::max(1, options_.write_batch));
  // One round: up to one Bundle per writer. Rounds go in score order; the next is read and
  // built while the one before is in flight, and sent as soon as its writers are free, so the
  // server is not left waiting on the database. A write that fails stays pending for the next
  // run, which retries it.
  struct Round {
    std::vector<store::PendingWrite> pending;
    std::vector<std::vector<std::size_t>> chunks;  // indices into pending, one Bundle each
    std::vector<std::vector<fhir::BatchEntry>> bodies;
    std::int64_t last_score_id = 0;
  };
  auto read_round = [&](std::int64_t after) {
    Round r;
    r.pending = store_.pending_writes(m.name, static_cast<int>(per * writers_.size()), after);
    for (std::size_t k = 0; k < r.pending.size(); ++k) {
      const auto& pw = r.pending[k];
      r.last_score_id = std::max(r.last_score_id, pw.score_id);
      auto ref = ps_.open(pw.sealed_ref);
      if (!ref) {
        spdlog::error("patient {}: {}", pw.patient_key.substr(0, 12), ref.error().message);
        ++rep.failed;
        continue;
      }
      if (r.chunks.empty() || r.chunks.back().size() == per) {
        r.chunks.emplace_back();
        r.bodies.emplace_back();
      }
      const score::Band& band = m.band_for(pw.probability);
      fhir::RiskAssessmentInput in{options_.identifier_system,
                                   pw.identifier,
                                   ref.value(),
                                   pw.as_of,
                                   m.name,
                                   m.version,
                                   m.model_sha256,
                                   {m.outcome_system, m.outcome_code},
                                   m.outcome_display,
                                   pw.probability,
                                   band.code,
                                   band.display,
                                   factors_of(pw.contributions_json)};
      r.chunks.back().push_back(k);
      r.bodies.back().push_back(
          {"PUT", fhir::conditional_path(in), fhir::build_risk_assessment(in)});
    }
    return r;
  };
  using Outcomes = std::optional<std::vector<fhir::EntryOutcome>>;
  // Every Bundle of a round in flight at once, each on its own connection.
  auto send = [&](const Round& r) {
    std::vector<std::future<Outcomes>> sent;
    for (std::size_t i = 0; i < r.bodies.size(); ++i)
      sent.push_back(std::async(std::launch::async, [this, i, &r]() -> Outcomes {
        const auto t0 = std::chrono::steady_clock::now();
        auto resp = writers_[i]->post("", fhir::batch_bundle(r.bodies[i]));
        if (options_.on_write_batch)
          options_.on_write_batch(seconds_since(t0), static_cast<int>(r.bodies[i].size()));
        if (resp.status != 200) {
          spdlog::error("batch of {} RiskAssessments: HTTP {} {}", r.bodies[i].size(), resp.status,
                        fhir::operation_outcome_text(resp.body));
          return std::nullopt;
        }
        auto outcomes = fhir::parse_batch_response(resp.body, r.bodies[i].size());
        if (!outcomes) {
          spdlog::error("batch of {} RiskAssessments: {}", r.bodies[i].size(),
                        outcomes.error().message);
          return std::nullopt;
        }
        return std::move(outcomes).value();
      }));
    return sent;
  };

  // Rounds live on the heap: the requests in flight refer to their Bundles.
  auto current = std::make_unique<Round>(read_round(0));
  auto sent = send(*current);
  while (!current->pending.empty()) {
    auto next = std::make_unique<Round>(stopping() ? Round{} : read_round(current->last_score_id));
    std::vector<store::PendingWrite> written;
    std::exception_ptr error;
    for (std::size_t i = 0; i < sent.size(); ++i) {
      Outcomes outcomes;
      try {
        outcomes = sent[i].get();
      } catch (...) {  // a transport failure after every retry: the others are still collected
        error = std::current_exception();
      }
      if (!outcomes) {
        rep.failed += static_cast<int>(current->chunks[i].size());
        continue;
      }
      for (std::size_t j = 0; j < current->chunks[i].size(); ++j) {
        const auto& pw = current->pending[current->chunks[i][j]];
        const auto& o = (*outcomes)[j];
        if (o.status == 200 || o.status == 201) {
          written.push_back(pw);
          (o.status == 201 ? rep.created : rep.updated) += 1;
        } else {
          spdlog::error("RiskAssessment for patient {}: HTTP {} {}", pw.patient_key.substr(0, 12),
                        o.status, o.problem);
          ++rep.failed;
        }
      }
    }
    if (error || (written.empty() && !sent.empty())) {
      // The server is down or refuses everything: stop; what was not written stays pending.
      store_.mark_written(m.name, written);
      if (error) std::rethrow_exception(error);
      break;
    }
    sent = send(*next);  // the writers are free: keep the server busy while the store is updated
    store_.mark_written(m.name, written);
    current = std::move(next);
  }
  return rep;
}

Report Pipeline::run_once() {
  Report r;
  for (const char* type : {"Patient", "Encounter", "Observation"})
    r.ingested.push_back(ingest(type));
  auto t0 = std::chrono::steady_clock::now();
  r.scored = score_queue(fhir::now_micros());
  r.score_timing = timing_;
  r.score_seconds = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  r.written = write_back();
  r.write_seconds = seconds_since(t0);
  return r;
}

}  // namespace fra::sync
