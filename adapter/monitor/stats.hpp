#pragma once
// The statistics of model monitoring, pure: discrimination (AUC), accuracy (Brier score),
// calibration (logistic recalibration slope and intercept, observed against predicted by
// decile) and drift (population stability index). Checked against scikit-learn in the tests.

#include <optional>
#include <utility>
#include <vector>

#include "adapter/monitor/report.hpp"

namespace fra::monitor {

/// Area under the ROC curve of predictions `p` for outcomes `y` (0/1), ties counted half;
/// nullopt unless both outcomes occur.
std::optional<double> auc(const std::vector<double>& p, const std::vector<int>& y);
/// Mean squared difference of prediction and outcome; nullopt when empty.
std::optional<double> brier(const std::vector<double>& p, const std::vector<int>& y);
/// Slope and intercept of the logistic regression of `y` on the log-odds of `p` (maximum
/// likelihood, Newton's method): 1 and 0 for a calibrated model. nullopt unless both outcomes
/// occur and the fit converges.
std::optional<std::pair<double, double>> calibration(const std::vector<double>& p,
                                                     const std::vector<int>& y);
/// Ten groups of (nearly) equal size by increasing prediction, each with its mean prediction,
/// the share with the outcome and its 95% Wilson interval; fewer when there are fewer rows.
std::vector<Decile> deciles(const std::vector<double>& p, const std::vector<int>& y);
/// The 95% Wilson score interval of `k` events in `n`.
std::pair<double, double> wilson(long k, long n);

/// The share of `values` in each bin of `edges` ([-inf, e0), [e0, e1), ..., [e_last, inf)),
/// then the share missing (NaN), over all values.
std::vector<double> shares(const std::vector<double>& values, const std::vector<double>& edges);
/// Population stability index of `current` against `reference` (shares of the same bins):
/// sum of (c - r) ln(c / r), each share at least 1e-4 so an empty bin counts without dividing
/// by zero.
double psi(const std::vector<double>& reference, const std::vector<double>& current);

}  // namespace fra::monitor
