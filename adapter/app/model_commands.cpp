// The commands about models and configuration: score-csv, model inspect, config check,
// example and reference.

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

namespace {

// The objective, size, scoring layout and the trees' depths.
void print_model_shape(const score::Model& model) {
  fmt::print(
      "objective   {}\nclasses     {}\ntrees       {}\nnodes       {} ({:.1f} MB compiled)\n",
      model.objective(), model.num_groups(), model.num_trees(), model.num_nodes(),
      static_cast<double>(model.memory_bytes()) / 1e6);
  std::map<int, std::size_t> depths;
  for (auto d : model.tree_depths()) ++depths[d];
  fmt::print("scoring     {}\n", model.scoring_layout());
  fmt::print("depths     ");
  for (const auto& [d, n] : depths) fmt::print(" {}:{}", d, n);
  fmt::print("  (depth:trees)\n");
}

// Each feature with its unit (when a package's manifest gives one) and the splits that use it.
void print_feature_use(const score::Model& model, const std::vector<std::string>& names,
                       const score::Manifest* manifest) {
  const auto counts = model.split_counts();
  fmt::print("features    {} ({} used by a split)\n", model.num_features(),
             std::count_if(counts.begin(), counts.end(), [](auto c) { return c > 0; }));
  for (std::size_t i = 0; i < names.size(); ++i) {
    std::string unit = manifest != nullptr ? manifest->features[i].unit : "";
    const int mono = manifest != nullptr ? manifest->features[i].monotone : 0;
    fmt::print("  {:>3} {:<28} {:<8} {:>6} splits{}{}\n", i, names[i], unit, counts[i],
               counts[i] == 0 ? "  (unused)" : "",
               mono > 0   ? "  (risk only rises with it)"
               : mono < 0 ? "  (risk only falls with it)"
                          : "");
  }
}

void print_bands(const score::Manifest& m) {
  fmt::print("bands{}\n", m.points ? " (points)" : "");
  double lo = 0;
  for (const auto& b : m.bands) {
    if (m.points)
      fmt::print("  {:<10} [{:g}, {:g})  {}\n", b.code, lo, b.below, b.display);
    else
      fmt::print("  {:<10} [{:.2f}, {:.2f})  {}\n", b.code, lo, std::min(b.below, 1.0), b.display);
    lo = b.below;
  }
  if (m.validation)
    fmt::print(
        "validation  AUC {:g}, calibration slope {:g} and intercept {:g} ({} held-out rows)\n",
        m.validation->auc, m.validation->calibration_slope, m.validation->calibration_intercept,
        m.validation->discharges);
  if (!m.reference) return;
  // The reference distributions the monitoring measures drift against: each bin's share.
  const auto& ref = *m.reference;
  auto shares = [](const score::Distribution& d) {
    std::string out;
    for (double x : d.shares) out += fmt::format("{}{:.0f}", out.empty() ? "" : " ", x * 100);
    return out;
  };
  fmt::print("reference   {} rows; % of rows per bin (missing last)\n", ref.rows);
  fmt::print("  {:<28} {} | -\n", "score", shares(ref.score));
  for (const auto& f : m.features)
    if (auto it = ref.features.find(f.name); it != ref.features.end())
      fmt::print("  {:<28} {} | {:.0f}\n", f.name, shares(it->second), it->second.missing * 100);
}

}  // namespace

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
    print_model_shape(model);
    print_feature_use(model, names, pkg ? &pkg->manifest : nullptr);
    if (pkg) print_bands(pkg->manifest);
  } catch (const score::ModelError& e) {
    error_line(e.what());
    return kExitDataErr;
  }
  return kExitOk;
}

}  // namespace fra::app
