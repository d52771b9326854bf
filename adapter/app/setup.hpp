#pragma once
// What every subcommand does first: read the configuration, the keys and the FHIR client's
// options, printing each problem as one line. Shared by commands.cpp and run.cpp.

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "adapter/config/config.hpp"
#include "adapter/score/manifest.hpp"
#include "adapter/store/store.hpp"
#include "adapter/sync/pipeline.hpp"
#include "fhir/client.hpp"
#include "fhir/result.hpp"
#include "mapping/pseudonym.hpp"

namespace fra::app {

/// The environment variable `name`, or nullptr (config::load's reader of the environment).
const char* getenv_wrapper(const char* name);
/// The whole file at `path`, nullopt when it cannot be read.
std::optional<std::string> read_text(const std::string& path);
/// "fhir-risk-adapter: error: <msg>" on stderr.
void error_line(const std::string& msg);
/// Inside a catch block: prints the exception in hand as one error line and returns its exit
/// code (report_failure: 69 for the store, the FHIR server at `fhir_base_url` or SMART
/// authentication, 70 "internal error" for anything else).
int environment_failure(const std::string& fhir_base_url = "");
/// Loads the configuration, printing every problem like a compiler, and sets up logging
/// (log.level, log.format). nullopt: exit 78.
std::optional<config::Config> load_config(const std::string& file);
/// The bytes of the secret file at `path` that the configuration names under `key` (see
/// config::read_secret_file); nullopt after an error line naming the key and the problem.
std::optional<std::string> secret_file(std::string_view key, const std::string& path,
                                       std::size_t min_bytes);
/// The FHIR client's options from the configuration: timeouts, retries, TLS and authentication
/// (a static bearer token from a file or the environment, or SMART Backend Services).
/// nullopt: a problem was printed.
std::optional<fhir::ClientOptions> client_options(const config::Config& cfg);
/// The model package at model.path, checked as score::load_model_package checks it; nullopt
/// after an error line naming model.path.
std::optional<score::ModelPackage> model_package(const config::Config& cfg);
/// The pipeline's options from the configuration (pages, batches, overlap, deletions, write-back).
sync::Options sync_options(const config::Config& cfg);
/// The choices the configuration leaves to the server (sync.strategy auto, how the write-back
/// target is written), read from its CapabilityStatement, and the cohort and target settings,
/// into `o`. False after printing why not (a per-patient sync without a cohort, a malformed
/// writeback.observation_code): exit 78.
bool resolve_server_choices(const config::Config& cfg, const score::Manifest& manifest,
                            fhir::Client& client, sync::Options& o);
/// The keys of pseudonym.key_file (or `key_file` instead) and pseudonym.seal_key_file as a
/// Pseudonymizer; nullptr after printing why not (a file missing, short, readable by others, or
/// the same key twice).
std::unique_ptr<mapping::Pseudonymizer> pseudonymizer(const config::Config& cfg,
                                                      const std::string* key_file = nullptr);
/// True when the database is at this binary's schema version; otherwise prints what to run.
bool schema_current(store::Store& db, const std::string& config_file);
/// True when the database's pseudonyms were made with this key (recorded on first use);
/// otherwise prints why the process must not go on.
bool pseudonym_key_matches(store::Store& db, const mapping::Pseudonymizer& ps);
/// The purge cutoff of retention.raw_inputs_days as of `now`, nullopt when retention is off.
/// Fails naming the feature whose window reaches further back than the retention.
Result<std::optional<fhir::Micros>> retention_cutoff(const config::Config& cfg, fhir::Micros now);

}  // namespace fra::app
