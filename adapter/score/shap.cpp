// Exact TreeSHAP (Lundberg et al., "Consistent individualized feature attribution for tree
// ensembles", Algorithm 2), computed the way XGBoost's RegTree::CalculateContributions does:
// float arithmetic, sum_hessian as the cover, the same operation order. That makes the result
// equal to XGBoost's pred_contribs to the last few bits, which is what a clinician-facing
// explanation must be: the same numbers the data scientist saw.

#include <algorithm>
#include <vector>

#include "adapter/score/model.hpp"

namespace fra::score {

struct PathElement {
  int feature_index;
  float zero_fraction;
  float one_fraction;
  float pweight;
};

/// Per-thread scratch for the unique paths: (D+2)(D+3)/2 elements for depth D, allocated once.
struct PathScratch {
  std::vector<PathElement> path;
};

namespace {

void extend_path(PathElement* path, unsigned depth, float zero_fraction, float one_fraction, int feature) {
  path[depth].feature_index = feature;
  path[depth].zero_fraction = zero_fraction;
  path[depth].one_fraction = one_fraction;
  path[depth].pweight = depth == 0 ? 1.0f : 0.0f;
  for (int i = static_cast<int>(depth) - 1; i >= 0; i--) {
    path[i + 1].pweight += one_fraction * path[i].pweight * static_cast<float>(i + 1) / static_cast<float>(depth + 1);
    path[i].pweight = zero_fraction * path[i].pweight * static_cast<float>(depth - static_cast<unsigned>(i)) /
                      static_cast<float>(depth + 1);
  }
}

void unwind_path(PathElement* path, unsigned depth, unsigned index) {
  const float one_fraction = path[index].one_fraction;
  const float zero_fraction = path[index].zero_fraction;
  float next_one_portion = path[depth].pweight;
  for (int i = static_cast<int>(depth) - 1; i >= 0; --i) {
    if (one_fraction != 0) {
      const float tmp = path[i].pweight;
      path[i].pweight = next_one_portion * static_cast<float>(depth + 1) / (static_cast<float>(i + 1) * one_fraction);
      next_one_portion = tmp - path[i].pweight * zero_fraction * static_cast<float>(depth - static_cast<unsigned>(i)) /
                                   static_cast<float>(depth + 1);
    } else {
      path[i].pweight = (path[i].pweight * static_cast<float>(depth + 1)) /
                        (zero_fraction * static_cast<float>(depth - static_cast<unsigned>(i)));
    }
  }
  for (unsigned i = index; i < depth; ++i) {
    path[i].feature_index = path[i + 1].feature_index;
    path[i].zero_fraction = path[i + 1].zero_fraction;
    path[i].one_fraction = path[i + 1].one_fraction;
  }
}

float unwound_path_sum(const PathElement* path, unsigned depth, unsigned index) {
  const float one_fraction = path[index].one_fraction;
  const float zero_fraction = path[index].zero_fraction;
  float next_one_portion = path[depth].pweight;
  float total = 0;
  for (int i = static_cast<int>(depth) - 1; i >= 0; --i) {
    if (one_fraction != 0) {
      const float tmp = next_one_portion * static_cast<float>(depth + 1) / (static_cast<float>(i + 1) * one_fraction);
      total += tmp;
      next_one_portion = path[i].pweight - tmp * zero_fraction * (static_cast<float>(depth - static_cast<unsigned>(i)) /
                                                                  static_cast<float>(depth + 1));
    } else if (zero_fraction != 0) {
      total += (path[i].pweight / zero_fraction) /
               (static_cast<float>(depth - static_cast<unsigned>(i)) / static_cast<float>(depth + 1));
    }
  }
  return total;
}

}  // namespace

void Model::tree_shap(std::uint32_t tree, const float* row, float* phi, PathScratch& scratch) const {
  struct Walker {
    const Model& m;
    const float* row;
    float* phi;

    void walk(std::uint32_t idx, unsigned depth, PathElement* parent_path, float parent_zero, float parent_one,
              int parent_feature) const {
      PathElement* path = parent_path + depth + 1;
      std::copy(parent_path, parent_path + depth + 1, path);
      extend_path(path, depth, parent_zero, parent_one, parent_feature);
      const Node& n = m.nodes_[idx];
      if (n.meta & kLeaf) {
        for (unsigned i = 1; i <= depth; ++i) {
          const float w = unwound_path_sum(path, depth, i);
          const PathElement& el = path[i];
          phi[el.feature_index] += w * (el.one_fraction - el.zero_fraction) * n.value;
        }
        return;
      }
      const unsigned split = n.meta & kFeatureMask;
      const std::uint32_t hot = n.left + (m.goes_right(n, row[split]) ? 1u : 0u);
      const std::uint32_t cold = hot == n.left ? n.left + 1 : n.left;
      const float w = m.cover_[idx];
      const float hot_zero_fraction = m.cover_[hot] / w;
      const float cold_zero_fraction = m.cover_[cold] / w;
      float incoming_zero_fraction = 1;
      float incoming_one_fraction = 1;
      // A feature split on again higher up: undo that split so it can be redone here.
      unsigned path_index = 0;
      for (; path_index <= depth; ++path_index)
        if (static_cast<unsigned>(path[path_index].feature_index) == split) break;
      if (path_index != depth + 1) {
        incoming_zero_fraction = path[path_index].zero_fraction;
        incoming_one_fraction = path[path_index].one_fraction;
        unwind_path(path, depth, path_index);
        depth -= 1;
      }
      walk(hot, depth + 1, path, hot_zero_fraction * incoming_zero_fraction, incoming_one_fraction,
           static_cast<int>(split));
      walk(cold, depth + 1, path, cold_zero_fraction * incoming_zero_fraction, 0, static_cast<int>(split));
    }
  };
  Walker{*this, row, phi}.walk(roots_[tree], 0, scratch.path.data(), 1, 1, -1);
}

void Model::contributions(const float* row, float* out) const {
  const std::size_t width = num_features_ + 1;
  std::fill(out, out + num_groups_ * width, 0.0f);
  thread_local PathScratch scratch;
  const std::size_t d = static_cast<std::size_t>(max_depth_) + 2;
  if (scratch.path.size() < d * (d + 1) / 2 + d) scratch.path.resize(d * (d + 1) / 2 + d);
  thread_local std::vector<float> tree_phi;
  tree_phi.assign(width, 0.0f);
  for (std::uint32_t t = 0; t < roots_.size(); ++t) {
    // As XGBoost: each tree's contributions (its expected value in the bias column first) are
    // computed apart and then added to the row's, in tree order.
    std::fill(tree_phi.begin(), tree_phi.end(), 0.0f);
    tree_phi[num_features_] += mean_values_[t];
    tree_shap(t, row, tree_phi.data(), scratch);
    float* p = out + groups_[t] * width;
    for (std::size_t c = 0; c < width; ++c) p[c] += tree_phi[c];
  }
  for (std::size_t g = 0; g < num_groups_; ++g) out[g * width + num_features_] += base_margin_;
}

}  // namespace fra::score
