#pragma once
// A model package: the XGBoost model file and the manifest that says what it predicts, which
// features it takes in which order, and how probabilities map to risk bands.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "adapter/score/model.hpp"

namespace fra::score {

struct ManifestFeature {
  std::string name;
  std::string unit;
  std::string description;
  int monotone = 0;  ///< +1: the model may only raise the risk with it, -1: only lower it
};

/// A training distribution: the share of rows in each bin ([-inf, edges[0]), [edges[0],
/// edges[1]), ..., [edges.back(), inf)) and the share missing; they sum to 1.
struct Distribution {
  std::vector<double> edges;
  std::vector<double> shares;
  double missing = 0;
};

/// The training distributions of the features (by name) and of the score (`"reference"`).
struct Reference {
  long rows = 0;
  std::map<std::string, Distribution> features;
  Distribution score;
};

/// What the package says of its validation on held-out data (`"validation"`), when it does.
struct Validation {
  double auc = 0;
  double calibration_slope = 0;
  double calibration_intercept = 0;
  long discharges = 0;  ///< held-out rows
};

/// A risk band: scores below `below` (and at or above the previous band's) fall in it.
struct Band {
  std::string code;  ///< http://terminology.hl7.org/CodeSystem/risk-probability code
  std::string display;
  double below = 1.0;
};

struct Manifest {
  std::string name;
  std::string version;
  std::string description;
  std::string outcome_system;
  std::string outcome_code;
  std::string outcome_display;
  std::string model_file;
  std::string model_sha256;
  std::vector<ManifestFeature> features;
  std::vector<Band> bands;
  /// `"output": "points"`: the score is the model's margin, the points of a validated index
  /// (LACE), not a probability; bands are in points.
  bool points = false;
  std::optional<Validation> validation;
  std::optional<Reference> reference;

  /// The band of a probability (the last band when it is at or above every bound).
  const Band& band_for(double probability) const;
  /// Feature names in model order.
  std::vector<std::string> feature_names() const;
};

struct ModelPackage {
  Manifest manifest;
  Model model;
  std::string directory;
};

/// Loads `dir`/manifest.json and the model it names, and checks them against each other: the
/// model file's sha256, the feature count, a probability-producing objective, bands ascending.
/// Throws ModelError naming the field at fault.
ModelPackage load_model_package(const std::string& dir);

/// The sha256 of a file as hex. Throws ModelError when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace fra::score
