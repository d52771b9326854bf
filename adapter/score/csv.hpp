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
std::vector<float> read_feature_csv(const std::string& text, const std::vector<std::string>& features,
                                    std::size_t& rows);

/// Scores every row and returns the output CSV: a header `probability` (or `prediction` for a
/// model that gives none) and one value per row, printed so that float32 round-trips.
std::string score_csv(const Model& model, const std::vector<std::string>& features, const std::string& text);

}  // namespace fra::score
