#include "adapter/sync/pipeline.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <stdexcept>

#include "adapter/score/explain.hpp"

namespace fra::sync {
namespace {

std::string json_number(double v) { return std::isfinite(v) ? fmt::format("{:.9g}", v) : "null"; }

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

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
    : store_(store),
      ps_(ps),
      model_(model),
      features_(bind_model(model, features, catalog)),
      info_{model.manifest.name,         model.manifest.version,
            model.manifest.model_sha256, model.manifest.feature_names(),
            options.alert_bands,         options.alert_rearm_seconds},
      options_(std::move(options)),
      client_(client),
      catalog_(catalog),
      search_(client, store.ingest, ps, catalog,
              {options_.page_size, options_.overlap_seconds, options_.track_deletions}) {
  if (options_.per_patient) {
    source::PatientSyncOptions po;
    po.page_size = options_.page_size;
    po.window = source::longest_window(features_.definitions());
    if (po.window > 0) po.window += 86400LL * 1000000;  // a day's margin for time zones and lag
    po.patient_interval_seconds = options_.patient_interval_seconds;
    patients_ =
        std::make_unique<source::PatientSync>(client, store.ingest, store.cohort, ps, catalog, po);
  }
  if (options_.target == "observation" || !options_.conditional_update) {
    writeback::ResourceSinkOptions so;
    so.resource_type = options_.target == "observation" ? "Observation" : "RiskAssessment";
    so.identifier_system = options_.identifier_system;
    so.observation_code = options_.observation_code;
    so.update_in_place = options_.update_in_place;
    sink_ = std::make_unique<writeback::ResourceSink>(client, store.writeback, ps, model,
                                                      features_.definitions(), so);
  } else {
    sink_ = std::make_unique<writeback::RiskAssessmentSink>(
        client, store.writeback, ps, model, features_.definitions(),
        writeback::RiskAssessmentOptions{options_.write_batch, options_.write_in_flight,
                                         options_.identifier_system, options_.on_write_batch});
  }
  if (!options_.alert_bands.empty())
    alerts_ = std::make_unique<writeback::AlertSink>(
        client, store.alerts, ps, model, features_.definitions(),
        writeback::AlertOptions{options_.alert_recipient, options_.identifier_system});
}

WriteReport Pipeline::send_alerts() {
  return alerts_ ? alerts_->deliver(options_.stop) : WriteReport{};
}

std::size_t Pipeline::refresh_cohort() {
  auto reading = source::read_cohort(client_, options_.cohort, ps_);
  store_.cohort.replace(reading.members);
  return reading.members.size();
}

std::vector<IngestReport> Pipeline::pull() {
  return patients_ ? patients_->pull(options_.stop) : search_.pull(options_.stop);
}

IngestReport Pipeline::ingest(const std::string& type) {
  return search_.pull_type(type, options_.stop);
}

std::vector<store::Scored> score_all(const mapping::FeatureComputer& features,
                                     const score::ModelPackage& package,
                                     const std::vector<mapping::PatientInputs>& in,
                                     fhir::Micros as_of, int top_factors, ScoreTiming* timing) {
  const auto& defs = features.definitions();
  const std::size_t n = in.size(), width = defs.size();
  auto t0 = std::chrono::steady_clock::now();
  std::vector<float> rows(n * width);
  for (std::size_t i = 0; i < n; ++i) features.compute(in[i], as_of, rows.data() + i * width);
  if (timing) timing->features_seconds += seconds_since(t0);

  t0 = std::chrono::steady_clock::now();
  const score::Model& model = package.model;
  std::vector<float> probabilities(n), contributions(n * (width + 1));
  model.predict_batch(rows.data(), n, probabilities.data());
  model.contributions_batch(rows.data(), n, contributions.data());
  std::vector<store::Scored> out(n);
  // An index's factors are its parts, every one: the points it is the sum of.
  const std::size_t k =
      package.manifest.points ? width : static_cast<std::size_t>(std::max(0, top_factors));
  for (std::size_t i = 0; i < n; ++i) {
    const float* row = rows.data() + i * width;
    auto& s = out[i];
    s.probability = probabilities[i];
    s.band = package.manifest.band_for(s.probability).code;
    s.features.assign(row, row + width);
    // Built in a buffer: GCC 12 warns falsely (-Wrestrict) on a string grown from a literal here.
    fmt::memory_buffer json;
    json.push_back('[');
    for (const auto& f :
         score::top_contributions(row, contributions.data() + i * (width + 1), width, k))
      fmt::format_to(std::back_inserter(json),
                     R"({}{{"feature": "{}", "value": {}, "contribution": {}}})",
                     json.size() > 1 ? ", " : "", defs[f.feature].name, json_number(f.value),
                     json_number(f.contribution));
    json.push_back(']');
    s.contributions_json = fmt::to_string(json);
  }
  if (timing) timing->model_seconds += seconds_since(t0);
  return out;
}

std::vector<store::Scored> Pipeline::score_inputs(const std::vector<mapping::PatientInputs>& in,
                                                  fhir::Micros as_of) {
  return score_all(features_, model_, in, as_of, options_.top_factors, &timing_);
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
    auto c = store_.scores.score_batch(options_.score_batch, info_, as_of, scorer, identifier_of);
    total.scored += c.scored;
    total.to_write += c.to_write;
    total.alerts += c.alerts;
    total.waiting = c.waiting;
    if (c.scored == 0 || stopping()) break;
  }
  return total;
}

WriteReport Pipeline::write_back() { return sink_->deliver(options_.stop); }

Report Pipeline::run_once() {
  Report r;
  if (patients_) refresh_cohort();
  r.ingested = pull();
  r.refreshed = patients_refreshed();
  r.requests = patient_requests();
  r.sink = std::string(sink_->name());
  auto t0 = std::chrono::steady_clock::now();
  r.scored = score_queue(fhir::now_micros());
  r.score_timing = timing_;
  r.score_seconds = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  r.written = write_back();
  r.write_seconds = seconds_since(t0);
  r.alerted = send_alerts();
  return r;
}

}  // namespace fra::sync
