// Exact TreeSHAP (Lundberg et al., "Consistent individualized feature attribution for tree
// ensembles", Algorithm 2), computed the way XGBoost's RegTree::CalculateContributions does:
// float arithmetic, sum_hessian as the cover, the same operation order. That makes the result
// equal to XGBoost's pred_contribs to the last few bits, which is what a clinician-facing
// explanation must be: the same numbers the data scientist saw.

#include <algorithm>
#include <cmath>
#include <vector>

#include "adapter/score/model.hpp"
#include "adapter/score/shap_tables.hpp"

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

void extend_path(PathElement* path, unsigned depth, float zero_fraction, float one_fraction,
                 int feature) {
  path[depth].feature_index = feature;
  path[depth].zero_fraction = zero_fraction;
  path[depth].one_fraction = one_fraction;
  path[depth].pweight = depth == 0 ? 1.0f : 0.0f;
  for (int i = static_cast<int>(depth) - 1; i >= 0; i--) {
    path[i + 1].pweight +=
        one_fraction * path[i].pweight * static_cast<float>(i + 1) / static_cast<float>(depth + 1);
    path[i].pweight = zero_fraction * path[i].pweight *
                      static_cast<float>(depth - static_cast<unsigned>(i)) /
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
      path[i].pweight = next_one_portion * static_cast<float>(depth + 1) /
                        (static_cast<float>(i + 1) * one_fraction);
      next_one_portion = tmp - path[i].pweight * zero_fraction *
                                   static_cast<float>(depth - static_cast<unsigned>(i)) /
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
      const float tmp = next_one_portion * static_cast<float>(depth + 1) /
                        (static_cast<float>(i + 1) * one_fraction);
      total += tmp;
      next_one_portion =
          path[i].pweight - tmp * zero_fraction *
                                (static_cast<float>(depth - static_cast<unsigned>(i)) /
                                 static_cast<float>(depth + 1));
    } else if (zero_fraction != 0) {
      total +=
          (path[i].pweight / zero_fraction) /
          (static_cast<float>(depth - static_cast<unsigned>(i)) / static_cast<float>(depth + 1));
    }
  }
  return total;
}

}  // namespace

void Model::tree_shap(std::uint32_t tree, const float* row, float* phi,
                      PathScratch& scratch) const {
  struct Walker {
    const Model& m;
    const float* row;
    float* phi;

    void walk(std::uint32_t idx, unsigned depth, PathElement* parent_path, float parent_zero,
              float parent_one, int parent_feature) const {
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
      const unsigned split = feature_of(n);
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
      walk(cold, depth + 1, path, cold_zero_fraction * incoming_zero_fraction, 0,
           static_cast<int>(split));
    }
  };
  Walker{*this, row, phi}.walk(roots_[tree], 0, scratch.path.data(), 1, 1, -1);
}

void Model::contributions_block(const float* rows, std::size_t n, float* out) const {
  const std::size_t width = num_features_ + 1;
  std::fill(out, out + n * num_groups_ * width, 0.0f);
  thread_local PathScratch scratch;
  const std::size_t d = static_cast<std::size_t>(max_depth_) + 2;
  if (scratch.path.size() < d * (d + 1) / 2 + d) scratch.path.resize(d * (d + 1) / 2 + d);
  thread_local std::vector<float> tree_phi;
  tree_phi.resize(width);
  const ShapTables& tables = shap_tables();
  // Tree by tree over the block, so that a tree's tables stay in cache for all its rows. Each
  // row still gets, as in XGBoost, each tree's contributions (its expected value in the bias
  // column first) computed apart and added in tree order.
  for (std::uint32_t t = 0; t < roots_.size(); ++t) {
    for (std::size_t r = 0; r < n; ++r) {
      const float* row = rows + r * num_features_;
      float* p = out + (r * num_groups_ + groups_[t]) * width;
      if (tables.tabled[t]) {  // leaf shares go straight into the row's sums
        p[num_features_] += mean_values_[t];
        tree_shap_tabled(t, row, p);
        continue;
      }
      std::fill(tree_phi.begin(), tree_phi.end(), 0.0f);
      tree_phi[num_features_] += mean_values_[t];
      tree_shap(t, row, tree_phi.data(), scratch);
      for (std::size_t c = 0; c < width; ++c) p[c] += tree_phi[c];
    }
  }
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t g = 0; g < num_groups_; ++g)
      out[(r * num_groups_ + g) * width + num_features_] += base_margin_;
}

void Model::contributions(const float* row, float* out) const { contributions_block(row, 1, out); }

}  // namespace fra::score

namespace fra::score {

// ---- precomputed tables (see shap_tables.hpp) ----------------------------------------------

namespace {

constexpr unsigned kMaxTabledFeatures = 10;          // 10 * 1024 values per leaf at most
constexpr std::size_t kMaxTableEntries = 16u << 20;  // 64 MB of tables per model at most

// For every subset H of the leaf's d distinct features (bit k: the row follows feature k's
// splits), the d contributions of the leaf.
void fill_values(const std::vector<double>& z, double v, std::vector<float>& out) {
  const unsigned d = static_cast<unsigned>(z.size());
  std::vector<double> w(d + 1, 0.0), e(d + 1), q(1u << d), cold(1u << d);
  for (unsigned s = 0; s < d; ++s) {
    double x = 1.0;  // s! (d - s - 1)! / d!
    for (unsigned i = 1; i <= s; ++i) x *= i;
    for (unsigned i = 1; i <= d - s - 1; ++i) x *= i;
    for (unsigned i = 1; i <= d; ++i) x /= i;
    w[s] = x;
  }
  for (std::uint32_t mask = 0; mask < (1u << d); ++mask) {
    // Elementary symmetric polynomials of the z's in the mask: e[k] = sum over k-subsets.
    std::fill(e.begin(), e.end(), 0.0);
    e[0] = 1.0;
    unsigned size = 0;
    double c = 1.0;
    for (unsigned k = 0; k < d; ++k) {
      if (!((mask >> k) & 1u)) {
        c *= z[k];
        continue;
      }
      ++size;
      for (unsigned i = size; i > 0; --i) e[i] += e[i - 1] * z[k];
    }
    double sum = 0;
    if (size < d)
      for (unsigned s = 0; s <= size; ++s) sum += w[s] * e[size - s];
    q[mask] = v * sum;
    cold[mask] = c;
  }
  for (std::uint32_t h = 0; h < (1u << d); ++h)
    for (unsigned j = 0; j < d; ++j) {
      bool followed = (h >> j) & 1u;
      double x = followed ? (1.0 - z[j]) * cold[h] * q[h & ~(1u << j)] : -cold[h] * q[h];
      out.push_back(static_cast<float>(x));
    }
}

}  // namespace

const ShapTables& Model::shap_tables() const {
  std::call_once(shap_->once, [this] {
    ShapTables& T = shap_->tables;
    T.node_slot.assign(nodes_.size(), 0);
    std::vector<std::uint32_t> slot_feature;
    std::vector<double> slot_zero;
    bool too_deep = false;

    auto visit = [&](auto&& self, std::uint32_t idx) -> void {
      if (too_deep) return;
      const Node& n = nodes_[idx];
      if (n.meta & kLeaf) {
        if (slot_feature.size() > kMaxTabledFeatures) {
          too_deep = true;
          return;
        }
        T.leaves.push_back({idx, static_cast<std::uint32_t>(T.slot_feature.size()),
                            static_cast<std::uint32_t>(T.values.size()),
                            static_cast<std::uint32_t>(slot_feature.size())});
        T.slot_feature.insert(T.slot_feature.end(), slot_feature.begin(), slot_feature.end());
        fill_values(slot_zero, n.value, T.values);
        return;
      }
      const std::uint32_t f = feature_of(n);
      std::uint8_t slot = 0;
      while (slot < slot_feature.size() && slot_feature[slot] != f) ++slot;
      const bool new_slot = slot == slot_feature.size();
      if (new_slot) {
        slot_feature.push_back(f);
        slot_zero.push_back(1.0);
      }
      T.node_slot[idx] = slot;
      const double saved = slot_zero[slot];
      for (std::uint32_t right = 0; right < 2; ++right) {
        const std::uint32_t child = n.left + right;
        slot_zero[slot] =
            saved * (static_cast<double>(cover_[child]) / static_cast<double>(cover_[idx]));
        self(self, child);
      }
      slot_zero[slot] = saved;
      if (new_slot) {
        slot_feature.pop_back();
        slot_zero.pop_back();
      }
    };

    T.leaf_begin.push_back(0);
    for (std::uint32_t t = 0; t < roots_.size(); ++t) {
      const std::size_t leaves = T.leaves.size(), slots = T.slot_feature.size(),
                        values = T.values.size();
      too_deep = depths_[t] > 2 * kMaxTabledFeatures;
      if (!too_deep) visit(visit, roots_[t]);
      if (too_deep ||
          T.values.size() > kMaxTableEntries) {  // this tree keeps the recursive algorithm
        T.leaves.resize(leaves);
        T.slot_feature.resize(slots);
        T.values.resize(values);
        T.tabled.push_back(0);
      } else {
        T.tabled.push_back(1);
      }
      T.leaf_begin.push_back(static_cast<std::uint32_t>(T.leaves.size()));
    }
    T.values.shrink_to_fit();
  });
  return shap_->tables;
}

void Model::tree_shap_tabled(std::uint32_t t, const float* row, float* phi) const {
  const ShapTables& T = shap_->tables;
  // Which path features each node's row agrees with, top-down: children follow parents.
  thread_local std::vector<std::uint32_t> agree;
  const std::uint32_t root = roots_[t];
  const std::uint32_t end =
      t + 1 < roots_.size() ? roots_[t + 1] : static_cast<std::uint32_t>(nodes_.size());
  agree.resize(end - root);
  agree[0] = ~0u;
  for (std::uint32_t i = root; i < end; ++i) {
    const Node& n = nodes_[i];
    if (n.meta & kLeaf) continue;
    const std::uint32_t bit = 1u << T.node_slot[i];
    const float x = row[feature_of(n)];
    // Branch-free for numeric splits (missing rows are as good as random here).
    const std::uint32_t goes =
        (n.meta & kCategorical) ? static_cast<std::uint32_t>(goes_right(n, x))
                                : static_cast<std::uint32_t>(x >= n.value) |
                                      (static_cast<std::uint32_t>(std::isnan(x)) & (n.meta & 1u));
    const std::uint32_t right = bit & (0u - goes);
    const std::uint32_t here = agree[i - root];
    agree[n.left - root] = here & ~right;
    agree[n.left + 1 - root] = here & ~(bit ^ right);
  }
  for (std::uint32_t l = T.leaf_begin[t]; l < T.leaf_begin[t + 1]; ++l) {
    const ShapLeaf& leaf = T.leaves[l];
    const std::uint32_t d = leaf.d;
    const std::uint32_t h = agree[leaf.node - root] & ((1u << d) - 1);
    const float* v = T.values.data() + leaf.table_begin + h * d;
    const std::uint32_t* feature = T.slot_feature.data() + leaf.slot_begin;
    for (std::uint32_t j = 0; j < d; ++j) phi[feature[j]] += v[j];
  }
}

}  // namespace fra::score
