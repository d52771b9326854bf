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
#include <set>
#include <sstream>
#include <thread>

#include "adapter/app/cds_hooks.hpp"
#include "adapter/app/commands.hpp"
#include "adapter/app/daemon.hpp"
#include "adapter/app/setup.hpp"
#include "adapter/daemon/http_endpoint.hpp"
#include "adapter/daemon/metrics.hpp"
#include "adapter/score/manifest.hpp"
#include "adapter/store/session.hpp"
#include "fhir/resource_types.hpp"
#include "fhir/smart.hpp"
#include "fhir/subscriptions.hpp"
#include "mapping/pseudonym.hpp"

namespace fra::app {
namespace {

// What comes in: resources, passes, per-patient refreshes, CDS Hooks calls.
void declare_input_metrics(daemon::Metrics& m) {
  m.declare("fra_resources_ingested_total", "counter",
            "Resources stored (new versions), by resource type", "type");
  m.declare("fra_resources_dead_lettered_total", "counter",
            "Resources dead-lettered, by resource type", "type");
  m.declare("fra_ignored_total", "counter",
            "Resources no feature reads (an Observation of a code no feature reads), counted "
            "and left alone: never a dead letter, by resource type",
            "type");
  m.declare("fra_sync_lag_seconds", "gauge",
            "Seconds since the start of the last complete search of the resource type: changes "
            "older than this "
            "are in the store",
            "type");
  m.declare("fra_sync_errors_total", "counter",
            "Passes of a resource type that failed (retried later)", "type");
  m.declare("fra_patients_refreshed_total", "counter",
            "Per-patient sync: patients of the cohort refreshed");
  m.declare("fra_patient_refresh_requests_total", "counter",
            "Per-patient sync: FHIR requests the refreshes took (divided by "
            "fra_patients_refreshed_total: requests per refreshed patient)");
  m.declare("fra_cds_calls_total", "counter", "CDS Hooks calls answered, by HTTP status", "status");
  m.declare("fra_cds_refused_total", "counter",
            "CDS Hooks calls refused (401), by reason: no-token, malformed, unknown-issuer, "
            "unknown-key, signature, claims, replay",
            "reason");
}

// What goes out: scores, write-back, alerts.
void declare_output_metrics(daemon::Metrics& m) {
  using daemon::latency_buckets;
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
  m.declare("fra_alerts_total", "counter",
            "Alerts: raised (a score entered the alert band), sent (a Communication on the "
            "server), failed (it stays pending)",
            "result");
}

// The model in production, and the FHIR server and the process around it.
void declare_model_metrics(daemon::Metrics& m) {
  m.declare("fra_feature_psi", "gauge",
            "Population stability index of each model feature over the patients' latest scores "
            "of the last 30 days against the training reference (monitoring.interval_hours)",
            "feature");
  m.declare("fra_feature_missing_ratio", "gauge",
            "Share of the patients' latest scores of the last 30 days without the feature",
            "feature");
  m.declare("fra_model_auc", "gauge",
            "AUC of the model as of each discharge of the last 30 days whose outcome is known");
  m.declare("fra_model_brier", "gauge", "Brier score over the same discharges");
  m.declare("fra_model_calibration_slope", "gauge",
            "Calibration slope over the same discharges (1: calibrated)");
  m.declare("fra_model_calibration_intercept", "gauge",
            "Calibration intercept over the same discharges (0: calibrated)");
  m.declare("fra_monitor_computed_timestamp_seconds", "gauge",
            "When the monitoring figures were last computed (Unix time)");
  m.declare("fra_fhir_http_responses_total", "counter",
            "HTTP responses from the FHIR server, by status code", "code");
  m.declare("fra_fhir_retries_total", "counter",
            "Requests to the FHIR server retried after a fault");
  m.declare("fra_notifications_total", "counter", "Subscription notifications received, by result",
            "result");
  m.declare("fra_model_reloads_total", "counter", "Model reloads on SIGHUP, by result", "result");
  m.declare("fra_model_info", "gauge", "The model package in use (value 1)", "model");
}

void declare_metrics(daemon::Metrics& m) {
  declare_input_metrics(m);
  declare_output_metrics(m);
  declare_model_metrics(m);
}

// A wall-clock instant as a Prometheus-friendly number of seconds.
double seconds_between(fhir::Micros from, fhir::Micros to) {
  return static_cast<double>(to - from) / 1e6;
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

// The readiness check: a database connection and the FHIR server's CapabilityStatement, each of
// its own and with a 3 s limit, one check at a time.
std::function<daemon::Readiness()> readiness(const config::Config& cfg,
                                             const fhir::ClientOptions& opts) {
  fhir::ClientOptions probe_opts = opts;
  probe_opts.max_attempts = 1;
  probe_opts.timeout_seconds = 3;
  probe_opts.on_status = nullptr;
  probe_opts.gate = nullptr;  // a probe answers now, whatever the budget or a Retry-After hold
  auto mu = std::make_shared<std::mutex>();
  return [database_url = cfg.database.url, probe_opts, mu]() {
    std::lock_guard lock(*mu);
    daemon::Readiness r{true, ""};
    try {
      store::Session s(with_connect_timeout(database_url, 3), "fhir-risk-adapter probe");
      s.transact("probe", [](pqxx::work& w) { w.exec("SELECT 1"); });
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
}

// /notify: checks the secret in constant time and wakes the worker for the types notified: the
// path's type (plain R4), else the types the body names (backport), else all.
std::function<int(const std::string&, const std::string&, const std::string&)> notifier(
    bool subscription_mode, const std::string& secret, Shared& shared, daemon::Metrics& metrics,
    bool conditions) {
  return [subscription_mode, &secret, &shared, &metrics, conditions](
             const std::string& type, const std::string& given, const std::string& body) {
    const bool ok = subscription_mode && given.size() == secret.size() &&
                    CRYPTO_memcmp(given.data(), secret.data(), secret.size()) == 0;
    metrics.add("fra_notifications_total", 1, ok ? "accepted" : "refused");
    if (!ok) return 401;
    const auto all = fhir::read_type_names(conditions);
    std::set<std::string> types;
    if (std::find(all.begin(), all.end(), type) != all.end())
      types.insert(type);
    else
      types = fhir::notified_types(body, all);
    if (types.empty()) types.insert(all.begin(), all.end());
    {
      std::lock_guard lock(shared.mu);
      shared.woken.insert(types.begin(), types.end());
    }
    shared.cv.notify_all();
    return 200;
  };
}

// The HTTP endpoint on http.listen (none when empty); nullptr after printing why it cannot listen.
std::unique_ptr<daemon::HttpEndpoint> serve(const config::Config& cfg,
                                            const fhir::ClientOptions& opts,
                                            const std::string& secret, Shared& shared,
                                            daemon::Metrics& metrics,
                                            const mapping::Pseudonymizer& ps, bool& failed) {
  failed = false;
  daemon::Handlers h;
  h.cds = cds_hooks_handler(cfg, ps, metrics, shared, failed);
  if (failed || cfg.http.listen.empty()) return nullptr;
  h.ready = readiness(cfg, opts);
  h.metrics = [&shared, &metrics]() {
    const auto now = fhir::now_micros();
    std::lock_guard lock(shared.mu);
    for (const auto& [type, at] : shared.synced_at)
      metrics.set("fra_sync_lag_seconds", seconds_between(at, now), type);
    return metrics.render();
  };
  h.notify = notifier(cfg.sync.subscription_mode(), secret, shared, metrics,
                      cfg.features.catalog.conditions);
  std::unique_ptr<daemon::HttpEndpoint> http;
  try {
    http = std::make_unique<daemon::HttpEndpoint>(cfg.http.listen, std::move(h));
  } catch (const std::runtime_error& e) {
    error_line(e.what());
    failed = true;
    return nullptr;
  }
  const auto& listen = cfg.http.listen;
  spdlog::info("serving /healthz, /readyz, /metrics{}{} on {}:{}",
               cfg.sync.subscription_mode() ? ", /notify" : "",
               cfg.cds_hooks.enabled ? ", /cds-services" : "", listen.substr(0, listen.rfind(':')),
               http->port());
  return http;
}

}  // namespace

int run_daemon(const std::string& file) {
  Shared shared;
  SignalThread signals(shared);  // first: a signal during start-up is a request, not a kill
  auto cfg = load_config(file);
  if (!cfg) return kExitConfig;
  auto pseudonyms = pseudonymizer(*cfg);
  if (!pseudonyms) return kExitConfig;
  auto model = load_bound_model(*cfg, error_line);
  if (!model) return kExitConfig;
  auto opts = client_options(*cfg);
  if (!opts) return kExitConfig;
  if (auto cutoff = retention_cutoff(*cfg, fhir::now_micros()); !cutoff) {
    error_line(cutoff.error().message);
    return kExitConfig;
  }
  std::string secret;
  if (cfg->sync.subscription_mode()) {
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
  bool failed = false;
  auto http = serve(*cfg, *opts, secret, shared, metrics, *pseudonyms, failed);
  if (failed) return kExitConfig;

  Daemon worker(*cfg, *pseudonyms, std::move(model), *opts, shared, metrics, secret);
  if (auto code = worker.start()) return *code;
  while (!shared.stop) {
    if (auto code = worker.turn()) return *code;
    worker.wait();
  }
  const int code = worker.drain();
  http.reset();
  return code;
}

}  // namespace fra::app
