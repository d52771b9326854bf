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

}  // namespace fra::app
