#pragma once
// The daemon's worker: its database session (a Store and the Pipeline over it), its model slot
// and its schedule. `run` (run.cpp) sets up the threads around it, then calls start(), turn()
// and wait() until asked to stop, then drain().

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "adapter/config/config.hpp"
#include "adapter/daemon/metrics.hpp"
#include "adapter/score/manifest.hpp"
#include "adapter/store/store.hpp"
#include "adapter/sync/pipeline.hpp"
#include "fhir/client.hpp"
#include "mapping/pseudonym.hpp"

namespace fra::app {

/// What the worker, the signal thread and the HTTP endpoint's threads share.
struct Shared {
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<bool> stop{false};
  std::atomic<bool> reload{false};
  std::atomic<int> model_generation{0};  // a package reloaded (SIGHUP) and serving: one more
  std::set<std::string> woken;           // types a notification asked for
  std::map<std::string, fhir::Micros> synced_at;  // type -> start of its last complete ingest
};

/// The model package at model.path, bound to the configured features; nullptr after `report`
/// got the problem (an error line at start, a log line on reload).
std::unique_ptr<score::ModelPackage> load_bound_model(
    const config::Config& cfg, const std::function<void(const std::string&)>& report);

class Daemon {
 public:
  /// `model` is the package to serve first; `secret` the notification secret (subscription mode).
  Daemon(const config::Config& cfg, const mapping::Pseudonymizer& ps,
         std::unique_ptr<score::ModelPackage> model, const fhir::ClientOptions& client_options,
         Shared& shared, daemon::Metrics& metrics, std::string secret);

  /// Opens the database session, checks the schema and the key, audits the model and registers
  /// the Subscriptions. Returns an exit code when the daemon cannot run (printed), else nullopt.
  std::optional<int> start();
  /// One turn of the loop: a model reload when asked, a new session when the database was lost,
  /// the searches that are due or notified, scoring and write-back, the daily purge. A FHIR or
  /// token failure is retried per type (or write-back) in 5 s, a database failure ends the
  /// session (a new one in 5 s). Returns an exit code when a bug stops the daemon, else nullopt.
  std::optional<int> turn();
  /// Sleeps until the next search or retry is due, a signal or a notification.
  void wait();
  /// After a stop: removes the Subscriptions registered at start. Returns the exit code (0).
  int drain();

 private:
  void reload_model();
  bool ensure_session();
  void open_session();
  void end_session(const std::string& why);
  void audit_model(bool reload);
  void ingest_due(const std::set<std::string>& woken);
  void refresh_due_patients();
  void read_cohort_if_due();
  void score_and_write();
  void purge_if_due();
  void monitor_if_due();
  void set_model_info(double value);

  using Clock = std::chrono::steady_clock;
  const config::Config& cfg_;
  const mapping::Pseudonymizer& ps_;
  Shared& shared_;
  daemon::Metrics& metrics_;
  std::string secret_;
  sync::Options options_;
  std::unique_ptr<fhir::Client> client_;
  // The model slot: replaced whole on a reload that passes its checks.
  std::unique_ptr<score::ModelPackage> model_;
  bool reload_unaudited_ = false;  // a reload while the database was away, audited on reconnection
  // The database session: a lost database drops both; the next turn opens new ones.
  std::unique_ptr<store::Store> db_;
  std::unique_ptr<sync::Pipeline> pipeline_;
  // The schedule.
  std::map<std::string, Clock::duration> interval_;
  std::map<std::string, Clock::time_point> due_;
  Clock::time_point work_retry_at_ = Clock::now();
  Clock::time_point purge_at_ = Clock::now();    // retention: at start, then daily
  Clock::time_point monitor_at_ = Clock::now();  // monitoring figures: at start, then each interval
  Clock::time_point cohort_due_ = Clock::now();  // per-patient sync: reading the cohort
  std::vector<std::string> subscriptions_;
};

}  // namespace fra::app
