// fhir-risk-adapter: keeps a PostgreSQL feature store in step with a FHIR R4 server, scores
// patients with a tree-ensemble model and writes RiskAssessments back.

#include <CLI/CLI.hpp>
#include <functional>
#include <iostream>
#include <utility>
#include <vector>

#include "adapter/app/commands.hpp"
#include "adapter/store/ingest.hpp"

namespace {

using namespace fra::app;

// Where the parsed options land; each add_* function binds its own.
struct Options {
  std::string config;
  bool once = false;
  std::string ndjson_dir, export_kickoff;
  int backfill_batch = 10000;
  int backfill_writers = 2;
  std::string training_out, index_classes = "IMP,ACUTE,NONAC", horizon = "P30D";
  std::string model, input, output;
  ScoreCsvFlags csv_flags;
  std::string check_file, model_path, new_key_file, audit_config, rescore_config;
  int rescore_sample = 0;
  std::string monitor_config, monitor_out, monitor_since, monitor_format = "html";
};

// Each (sub)command given on the command line and what it runs; exactly one is chosen.
using Commands = std::vector<std::pair<const CLI::App*, std::function<int()>>>;

CLI::Option* add_config_option(CLI::App* cmd, std::string& config) {
  return cmd->add_option("-c,--config", config, "Configuration file (TOML)")->required();
}

void add_sync_commands(CLI::App& app, Options& o, Commands& commands) {
  auto* migrate_cmd =
      app.add_subcommand("migrate", "Apply the database migrations not yet applied");
  add_config_option(migrate_cmd, o.config);
  commands.emplace_back(migrate_cmd, [&o] { return migrate(o.config); });

  auto* sync_cmd =
      app.add_subcommand("sync", "Fetch changes from the FHIR server, score, write back");
  add_config_option(sync_cmd, o.config);
  sync_cmd->add_flag("--once", o.once, "Run one pass and exit (the continuous daemon is `run`)")
      ->required();
  commands.emplace_back(sync_cmd, [&o] { return sync_once(o.config); });

  auto* run_cmd = app.add_subcommand("run",
                                     "Run continuously: sync, score and write back; /healthz, "
                                     "/readyz, /metrics; SIGTERM drains, SIGHUP "
                                     "reloads the model");
  add_config_option(run_cmd, o.config);
  commands.emplace_back(run_cmd, [&o] { return run_daemon(o.config); });
}

void add_backfill_command(CLI::App& app, Options& o, Commands& commands) {
  auto* backfill_cmd =
      app.add_subcommand("backfill", "Load FHIR Bulk Data ndjson files into the store");
  add_config_option(backfill_cmd, o.config);
  auto* ndjson_opt = backfill_cmd
                         ->add_option("--ndjson", o.ndjson_dir,
                                      "Folder of *.ndjson files, one resource type per file")
                         ->check(CLI::ExistingDirectory);
  auto* export_opt = backfill_cmd
                         ->add_option("--export", o.export_kickoff,
                                      "Run a Bulk Data export and load what it returns: "
                                      "Patient/$export, $export or Group/ID/$export")
                         ->expected(0, 1)
                         ->default_str("Patient/$export");
  ndjson_opt->excludes(export_opt);
  backfill_cmd
      ->add_option("--batch", o.backfill_batch,
                   "Lines read into one batch, split among the writers (each part one transaction)")
      ->check(CLI::Range(1, 1000000));
  backfill_cmd
      ->add_option("--writers", o.backfill_writers,
                   "Database connections storing batches side by side, each its own resources")
      ->check(CLI::Range(1, fra::store::kLockStripes));
  commands.emplace_back(backfill_cmd, [&o, ndjson_opt, export_opt] {
    if (!*ndjson_opt && !*export_opt) {
      std::cerr << "fhir-risk-adapter: error: backfill needs --ndjson DIR or --export\n";
      return kExitUsage;
    }
    if (*export_opt && o.export_kickoff.empty()) o.export_kickoff = "Patient/$export";
    return backfill(o.config, o.ndjson_dir, *export_opt ? o.export_kickoff : "", o.backfill_batch,
                    o.backfill_writers);
  });
}

void add_export_training_command(CLI::App& app, Options& o, Commands& commands) {
  auto* export_cmd = app.add_subcommand(
      "export-training",
      "Write features as of each discharge and the readmission label, for training (CSV)");
  add_config_option(export_cmd, o.config);
  export_cmd->add_option("--out", o.training_out, "Output CSV")->required();
  export_cmd
      ->add_option("--index-classes", o.index_classes,
                   "Encounter classes whose discharges are index events")
      ->capture_default_str();
  export_cmd->add_option("--horizon", o.horizon, "Readmission window after a discharge (ISO 8601)")
      ->capture_default_str();
  commands.emplace_back(export_cmd, [&o] {
    return export_training(o.config, o.training_out, o.index_classes, o.horizon);
  });
}

void add_score_csv_command(CLI::App& app, Options& o, Commands& commands) {
  auto* csv_cmd =
      app.add_subcommand("score-csv", "Score a CSV whose header names the model's features");
  csv_cmd->add_option("--model", o.model, "Model package directory or XGBoost JSON model file")
      ->required();
  csv_cmd->add_option("--input", o.input, "Input CSV (empty cell = missing)")->required();
  csv_cmd->add_option("--output", o.output, "Output CSV, one probability per row")->required();
  csv_cmd->add_flag("--margin", o.csv_flags.margin,
                    "Add the raw margin (before the objective's transform)");
  csv_cmd->add_flag(
      "--contributions", o.csv_flags.contributions,
      "Add exact TreeSHAP contributions per feature and the bias, as XGBoost's pred_contribs");
  csv_cmd->add_option("--threads", o.csv_flags.threads, "Threads to score with")
      ->check(CLI::Range(1, 256));
  csv_cmd->add_flag(
      "--row-by-row", o.csv_flags.row_by_row,
      "Predictions and margins through the single-row path (as `audit rescore`), not in batches");
  commands.emplace_back(csv_cmd,
                        [&o] { return score_csv(o.model, o.input, o.output, o.csv_flags); });
}

void add_config_commands(CLI::App& app, Options& o, Commands& commands) {
  auto* config_cmd =
      app.add_subcommand("config", "Check or print a configuration, or the reference of its keys");
  config_cmd->require_subcommand(1);
  auto* check_cmd =
      config_cmd->add_subcommand("check", "Check a configuration file without starting");
  check_cmd->add_option("file", o.check_file, "Configuration file (TOML)")->required();
  auto* example_cmd =
      config_cmd->add_subcommand("example", "Print a complete, commented configuration");
  auto* reference_cmd = config_cmd->add_subcommand(
      "reference", "Print the Markdown table of every key, as docs/configuration.md holds it");
  commands.emplace_back(check_cmd, [&o] { return config_check(o.check_file); });
  commands.emplace_back(example_cmd, [] { return config_example(); });
  commands.emplace_back(reference_cmd, [] { return config_reference(); });
}

void add_model_commands(CLI::App& app, Options& o, Commands& commands) {
  auto* model_cmd = app.add_subcommand("model", "Look at a model package");
  model_cmd->require_subcommand(1);
  auto* inspect_cmd = model_cmd->add_subcommand(
      "inspect", "Print a model's manifest, trees, depths and features used");
  inspect_cmd
      ->add_option("path", o.model_path,
                   "Model package directory, or an XGBoost JSON/UBJSON model file")
      ->required();
  commands.emplace_back(inspect_cmd, [&o] { return model_inspect(o.model_path); });
}

void add_store_commands(CLI::App& app, Options& o, Commands& commands) {
  auto* purge_cmd = app.add_subcommand("purge",
                                       "Remove raw inputs older than retention.raw_inputs_days, "
                                       "keeping scores and their feature vectors");
  add_config_option(purge_cmd, o.config);
  commands.emplace_back(purge_cmd, [&o] { return purge(o.config); });

  auto* rekey_cmd = app.add_subcommand(
      "rekey",
      "Move every pseudonym to a new pseudonym key, in one transaction (stop the adapter first)");
  rekey_cmd
      ->add_option("-c,--config", o.config,
                   "Configuration file (its pseudonym.key_file is the current key)")
      ->required();
  rekey_cmd
      ->add_option("--new-key-file", o.new_key_file,
                   "File holding the new key (>= 32 bytes, mode 0600)")
      ->required();
  commands.emplace_back(rekey_cmd, [&o] { return rekey(o.config, o.new_key_file); });
}

void add_audit_commands(CLI::App& app, Options& o, Commands& commands) {
  auto* audit_cmd = app.add_subcommand("audit", "Check the audit log and the stored scores");
  audit_cmd->require_subcommand(1);
  auto* verify_cmd = audit_cmd->add_subcommand(
      "verify", "Walk the audit log's hash chain; exit 65 naming the first row that does not hold");
  verify_cmd->add_option(
      "-c,--config", o.audit_config,
      "Configuration file (checked whole; database.url is used); without it FRA_DATABASE_URL or "
      "libpq's PG* variables");
  commands.emplace_back(verify_cmd, [&o] { return audit_verify(o.audit_config); });

  auto* rescore_cmd =
      audit_cmd->add_subcommand("rescore",
                                "Recompute stored scores from their feature vectors with the model "
                                "at model.path and report any "
                                "difference, or scores made by a model with another sha256");
  rescore_cmd
      ->add_option("-c,--config", o.rescore_config, "Configuration file (database.url, model.path)")
      ->required();
  auto* sample_opt =
      rescore_cmd->add_option("--sample", o.rescore_sample, "Rescore a random sample of N scores")
          ->check(CLI::Range(1, 100000000));
  commands.emplace_back(rescore_cmd, [&o, sample_opt] {
    return audit_rescore(o.rescore_config,
                         *sample_opt ? std::optional<int>(o.rescore_sample) : std::nullopt);
  });
}

void add_monitor_commands(CLI::App& app, Options& o, Commands& commands) {
  auto* monitor_cmd = app.add_subcommand("monitor", "How the model does in production");
  monitor_cmd->require_subcommand(1);
  auto* report_cmd = monitor_cmd->add_subcommand(
      "report",
      "Write the monitoring report: scores and alerts by week, each feature's drift from the "
      "training reference (PSI), discrimination and calibration against the outcomes that "
      "followed, the model card");
  add_config_option(report_cmd, o.monitor_config);
  report_cmd->add_option("--out", o.monitor_out, "The file to write")->required();
  report_cmd->add_option("--since", o.monitor_since,
                         "First day covered, YYYY-MM-DD (default: 91 days back)");
  report_cmd->add_option("--format", o.monitor_format, "html (one self-contained page) or json")
      ->check(CLI::IsMember({"html", "json"}));
  commands.emplace_back(report_cmd, [&o] {
    return monitor_report(o.monitor_config, o.monitor_out, o.monitor_since, o.monitor_format);
  });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fhir-risk-adapter: FHIR R4 -> feature store -> risk model -> RiskAssessment"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "fhir-risk-adapter 0.1.0");

  // Added in the order `--help` lists them.
  Options o;
  Commands commands;
  add_sync_commands(app, o, commands);
  add_backfill_command(app, o, commands);
  add_export_training_command(app, o, commands);
  add_score_csv_command(app, o, commands);
  add_config_commands(app, o, commands);
  add_model_commands(app, o, commands);
  add_store_commands(app, o, commands);
  add_audit_commands(app, o, commands);
  add_monitor_commands(app, o, commands);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }

  try {
    for (const auto& [cmd, run] : commands)
      if (*cmd) return run();
  } catch (const std::exception& e) {
    std::cerr << "fhir-risk-adapter: internal error: " << e.what() << "\n";
    return kExitSoftware;
  }
  return kExitUsage;
}
