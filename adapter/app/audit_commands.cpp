// The commands a compliance officer and an operator run on the store: audit verify and
// rescore, purge, rekey.

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

#include "adapter/app/commands.hpp"
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

namespace {

// The stored feature vector `json` in the model's order, NaN where a value is missing; false
// when a feature is absent or not a number (the vector is incomplete).
bool read_feature_row(const std::string& json, const std::vector<std::string>& names,
                      std::vector<float>& row) {
  rapidjson::Document doc;
  doc.Parse(json.c_str());
  bool complete = doc.IsObject();
  for (std::size_t i = 0; complete && i < names.size(); ++i) {
    auto it = doc.FindMember(names[i].c_str());
    complete = it != doc.MemberEnd() && (it->value.IsNull() || it->value.IsNumber());
    if (complete)
      row[i] = it->value.IsNull() ? std::nanf("") : static_cast<float>(it->value.GetDouble());
  }
  return complete;
}

struct RescoreTally {
  int rescored = 0, differ = 0;
  std::map<std::string, int> other_models;  // sha256 -> scores not rescored
};

// Recomputes one stored score and prints it if it differs, the first 20 of them.
void rescore_one(const store::StoredScore& s, const score::ModelPackage& model,
                 const std::vector<std::string>& names, std::vector<float>& row,
                 RescoreTally& tally) {
  if (s.model_sha256 != model.manifest.model_sha256) {
    ++tally.other_models[s.model_sha256];
    return;
  }
  const bool complete = read_feature_row(s.features_json, names, row);
  ++tally.rescored;
  const double again = complete ? static_cast<double>(model.model.predict(row.data())) : -1.0;
  if (!complete || again != s.probability) {
    if (++tally.differ <= 20)
      fmt::print("{} {}: stored {:.9g}, {} {:.9g}\n", s.card ? "card of audit event" : "score",
                 s.id, s.probability, complete ? "recomputed" : "its feature vector is incomplete;",
                 again);
  }
}

void print_rescore_summary(std::size_t read, const score::Manifest& m, const RescoreTally& tally) {
  fmt::print("{} scores read, {} rescored with {} {} (sha256 {}): {} differ\n", read,
             tally.rescored, m.name, m.version, m.model_sha256, tally.differ);
  for (const auto& [sha, n] : tally.other_models)
    fmt::print(
        "{} scores were made by the model with sha256 {}, not the one at model.path: not "
        "rescored\n",
        n, sha);
}

}  // namespace

int audit_rescore(const std::string& file, std::optional<int> sample) {
  auto cfg = load_config(file);
  if (!cfg) return kExitConfig;
  auto model = model_package(*cfg);
  if (!model) return kExitConfig;
  const auto names = model->manifest.feature_names();
  try {
    store::Store db(cfg->database.url);
    auto scores = db.audit.stored_scores(sample);
    RescoreTally tally;
    std::vector<float> row(names.size());
    for (const auto& s : scores) rescore_one(s, *model, names, row, tally);
    print_rescore_summary(scores.size(), model->manifest, tally);
    if (tally.differ > 0 || !tally.other_models.empty()) return kExitDataErr;
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
