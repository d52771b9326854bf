// `fhir-risk-adapter run`: the continuous daemon. One worker (this thread) ingests each resource
// type when its interval is due or a notification wakes it, scores the queue and writes back;
// a signal thread turns SIGTERM/SIGINT into a drain and SIGHUP into a model reload; the HTTP
// endpoint serves probes, metrics and notifications on threads of its own.

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <pqxx/pqxx>
#include <set>
#include <sstream>
#include <thread>

#include "adapter/app/commands.hpp"
#include "adapter/app/setup.hpp"
#include "adapter/daemon/http_endpoint.hpp"
#include "adapter/daemon/metrics.hpp"
#include "adapter/daemon/subscriptions.hpp"
#include "adapter/score/manifest.hpp"
#include "adapter/sync/pipeline.hpp"
#include "fhir/smart.hpp"
#include "mapping/pseudonym.hpp"

namespace fra::app {
namespace {

using Clock = std::chrono::steady_clock;
const std::vector<std::string> kTypes{"Patient", "Encounter", "Observation"};

// What the worker and the other threads share.
struct Shared {
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<bool> stop{false};
  std::atomic<bool> reload{false};
  std::set<std::string> woken;                    // types a notification asked for
  std::map<std::string, fhir::Micros> synced_at;  // type -> start of its last complete ingest
};

void declare_metrics(daemon::Metrics& m) {
  using daemon::latency_buckets;
  m.declare("fra_resources_ingested_total", "counter",
            "Resources stored (new versions), by resource type", "type");
  m.declare("fra_resources_dead_lettered_total", "counter",
            "Resources dead-lettered, by resource type", "type");
  m.declare("fra_sync_lag_seconds", "gauge",
            "Seconds since the start of the last complete search of the resource type: changes "
            "older than this "
            "are in the store",
            "type");
  m.declare("fra_sync_errors_total", "counter",
            "Passes of a resource type that failed (retried later)", "type");
  m.declare("fra_database_errors_total", "counter",
            "Database failures (the worker reconnects after 5 s)");
  m.declare("fra_queue_depth", "gauge", "Patients waiting on the scoring queue");
  m.declare("fra_scores_total", "counter", "Scores computed, by risk band", "band");
  m.declare("fra_scoring_seconds", "histogram", "Duration of one scoring pass over the queue", "",
            latency_buckets());
  m.declare("fra_writeback_seconds", "histogram", "Duration of one batch Bundle of RiskAssessments",
            "", latency_buckets());
  m.declare("fra_risk_assessments_written_total", "counter",
            "RiskAssessments written back, by result", "result");
  m.declare("fra_fhir_http_responses_total", "counter",
            "HTTP responses from the FHIR server, by status code", "code");
  m.declare("fra_fhir_retries_total", "counter",
            "Requests to the FHIR server retried after a fault");
  m.declare("fra_notifications_total", "counter", "Subscription notifications received, by result",
            "result");
  m.declare("fra_model_reloads_total", "counter", "Model reloads on SIGHUP, by result", "result");
  m.declare("fra_model_info", "gauge", "The model package in use (value 1)", "model");
}

// A wall-clock instant as a Prometheus-friendly number of seconds.
double seconds_between(fhir::Micros from, fhir::Micros to) {
  return static_cast<double>(to - from) / 1e6;
}

// The model package at `path`, bound to the configured features; nullopt after logging why not.
struct LoadedModel {
  std::unique_ptr<score::ModelPackage> package;
};
// `report` gets the problem: an error line at start, a log line on reload.
std::optional<LoadedModel> load_bound_model(const config::Config& cfg,
                                            const std::function<void(const std::string&)>& report) {
  try {
    LoadedModel m{std::make_unique<score::ModelPackage>(score::load_model_package(cfg.model.path))};
    sync::bind_model(*m.package, cfg.features.definitions, cfg.features.catalog);
    return m;
  } catch (const score::ModelError& e) {
    report(std::string("model.path: ") + e.what());
  } catch (const std::invalid_argument& e) {
    report(fmt::format("model.path: {} ({})", e.what(), cfg.file));
  }
  return std::nullopt;
}

// The notification secret: a key file (mode 0600) of at least 32 printable ASCII characters,
// trailing newlines and spaces cut, since it travels in a header.
std::optional<std::string> read_secret(const std::string& path) {
  auto key = secret_file("subscription.secret_file", path, mapping::kMinKeyBytes);
  if (!key) return std::nullopt;
  std::string s = std::move(*key);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  if (s.size() < 32 || std::any_of(s.begin(), s.end(), [](char c) { return c < '!' || c > '~'; })) {
    error_line(fmt::format(
        "subscription.secret_file: {}: the secret must be at least 32 printable ASCII characters "
        "(it travels in an HTTP header), e.g. from `openssl rand -hex 32`",
        path));
    return std::nullopt;
  }
  return s;
}

// Blocks the signals the daemon handles in every thread started after it, and turns them into
// flags on a thread of their own; joined when it goes out of scope.
class SignalThread {
 public:
  explicit SignalThread(Shared& shared) : thread_(start(shared)) {}
  ~SignalThread() {
    pthread_kill(thread_.native_handle(), SIGUSR2);
    thread_.join();
  }
  SignalThread(const SignalThread&) = delete;
  SignalThread& operator=(const SignalThread&) = delete;

 private:
  static std::thread start(Shared& shared);
  std::thread thread_;
};

std::thread SignalThread::start(Shared& shared) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGUSR2);  // ours: the worker has finished
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return std::thread([&shared, set] {
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      if (sig == SIGUSR2) return;
      {
        std::lock_guard lock(shared.mu);
        if (sig == SIGHUP) {
          shared.reload = true;
        } else {
          shared.stop = true;
        }
      }
      spdlog::info("{}: {}",
                   sig == SIGHUP   ? "SIGHUP"
                   : sig == SIGINT ? "SIGINT"
                                   : "SIGTERM",
                   sig == SIGHUP ? "reloading the model package"
                                 : "finishing the work in hand, then stopping");
      shared.cv.notify_all();
    }
  });
}

// A database URL with a connect timeout, for a probe that must answer in time.
std::string with_connect_timeout(const std::string& url, int seconds) {
  if (url.rfind("postgres://", 0) == 0 || url.rfind("postgresql://", 0) == 0)
    return url + (url.find('?') == std::string::npos ? "?" : "&") +
           fmt::format("connect_timeout={}", seconds);
  return url + fmt::format(" connect_timeout={}", seconds);  // key=value form
}

}  // namespace

int run_daemon(const std::string& file) {
  Shared shared;
  SignalThread signals(shared);  // first: a signal during start-up is a request, not a kill
  auto cfg = load_config(file);
  if (!cfg) return kExitConfig;
  auto pseudonyms = pseudonymizer(*cfg);
  if (!pseudonyms) return kExitConfig;
  const mapping::Pseudonymizer& ps = *pseudonyms;
  auto model = load_bound_model(*cfg, error_line);
  if (!model) return kExitConfig;
  auto opts = client_options(*cfg);
  if (!opts) return kExitConfig;
  if (auto cutoff = retention_cutoff(*cfg, fhir::now_micros()); !cutoff) {
    error_line(cutoff.error().message);
    return kExitConfig;
  }
  const bool subscription_mode = cfg->sync.subscription_mode();
  std::string secret;
  if (subscription_mode) {
    auto s = read_secret(cfg->subscription.secret_file);
    if (!s) return kExitConfig;
    secret = *s;
  }

  daemon::Metrics metrics;
  declare_metrics(metrics);
  opts->no_more_retries = &shared.stop;  // a drain does not wait out a long retry
  opts->on_status = [&metrics](long status) {
    metrics.add("fra_fhir_http_responses_total", 1, std::to_string(status));
  };
  auto set_model_info = [&](const score::ModelPackage& p, double v) {
    metrics.set("fra_model_info", v,
                fmt::format("{} {} sha256:{}", p.manifest.name, p.manifest.version,
                            p.manifest.model_sha256));
  };
  set_model_info(*model->package, 1);

  std::map<std::string, std::chrono::seconds> interval;
  for (const auto& [type, seconds] : {std::pair{"Patient", cfg->sync.patient_interval_seconds},
                                      {"Encounter", cfg->sync.encounter_interval_seconds},
                                      {"Observation", cfg->sync.observation_interval_seconds}})
    interval[type] =
        std::chrono::seconds(subscription_mode ? cfg->sync.safety_net_seconds : seconds);

  std::unique_ptr<daemon::HttpEndpoint> http;
  const std::string database_url = cfg->database.url;
  fhir::ClientOptions probe_opts = *opts;
  probe_opts.max_attempts = 1;
  probe_opts.timeout_seconds = 3;
  probe_opts.on_status = nullptr;
  std::mutex probe_mu;
  if (!cfg->http.listen.empty()) {
    daemon::Handlers h;
    h.ready = [&]() {
      std::lock_guard lock(probe_mu);
      daemon::Readiness r{true, ""};
      try {
        pqxx::connection c(with_connect_timeout(database_url, 3));
        pqxx::nontransaction(c).exec("SELECT 1");
        r.detail += "database ok\n";
      } catch (const std::exception&) {
        r.ready = false;
        r.detail += "database unreachable\n";
      }
      try {
        fhir::Client probe(probe_opts);
        auto resp = probe.get("metadata");
        r.ready = r.ready && resp.status == 200;
        r.detail +=
            resp.status == 200 ? "fhir ok\n" : fmt::format("fhir answered HTTP {}\n", resp.status);
      } catch (const std::exception&) {
        r.ready = false;
        r.detail += "fhir unreachable\n";
      }
      r.detail += "model loaded\n";  // run does not start without one, and a reload keeps the old
      return r;
    };
    h.metrics = [&]() {
      const auto now = fhir::now_micros();
      std::lock_guard lock(shared.mu);
      for (const auto& [type, at] : shared.synced_at)
        metrics.set("fra_sync_lag_seconds", seconds_between(at, now), type);
      return metrics.render();
    };
    h.notify = [&](const std::string& type, const std::string& given, const std::string& body) {
      const bool ok = subscription_mode && given.size() == secret.size() &&
                      CRYPTO_memcmp(given.data(), secret.data(), secret.size()) == 0;
      metrics.add("fra_notifications_total", 1, ok ? "accepted" : "refused");
      if (!ok) return 401;
      {
        std::lock_guard lock(shared.mu);
        // The path's type (plain R4), else the types the body names (backport), else all.
        std::set<std::string> types;
        if (std::find(kTypes.begin(), kTypes.end(), type) != kTypes.end())
          types.insert(type);
        else
          types = daemon::notified_types(body, kTypes);
        if (types.empty()) types.insert(kTypes.begin(), kTypes.end());
        shared.woken.insert(types.begin(), types.end());
      }
      shared.cv.notify_all();
      return 200;
    };
    try {
      http = std::make_unique<daemon::HttpEndpoint>(cfg->http.listen, std::move(h));
    } catch (const std::runtime_error& e) {
      error_line(e.what());
      return kExitConfig;
    }
    const auto& listen = cfg->http.listen;
    spdlog::info("serving /healthz, /readyz, /metrics{} on {}:{}",
                 subscription_mode ? " and /notify" : "", listen.substr(0, listen.rfind(':')),
                 http->port());
  }

  sync::Options sopts = sync_options(*cfg);
  sopts.stop = &shared.stop;
  sopts.on_write_batch = [&metrics](double seconds, int) {
    metrics.observe("fra_writeback_seconds", seconds);
  };

  // The database session: the store and the pipeline over it. A lost database ends the session;
  // the worker opens a new one 5 s later, and nothing is lost (each step commits whole).
  auto client = std::make_unique<fhir::Client>(*opts);
  client->on_retry([&metrics](const std::string& where, const std::string& problem,
                              std::chrono::milliseconds d) {
    metrics.add("fra_fhir_retries_total");
    spdlog::warn("{}: {}; retry in {} ms", where, problem, d.count());
  });
  std::unique_ptr<store::Store> db;
  std::unique_ptr<sync::Pipeline> pipeline;
  bool reload_unaudited = false;  // a reload while the database was away, audited on reconnection
  auto audit_model = [&](bool reload) {
    db->audit("model-load", model->package->manifest.name,
              fmt::format(R"({{"version": "{}", "sha256": "{}", "reload": {}}})",
                          model->package->manifest.version, model->package->manifest.model_sha256,
                          reload));
  };
  auto open_session = [&] {
    db = std::make_unique<store::Store>(database_url);
    db->set_actor("fhir-risk-adapter run");
    if (reload_unaudited) {
      audit_model(true);
      reload_unaudited = false;
    }
    pipeline = std::make_unique<sync::Pipeline>(
        *client, *db, ps, *model->package, cfg->features.definitions, cfg->features.catalog, sopts);
  };
  auto end_session = [&](const std::exception& e) {
    metrics.add("fra_database_errors_total");
    spdlog::error("database: {}; reconnecting in 5 s", e.what());
    pipeline.reset();
    db.reset();
  };
  std::vector<std::string> subscriptions;
  try {
    open_session();
    if (!schema_current(*db, file) || !pseudonym_key_matches(*db, ps)) return kExitConfig;
    audit_model(false);
    if (subscription_mode) {
      auto plan =
          daemon::plan_subscriptions(*client, cfg->subscription.shape, cfg->subscription.topic);
      subscriptions = daemon::subscribe(*client, plan, cfg->subscription.endpoint, secret, kTypes);
      if (plan.backport)
        spdlog::info(
            "subscribed to the topic {} (Subscriptions Backport, rest-hook to {}); searching every "
            "{} s as a "
            "safety net",
            plan.topic, cfg->subscription.endpoint, cfg->sync.safety_net_seconds);
      else
        spdlog::info(
            "subscribed to changes of {} (rest-hook to {}/<type>); searching every {} s as a "
            "safety net",
            fmt::join(kTypes, ", "), cfg->subscription.endpoint, cfg->sync.safety_net_seconds);
    }
  } catch (const std::exception&) {
    return environment_failure(opts->base_url);
  }
  spdlog::info("running: model {} {}, {} mode", model->package->manifest.name,
               model->package->manifest.version, subscription_mode ? "subscription" : "poll");

  std::map<std::string, Clock::time_point> due;
  for (const auto& t : kTypes) due[t] = Clock::now();
  Clock::time_point work_retry_at = Clock::now();
  Clock::time_point purge_at = Clock::now();  // retention: at start, then daily
  while (!shared.stop) {
    if (shared.reload.exchange(false)) {
      // The new package is checked whole before it replaces the one serving.
      auto fresh = load_bound_model(*cfg, [](const std::string& why) { spdlog::error("{}", why); });
      if (fresh) {
        set_model_info(*model->package, 0);
        pipeline.reset();
        model = std::move(fresh);
        if (db)
          pipeline = std::make_unique<sync::Pipeline>(*client, *db, ps, *model->package,
                                                      cfg->features.definitions,
                                                      cfg->features.catalog, sopts);
        set_model_info(*model->package, 1);
        metrics.add("fra_model_reloads_total", 1, "ok");
        reload_unaudited = true;
        try {
          if (db) {
            audit_model(true);
            reload_unaudited = false;
          }
        } catch (const std::exception& e) {
          end_session(e);
        }
        spdlog::info("model reloaded: {} {} (sha256 {})", model->package->manifest.name,
                     model->package->manifest.version, model->package->manifest.model_sha256);
      } else {
        metrics.add("fra_model_reloads_total", 1, "refused");
        spdlog::error("model reload refused; still serving {} {}", model->package->manifest.name,
                      model->package->manifest.version);
      }
    }
    if (!db) {
      try {
        open_session();
        spdlog::info("database: connected again");
      } catch (const std::exception& e) {
        end_session(e);
        std::unique_lock lock(shared.mu);
        shared.cv.wait_for(lock, std::chrono::seconds(5), [&] { return shared.stop.load(); });
        continue;
      }
    }
    std::set<std::string> woken;
    {
      std::lock_guard lock(shared.mu);
      woken.swap(shared.woken);
    }
    try {
      for (const auto& type : kTypes) {
        if (shared.stop) break;
        const auto now = Clock::now();
        if (now < due[type] && woken.count(type) == 0) continue;
        const fhir::Micros started = fhir::now_micros();
        try {
          auto rep = pipeline->ingest(type);
          metrics.add("fra_resources_ingested_total", rep.counts.stored, type);
          metrics.add("fra_resources_dead_lettered_total", rep.counts.dead_lettered, type);
          if (!shared.stop) {
            std::lock_guard lock(shared.mu);
            shared.synced_at[type] = started;
          }
          if (rep.counts.enqueued + rep.deleted > 0)
            metrics.set("fra_queue_depth", static_cast<double>(db->queue_depth()));
          if (rep.counts.stored + rep.counts.dead_lettered + rep.deleted > 0)
            spdlog::info("{}: {} stored, {} unchanged, {} dead-lettered, {} deleted in {:.2f} s",
                         type, rep.counts.stored, rep.counts.unchanged, rep.counts.dead_lettered,
                         rep.deleted, rep.seconds);
          due[type] = Clock::now() + interval[type];
        } catch (const std::runtime_error& e) {
          if (dynamic_cast<const fhir::FhirError*>(&e) == nullptr &&
              dynamic_cast<const fhir::SmartError*>(&e) == nullptr)
            throw;
          metrics.add("fra_sync_errors_total", 1, type);
          spdlog::error("{}: {}; trying again in 5 s", type, e.what());
          due[type] =
              Clock::now() + std::min<Clock::duration>(interval[type], std::chrono::seconds(5));
        }
      }
      if (!shared.stop && Clock::now() >= work_retry_at) {
        try {
          const auto t0 = Clock::now();
          auto scored = pipeline->score_queue(fhir::now_micros());
          if (scored.scored > 0) {
            metrics.observe("fra_scoring_seconds",
                            std::chrono::duration<double>(Clock::now() - t0).count());
            for (const auto& [band, n] : pipeline->band_counts())
              metrics.add("fra_scores_total", n, band);
          }
          auto written = pipeline->write_back();
          metrics.add("fra_risk_assessments_written_total", written.created, "created");
          metrics.add("fra_risk_assessments_written_total", written.updated, "updated");
          metrics.add("fra_risk_assessments_written_total", written.failed, "failed");
          if (scored.scored + written.created + written.updated + written.failed > 0)
            spdlog::info("scored {} patients; RiskAssessments: {} created, {} updated, {} failed",
                         scored.scored, written.created, written.updated, written.failed);
          if (written.failed > 0) work_retry_at = Clock::now() + std::chrono::seconds(5);
        } catch (const std::runtime_error& e) {
          if (dynamic_cast<const fhir::FhirError*>(&e) == nullptr &&
              dynamic_cast<const fhir::SmartError*>(&e) == nullptr)
            throw;
          spdlog::error("write-back: {}; the RiskAssessments stay pending, trying again in 5 s",
                        e.what());
          work_retry_at = Clock::now() + std::chrono::seconds(5);
        }
        metrics.set("fra_queue_depth", static_cast<double>(db->queue_depth()));
      }
      if (!shared.stop && Clock::now() >= purge_at) {
        purge_at = Clock::now() + std::chrono::hours(24);
        if (auto cutoff = retention_cutoff(*cfg, fhir::now_micros()); cutoff && *cutoff) {
          auto c = db->purge_raw_inputs(**cutoff);
          spdlog::info(
              "retention: purged inputs older than {}: {} observation values, {} encounters, {} "
              "dead letters",
              fhir::format_instant(**cutoff), c.observation_values, c.encounters, c.dead_letters);
        }
      }
    } catch (const std::exception& e) {
      end_session(e);
      std::unique_lock lock(shared.mu);
      shared.cv.wait_for(lock, std::chrono::seconds(5), [&] { return shared.stop.load(); });
      continue;
    }
    std::unique_lock lock(shared.mu);
    auto wake_at = std::min({due["Patient"], due["Encounter"], due["Observation"]});
    if (work_retry_at > Clock::now()) wake_at = std::min(wake_at, work_retry_at);
    shared.cv.wait_until(lock, wake_at,
                         [&] { return shared.stop || shared.reload || !shared.woken.empty(); });
  }

  // A clean stop removes what it registered.
  daemon::unsubscribe(*client, subscriptions);
  if (!subscriptions.empty()) spdlog::info("removed {} Subscriptions", subscriptions.size());
  http.reset();
  spdlog::info("stopped");
  return kExitOk;
}

}  // namespace fra::app
