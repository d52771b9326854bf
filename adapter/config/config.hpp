#pragma once
// The adapter's configuration: typed sections (`cfg.fhir.page_size`) filled from one table of
// keys (key_specs(): name, field, default, range or words, example, description). The table
// drives parsing, validation, environment overrides, `config example` and the key table of
// docs/configuration.md (`config reference`).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "mapping/features.hpp"

namespace fra::config {

/// [fhir]: the FHIR server, TLS and authentication.
struct FhirSection {
  std::string base_url;
  int page_size = 0;
  int timeout_seconds = 0;
  int max_attempts = 0;
  std::string bearer_token_file;
  bool verify_tls = false;
  std::string ca_file;
  std::string client_cert_file;
  std::string client_key_file;
  std::string basic_user;
  std::string basic_password_file;
  std::string smart_token_url;
  std::string smart_client_id;
  std::string smart_private_key_file;
  std::string smart_key_id;
  std::string smart_scope;
  int max_requests_per_second = 0;  ///< 0: no limit
  int max_in_flight = 0;
};

/// [database]: the PostgreSQL feature store.
struct DatabaseSection {
  std::string url;
};

/// [pseudonym]: the files of the pseudonym key and of the key that seals references.
struct PseudonymSection {
  std::string key_file;
  std::string seal_key_file;
};

/// [model]: the model package.
struct ModelSection {
  std::string path;
};

/// [sync]: what is searched, how often, and how `run` learns of changes.
struct SyncSection {
  int overlap_seconds = 0;
  bool track_deletions = false;
  std::string mode;  ///< "poll" or "subscription"
  int patient_interval_seconds = 0;
  int encounter_interval_seconds = 0;
  int observation_interval_seconds = 0;
  int safety_net_seconds = 0;
  std::string strategy;  ///< "system", "patient" or "auto"
  /// True when `run` follows Subscriptions rather than polling.
  bool subscription_mode() const { return mode == "subscription"; }
};

/// [features] and the [[feature]] tables: the definitions the model's features are computed by.
struct FeaturesSection {
  std::string file;  ///< features.file as written (relative to the configuration file)
  /// The `[[feature]]` tables of the configuration, then those of `file`, checked.
  std::vector<mapping::FeatureDefinition> definitions;
  /// The Observation codes those definitions read.
  mapping::ObservationCatalog catalog;
};

/// [retention]: how long raw inputs are kept.
struct RetentionSection {
  int raw_inputs_days = 0;
};

/// [score]: scoring batches.
struct ScoreSection {
  int batch_size = 0;
};

/// [writeback]: RiskAssessment batches.
struct WritebackSection {
  int batch_size = 0;
  int in_flight = 0;
  std::string target;            ///< "risk-assessment" or "observation"
  std::string observation_code;  ///< "system|code"; "" for the model's own
};

/// Monitoring of the model in production.
struct MonitoringSection {
  int interval_hours = 24;  ///< how often `run` computes the figures it exports; 0: never
};

/// Alerts: a Communication to the care team when a score enters the alert band.
struct AlertsSection {
  bool enabled = false;
  std::string band;       ///< the lowest band that alerts, a code of the model's bands
  std::string recipient;  ///< "Group/<id>", "Practitioner/<id>" or "CareTeam/<id>"
  int rearm_hours = 0;    ///< out of the band this long before coming back alerts again
};

/// The CDS Hooks service on http.listen.
struct CdsHooksSection {
  bool enabled = false;
  std::string base_url;         ///< the public base the EHR calls, e.g. https://fra.example.org
  std::string issuers_file;     ///< the trusted issuers, JSON
  std::string indicators;       ///< "low=info,moderate=warning,high=critical"
  bool score_endpoint = false;  ///< POST /score/{id}
};

/// The patients a per-patient sync refreshes.
struct CohortSection {
  std::string group_id;
  std::string patients_file;
  int refresh_seconds = 0;           ///< between readings of the Group and the file
  int patient_interval_seconds = 0;  ///< between two refreshes of one patient
};

/// [log]: what is logged and how.
struct LogSection {
  std::string level;   ///< trace, debug, info, warn or error
  std::string format;  ///< text or json
};

/// [subscription]: rest-hook Subscriptions, in sync.mode "subscription".
struct SubscriptionSection {
  std::string endpoint;
  std::string shape;  ///< auto, r4 or backport
  std::string topic;
  std::string secret_file;
};

/// [http]: the endpoint of `run`.
struct HttpSection {
  std::string listen;  ///< host:port, empty for none
};

/// A loaded configuration: every key holds a value of its type, in its range, and the rules
/// between keys hold. Only load() makes one.
struct Config {
  std::string file;  ///< the file it was read from
  FhirSection fhir;
  DatabaseSection database;
  PseudonymSection pseudonym;
  ModelSection model;
  SyncSection sync;
  CohortSection cohort;
  CdsHooksSection cds_hooks;
  AlertsSection alerts;
  MonitoringSection monitoring;
  FeaturesSection features;
  RetentionSection retention;
  ScoreSection score;
  WritebackSection writeback;
  LogSection log;
  SubscriptionSection subscription;
  HttpSection http;
};

enum class Type { string, integer, boolean };

/// A key's value before it is stored in its field.
using Value = std::variant<std::string, std::int64_t, bool>;

/// Where a key's value lives in a Config; its type follows from the member's.
struct Field {
  Type type;
  Value (*get)(const Config&);
  void (*set)(Config&, const Value&);  ///< the Value is of `type`, and in range
};

/// One configuration key, declared once.
struct KeySpec {
  std::string_view name;  ///< "section.key"
  Field field;
  std::optional<std::string_view> default_value = {};  ///< nullopt: required
  std::int64_t min = 0;                                ///< integers only
  std::int64_t max = 0;
  std::vector<std::string_view> choices = {};  ///< the words a string may be; empty: any string
  std::string_view form = {};                  ///< what a string holds, for the reference: "path"
  std::string_view example = {};  ///< `config example`'s value (TOML) when the default will not do
  std::string_view description = {};  ///< Markdown; `config example` prints it as plain text
};

/// Every key the adapter reads, in the order of `config example` and the reference.
const std::vector<KeySpec>& key_specs();

/// One problem with the configuration, printed like a compiler diagnostic.
struct Problem {
  std::string file;
  int line = 0;  ///< 0 when the problem has no place in the file
  int column = 0;
  std::string message;  ///< "fhir.page_size: expected integer 1..1000, got \"ten\""
  std::string format() const;
};

/// Either a Config or every problem found.
struct LoadResult {
  std::optional<Config> config;
  std::vector<Problem> problems;
};

/// Reads a TOML file, applies FRA_<SECTION>_<KEY> environment overrides (`env` returns the
/// value of a variable or nullptr), fills defaults and checks every key and the rules between
/// keys. Collects all problems rather than stopping at the first.
LoadResult load(const std::string& path, const char* (*env)(const char*));

/// The definitions of a features file (a TOML file of [[feature]] tables), checked, with the
/// catalog of the Observation codes they read.
struct FeatureFile {
  std::vector<mapping::FeatureDefinition> features;
  mapping::ObservationCatalog catalog;
  std::vector<Problem> problems;
};
FeatureFile load_features(const std::string& path);

/// A complete, commented example configuration.
std::string example();

/// The Markdown table of every key (key, variable, type, default, description) between the
/// markers that docs/configuration.md keeps it in.
std::string reference();

/// The environment variable that overrides a key: "fhir.base_url" → "FRA_FHIR_BASE_URL".
std::string env_name(std::string_view key);

/// The exit code for a configuration error (EX_CONFIG).
inline constexpr int kExitConfig = 78;

}  // namespace fra::config
