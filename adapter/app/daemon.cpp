#include "adapter/app/daemon.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "adapter/app/commands.hpp"
#include "adapter/app/failure.hpp"
#include "adapter/app/setup.hpp"
#include "adapter/monitor/monitor.hpp"
#include "fhir/resource_types.hpp"
#include "fhir/smart.hpp"
#include "fhir/subscriptions.hpp"

namespace fra::app {

std::unique_ptr<score::ModelPackage> load_bound_model(
    const config::Config& cfg, const std::function<void(const std::string&)>& report) {
  try {
    auto m = std::make_unique<score::ModelPackage>(score::load_model_package(cfg.model.path));
    sync::bind_model(*m, cfg.features.definitions, cfg.features.catalog);
    return m;
  } catch (const score::ModelError& e) {
    report(std::string("model.path: ") + e.what());
  } catch (const std::invalid_argument& e) {
    report(fmt::format("model.path: {} ({})", e.what(), cfg.file));
  }
  return nullptr;
}

Daemon::Daemon(const config::Config& cfg, const mapping::Pseudonymizer& ps,
               std::unique_ptr<score::ModelPackage> model,
               const fhir::ClientOptions& client_options, Shared& shared, daemon::Metrics& metrics,
               std::string secret)
    : cfg_(cfg),
      ps_(ps),
      shared_(shared),
      metrics_(metrics),
      secret_(std::move(secret)),
      options_(sync_options(cfg)),
      client_(std::make_unique<fhir::Client>(client_options)),
      model_(std::move(model)) {
  options_.stop = &shared_.stop;
  options_.on_write_batch = [this](double seconds, int) {
    metrics_.observe("fra_writeback_seconds", seconds);
  };
  client_->on_retry(
      [this](const std::string& where, const std::string& problem, std::chrono::milliseconds d) {
        metrics_.add("fra_fhir_retries_total");
        spdlog::warn("{}: {}; retry in {} ms", where, problem, d.count());
      });
  const auto& s = cfg_.sync;
  for (const auto& [type, seconds] : {std::pair{"Patient", s.patient_interval_seconds},
                                      {"Encounter", s.encounter_interval_seconds},
                                      {"Condition", s.encounter_interval_seconds},
                                      {"Observation", s.observation_interval_seconds}})
    interval_[type] = std::chrono::seconds(s.subscription_mode() ? s.safety_net_seconds : seconds);
  for (const auto& t : fhir::kReadTypes) due_[std::string(t.name)] = Clock::now();
  set_model_info(1);
}

void Daemon::set_model_info(double value) {
  const auto& m = model_->manifest;
  metrics_.set("fra_model_info", value,
               fmt::format("{} {} sha256:{}", m.name, m.version, m.model_sha256));
}

void Daemon::audit_model(bool reload) {
  const auto& m = model_->manifest;
  db_->audit.append("model-load", m.name,
                    fmt::format(R"({{"version": "{}", "sha256": "{}", "reload": {}}})", m.version,
                                m.model_sha256, reload));
}

void Daemon::open_session() {
  db_ = std::make_unique<store::Store>(cfg_.database.url);
  db_->session.set_actor("fhir-risk-adapter run");
  if (reload_unaudited_) {
    audit_model(true);
    reload_unaudited_ = false;
  }
  pipeline_ = std::make_unique<sync::Pipeline>(
      *client_, *db_, ps_, *model_, cfg_.features.definitions, cfg_.features.catalog, options_);
}

void Daemon::end_session(const std::string& why) {
  metrics_.add("fra_database_errors_total");
  spdlog::error("database: {}; reconnecting in 5 s", why);
  pipeline_.reset();
  db_.reset();
}

std::optional<int> Daemon::start() {
  const auto types = fhir::read_type_names(cfg_.features.catalog.conditions);
  try {
    if (!resolve_server_choices(cfg_, model_->manifest, *client_, options_)) return kExitConfig;
    if (options_.per_patient && cfg_.sync.subscription_mode()) {
      error_line(
          fmt::format("{}: sync.mode subscription needs system-wide searches; a "
                      "per-patient sync polls its cohort",
                      cfg_.file));
      return kExitConfig;
    }
    open_session();
    if (!schema_current(*db_, cfg_.file) || !pseudonym_key_matches(*db_, ps_)) return kExitConfig;
    audit_model(false);
    if (cfg_.sync.subscription_mode()) {
      const auto& sub = cfg_.subscription;
      auto plan = fhir::plan_subscriptions(*client_, sub.shape, sub.topic);
      subscriptions_ = fhir::subscribe(*client_, plan, sub.endpoint, secret_, types);
      if (plan.backport)
        spdlog::info(
            "subscribed to the topic {} (Subscriptions Backport, rest-hook to {}); "
            "searching every {} s as a safety net",
            plan.topic, sub.endpoint, cfg_.sync.safety_net_seconds);
      else
        spdlog::info(
            "subscribed to changes of {} (rest-hook to {}/<type>); searching every {} s "
            "as a safety net",
            fmt::join(types, ", "), sub.endpoint, cfg_.sync.safety_net_seconds);
    }
  } catch (...) {
    return report_failure(std::current_exception(), client_->options().base_url);
  }
  spdlog::info("running: model {} {}, {} mode", model_->manifest.name, model_->manifest.version,
               cfg_.sync.subscription_mode() ? "subscription" : "poll");
  return std::nullopt;
}

void Daemon::reload_model() {
  // The new package is checked whole before it replaces the one serving.
  auto fresh = load_bound_model(cfg_, [](const std::string& why) { spdlog::error("{}", why); });
  if (!fresh) {
    metrics_.add("fra_model_reloads_total", 1, "refused");
    spdlog::error("model reload refused; still serving {} {}", model_->manifest.name,
                  model_->manifest.version);
    return;
  }
  set_model_info(0);
  pipeline_.reset();
  model_ = std::move(fresh);
  set_model_info(1);
  metrics_.add("fra_model_reloads_total", 1, "ok");
  ++shared_.model_generation;  // the CDS Hooks service loads it too
  reload_unaudited_ = true;
  if (db_) {
    pipeline_ = std::make_unique<sync::Pipeline>(
        *client_, *db_, ps_, *model_, cfg_.features.definitions, cfg_.features.catalog, options_);
    try {
      audit_model(true);
      reload_unaudited_ = false;
    } catch (const store::StoreError& e) {
      end_session(e.what());
    }
  }
  spdlog::info("model reloaded: {} {} (sha256 {})", model_->manifest.name, model_->manifest.version,
               model_->manifest.model_sha256);
}

bool Daemon::ensure_session() {
  if (db_) return true;
  try {
    open_session();
    spdlog::info("database: connected again");
    return true;
  } catch (const store::StoreError& e) {
    end_session(e.what());
    return false;
  }
}

std::optional<int> Daemon::turn() {
  try {
    if (shared_.reload.exchange(false)) reload_model();
    if (!ensure_session()) {
      work_retry_at_ = Clock::now() + std::chrono::seconds(5);
      return std::nullopt;
    }
    std::set<std::string> woken;
    {
      std::lock_guard lock(shared_.mu);
      woken.swap(shared_.woken);
    }
    ingest_due(woken);
    if (!shared_.stop && Clock::now() >= work_retry_at_) score_and_write();
    if (!shared_.stop && Clock::now() >= purge_at_) purge_if_due();
    if (!shared_.stop && Clock::now() >= monitor_at_) monitor_if_due();
  } catch (...) {
    const Failure f = classify(std::current_exception());
    if (f.kind == FailureKind::bug) {
      // Reconnecting would meet the same defect every 5 s, forever: stop, loudly.
      spdlog::critical("internal error: {}; stopping", f.message);
      return exit_code(f.kind);
    }
    end_session(f.message);
    work_retry_at_ = Clock::now() + std::chrono::seconds(5);
  }
  return std::nullopt;
}

// Per-patient sync: the cohort's Group and file, again every cohort.refresh_seconds.
void Daemon::read_cohort_if_due() {
  if (Clock::now() < cohort_due_) return;
  try {
    const auto members = pipeline_->refresh_cohort();
    spdlog::info("cohort: {} patients", members);
  } catch (const std::runtime_error& e) {
    if (classify(std::current_exception()).kind != FailureKind::bug) throw;
    // The patients file changed under us and is no longer readable: the cohort stays as it was.
    spdlog::error("cohort: {}; the cohort stays as it was", e.what());
  }
  cohort_due_ = Clock::now() + std::chrono::seconds(cfg_.cohort.refresh_seconds);
}

// Per-patient sync: the cohort again every cohort.refresh_seconds, then every patient due; the
// queue is looked at again after sync.observation_interval_seconds (5 s after a failure).
void Daemon::refresh_due_patients() {
  const auto look_again = [this](Clock::duration after) {
    for (auto& [type, at] : due_) at = Clock::now() + after;
  };
  const long refreshed_before = pipeline_->patients_refreshed();
  const long asked_before = pipeline_->patient_requests();
  // Counted whether the pass ends well or not.
  const auto count = [&] {
    metrics_.add("fra_patients_refreshed_total",
                 static_cast<double>(pipeline_->patients_refreshed() - refreshed_before));
    metrics_.add("fra_patient_refresh_requests_total",
                 static_cast<double>(pipeline_->patient_requests() - asked_before));
  };
  try {
    read_cohort_if_due();
    const fhir::Micros started = fhir::now_micros();
    for (const auto& rep : pipeline_->pull()) {
      metrics_.add("fra_resources_ingested_total", rep.counts.stored, "cohort");
      metrics_.add("fra_resources_dead_lettered_total", rep.counts.dead_lettered, "cohort");
      metrics_.add("fra_ignored_total", rep.counts.ignored, "cohort");
      if (rep.counts.stored + rep.counts.dead_lettered + rep.deleted > 0)
        spdlog::info(
            "cohort: {} patients refreshed, {} stored, {} unchanged, {} dead-lettered, {} "
            "deleted in {:.2f} s",
            pipeline_->patients_refreshed() - refreshed_before, rep.counts.stored,
            rep.counts.unchanged, rep.counts.dead_lettered, rep.deleted, rep.seconds);
      if (rep.counts.enqueued + rep.deleted > 0)
        metrics_.set("fra_queue_depth", static_cast<double>(db_->scores.queue_depth()));
    }
    count();
    if (!shared_.stop) {  // every patient due at the start is in: the lag of every type
      std::lock_guard lock(shared_.mu);
      for (const auto& t : fhir::read_types(cfg_.features.catalog.conditions))
        shared_.synced_at[std::string(t.name)] = started;
    }
    look_again(std::chrono::seconds(cfg_.sync.observation_interval_seconds));
  } catch (const std::exception& e) {
    count();
    const FailureKind kind = classify(std::current_exception()).kind;
    if (kind != FailureKind::fhir && kind != FailureKind::auth) throw;
    metrics_.add("fra_sync_errors_total", 1, "cohort");
    spdlog::error("cohort: {}; trying again in 5 s", e.what());
    look_again(std::chrono::seconds(5));
  }
}

void Daemon::ingest_due(const std::set<std::string>& woken) {
  if (pipeline_->per_patient()) return refresh_due_patients();
  for (const auto& t : fhir::read_types(cfg_.features.catalog.conditions)) {
    const std::string type(t.name);
    if (shared_.stop) break;
    if (Clock::now() < due_[type] && woken.count(type) == 0) continue;
    const fhir::Micros started = fhir::now_micros();
    try {
      auto rep = pipeline_->ingest(type);
      metrics_.add("fra_resources_ingested_total", rep.counts.stored, type);
      metrics_.add("fra_resources_dead_lettered_total", rep.counts.dead_lettered, type);
      metrics_.add("fra_ignored_total", rep.counts.ignored, type);
      if (!shared_.stop) {
        std::lock_guard lock(shared_.mu);
        shared_.synced_at[type] = started;
      }
      if (rep.counts.enqueued + rep.deleted > 0)
        metrics_.set("fra_queue_depth", static_cast<double>(db_->scores.queue_depth()));
      if (rep.counts.stored + rep.counts.dead_lettered + rep.deleted > 0)
        spdlog::info("{}: {} stored, {} unchanged, {} dead-lettered, {} deleted in {:.2f} s", type,
                     rep.counts.stored, rep.counts.unchanged, rep.counts.dead_lettered, rep.deleted,
                     rep.seconds);
      due_[type] = Clock::now() + interval_[type];
    } catch (const std::exception& e) {
      // The FHIR server or its token endpoint: this type again in 5 s; anything else goes up.
      const FailureKind kind = classify(std::current_exception()).kind;
      if (kind != FailureKind::fhir && kind != FailureKind::auth) throw;
      metrics_.add("fra_sync_errors_total", 1, type);
      spdlog::error("{}: {}; trying again in 5 s", type, e.what());
      due_[type] =
          Clock::now() + std::min<Clock::duration>(interval_[type], std::chrono::seconds(5));
    }
  }
}

void Daemon::score_and_write() {
  try {
    const auto t0 = Clock::now();
    auto scored = pipeline_->score_queue(fhir::now_micros());
    if (scored.scored > 0) {
      metrics_.observe("fra_scoring_seconds",
                       std::chrono::duration<double>(Clock::now() - t0).count());
      for (const auto& [band, n] : pipeline_->band_counts())
        metrics_.add("fra_scores_total", n, band);
    }
    auto written = pipeline_->write_back();
    metrics_.add("fra_risk_assessments_written_total", written.created, "created");
    metrics_.add("fra_risk_assessments_written_total", written.updated, "updated");
    metrics_.add("fra_risk_assessments_written_total", written.failed, "failed");
    if (scored.scored + written.created + written.updated + written.failed > 0)
      spdlog::info(
          "scored {} patients; {}: {} created, {} updated, {} failed", scored.scored,
          pipeline_->sink_name() == "observation" ? "score Observations" : "RiskAssessments",
          written.created, written.updated, written.failed);
    if (!written.refused.empty())
      spdlog::error(
          "write-back refused by the server: {}; the scores stay pending, trying again "
          "in 5 minutes",
          written.refused);
    if (written.failed > 0) work_retry_at_ = Clock::now() + std::chrono::seconds(5);
    if (!written.refused.empty()) work_retry_at_ = Clock::now() + std::chrono::minutes(5);
    if (pipeline_->alerts_enabled()) {
      auto alerted = pipeline_->send_alerts();
      metrics_.add("fra_alerts_total", scored.alerts, "raised");
      metrics_.add("fra_alerts_total", alerted.created + alerted.updated, "sent");
      metrics_.add("fra_alerts_total", alerted.failed, "failed");
      if (scored.alerts + alerted.created + alerted.updated + alerted.failed > 0)
        spdlog::info("alerts: {} raised, {} sent, {} failed", scored.alerts,
                     alerted.created + alerted.updated, alerted.failed);
      if (alerted.failed > 0) work_retry_at_ = Clock::now() + std::chrono::seconds(5);
    }
  } catch (const std::exception& e) {
    const FailureKind kind = classify(std::current_exception()).kind;
    if (kind != FailureKind::fhir && kind != FailureKind::auth) throw;
    spdlog::error("write-back: {}; the RiskAssessments stay pending, trying again in 5 s",
                  e.what());
    work_retry_at_ = Clock::now() + std::chrono::seconds(5);
  }
  metrics_.set("fra_queue_depth", static_cast<double>(db_->scores.queue_depth()));
}

void Daemon::purge_if_due() {
  purge_at_ = Clock::now() + std::chrono::hours(24);
  auto cutoff = retention_cutoff(cfg_, fhir::now_micros());
  if (!cutoff || !*cutoff) return;
  auto c = db_->admin.purge_raw_inputs(**cutoff);
  spdlog::info(
      "retention: purged inputs older than {}: {} observation values, {} encounters, {} dead "
      "letters",
      fhir::format_instant(**cutoff), c.observation_values, c.encounters, c.dead_letters);
}

// The monitoring figures of the last 30 days, exported as gauges: computed on a schedule
// (monitoring.interval_hours), never on a scrape.
void Daemon::monitor_if_due() {
  const int hours = cfg_.monitoring.interval_hours;
  monitor_at_ = Clock::now() + std::chrono::hours(hours > 0 ? hours : 24 * 365);
  if (hours == 0) return;
  const auto t0 = Clock::now();
  monitor::Options o;
  o.now = fhir::now_micros();
  o.since = o.now - 30LL * 86400 * 1000000;
  const auto features = sync::bind_model(*model_, cfg_.features.definitions, cfg_.features.catalog);
  const auto r = monitor::compute(*db_, *model_, features, o);
  for (const auto& d : r.drift) {
    metrics_.set("fra_feature_psi", d.psi, d.name);
    metrics_.set("fra_feature_missing_ratio", d.missing_ratio, d.name);
  }
  if (!r.performance.empty()) {
    const auto& all = r.performance.front();
    if (all.auc) metrics_.set("fra_model_auc", *all.auc);
    if (all.brier) metrics_.set("fra_model_brier", *all.brier);
    if (all.calibration_slope) metrics_.set("fra_model_calibration_slope", *all.calibration_slope);
    if (all.calibration_intercept)
      metrics_.set("fra_model_calibration_intercept", *all.calibration_intercept);
  }
  metrics_.set("fra_monitor_computed_timestamp_seconds", static_cast<double>(o.now) / 1e6);
  spdlog::info(
      "monitoring: {} patients' latest scores against the training reference, {} index "
      "events with a known outcome, in {:.2f} s",
      r.patients, r.performance.empty() ? 0 : r.performance.front().n,
      std::chrono::duration<double>(Clock::now() - t0).count());
}

void Daemon::wait() {
  std::unique_lock lock(shared_.mu);
  auto wake_at = Clock::now() + std::chrono::hours(1);
  for (const auto& [type, at] : due_) wake_at = std::min(wake_at, at);
  if (work_retry_at_ > Clock::now()) wake_at = std::min(wake_at, work_retry_at_);
  wake_at = std::min(wake_at, monitor_at_);
  if (!db_) wake_at = Clock::now() + std::chrono::seconds(5);  // then connect again
  shared_.cv.wait_until(lock, wake_at, [&] {
    return shared_.stop || (db_ && (shared_.reload || !shared_.woken.empty()));
  });
}

int Daemon::drain() {
  // A clean stop removes what it registered.
  fhir::unsubscribe(*client_, subscriptions_);
  if (!subscriptions_.empty()) spdlog::info("removed {} Subscriptions", subscriptions_.size());
  spdlog::info("stopped");
  return kExitOk;
}

}  // namespace fra::app
