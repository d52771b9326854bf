#pragma once
// score-csv: scores a CSV of feature rows with a model, for checking the evaluator against
// XGBoost and for offline use.

#include <string>
#include <vector>

#include "adapter/score/model.hpp"

namespace fra::score {

/// Reads CSV text whose header names (at least) `features`; returns rows × features floats,
/// NaN for empty cells. Throws std::runtime_error naming the line and column of a bad cell or
/// the missing column.
std::vector<float> read_feature_csv(const std::string& text,
                                    const std::vector<std::string>& features, std::size_t& rows);

struct CsvOptions {
  bool margin = false;         ///< add the raw margins
  bool contributions = false;  ///< add the TreeSHAP contributions and the bias
  int threads = 1;
  bool row_by_row = false;  ///< predictions and margins one row at a time (the latency path)
};

/// Scores every row and returns the output CSV, values printed so that float32 round-trips.
/// Columns: the predictions (`probability` for logistic objectives, `prediction` for other
/// single-output ones, `prob_0..` for multi:softprob, `class` for multi:softmax); with
/// `margin`, `margin` or `margin_0..`; with `contributions`, `contrib_<feature>` for each
/// feature then `contrib_bias` (multi-class: `contrib_<class>_<feature>`, `contrib_<class>_bias`).
std::string score_csv(const Model& model, const std::vector<std::string>& features,
                      const std::string& text, const CsvOptions& options = {});

}  // namespace fra::score
