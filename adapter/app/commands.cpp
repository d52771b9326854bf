// The commands that move data: migrate, sync --once, backfill, export-training.

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
#include <functional>
#include <iostream>
#include <map>
#include <memory>
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

std::string instant_or_none(const std::optional<fhir::Micros>& t) {
  return t ? fhir::format_instant(*t) : std::string("(none)");
}

// Every feature the model names must be defined, checked before anything is touched.
std::optional<score::ModelPackage> bound_model(const config::Config& cfg) {
  auto model = model_package(cfg);
  if (!model) return std::nullopt;
  try {
    sync::bind_model(*model, cfg.features.definitions, cfg.features.catalog);
  } catch (const std::invalid_argument& e) {
    error_line(fmt::format("model.path: {} ({})", e.what(), cfg.file));
    return std::nullopt;
  }
  return model;
}

void print_sync_report(const sync::Report& report, const score::Manifest& manifest) {
  for (const auto& r : report.ingested)
    if (r.origin == "cohort")
      fmt::print(
          "cohort       refreshed {} patients with {} requests ({:.2f} a patient)  stored {}  "
          "unchanged {}  dead-lettered {}  ignored {}  deleted {}  in {:.2f} s\n",
          report.refreshed, report.requests,
          report.refreshed > 0
              ? static_cast<double>(report.requests) / static_cast<double>(report.refreshed)
              : 0.0,
          r.counts.stored, r.counts.unchanged, r.counts.dead_lettered, r.counts.ignored, r.deleted,
          r.seconds);
    else
      fmt::print(
          "{:<12} fetched {:>6}  stored {:>6}  unchanged {:>6}  dead-lettered {:>4}  ignored {:>5} "
          " "
          "deleted {:>4} "
          " in {:.2f} s  "
          "cursor {} -> {}\n",
          r.resource_type, r.fetched, r.counts.stored, r.counts.unchanged, r.counts.dead_lettered,
          r.counts.ignored, r.deleted, r.seconds, instant_or_none(r.cursor_before),
          instant_or_none(r.cursor_after));
  int ignored = 0;
  for (const auto& r : report.ingested) ignored += r.counts.ignored;
  if (ignored > 0) fmt::print("ignored {} not read by any feature\n", ignored);
  fmt::print("scored {} patients with {} {} in {:.3f} s (features {:.3f} s, model {:.3f} s)",
             report.scored.scored, manifest.name, manifest.version, report.score_seconds,
             report.score_timing.features_seconds, report.score_timing.model_seconds);
  if (report.scored.waiting > 0)
    fmt::print(" ({} waiting for their Patient resource)", report.scored.waiting);
  fmt::print("\n{}: {} created, {} updated, {} failed in {:.2f} s\n",
             report.sink == "observation" ? "Score Observations" : "RiskAssessments",
             report.written.created, report.written.updated, report.written.failed,
             report.write_seconds);
  if (!report.written.refused.empty())
    fmt::print("write-back refused by the server: {}; the scores stay pending\n",
               report.written.refused);
  if (report.scored.alerts > 0 ||
      report.alerted.created + report.alerted.updated + report.alerted.failed > 0)
    fmt::print("alerts: {} raised, {} sent, {} failed\n", report.scored.alerts,
               report.alerted.created + report.alerted.updated, report.alerted.failed);
}

// A progress line on a terminal, rewritten in place at most twice a second. Passed by
// std::ref: the sources copy their callback, and finish() must see what was shown.
class ProgressLine {
 public:
  void operator()(const std::string& f, const std::string& type, long lines, double seconds) {
    if (!tty_ || seconds - shown_ < 0.5) return;
    shown_ = seconds;
    fmt::print(stderr, "\r{} ({}): {} resources, {:.0f}/s   ", f, type, lines,
               static_cast<double>(lines) / std::max(seconds, 1e-9));
    std::fflush(stderr);
  }
  // So that what is printed next starts on a line of its own.
  void finish() const {
    if (tty_ && shown_ >= 0) fmt::print(stderr, "\n");
  }

 private:
  bool tty_ = ::isatty(STDERR_FILENO) != 0;
  double shown_ = -1;
};

// Fills `reports` from a Bulk Data export; kExitOk, or the exit code after an error line.
int pull_export(const config::Config& cfg, const std::string& kickoff,
                const std::vector<store::Ingest*>& writers, const mapping::Pseudonymizer& ps,
                std::size_t batch, ProgressLine& progress,
                std::vector<source::PullReport>& reports) {
  auto opts = client_options(cfg);
  if (!opts) return kExitConfig;
  fhir::Client client(*opts);
  source::BulkExport bulk(client, kickoff, writers, ps, cfg.features.catalog, batch,
                          std::ref(progress));
  try {
    reports = bulk.pull(nullptr);
  } catch (const fhir::FhirError& e) {
    error_line(fmt::format("FHIR server {}: {}", opts->base_url, e.what()));
    return kExitUnavailable;
  }
  const auto& exported = *bulk.exported();
  fmt::print("bulk export {}: {} files after {} status polls, as of {}\n", kickoff,
             exported.files.size(), exported.polls,
             fhir::format_instant(exported.transaction_time));
  return kExitOk;
}

struct BackfillTotals {
  long resources = 0;
  double seconds = 0;
};

// A line per file (or per skipped one); returns what the stored files add up to.
BackfillTotals print_pull_reports(const std::vector<source::PullReport>& reports) {
  BackfillTotals totals;
  for (const auto& r : reports) {
    if (r.skipped) {
      fmt::print("{:<28} {:<12} skipped: the adapter does not use this resource type\n", r.origin,
                 r.resource_type);
      continue;
    }
    fmt::print(
        "{:<28} {:<12} lines {:>8}  stored {:>8}  unchanged {:>8}  dead-lettered {:>5}  ignored "
        "{:>6}  in "
        "{:.2f} s "
        "({:.0f}/s)\n",
        r.origin, r.resource_type, r.fetched, r.counts.stored, r.counts.unchanged,
        r.counts.dead_lettered, r.counts.ignored, r.seconds,
        static_cast<double>(r.fetched) / std::max(r.seconds, 1e-9));
    totals.resources += r.fetched;
    totals.seconds += r.seconds;
  }
  return totals;
}

std::vector<std::string> comma_separated(const std::string& list) {
  std::vector<std::string> items;
  for (std::size_t at = 0; at <= list.size();) {
    auto comma = std::min(list.find(',', at), list.size());
    if (comma > at) items.push_back(list.substr(at, comma - at));
    at = comma + 1;
  }
  return items;
}

// The options of export-training from its command line; nullopt after an error line.
std::optional<sync::TrainingOptions> training_options(const std::string& index_classes,
                                                      const std::string& horizon) {
  sync::TrainingOptions opts;
  auto h = mapping::parse_window(horizon);
  if (!h) {
    error_line("--horizon: " + h.error().message);
    return std::nullopt;
  }
  opts.horizon = *h;
  opts.index_classes = comma_separated(index_classes);
  if (opts.index_classes.empty()) {
    error_line("--index-classes: give at least one Encounter class, e.g. IMP");
    return std::nullopt;
  }
  return opts;
}

// Only a complete file takes the name asked for; nullopt after an error line.
std::optional<sync::TrainingReport> write_training_csv(store::Store& db,
                                                       const mapping::FeatureComputer& features,
                                                       const sync::TrainingOptions& opts,
                                                       const std::string& output) {
  std::ofstream out(output + ".partial", std::ios::binary);
  auto rep = sync::export_training(db, features, opts, out);
  out.close();
  if (!out || std::rename((output + ".partial").c_str(), output.c_str()) != 0) {
    error_line(fmt::format("{}: cannot write", output));
    return std::nullopt;
  }
  return rep;
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

  auto model = bound_model(*cfg);
  if (!model) return kExitConfig;
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
    if (!resolve_server_choices(*cfg, model->manifest, client, sopts)) return kExitConfig;
    db.session.set_actor("fhir-risk-adapter sync");
    db.audit.append("model-load", model->manifest.name,
                    fmt::format(R"({{"version": "{}", "sha256": "{}"}})", model->manifest.version,
                                model->manifest.model_sha256));
    sync::Pipeline pipeline(client, db, ps, *model, cfg->features.definitions,
                            cfg->features.catalog, sopts);
    auto report = pipeline.run_once();
    print_sync_report(report, model->manifest);
    if (!report.written.refused.empty()) return kExitNoPerm;
    return report.written.failed + report.alerted.failed > 0 ? kExitTempFail : kExitOk;
  } catch (const std::exception&) {
    return environment_failure(opts->base_url);
  }
}

int backfill(const std::string& file, const std::string& ndjson_dir,
             const std::string& export_kickoff, int batch, int writers) {
  auto cfg = load_config(file);
  if (!cfg) return kExitConfig;
  auto pseudonyms = pseudonymizer(*cfg);
  if (!pseudonyms) return kExitConfig;
  const mapping::Pseudonymizer& ps = *pseudonyms;
  try {
    store::Store db(cfg->database.url);
    if (!schema_current(db, file) || !pseudonym_key_matches(db, ps)) return kExitConfig;
    db.session.set_actor("fhir-risk-adapter backfill");
    // The other writers, each on a connection of its own.
    std::vector<std::unique_ptr<store::Store>> more;
    std::vector<store::Ingest*> ingest{&db.ingest};
    for (int w = 1; w < writers; ++w) {
      more.push_back(std::make_unique<store::Store>(cfg->database.url));
      more.back()->session.set_actor("fhir-risk-adapter backfill");
      ingest.push_back(&more.back()->ingest);
    }
    ProgressLine progress;
    const auto batch_lines = static_cast<std::size_t>(batch);
    std::vector<source::PullReport> reports;
    if (export_kickoff.empty()) {
      reports = source::NdjsonFiles(ndjson_dir, ingest, ps, cfg->features.catalog, batch_lines,
                                    std::ref(progress))
                    .pull(nullptr);
    } else if (int code =
                   pull_export(*cfg, export_kickoff, ingest, ps, batch_lines, progress, reports);
               code != kExitOk) {
      return code;
    }
    progress.finish();
    const auto totals = print_pull_reports(reports);
    db.audit.append(
        "backfill", export_kickoff.empty() ? "ndjson files" : "bulk data export",
        fmt::format(R"({{"files": {}, "lines": {}}})", reports.size(), totals.resources));
    fmt::print(
        "backfilled {} resources from {} files in {:.2f} s; {} patients queued for scoring (the "
        "next sync "
        "scores them)\n",
        totals.resources, reports.size(), totals.seconds, db.scores.queue_depth());
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
  auto opts = training_options(index_classes, horizon);
  if (!opts) return kExitUsage;
  if (cfg->features.definitions.empty()) {
    error_line(
        fmt::format("{}: no features are defined ([[feature]] tables or features.file)", file));
    return kExitConfig;
  }
  mapping::FeatureComputer features(cfg->features.definitions, cfg->features.catalog);
  try {
    store::Store db(cfg->database.url);
    if (!schema_current(db, file)) return kExitConfig;
    auto rep = write_training_csv(db, features, *opts, output);
    if (!rep) return kExitDataErr;
    db.session.set_actor("fhir-risk-adapter export-training");
    db.audit.append(
        "export-training", "training CSV",
        fmt::format(R"({{"index_events": {}, "patients": {}, "horizon": "{}", "censored": {}}})",
                    rep->rows, rep->patients, horizon, rep->censored));
    fmt::print(
        "exported {} index events ({} readmitted within {}) of {} patients to {}; {} discharges "
        "too recent "
        "for their label were left out\n",
        rep->rows, rep->positives, horizon, rep->patients, output, rep->censored);
  } catch (const store::StoreError&) {
    return environment_failure();
  }
  return kExitOk;
}

}  // namespace fra::app
