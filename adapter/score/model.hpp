#pragma once
// A gradient-boosted tree ensemble read from an XGBoost model (JSON or UBJSON, XGBoost 1.6 to
// 2.x) and compiled into one flat node array: children of a node are adjacent, so a step is
// `left + goes_right`. Checked once at load, so that scoring cannot fail and needs no bounds
// checks.

#include <bit>
#include <cmath>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace fra::score {

/// A model that cannot be used; the message names the field and, where there is one, the tree.
class ModelError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct PathScratch;
struct ShapTables;
class BinnedForest;

/// What predictions are, per XGBoost objective.
enum class Output {
  identity,  ///< reg:squarederror, binary:logitraw: the margin
  sigmoid,   ///< binary:logistic, reg:logistic: a probability
  exp,       ///< count:poisson: a rate
  softprob,  ///< multi:softprob: one probability per class
  softmax,   ///< multi:softmax: the index of the most likely class
};

class Model {
 public:
  /// Parses an XGBoost JSON or UBJSON model (told apart by content). Throws ModelError.
  static Model from_bytes(std::string_view bytes);
  /// Reads and parses a model file. Throws ModelError, prefixed with the path.
  static Model from_file(const std::string& path);

  std::size_t num_features() const { return num_features_; }
  std::size_t num_trees() const { return roots_.size(); }
  std::size_t num_nodes() const { return nodes_.size(); }
  /// Margins per row: the number of classes for multi-class models, otherwise 1.
  std::size_t num_groups() const { return num_groups_; }
  /// Prediction values per row: num_groups() for multi:softprob, otherwise 1.
  std::size_t num_outputs() const { return output_ == Output::softprob ? num_groups_ : 1; }
  const std::string& objective() const { return objective_; }
  Output output() const { return output_; }
  /// Feature names stored in the model, empty when it was trained without them.
  const std::vector<std::string>& feature_names() const { return feature_names_; }
  /// True when predict() gives one probability (logistic objectives).
  bool outputs_probability() const { return output_ == Output::sigmoid; }
  /// Bytes held by the compiled model (nodes, covers, category sets, tree tables).
  std::size_t memory_bytes() const;
  /// The depth of each tree (a lone leaf has depth 0).
  const std::vector<std::uint8_t>& tree_depths() const { return depths_; }
  /// How many splits use each feature.
  std::vector<std::size_t> split_counts() const;
  /// How rows are scored: the compact layout and its walk, or the node walk and why.
  std::string scoring_layout() const;

  /// The num_groups() margins of one row of num_features() floats (NaN = missing).
  void margins(const float* row, float* out) const noexcept;
  /// The num_outputs() predictions of one row.
  void predict(const float* row, float* out) const noexcept;
  /// The prediction of one row of a single-output model.
  float predict(const float* row) const noexcept;
  /// Margins of `n` rows stored one after another into n * num_groups() floats.
  void margins_batch(const float* rows, std::size_t n, float* out, int threads = 1) const;
  /// Predictions of `n` rows into n * num_outputs() floats.
  void predict_batch(const float* rows, std::size_t n, float* out, int threads = 1) const;
  /// Exact TreeSHAP contributions, equal to XGBoost's pred_contribs: for each group,
  /// num_features() values then the bias, so num_groups() * (num_features() + 1) floats.
  void contributions(const float* row, float* out) const;
  /// Contributions of `n` rows into n * num_groups() * (num_features() + 1) floats.
  void contributions_batch(const float* rows, std::size_t n, float* out, int threads = 1) const;

 private:
  friend class ModelBuilder;
  friend class BinnedForest;

  /// 12 bytes: the threshold (or leaf value, or index of a category set), the left child
  /// (the right child is left + 1), and in `meta` the flags in the top bits and, below them,
  /// 2 * feature + (1 if missing goes right): the index of the feature's value in a row
  /// "doubled" with NaN as -inf and +inf (see expand_row), where one `>=` decides the split.
  struct Node {
    float value;
    std::uint32_t left;
    std::uint32_t meta;
  };
  static constexpr std::uint32_t kLeaf = 1u << 31;
  static constexpr std::uint32_t kCategorical = 1u << 30;
  static constexpr std::uint32_t kIndexMask = kCategorical - 1;
  static constexpr std::uint32_t kMaxFeatures = kIndexMask >> 1;
  static std::uint32_t feature_of(const Node& n) { return (n.meta & kIndexMask) >> 1; }
  static bool default_left(const Node& n) { return (n.meta & 1u) == 0; }

  /// Categories that go right at a categorical split, as a bit set.
  struct CategorySet {
    std::uint32_t offset;  // into category_words_
    std::uint32_t words;
  };

  template <bool kGeneric>
  std::uint32_t leaf(std::uint32_t node, const float* row) const noexcept;
  void expand_row(const float* row, float* doubled) const noexcept;
  bool goes_right(const Node& n, float x) const noexcept;
  template <bool kGeneric>
  void margins_block(const float* rows, std::size_t n, float* out) const noexcept;
  void transform(const float* margins, float* out) const noexcept;
  void tree_shap(std::uint32_t tree, const float* row, float* phi, PathScratch& scratch) const;
  void tree_shap_tabled(std::uint32_t tree, const float* row, float* phi) const;
  void contributions_block(const float* rows, std::size_t n, float* out) const;
  const ShapTables& shap_tables() const;

  std::vector<Node> nodes_;
  std::vector<float> cover_;           // sum_hessian per node, for TreeSHAP
  std::vector<std::uint32_t> roots_;   // per tree
  std::vector<std::uint32_t> groups_;  // per tree: the class it adds to
  std::vector<std::uint8_t> depths_;   // per tree
  std::vector<float> mean_values_;     // per tree: expected value (TreeSHAP bias)
  std::vector<CategorySet> category_sets_;
  std::vector<std::uint32_t> category_words_;
  std::size_t num_features_ = 0;
  std::size_t num_groups_ = 1;
  std::uint8_t max_depth_ = 0;
  bool has_categorical_ = false;
  float base_margin_ = 0;
  Output output_ = Output::identity;
  std::string objective_;
  std::vector<std::string> feature_names_;
  bool doubled_rows_ = true;  // false if a threshold makes the -inf stand-in for missing ambiguous
  // Built on the first call to contributions() and shared by copies of the model.
  std::shared_ptr<struct LazyShapTables> shap_;
  // The compact layout for one row (binned.hpp), null when the model does not suit it.
  std::shared_ptr<const BinnedForest> binned_;
  std::string node_walk_reason_;  // why there is no compact layout
};

inline bool Model::goes_right(const Node& n, float x) const noexcept {
  // Missing follows the default direction; a categorical split sends the listed categories
  // right and every other value (unseen, negative, too large) left; fractions truncate.
  if (std::isnan(x)) return !default_left(n);
  if (n.meta & kCategorical) {
    if (!(x >= 0.0f) || x >= 16777216.0f) return false;
    auto c = static_cast<std::uint32_t>(x);
    const CategorySet& s = category_sets_[std::bit_cast<std::uint32_t>(n.value)];
    if (c / 32 >= s.words) return false;
    return (category_words_[s.offset + c / 32] >> (c % 32)) & 1u;
  }
  return !(x < n.value);
}

}  // namespace fra::score
