// fhir-risk-adapter: keeps a PostgreSQL feature store in step with a FHIR R4 server, scores
// patients with a tree-ensemble model and writes RiskAssessments back.

#include <CLI/CLI.hpp>
#include <iostream>

#include "adapter/app/commands.hpp"

int main(int argc, char** argv) {
  using namespace fra::app;
  CLI::App app{"fhir-risk-adapter: FHIR R4 -> feature store -> risk model -> RiskAssessment"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "fhir-risk-adapter 0.1.0");

  std::string config;
  auto* migrate_cmd =
      app.add_subcommand("migrate", "Apply the database migrations not yet applied");
  migrate_cmd->add_option("-c,--config", config, "Configuration file (TOML)")->required();

  bool once = false;
  auto* sync_cmd =
      app.add_subcommand("sync", "Fetch changes from the FHIR server, score, write back");
  sync_cmd->add_option("-c,--config", config, "Configuration file (TOML)")->required();
  sync_cmd->add_flag("--once", once, "Run one pass and exit (the continuous daemon is `run`)")
      ->required();

  auto* run_cmd = app.add_subcommand("run",
                                     "Run continuously: sync, score and write back; /healthz, "
                                     "/readyz, /metrics; SIGTERM drains, SIGHUP "
                                     "reloads the model");
  run_cmd->add_option("-c,--config", config, "Configuration file (TOML)")->required();

  std::string ndjson_dir;
  int backfill_batch = 10000;
  auto* backfill_cmd =
      app.add_subcommand("backfill", "Load FHIR Bulk Data ndjson files into the store");
  backfill_cmd->add_option("-c,--config", config, "Configuration file (TOML)")->required();
  std::string export_kickoff;
  auto* ndjson_opt = backfill_cmd
                         ->add_option("--ndjson", ndjson_dir,
                                      "Folder of *.ndjson files, one resource type per file")
                         ->check(CLI::ExistingDirectory);
  auto* export_opt = backfill_cmd
                         ->add_option("--export", export_kickoff,
                                      "Run a Bulk Data export and load what it returns: "
                                      "Patient/$export, $export or Group/ID/$export")
                         ->expected(0, 1)
                         ->default_str("Patient/$export");
  ndjson_opt->excludes(export_opt);
  backfill_cmd->add_option("--batch", backfill_batch, "Resources per transaction")
      ->check(CLI::Range(1, 1000000));

  std::string training_out, index_classes = "IMP,ACUTE,NONAC", horizon = "P30D";
  auto* export_cmd = app.add_subcommand(
      "export-training",
      "Write features as of each discharge and the readmission label, for training (CSV)");
  export_cmd->add_option("-c,--config", config, "Configuration file (TOML)")->required();
  export_cmd->add_option("--out", training_out, "Output CSV")->required();
  export_cmd
      ->add_option("--index-classes", index_classes,
                   "Encounter classes whose discharges are index events")
      ->capture_default_str();
  export_cmd->add_option("--horizon", horizon, "Readmission window after a discharge (ISO 8601)")
      ->capture_default_str();

  std::string model, input, output;
  auto* csv_cmd =
      app.add_subcommand("score-csv", "Score a CSV whose header names the model's features");
  csv_cmd->add_option("--model", model, "Model package directory or XGBoost JSON model file")
      ->required();
  csv_cmd->add_option("--input", input, "Input CSV (empty cell = missing)")->required();
  csv_cmd->add_option("--output", output, "Output CSV, one probability per row")->required();
  ScoreCsvFlags csv_flags;
  csv_cmd->add_flag("--margin", csv_flags.margin,
                    "Add the raw margin (before the objective's transform)");
  csv_cmd->add_flag(
      "--contributions", csv_flags.contributions,
      "Add exact TreeSHAP contributions per feature and the bias, as XGBoost's pred_contribs");
  csv_cmd->add_option("--threads", csv_flags.threads, "Threads to score with")
      ->check(CLI::Range(1, 256));
  csv_cmd->add_flag(
      "--row-by-row", csv_flags.row_by_row,
      "Predictions and margins through the single-row path (as `audit rescore`), not in batches");

  auto* config_cmd =
      app.add_subcommand("config", "Check or print a configuration, or the reference of its keys");
  config_cmd->require_subcommand(1);
  std::string check_file;
  auto* check_cmd =
      config_cmd->add_subcommand("check", "Check a configuration file without starting");
  check_cmd->add_option("file", check_file, "Configuration file (TOML)")->required();
  auto* example_cmd =
      config_cmd->add_subcommand("example", "Print a complete, commented configuration");
  auto* reference_cmd = config_cmd->add_subcommand(
      "reference", "Print the Markdown table of every key, as docs/configuration.md holds it");

  auto* model_cmd = app.add_subcommand("model", "Look at a model package");
  model_cmd->require_subcommand(1);
  std::string model_path;
  auto* inspect_cmd = model_cmd->add_subcommand(
      "inspect", "Print a model's manifest, trees, depths and features used");
  inspect_cmd
      ->add_option("path", model_path,
                   "Model package directory, or an XGBoost JSON/UBJSON model file")
      ->required();

  auto* purge_cmd = app.add_subcommand("purge",
                                       "Remove raw inputs older than retention.raw_inputs_days, "
                                       "keeping scores and their feature vectors");
  purge_cmd->add_option("-c,--config", config, "Configuration file (TOML)")->required();

  std::string new_key_file;
  auto* rekey_cmd = app.add_subcommand(
      "rekey",
      "Move every pseudonym to a new pseudonym key, in one transaction (stop the adapter first)");
  rekey_cmd
      ->add_option("-c,--config", config,
                   "Configuration file (its pseudonym.key_file is the current key)")
      ->required();
  rekey_cmd
      ->add_option("--new-key-file", new_key_file,
                   "File holding the new key (>= 32 bytes, mode 0600)")
      ->required();

  auto* audit_cmd = app.add_subcommand("audit", "Check the audit log and the stored scores");
  audit_cmd->require_subcommand(1);
  std::string audit_config;
  auto* verify_cmd = audit_cmd->add_subcommand(
      "verify", "Walk the audit log's hash chain; exit 65 naming the first row that does not hold");
  verify_cmd->add_option(
      "-c,--config", audit_config,
      "Configuration file (checked whole; database.url is used); without it FRA_DATABASE_URL or "
      "libpq's PG* variables");

  std::string rescore_config;
  int rescore_sample = 0;
  auto* rescore_cmd =
      audit_cmd->add_subcommand("rescore",
                                "Recompute stored scores from their feature vectors with the model "
                                "at model.path and report any "
                                "difference, or scores made by a model with another sha256");
  rescore_cmd
      ->add_option("-c,--config", rescore_config, "Configuration file (database.url, model.path)")
      ->required();
  auto* sample_opt =
      rescore_cmd->add_option("--sample", rescore_sample, "Rescore a random sample of N scores")
          ->check(CLI::Range(1, 100000000));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }

  try {
    if (*migrate_cmd) return migrate(config);
    if (*sync_cmd) return sync_once(config);
    if (*run_cmd) return run_daemon(config);
    if (*backfill_cmd) {
      if (!*ndjson_opt && !*export_opt) {
        std::cerr << "fhir-risk-adapter: error: backfill needs --ndjson DIR or --export\n";
        return kExitUsage;
      }
      if (*export_opt && export_kickoff.empty()) export_kickoff = "Patient/$export";
      return backfill(config, ndjson_dir, *export_opt ? export_kickoff : "", backfill_batch);
    }
    if (*export_cmd) return export_training(config, training_out, index_classes, horizon);
    if (*csv_cmd) return score_csv(model, input, output, csv_flags);
    if (*check_cmd) return config_check(check_file);
    if (*example_cmd) return config_example();
    if (*reference_cmd) return config_reference();
    if (*inspect_cmd) return model_inspect(model_path);
    if (*verify_cmd) return audit_verify(audit_config);
    if (*purge_cmd) return purge(config);
    if (*rekey_cmd) return rekey(config, new_key_file);
    if (*rescore_cmd)
      return audit_rescore(rescore_config,
                           *sample_opt ? std::optional<int>(rescore_sample) : std::nullopt);
  } catch (const std::exception& e) {
    std::cerr << "fhir-risk-adapter: internal error: " << e.what() << "\n";
    return kExitSoftware;
  }
  return kExitUsage;
}
