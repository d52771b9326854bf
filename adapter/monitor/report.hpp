#pragma once
// The model's monitoring report: what the store says of the model in production, week by week,
// against the training reference its manifest carries (docs/operations.md#monitoring).
// Computed from the store alone by monitor::compute (monitor.hpp); written as JSON or as one
// self-contained HTML page (report_html.hpp).

#include <optional>
#include <string>
#include <vector>

namespace fra::monitor {

/// Scores of one week (Monday 00:00 UTC) by band, and the alerts raised.
struct Week {
  std::string start;                                ///< "2026-11-30"
  std::vector<std::pair<std::string, long>> bands;  ///< band code -> scores, in band order
  long scores = 0;
  long alerts = 0;
  double alert_rate = 0;      ///< alerts / patients scored that week
  std::optional<double> auc;  ///< of that week's scores whose outcome is known, when both occur
};

/// One feature against its training reference.
struct FeatureDrift {
  std::string name;
  std::string label;
  double psi = 0;            ///< population stability index over the reference's bins + missing
  double missing_ratio = 0;  ///< share of scores without a value
  double reference_missing = 0;
  std::vector<double> edges;             ///< the reference's bin edges (interior cut points)
  std::vector<double> reference_shares;  ///< per bin, then missing
  std::vector<double> current_shares;    ///< per bin, then missing
};

/// Observed against predicted in one decile of predicted risk.
struct Decile {
  double predicted = 0;  ///< mean predicted probability
  double observed = 0;   ///< share with the outcome
  long n = 0;
  double low = 0, high = 0;  ///< 95% Wilson interval of `observed`
};

/// Discrimination and calibration over scores whose outcome window has closed.
struct Performance {
  std::string group;  ///< "all", "sex=female", "age=65-79", ...
  long n = 0;
  long events = 0;
  std::optional<double> auc;
  std::optional<double> brier;
  std::optional<double> calibration_slope;
  std::optional<double> calibration_intercept;
  std::vector<Decile> deciles;  ///< "all" only
};

struct Report {
  std::string generated;  ///< instant
  std::string since;      ///< first day covered
  // The model card.
  std::string model_name, model_version, model_sha256, description, outcome;
  std::string training_population;
  std::vector<std::pair<std::string, std::string>> features;  ///< name, label
  std::optional<double> validation_auc, validation_slope, validation_intercept;
  // What production shows.
  long scores = 0;
  long patients = 0;
  std::vector<Week> weeks;
  std::vector<double> score_edges;             ///< histogram of the latest score per patient
  std::vector<long> score_counts;              ///< per bin of score_edges (one more than edges)
  std::vector<double> reference_score_shares;  ///< the training reference, same bins, if any
  std::vector<FeatureDrift> drift;
  std::vector<Performance> performance;  ///< "all" first, then subgroups
  std::string horizon;                   ///< the outcome: "another inpatient stay within P30D"
};

}  // namespace fra::monitor
