#pragma once
// What a clinician is shown: the few features that moved a patient's score the most.

#include <cstddef>
#include <vector>

namespace fra::score {

/// One feature's part in a score.
struct Factor {
  std::size_t feature = 0;  ///< index in model order
  float value = 0;          ///< the feature's value (NaN when missing)
  float contribution = 0;   ///< its TreeSHAP contribution to the margin
};

/// The `k` features with the largest absolute contribution, largest first (ties: lower index
/// first); features that contributed exactly zero are left out. `contributions` holds
/// num_features values followed by the bias, as Model::contributions writes them.
std::vector<Factor> top_contributions(const float* row, const float* contributions,
                                      std::size_t num_features, std::size_t k);

}  // namespace fra::score
