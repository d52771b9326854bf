#pragma once
// A gradient-boosted tree ensemble read from an XGBoost JSON model and compiled into one flat
// node array. Checked once at load, so that scoring cannot fail and needs no bounds checks.

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace fra::score {

/// A model that cannot be used; the message names the field and, where there is one, the tree.
class ModelError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// How the margin becomes the output, per XGBoost objective.
enum class Transform { identity, sigmoid, exp };

class Model {
 public:
  /// Parses an XGBoost (1.6..2.x) JSON model. Throws ModelError when it is malformed or uses
  /// something this evaluator does not support (the message says which).
  static Model from_json(std::string_view json);
  /// Reads and parses a model file. Throws ModelError.
  static Model from_file(const std::string& path);

  std::size_t num_features() const { return num_features_; }
  std::size_t num_trees() const { return roots_.size(); }
  const std::string& objective() const { return objective_; }
  /// Feature names stored in the model, empty when it was trained without them.
  const std::vector<std::string>& feature_names() const { return feature_names_; }
  /// True when predict() gives a probability (logistic objectives).
  bool outputs_probability() const { return transform_ == Transform::sigmoid; }

  /// The raw margin of one row of num_features() floats (NaN = missing).
  float margin(const float* row) const noexcept;
  /// The prediction of one row: the margin through the objective's transform.
  float predict(const float* row) const noexcept;
  /// The predictions of `n` rows stored one after another.
  void predict_batch(const float* rows, std::size_t n, float* out) const noexcept;
  /// The margin through this model's transform.
  float transform(float margin) const noexcept;

 private:
  struct Node {
    std::int32_t left;      // -1 for a leaf
    std::int32_t right;
    std::uint32_t feature;  // split feature
    float value;            // threshold, or the leaf value
    bool default_left;
  };

  std::vector<Node> nodes_;
  std::vector<std::uint32_t> roots_;
  std::size_t num_features_ = 0;
  float base_margin_ = 0;
  Transform transform_ = Transform::identity;
  std::string objective_;
  std::vector<std::string> feature_names_;
};

}  // namespace fra::score
