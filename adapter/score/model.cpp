#include "adapter/score/model.hpp"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

namespace fra::score {
namespace {

using Value = rapidjson::Value;

const Value& require(const Value& v, const char* name, const std::string& where) {
  if (!v.IsObject()) throw ModelError(fmt::format("{}: expected an object", where));
  auto it = v.FindMember(name);
  if (it == v.MemberEnd()) throw ModelError(fmt::format("{}.{}: missing", where, name));
  return it->value;
}

// learner_model_param values are strings such as "5E-1"; newer writers may use numbers.
double number_param(const Value& v, const char* name, const std::string& where) {
  const Value& x = require(v, name, where);
  if (x.IsNumber()) return x.GetDouble();
  if (x.IsString()) {
    char* end = nullptr;
    double d = std::strtod(x.GetString(), &end);
    if (end != x.GetString() && *end == '\0') return d;
  }
  throw ModelError(fmt::format("{}.{}: expected a number", where, name));
}

const Value& array_of(const Value& tree, const char* name, std::size_t n, std::size_t t) {
  const Value& a = require(tree, name, fmt::format("trees[{}]", t));
  if (!a.IsArray()) throw ModelError(fmt::format("trees[{}].{}: expected an array", t, name));
  if (a.Size() != n)
    throw ModelError(fmt::format("trees[{}].{}: has {} entries, left_children has {}", t, name, a.Size(), n));
  return a;
}

Transform transform_of(const std::string& objective) {
  if (objective == "binary:logistic" || objective == "reg:logistic") return Transform::sigmoid;
  if (objective == "binary:logitraw" || objective == "reg:squarederror") return Transform::identity;
  if (objective == "count:poisson") return Transform::exp;
  throw ModelError(fmt::format("learner.objective.name: '{}' is not supported (supported: binary:logistic, "
                               "reg:logistic, binary:logitraw, reg:squarederror, count:poisson)",
                               objective));
}

float base_margin_of(const std::string& objective, double base_score) {
  auto b = static_cast<float>(base_score);
  if (objective == "binary:logistic" || objective == "reg:logistic" || objective == "binary:logitraw") {
    if (!(b > 0.0f && b < 1.0f))
      throw ModelError(fmt::format("learner.learner_model_param.base_score: {} is not in (0, 1)", base_score));
    return -std::log(1.0f / b - 1.0f);
  }
  if (objective == "count:poisson") {
    if (!(b > 0.0f)) throw ModelError("learner.learner_model_param.base_score: must be positive for count:poisson");
    return std::log(b);
  }
  return b;
}

}  // namespace

Model Model::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ModelError(fmt::format("{}: cannot read the model file", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  try {
    return from_json(ss.str());
  } catch (const ModelError& e) {
    throw ModelError(fmt::format("{}: {}", path, e.what()));
  }
}

Model Model::from_json(std::string_view json) {
  rapidjson::Document doc;
  // XGBoost writes NaN literally for categorical splits.
  doc.Parse<rapidjson::kParseNanAndInfFlag>(json.data(), json.size());
  if (doc.HasParseError())
    throw ModelError(fmt::format("not JSON at offset {}: {}", doc.GetErrorOffset(),
                                 rapidjson::GetParseError_En(doc.GetParseError())));
  Model m;
  const Value& learner = require(doc, "learner", "model");
  const Value& params = require(learner, "learner_model_param", "learner");
  m.objective_ = [&] {
    const Value& name = require(require(learner, "objective", "learner"), "name", "learner.objective");
    if (!name.IsString()) throw ModelError("learner.objective.name: expected a string");
    return std::string(name.GetString());
  }();
  m.transform_ = transform_of(m.objective_);
  double num_class = params.HasMember("num_class") ? number_param(params, "num_class", "learner.learner_model_param") : 0;
  if (num_class > 1) throw ModelError("learner.learner_model_param.num_class: multi-class models are not supported yet");
  double nf = number_param(params, "num_feature", "learner.learner_model_param");
  if (!(nf >= 1 && nf <= 1e6)) throw ModelError("learner.learner_model_param.num_feature: out of range");
  m.num_features_ = static_cast<std::size_t>(nf);
  m.base_margin_ = base_margin_of(m.objective_, number_param(params, "base_score", "learner.learner_model_param"));
  if (auto it = learner.FindMember("feature_names"); it != learner.MemberEnd() && it->value.IsArray()) {
    for (const auto& n : it->value.GetArray())
      if (n.IsString()) m.feature_names_.emplace_back(n.GetString());
    if (!m.feature_names_.empty() && m.feature_names_.size() != m.num_features_)
      throw ModelError(fmt::format("learner.feature_names: {} names for {} features", m.feature_names_.size(),
                                   m.num_features_));
  }

  const Value& booster = require(learner, "gradient_booster", "learner");
  const Value& bname = require(booster, "name", "learner.gradient_booster");
  if (!bname.IsString() || std::string_view(bname.GetString()) != "gbtree")
    throw ModelError("learner.gradient_booster.name: only gbtree is supported");
  const Value& trees = require(require(booster, "model", "learner.gradient_booster"), "trees",
                               "learner.gradient_booster.model");
  if (!trees.IsArray() || trees.Empty()) throw ModelError("learner.gradient_booster.model.trees: expected a non-empty array");

  for (rapidjson::SizeType t = 0; t < trees.Size(); ++t) {
    const Value& tree = trees[t];
    const Value& left = require(tree, "left_children", fmt::format("trees[{}]", t));
    if (!left.IsArray() || left.Empty()) throw ModelError(fmt::format("trees[{}].left_children: expected a non-empty array", t));
    std::size_t n = left.Size();
    const Value& right = array_of(tree, "right_children", n, t);
    const Value& split = array_of(tree, "split_indices", n, t);
    const Value& cond = array_of(tree, "split_conditions", n, t);
    const Value& dleft = array_of(tree, "default_left", n, t);
    if (auto st = tree.FindMember("split_type"); st != tree.MemberEnd() && st->value.IsArray()) {
      for (const auto& s : st->value.GetArray())
        if (s.IsInt() && s.GetInt() != 0)
          throw ModelError(fmt::format("trees[{}].split_type: categorical splits are not supported yet", t));
    }
    auto base = static_cast<std::int32_t>(m.nodes_.size());
    m.roots_.push_back(static_cast<std::uint32_t>(base));
    for (std::size_t i = 0; i < n; ++i) {
      auto idx = static_cast<rapidjson::SizeType>(i);
      if (!left[idx].IsInt() || !right[idx].IsInt() || !split[idx].IsUint() || !cond[idx].IsNumber())
        throw ModelError(fmt::format("trees[{}]: node {} has a field of the wrong type", t, i));
      int l = left[idx].GetInt(), r = right[idx].GetInt();
      Node node{};
      node.value = static_cast<float>(cond[idx].GetDouble());
      if (l == -1) {
        node.left = node.right = -1;
        if (!std::isfinite(node.value)) throw ModelError(fmt::format("trees[{}].split_conditions[{}]: leaf is not finite", t, i));
      } else {
        // Children after their parent guarantee every walk ends.
        if (l <= static_cast<int>(i) || r <= static_cast<int>(i) || l >= static_cast<int>(n) || r >= static_cast<int>(n))
          throw ModelError(fmt::format("trees[{}]: node {} has children {} and {} out of range ({} nodes)", t, i, l, r, n));
        if (split[idx].GetUint() >= m.num_features_)
          throw ModelError(fmt::format("trees[{}].split_indices[{}]: feature {} is not below num_feature {}", t, i,
                                       split[idx].GetUint(), m.num_features_));
        node.left = base + l;
        node.right = base + r;
        node.feature = split[idx].GetUint();
        node.default_left = dleft[idx].IsBool() ? dleft[idx].GetBool() : (dleft[idx].IsInt() && dleft[idx].GetInt() != 0);
      }
      m.nodes_.push_back(node);
    }
  }
  return m;
}

float Model::margin(const float* row) const noexcept {
  float sum = base_margin_;
  for (std::uint32_t root : roots_) {
    std::uint32_t i = root;
    while (nodes_[i].left >= 0) {
      const Node& n = nodes_[i];
      float x = row[n.feature];
      bool go_left = std::isnan(x) ? n.default_left : x < n.value;
      i = static_cast<std::uint32_t>(go_left ? n.left : n.right);
    }
    sum += nodes_[i].value;
  }
  return sum;
}

float Model::transform(float m) const noexcept {
  switch (transform_) {
    case Transform::sigmoid:
      return 1.0f / (std::exp(std::min(-m, 88.7f)) + 1.0f + 1e-16f);
    case Transform::exp:
      return std::exp(m);
    case Transform::identity:
      break;
  }
  return m;
}

float Model::predict(const float* row) const noexcept { return transform(margin(row)); }

void Model::predict_batch(const float* rows, std::size_t n, float* out) const noexcept {
  for (std::size_t r = 0; r < n; ++r) out[r] = predict(rows + r * num_features_);
}

}  // namespace fra::score
