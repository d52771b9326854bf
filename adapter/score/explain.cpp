#include "adapter/score/explain.hpp"

#include <algorithm>
#include <cmath>

namespace fra::score {

std::vector<Factor> top_contributions(const float* row, const float* contributions,
                                      std::size_t num_features, std::size_t k) {
  std::vector<Factor> all;
  for (std::size_t f = 0; f < num_features; ++f)
    if (contributions[f] != 0.0f) all.push_back({f, row[f], contributions[f]});
  auto larger = [](const Factor& a, const Factor& b) {
    float x = std::fabs(a.contribution), y = std::fabs(b.contribution);
    return x != y ? x > y : a.feature < b.feature;
  };
  k = std::min(k, all.size());
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k), all.end(), larger);
  all.resize(k);
  return all;
}

}  // namespace fra::score
