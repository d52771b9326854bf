#include "adapter/app/commands.hpp"

#include <fmt/format.h>
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
#include <sstream>

#include "adapter/app/failure.hpp"
#include "adapter/app/setup.hpp"
#include "adapter/config/config.hpp"
#include "adapter/config/secret_file.hpp"
#include "adapter/score/csv.hpp"
#include "adapter/score/manifest.hpp"
#include "adapter/source/bulk_export.hpp"
#include "adapter/source/ndjson_files.hpp"
#include "adapter/store/store.hpp"
#include "adapter/sync/pipeline.hpp"
#include "adapter/sync/training_export.hpp"
#include "fhir/client.hpp"
#include "fhir/smart.hpp"
#include "mapping/pseudonym.hpp"

namespace fra::app {
namespace {

const char* getenv_wrapper(const char* name) { return std::getenv(name); }

// `%j`: the message, escaped for a JSON string.
class JsonMessage : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    for (char c : msg.payload) {
      const unsigned char u = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        dest.push_back('\\');
        dest.push_back(c);
      } else if (u < 0x20) {
        fmt::format_to(std::back_inserter(dest), "\\u{:04x}", u);
      } else {
        dest.push_back(c);
      }
    }
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

std::optional<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

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

std::optional<fhir::ClientOptions> client_options(const config::Config& cfg) {
  fhir::ClientOptions opts;
  opts.base_url = cfg.fhir.base_url;
  opts.timeout_seconds = cfg.fhir.timeout_seconds;
  opts.max_attempts = cfg.fhir.max_attempts;
  opts.verify_tls = cfg.fhir.verify_tls;
  opts.ca_file = cfg.fhir.ca_file;
  opts.client_cert_file = cfg.fhir.client_cert_file;
  opts.client_key_file = cfg.fhir.client_key_file;
  for (const auto& [key, path] : {std::pair{"fhir.ca_file", &opts.ca_file},
                                  {"fhir.client_cert_file", &opts.client_cert_file}}) {
    if (!path->empty() && !std::filesystem::is_regular_file(*path)) {
      error_line(fmt::format("{}: {}: cannot read", key, *path));
      return std::nullopt;
    }
  }
  // The private key is read by libcurl from its path; it is read here first for its mode.
  if (!opts.client_key_file.empty() &&
      !secret_file("fhir.client_key_file", opts.client_key_file, mapping::kMinKeyBytes))
    return std::nullopt;
  if (!cfg.fhir.basic_user.empty()) {
    auto password = secret_file("fhir.basic_password_file", cfg.fhir.basic_password_file, 1);
    if (!password) return std::nullopt;
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
    if (!token) return std::nullopt;
    opts.bearer_token = without_line_end(std::move(*token));
  }
  if (const auto& token_url = cfg.fhir.smart_token_url; !token_url.empty()) {
    auto key = secret_file("fhir.smart_private_key_file", cfg.fhir.smart_private_key_file,
                           mapping::kMinKeyBytes);
    if (!key) return std::nullopt;
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
      return std::nullopt;
    }
  }
  return opts;
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
    if (f.source == mapping::FeatureDefinition::Source::patient) continue;
    if (f.window == 0 || f.window >= keep)
      return make_error(
          "retention",
          fmt::format("retention.raw_inputs_days ({}) must be longer than the window of "
                      "feature '{}' ({}), or its values would change as data are purged",
                      days, f.name, f.window == 0 ? "all history" : "longer"));
  }
  return std::optional<fhir::Micros>(now - keep);
}

namespace {

std::string instant_or_none(const std::optional<fhir::Micros>& t) {
  return t ? fhir::format_instant(*t) : std::string("(none)");
}

}  // namespace

int migrate(const std::string& file) {
  auto cfg = load_config(file);
  if (!cfg) return kExitConfig;
  try {
    store::Store db(cfg->database.url);
    db.session.set_actor("fhir-risk-adapter migrate");
    auto applied = db.admin.migrate();
    if (applied.empty()) fmt::print("schema up to date at version {}\n", db.admin.schema_version());
    for (const auto& name : applied) fmt::print("applied {}\n", name);
  } catch (const store::StoreError&) {
    return environment_failure();
  }
  return kExitOk;
}

int sync_once(const std::string& file) {
  auto cfg = load_config(file);
  if (!cfg) return kExitConfig;

  auto pseudonyms = pseudonymizer(*cfg);
  if (!pseudonyms) return kExitConfig;
  const mapping::Pseudonymizer& ps = *pseudonyms;

  std::optional<score::ModelPackage> model;
  try {
    model = score::load_model_package(cfg->model.path);
  } catch (const score::ModelError& e) {
    error_line(std::string("model.path: ") + e.what());
    return kExitConfig;
  }
  // Every feature the model names must be defined, checked before anything is touched.
  try {
    sync::bind_model(*model, cfg->features.definitions, cfg->features.catalog);
  } catch (const std::invalid_argument& e) {
    error_line(fmt::format("model.path: {} ({})", e.what(), cfg->file));
    return kExitConfig;
  }

  auto opts = client_options(*cfg);
  if (!opts) return kExitConfig;

  try {
    store::Store db(cfg->database.url);
    if (!schema_current(db, file) || !pseudonym_key_matches(db, ps)) return kExitConfig;
    fhir::Client client(*opts);
    client.on_retry(
        [](const std::string& where, const std::string& problem, std::chrono::milliseconds delay) {
          spdlog::warn("{}: {}; retry in {} ms", where, problem, delay.count());
        });
    sync::Options sopts = sync_options(*cfg);
    db.session.set_actor("fhir-risk-adapter sync");
    db.audit.append("model-load", model->manifest.name,
                    fmt::format(R"({{"version": "{}", "sha256": "{}"}})", model->manifest.version,
                                model->manifest.model_sha256));
    sync::Pipeline pipeline(client, db, ps, *model, cfg->features.definitions,
                            cfg->features.catalog, sopts);
    auto report = pipeline.run_once();
    for (const auto& r : report.ingested)
      fmt::print(
          "{:<12} fetched {:>6}  stored {:>6}  unchanged {:>6}  dead-lettered {:>4}  deleted {:>4} "
          " in {:.2f} s  "
          "cursor {} -> {}\n",
          r.resource_type, r.fetched, r.counts.stored, r.counts.unchanged, r.counts.dead_lettered,
          r.deleted, r.seconds, instant_or_none(r.cursor_before), instant_or_none(r.cursor_after));
    fmt::print("scored {} patients with {} {} in {:.3f} s (features {:.3f} s, model {:.3f} s)",
               report.scored.scored, model->manifest.name, model->manifest.version,
               report.score_seconds, report.score_timing.features_seconds,
               report.score_timing.model_seconds);
    if (report.scored.waiting > 0)
      fmt::print(" ({} waiting for their Patient resource)", report.scored.waiting);
    fmt::print("\nRiskAssessments: {} created, {} updated, {} failed in {:.2f} s\n",
               report.written.created, report.written.updated, report.written.failed,
               report.write_seconds);
    return report.written.failed > 0 ? kExitTempFail : kExitOk;
  } catch (const std::exception&) {
    return environment_failure(opts->base_url);
  }
}

int backfill(const std::string& file, const std::string& ndjson_dir,
             const std::string& export_kickoff, int batch) {
  auto cfg = load_config(file);
  if (!cfg) return kExitConfig;
  auto pseudonyms = pseudonymizer(*cfg);
  if (!pseudonyms) return kExitConfig;
  const mapping::Pseudonymizer& ps = *pseudonyms;
  try {
    store::Store db(cfg->database.url);
    if (!schema_current(db, file) || !pseudonym_key_matches(db, ps)) return kExitConfig;
    db.session.set_actor("fhir-risk-adapter backfill");
    // A progress line on a terminal, rewritten in place at most twice a second.
    const bool tty = ::isatty(STDERR_FILENO) != 0;
    double shown = -1;
    auto progress = [&](const std::string& f, const std::string& type, long lines, double seconds) {
      if (!tty || seconds - shown < 0.5) return;
      shown = seconds;
      fmt::print(stderr, "\r{} ({}): {} resources, {:.0f}/s   ", f, type, lines,
                 static_cast<double>(lines) / std::max(seconds, 1e-9));
      std::fflush(stderr);
    };
    const auto batch_lines = static_cast<std::size_t>(batch);
    std::vector<source::PullReport> reports;
    if (export_kickoff.empty()) {
      reports = source::NdjsonFiles(ndjson_dir, db.ingest, ps, cfg->features.catalog, batch_lines,
                                    progress)
                    .pull(nullptr);
    } else {
      auto opts = client_options(*cfg);
      if (!opts) return kExitConfig;
      fhir::Client client(*opts);
      source::BulkExport bulk(client, export_kickoff, db.ingest, ps, cfg->features.catalog,
                              batch_lines, progress);
      try {
        reports = bulk.pull(nullptr);
      } catch (const fhir::FhirError& e) {
        error_line(fmt::format("FHIR server {}: {}", opts->base_url, e.what()));
        return kExitUnavailable;
      }
      const auto& exported = *bulk.exported();
      fmt::print("bulk export {}: {} files after {} status polls, as of {}\n", export_kickoff,
                 exported.files.size(), exported.polls,
                 fhir::format_instant(exported.transaction_time));
    }
    if (tty && shown >= 0) fmt::print(stderr, "\n");
    long total = 0;
    double seconds = 0;
    for (const auto& r : reports) {
      if (r.skipped) {
        fmt::print("{:<28} {:<12} skipped: the adapter does not use this resource type\n", r.origin,
                   r.resource_type);
        continue;
      }
      fmt::print(
          "{:<28} {:<12} lines {:>8}  stored {:>8}  unchanged {:>8}  dead-lettered {:>5}  in "
          "{:.2f} s "
          "({:.0f}/s)\n",
          r.origin, r.resource_type, r.fetched, r.counts.stored, r.counts.unchanged,
          r.counts.dead_lettered, r.seconds,
          static_cast<double>(r.fetched) / std::max(r.seconds, 1e-9));
      total += r.fetched;
      seconds += r.seconds;
    }
    db.audit.append("backfill", export_kickoff.empty() ? "ndjson files" : "bulk data export",
                    fmt::format(R"({{"files": {}, "lines": {}}})", reports.size(), total));
    fmt::print(
        "backfilled {} resources from {} files in {:.2f} s; {} patients queued for scoring (the "
        "next sync "
        "scores them)\n",
        total, reports.size(), seconds, db.scores.queue_depth());
  } catch (const store::StoreError&) {
    return environment_failure();
  } catch (const std::runtime_error& e) {
    error_line(e.what());
    return kExitDataErr;
  }
  return kExitOk;
}

int export_training(const std::string& file, const std::string& output,
                    const std::string& index_classes, const std::string& horizon) {
  auto cfg = load_config(file);
  if (!cfg) return kExitConfig;
  sync::TrainingOptions opts;
  auto h = mapping::parse_window(horizon);
  if (!h) {
    error_line("--horizon: " + h.error().message);
    return kExitUsage;
  }
  opts.horizon = *h;
  opts.index_classes.clear();
  for (std::size_t at = 0; at <= index_classes.size();) {
    auto comma = std::min(index_classes.find(',', at), index_classes.size());
    if (comma > at) opts.index_classes.push_back(index_classes.substr(at, comma - at));
    at = comma + 1;
  }
  if (opts.index_classes.empty()) {
    error_line("--index-classes: give at least one Encounter class, e.g. IMP");
    return kExitUsage;
  }
  if (cfg->features.definitions.empty()) {
    error_line(
        fmt::format("{}: no features are defined ([[feature]] tables or features.file)", file));
    return kExitConfig;
  }
  mapping::FeatureComputer features(cfg->features.definitions, cfg->features.catalog);
  try {
    store::Store db(cfg->database.url);
    if (!schema_current(db, file)) return kExitConfig;
    std::ofstream out(output + ".partial", std::ios::binary);
    auto rep = sync::export_training(db, features, opts, out);
    out.close();
    // Only a complete file takes the name asked for.
    if (!out || std::rename((output + ".partial").c_str(), output.c_str()) != 0) {
      error_line(fmt::format("{}: cannot write", output));
      return kExitDataErr;
    }
    db.session.set_actor("fhir-risk-adapter export-training");
    db.audit.append(
        "export-training", "training CSV",
        fmt::format(R"({{"index_events": {}, "patients": {}, "horizon": "{}", "censored": {}}})",
                    rep.rows, rep.patients, horizon, rep.censored));
    fmt::print(
        "exported {} index events ({} readmitted within {}) of {} patients to {}; {} discharges "
        "too recent "
        "for their label were left out\n",
        rep.rows, rep.positives, horizon, rep.patients, output, rep.censored);
  } catch (const store::StoreError&) {
    return environment_failure();
  }
  return kExitOk;
}

int score_csv(const std::string& model_path, const std::string& input, const std::string& output,
              const ScoreCsvFlags& flags) {
  try {
    std::optional<score::Model> model;
    std::vector<std::string> features;
    if (std::filesystem::is_directory(model_path)) {
      auto pkg = score::load_model_package(model_path);
      features = pkg.manifest.feature_names();
      model.emplace(std::move(pkg.model));
    } else {
      model.emplace(score::Model::from_file(model_path));
      features = model->feature_names();
      if (features.empty())
        for (std::size_t i = 0; i < model->num_features(); ++i)
          features.push_back(fmt::format("f{}", i));
    }
    auto text = read_text(input);
    if (!text) {
      error_line(fmt::format("{}: cannot read", input));
      return kExitDataErr;
    }
    std::string out;
    try {
      out = score::score_csv(*model, features, *text,
                             {flags.margin, flags.contributions, flags.threads, flags.row_by_row});
    } catch (const std::runtime_error& e) {
      error_line(fmt::format("{}: {}", input, e.what()));
      return kExitDataErr;
    }
    std::ofstream f(output, std::ios::binary);
    f << out;
    if (!f) {
      error_line(fmt::format("{}: cannot write", output));
      return kExitDataErr;
    }
  } catch (const score::ModelError& e) {
    error_line(e.what());
    return kExitDataErr;
  }
  return kExitOk;
}

int config_check(const std::string& file) {
  auto r = config::load(file, &getenv_wrapper);
  for (const auto& p : r.problems) std::cerr << p.format() << "\n";
  if (!r.config) return kExitConfig;
  fmt::print("{}: ok\n", file);
  return kExitOk;
}

int config_example() {
  fmt::print("{}", config::example());
  return kExitOk;
}

int config_reference() {
  fmt::print("{}", config::reference());
  return kExitOk;
}

int model_inspect(const std::string& path) {
  try {
    std::optional<score::ModelPackage> pkg;
    std::optional<score::Model> bare;
    std::vector<std::string> names;
    if (std::filesystem::is_directory(path)) {
      pkg = score::load_model_package(path);
      const auto& m = pkg->manifest;
      fmt::print(
          "name        {}\nversion     {}\noutcome     {} {} ({})\nsha256      {} (verified)\n",
          m.name, m.version, m.outcome_system, m.outcome_code, m.outcome_display, m.model_sha256);
      names = m.feature_names();
    } else {
      bare = score::Model::from_file(path);
      fmt::print("file        {}\nsha256      {}\n", path, score::sha256_file(path));
      names = bare->feature_names();
    }
    const score::Model& model = pkg ? pkg->model : *bare;
    if (names.empty())
      for (std::size_t i = 0; i < model.num_features(); ++i) names.push_back(fmt::format("f{}", i));
    fmt::print(
        "objective   {}\nclasses     {}\ntrees       {}\nnodes       {} ({:.1f} MB compiled)\n",
        model.objective(), model.num_groups(), model.num_trees(), model.num_nodes(),
        static_cast<double>(model.memory_bytes()) / 1e6);
    std::map<int, std::size_t> depths;
    for (auto d : model.tree_depths()) ++depths[d];
    fmt::print("scoring     {}\n", model.scoring_layout());
    fmt::print("depths     ");
    for (const auto& [d, n] : depths) fmt::print(" {}:{}", d, n);
    const auto counts = model.split_counts();
    fmt::print("  (depth:trees)\nfeatures    {} ({} used by a split)\n", model.num_features(),
               std::count_if(counts.begin(), counts.end(), [](auto c) { return c > 0; }));
    for (std::size_t i = 0; i < names.size(); ++i) {
      std::string unit = pkg ? pkg->manifest.features[i].unit : "";
      fmt::print("  {:>3} {:<28} {:<8} {:>6} splits{}\n", i, names[i], unit, counts[i],
                 counts[i] == 0 ? "  (unused)" : "");
    }
    if (pkg) {
      fmt::print("bands\n");
      double lo = 0;
      for (const auto& b : pkg->manifest.bands) {
        fmt::print("  {:<10} [{:.2f}, {:.2f})  {}\n", b.code, lo, std::min(b.below, 1.0),
                   b.display);
        lo = b.below;
      }
    }
  } catch (const score::ModelError& e) {
    error_line(e.what());
    return kExitDataErr;
  }
  return kExitOk;
}

int audit_verify(const std::string& file) {
  std::string url;
  if (!file.empty()) {
    auto cfg = load_config(file);
    if (!cfg) return kExitConfig;
    url = cfg->database.url;
  } else if (const char* env = std::getenv("FRA_DATABASE_URL"); env != nullptr) {
    url = env;  // else libpq's own PGHOST, PGUSER, PGDATABASE...
  }
  try {
    store::Store db(url);
    const bool tty = isatty(STDERR_FILENO) != 0;
    auto check = db.audit.verify([tty](std::int64_t rows) {
      if (tty) std::cerr << fmt::format("\r{} rows checked", rows) << std::flush;
    });
    if (tty) std::cerr << "\r";
    if (check.problem) {
      fmt::print("audit log: {} rows before it hold; {}\n", check.rows, check.problem->message);
      return kExitDataErr;
    }
    fmt::print("audit log: {} rows, every hash and link holds; head {}\n", check.rows,
               check.head_hash);
  } catch (const store::StoreError&) {
    return environment_failure();
  }
  return kExitOk;
}

int audit_rescore(const std::string& file, std::optional<int> sample) {
  auto cfg = load_config(file);
  if (!cfg) return kExitConfig;
  std::optional<score::ModelPackage> model;
  try {
    model = score::load_model_package(cfg->model.path);
  } catch (const score::ModelError& e) {
    error_line(std::string("model.path: ") + e.what());
    return kExitConfig;
  }
  const auto names = model->manifest.feature_names();
  try {
    store::Store db(cfg->database.url);
    auto scores = db.audit.stored_scores(sample);
    std::map<std::string, int> other_models;  // sha256 -> scores not rescored
    int rescored = 0, differ = 0;
    std::vector<float> row(names.size());
    for (const auto& s : scores) {
      if (s.model_sha256 != model->manifest.model_sha256) {
        ++other_models[s.model_sha256];
        continue;
      }
      rapidjson::Document doc;
      doc.Parse(s.features_json.c_str());
      bool complete = doc.IsObject();
      for (std::size_t i = 0; complete && i < names.size(); ++i) {
        auto it = doc.FindMember(names[i].c_str());
        complete = it != doc.MemberEnd() && (it->value.IsNull() || it->value.IsNumber());
        if (complete)
          row[i] = it->value.IsNull() ? std::nanf("") : static_cast<float>(it->value.GetDouble());
      }
      ++rescored;
      const double again = complete ? static_cast<double>(model->model.predict(row.data())) : -1.0;
      if (!complete || again != s.probability) {
        if (++differ <= 20)
          fmt::print("score {}: stored {:.9g}, {} {:.9g}\n", s.id, s.probability,
                     complete ? "recomputed" : "its feature vector is incomplete;", again);
      }
    }
    fmt::print("{} scores read, {} rescored with {} {} (sha256 {}): {} differ\n", scores.size(),
               rescored, model->manifest.name, model->manifest.version,
               model->manifest.model_sha256, differ);
    for (const auto& [sha, n] : other_models)
      fmt::print(
          "{} scores were made by the model with sha256 {}, not the one at model.path: not "
          "rescored\n",
          n, sha);
    if (differ > 0 || !other_models.empty()) return kExitDataErr;
  } catch (const store::StoreError&) {
    return environment_failure();
  }
  return kExitOk;
}

int purge(const std::string& file) {
  auto cfg = load_config(file);
  if (!cfg) return kExitConfig;
  auto cutoff = retention_cutoff(*cfg, fhir::now_micros());
  if (!cutoff) {
    error_line(cutoff.error().message);
    return kExitConfig;
  }
  if (!*cutoff) {
    fmt::print("retention.raw_inputs_days is 0: everything is kept, nothing purged\n");
    return kExitOk;
  }
  try {
    store::Store db(cfg->database.url);
    if (!schema_current(db, file)) return kExitConfig;
    db.session.set_actor("fhir-risk-adapter purge");
    auto c = db.admin.purge_raw_inputs(**cutoff);
    fmt::print(
        "purged inputs older than {}: {} observation values, {} encounters, {} dead letters\n",
        fhir::format_instant(**cutoff), c.observation_values, c.encounters, c.dead_letters);
  } catch (const store::StoreError&) {
    return environment_failure();
  }
  return kExitOk;
}

int rekey(const std::string& file, const std::string& new_key_file) {
  auto cfg = load_config(file);
  if (!cfg) return kExitConfig;
  auto from = pseudonymizer(*cfg);
  if (!from) return kExitConfig;
  auto to_ptr = pseudonymizer(*cfg, &new_key_file);
  if (!to_ptr) return kExitConfig;
  const mapping::Pseudonymizer& to = *to_ptr;
  if (to.fingerprint() == from->fingerprint()) {
    error_line("--new-key-file: the same key as pseudonym.key_file");
    return kExitConfig;
  }
  try {
    store::Store db(cfg->database.url);
    if (!schema_current(db, file)) return kExitConfig;
    db.session.set_actor("fhir-risk-adapter rekey");
    auto c = db.admin.rekey(*from, to);
    fmt::print(
        "re-derived {} pseudonyms ({} patients, {} dead letters) under the new key in one "
        "transaction; {} "
        "deletions of resources never stored were dropped\n",
        c.resources, c.patients, c.dead_letters, c.dropped_tombstones);
    fmt::print(
        "now point pseudonym.key_file at {} and start the adapter: one started with the old key is "
        "refused\n",
        new_key_file);
  } catch (const store::StoreError&) {
    return environment_failure();
  }
  return kExitOk;
}

}  // namespace fra::app
