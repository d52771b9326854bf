#pragma once
// The subcommands of fhir-risk-adapter. Each returns the process exit code and prints its
// errors as one line on stderr.

#include <optional>
#include <string>

namespace fra::app {

/// sysexits(3) codes the adapter uses.
inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 64;
inline constexpr int kExitDataErr = 65;
inline constexpr int kExitUnavailable = 69;
inline constexpr int kExitSoftware = 70;
inline constexpr int kExitTempFail = 75;
inline constexpr int kExitCantCreate = 73;
inline constexpr int kExitNoPerm = 77;  ///< the server refused the write-back target
inline constexpr int kExitConfig = 78;

int migrate(const std::string& config_file);
/// The model's monitoring report (`format` "html" or "json") into `output`.
int monitor_report(const std::string& config_file, const std::string& output,
                   const std::string& since, const std::string& format);
int sync_once(const std::string& config_file);
/// The continuous daemon: polls or follows Subscriptions, scores, writes back, serves its HTTP
/// endpoint; drains on SIGTERM/SIGINT, reloads the model on SIGHUP.
int run_daemon(const std::string& config_file);
/// Loads ndjson files from `ndjson_dir`, or, when `export_kickoff` is set, from a Bulk Data export.
int backfill(const std::string& config_file, const std::string& ndjson_dir,
             const std::string& export_kickoff, int batch, int writers);
/// Writes the training CSV: features as of each discharge of `index_classes` (comma-separated)
/// and the label "readmitted within `horizon`" (ISO 8601 duration).
int export_training(const std::string& config_file, const std::string& output,
                    const std::string& index_classes, const std::string& horizon);
/// Options of score-csv beyond its files.
struct ScoreCsvFlags {
  bool margin = false;
  bool contributions = false;
  int threads = 1;
  bool row_by_row = false;
};

int score_csv(const std::string& model, const std::string& input, const std::string& output,
              const ScoreCsvFlags& flags);
int config_check(const std::string& config_file);
int config_example();
/// Prints the Markdown table of every configuration key that docs/configuration.md holds.
int config_reference();
int model_inspect(const std::string& path);
/// Walks the audit log's hash chain; exits 65 naming the first row that does not hold. Without
/// a configuration file the database comes from FRA_DATABASE_URL or libpq's PG* variables.
int audit_verify(const std::string& config_file);
/// Purges raw inputs older than retention.raw_inputs_days (audited); `run` does it daily.
int purge(const std::string& config_file);
/// Moves every pseudonym to the key in `new_key_file` (the database's key is pseudonym.key_file),
/// in one transaction; afterwards the configuration must name the new key.
int rekey(const std::string& config_file, const std::string& new_key_file);
/// Recomputes stored scores (all, or a random `sample`) from their stored feature vectors with
/// the model at model.path; exits 65 when one differs or was made by a model with another sha256.
int audit_rescore(const std::string& config_file, std::optional<int> sample);

}  // namespace fra::app
