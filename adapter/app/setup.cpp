// What every command does first: configuration and logging, the FHIR client's options, the
// keys, the schema and key checks (setup.hpp).

#include "adapter/app/setup.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <rapidjson/document.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>

#include "adapter/app/commands.hpp"
#include "adapter/app/failure.hpp"
#include "adapter/config/config.hpp"
#include "adapter/config/secret_file.hpp"
#include "adapter/score/csv.hpp"
#include "adapter/score/manifest.hpp"
#include "adapter/source/bulk_export.hpp"
#include "adapter/source/ndjson_files.hpp"
#include "adapter/store/store.hpp"
#include "adapter/sync/pipeline.hpp"
#include "adapter/sync/training_export.hpp"
#include "fhir/capability.hpp"
#include "fhir/client.hpp"
#include "fhir/json.hpp"
#include "fhir/risk_assessment.hpp"
#include "fhir/smart.hpp"
#include "mapping/pseudonym.hpp"

namespace fra::app {
namespace {

// `%j`: the message, escaped for a JSON string.
class JsonMessage : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    fhir::json::escape_string(std::string_view(msg.payload.data(), msg.payload.size()),
                              std::back_inserter(dest));
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessage>();
  }
};

void setup_logging(const std::string& level, const std::string& format) {
  auto logger = spdlog::get("fra");
  if (!logger) logger = spdlog::stderr_color_mt("fra");
  spdlog::set_default_logger(logger);
  if (format == "json") {
    auto f = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc,
                                                         std::string("\n"));
    f->add_flag<JsonMessage>('j').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","message":"%j"})");
    spdlog::set_formatter(std::move(f));
  } else {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);
  }
  spdlog::set_level(spdlog::level::from_str(level));
}

}  // namespace

const char* getenv_wrapper(const char* name) { return std::getenv(name); }

std::optional<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void error_line(const std::string& msg) {
  std::cerr << "fhir-risk-adapter: error: " << msg << "\n";
}

int environment_failure(const std::string& fhir_base_url) {
  return report_failure(std::current_exception(), fhir_base_url);
}

std::optional<config::Config> load_config(const std::string& file) {
  auto r = config::load(file, &getenv_wrapper);
  for (const auto& p : r.problems) std::cerr << p.format() << "\n";
  if (r.config) setup_logging(r.config->log.level, r.config->log.format);
  return r.config;
}

namespace {

// A password or token as a file holds it, less the line end an editor leaves.
std::string without_line_end(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

}  // namespace

std::optional<std::string> secret_file(std::string_view key, const std::string& path,
                                       std::size_t min_bytes) {
  auto bytes = config::read_secret_file(path, min_bytes);
  if (!bytes) {
    error_line(fmt::format("{}: {}", key, bytes.error().message));
    return std::nullopt;
  }
  return std::move(bytes).value();
}

namespace {

// The TLS files named exist; false after an error line.
bool tls_files_readable(const fhir::ClientOptions& opts) {
  for (const auto& [key, path] : {std::pair{"fhir.ca_file", &opts.ca_file},
                                  {"fhir.client_cert_file", &opts.client_cert_file}}) {
    if (!path->empty() && !std::filesystem::is_regular_file(*path)) {
      error_line(fmt::format("{}: {}: cannot read", key, *path));
      return false;
    }
  }
  // The private key is read by libcurl from its path; it is read here first for its mode.
  return opts.client_key_file.empty() ||
         secret_file("fhir.client_key_file", opts.client_key_file, mapping::kMinKeyBytes)
             .has_value();
}

// HTTP Basic credentials or a static bearer token; false after an error line.
bool add_static_credentials(const config::Config& cfg, fhir::ClientOptions& opts) {
  if (!cfg.fhir.basic_user.empty()) {
    auto password = secret_file("fhir.basic_password_file", cfg.fhir.basic_password_file, 1);
    if (!password) return false;
    opts.basic_user = cfg.fhir.basic_user;
    opts.basic_password = without_line_end(std::move(*password));
  }
  // A static token may come from the environment (a secret store's injection), never the
  // command line; a file named in the configuration wins.
  if (const char* env_token = std::getenv("FRA_FHIR_BEARER_TOKEN");
      env_token != nullptr && *env_token != '\0')
    opts.bearer_token = env_token;
  if (const auto& token_file = cfg.fhir.bearer_token_file; !token_file.empty()) {
    auto token = secret_file("fhir.bearer_token_file", token_file, 1);
    if (!token) return false;
    opts.bearer_token = without_line_end(std::move(*token));
  }
  return true;
}

// Tokens from SMART Backend Services when fhir.smart_token_url is set; false after an error
// line.
bool add_smart_tokens(const config::Config& cfg, fhir::ClientOptions& opts) {
  const auto& token_url = cfg.fhir.smart_token_url;
  if (token_url.empty()) return true;
  auto key = secret_file("fhir.smart_private_key_file", cfg.fhir.smart_private_key_file,
                         mapping::kMinKeyBytes);
  if (!key) return false;
  fhir::ClientOptions http = opts;  // the token endpoint: same TLS and retries, no token
  http.base_url.clear();
  try {
    auto source = std::make_shared<fhir::SmartTokenSource>(
        fhir::SmartOptions{token_url, cfg.fhir.smart_client_id, *key, cfg.fhir.smart_key_id,
                           cfg.fhir.smart_scope},
        http);
    opts.token_provider = [source](bool renew) { return source->token(renew); };
  } catch (const fhir::SmartError& e) {
    error_line(std::string("fhir.smart_private_key_file: ") + e.what());
    return false;
  }
  return true;
}

}  // namespace

std::optional<fhir::ClientOptions> client_options(const config::Config& cfg) {
  fhir::ClientOptions opts;
  opts.base_url = cfg.fhir.base_url;
  opts.timeout_seconds = cfg.fhir.timeout_seconds;
  opts.max_attempts = cfg.fhir.max_attempts;
  opts.verify_tls = cfg.fhir.verify_tls;
  opts.ca_file = cfg.fhir.ca_file;
  opts.client_cert_file = cfg.fhir.client_cert_file;
  opts.client_key_file = cfg.fhir.client_key_file;
  if (!tls_files_readable(opts) || !add_static_credentials(cfg, opts) ||
      !add_smart_tokens(cfg, opts))
    return std::nullopt;
  opts.gate =
      std::make_shared<fhir::RateGate>(cfg.fhir.max_requests_per_second, cfg.fhir.max_in_flight);
  return opts;
}

std::optional<score::ModelPackage> model_package(const config::Config& cfg) {
  try {
    return score::load_model_package(cfg.model.path);
  } catch (const score::ModelError& e) {
    error_line(std::string("model.path: ") + e.what());
    return std::nullopt;
  }
}

std::unique_ptr<mapping::Pseudonymizer> pseudonymizer(const config::Config& cfg,
                                                      const std::string* key_file) {
  const char* key_name = key_file != nullptr ? "--new-key-file" : "pseudonym.key_file";
  auto key = secret_file(key_name, key_file != nullptr ? *key_file : cfg.pseudonym.key_file,
                         mapping::kMinKeyBytes);
  if (!key) return nullptr;
  std::optional<std::string> seal;
  if (const auto& file = cfg.pseudonym.seal_key_file; !file.empty()) {
    seal = secret_file("pseudonym.seal_key_file", file, mapping::kMinKeyBytes);
    if (!seal) return nullptr;
    if (*seal == *key) {
      error_line(fmt::format("pseudonym.seal_key_file: the same key as {}; the two must differ",
                             key_name));
      return nullptr;
    }
  }
  return std::make_unique<mapping::Pseudonymizer>(*key, seal);
}

bool pseudonym_key_matches(store::Store& db, const mapping::Pseudonymizer& ps) {
  if (db.admin.pseudonym_key_matches(ps.fingerprint())) return true;
  error_line(
      "pseudonym.key_file: this database's pseudonyms were made with another key; with this one "
      "every "
      "patient would be stored again under a new pseudonym (use the key the database was made "
      "with)");
  return false;
}

sync::Options sync_options(const config::Config& cfg) {
  sync::Options o;
  o.page_size = cfg.fhir.page_size;
  o.score_batch = cfg.score.batch_size;
  o.overlap_seconds = cfg.sync.overlap_seconds;
  o.track_deletions = cfg.sync.track_deletions;
  o.write_batch = cfg.writeback.batch_size;
  o.write_in_flight = cfg.writeback.in_flight;
  return o;
}

namespace {

// "system|code" -> Coding; the model's own code when empty.
std::optional<fhir::Coding> observation_code(const config::Config& cfg,
                                             const std::string& model_name) {
  const std::string& text = cfg.writeback.observation_code;
  if (text.empty()) return fhir::Coding{fhir::kModelSystem, model_name};
  const auto bar = text.find('|');
  if (bar == std::string::npos || bar == 0 || bar + 1 == text.size()) {
    error_line(fmt::format("{}: writeback.observation_code: expected system|code, got '{}'",
                           cfg.file, text));
    return std::nullopt;
  }
  return fhir::Coding{text.substr(0, bar), text.substr(bar + 1)};
}

// sync.strategy, `auto` decided by the CapabilityStatement: the system-wide search sorts by
// _lastUpdated and searches from it, for every type it reads.
std::string chosen_strategy(const std::string& configured,
                            const std::optional<fhir::Capability>& cap) {
  if (configured != "auto") return configured;
  bool system = true;
  for (const char* type : {"Observation", "Encounter"})
    system = system && cap->searches_by(type, "_lastUpdated") && cap->searches_by(type, "_sort");
  spdlog::info("sync.strategy auto: {}",
               system ? "system-wide searches"
                      : "per patient (the server declares no _lastUpdated or no _sort search "
                        "for Observation and Encounter)");
  return system ? "system" : "patient";
}

// alerts.*: the bands at or above alerts.band, the recipient checked.
bool alert_choices(const config::Config& cfg, const score::Manifest& manifest, sync::Options& o) {
  const auto& a = cfg.alerts;
  if (!a.enabled) return true;
  static const std::regex kRecipient(R"(^(Group|Practitioner|CareTeam)/[A-Za-z0-9\-.]{1,64}$)");
  if (!std::regex_match(a.recipient, kRecipient)) {
    error_line(
        fmt::format("{}: alerts.recipient: expected Group/<id>, Practitioner/<id> or "
                    "CareTeam/<id>, got '{}'",
                    cfg.file, a.recipient));
    return false;
  }
  auto at = std::find_if(manifest.bands.begin(), manifest.bands.end(),
                         [&](const score::Band& b) { return b.code == a.band; });
  if (at == manifest.bands.end()) {
    std::vector<std::string> codes;
    for (const auto& b : manifest.bands) codes.push_back(b.code);
    error_line(fmt::format("{}: alerts.band: '{}' is not a band of model {} ({})", cfg.file, a.band,
                           manifest.name, fmt::join(codes, ", ")));
    return false;
  }
  for (; at != manifest.bands.end(); ++at) o.alert_bands.push_back(at->code);
  o.alert_recipient = a.recipient;
  o.alert_rearm_seconds = a.rearm_hours * 3600;
  return true;
}

}  // namespace

bool resolve_server_choices(const config::Config& cfg, const score::Manifest& manifest,
                            fhir::Client& client, sync::Options& o) {
  auto code = observation_code(cfg, manifest.name);
  if (!code) return false;
  if (!alert_choices(cfg, manifest, o)) return false;
  o.target = cfg.writeback.target;
  o.observation_code = *code;
  o.patient_interval_seconds = cfg.cohort.patient_interval_seconds;
  o.cohort.group_id = cfg.cohort.group_id;
  if (!cfg.cohort.patients_file.empty()) {
    std::filesystem::path f(cfg.cohort.patients_file);
    if (f.is_relative()) f = std::filesystem::path(cfg.file).parent_path() / f;
    o.cohort.patients_file = f.string();
  }
  // What the server says it does decides the rest. Without a readable CapabilityStatement the
  // write-back does what the configuration asks; `auto` has nothing to go by, and says so.
  std::optional<fhir::Capability> cap;
  try {
    cap = fhir::read_capability(client);
  } catch (const fhir::FhirError& e) {
    if (cfg.sync.strategy == "auto") throw;
    spdlog::warn(
        "cannot read the server's CapabilityStatement ({}); assuming it supports what "
        "the configuration asks for",
        e.what());
  }
  const std::string strategy = chosen_strategy(cfg.sync.strategy, cap);
  o.per_patient = strategy == "patient";
  if (o.per_patient && o.cohort.group_id.empty() && o.cohort.patients_file.empty()) {
    error_line(
        fmt::format("{}: a per-patient sync needs a cohort: set cohort.group_id or "
                    "cohort.patients_file",
                    cfg.file));
    return false;
  }
  if (o.per_patient && !o.cohort.patients_file.empty()) {
    if (auto problem = source::check_patients_file(o.cohort.patients_file)) {
      error_line(fmt::format("{}: {}", cfg.file, *problem));
      return false;
    }
  }
  const std::string type = o.target == "observation" ? "Observation" : "RiskAssessment";
  if (cap) {
    o.conditional_update = cap->updates_conditionally("RiskAssessment");
    o.update_in_place = cap->can(type, "update");
  }
  return true;
}

bool schema_current(store::Store& db, const std::string& config_file) {
  int have = db.admin.schema_version(), want = store::Admin::latest_schema_version();
  if (have == want) return true;
  error_line(
      fmt::format("database schema is at version {}, this adapter needs {}: run "
                  "`fhir-risk-adapter migrate --config {}`",
                  have, want, config_file));
  return false;
}

Result<std::optional<fhir::Micros>> retention_cutoff(const config::Config& cfg, fhir::Micros now) {
  const auto days = cfg.retention.raw_inputs_days;
  if (days == 0) return std::optional<fhir::Micros>();
  const fhir::Micros keep = days * 86400LL * 1000000LL;
  for (const auto& f : cfg.features.definitions) {
    // Patients and Conditions are never purged: a comorbidity counts however long ago it began.
    if (f.source == mapping::FeatureDefinition::Source::patient ||
        f.source == mapping::FeatureDefinition::Source::condition)
      continue;
    if (f.window == 0 || f.window >= keep)
      return make_error(
          "retention",
          fmt::format("retention.raw_inputs_days ({}) must be longer than the window of "
                      "feature '{}' ({}), or its values would change as data are purged",
                      days, f.name, f.window == 0 ? "all history" : "longer"));
  }
  return std::optional<fhir::Micros>(now - keep);
}

}  // namespace fra::app
