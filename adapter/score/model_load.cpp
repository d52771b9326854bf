// Loading: XGBoost's JSON document (from JSON text or UBJSON) → the flat, checked layout.

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <fstream>
#include <iterator>
#include <limits>

#include "adapter/score/binned.hpp"
#include "adapter/score/model.hpp"
#include "adapter/score/shap_tables.hpp"
#include "adapter/score/ubjson.hpp"

namespace fra::score {

using Value = rapidjson::Value;

class ModelBuilder {
 public:
  static Model build(const rapidjson::Document& doc);

 private:
  static void add_tree(Model& m, const Value& tree, std::size_t t);
};

namespace {

constexpr std::uint32_t kMaxCategory = 1u << 24;  // XGBoost's own limit for category values
constexpr std::size_t kMaxNodesPerTree = 1u << 24;

const Value& require(const Value& v, const char* name, const std::string& where) {
  if (!v.IsObject()) throw ModelError(fmt::format("{}: expected an object", where));
  auto it = v.FindMember(name);
  if (it == v.MemberEnd()) throw ModelError(fmt::format("{}.{}: missing", where, name));
  return it->value;
}

const Value* optional_member(const Value& v, const char* name) {
  auto it = v.FindMember(name);
  return it == v.MemberEnd() ? nullptr : &it->value;
}

// learner_model_param values are strings such as "5E-1" (2.x may bracket them: "[5E-1]").
double number_param(const Value& v, const char* name, const std::string& where) {
  const Value& x = require(v, name, where);
  if (x.IsNumber()) return x.GetDouble();
  if (x.IsString()) {
    std::string s = x.GetString();
    if (s.size() >= 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end != s.c_str() && *end == '\0') return d;
  }
  throw ModelError(fmt::format("{}.{}: expected a number", where, name));
}

std::string string_member(const Value& v, const char* name, const std::string& where) {
  const Value& x = require(v, name, where);
  if (!x.IsString()) throw ModelError(fmt::format("{}.{}: expected a string", where, name));
  return x.GetString();
}

// A numeric array of exactly `n` entries (n = 0: any length).
const Value& array_of(const Value& tree, const char* name, std::size_t n, std::size_t t) {
  const Value& a = require(tree, name, fmt::format("trees[{}]", t));
  if (!a.IsArray()) throw ModelError(fmt::format("trees[{}].{}: expected an array", t, name));
  if (n != 0 && a.Size() != n)
    throw ModelError(
        fmt::format("trees[{}].{}: has {} entries, left_children has {}", t, name, a.Size(), n));
  return a;
}

std::int64_t int_at(const Value& a, std::size_t i, const char* name, std::size_t t) {
  const Value& v = a[static_cast<rapidjson::SizeType>(i)];
  if (v.IsInt64()) return v.GetInt64();
  if (v.IsBool()) return v.GetBool() ? 1 : 0;
  throw ModelError(fmt::format("trees[{}].{}[{}]: expected an integer", t, name, i));
}

float float_at(const Value& a, std::size_t i, const char* name, std::size_t t) {
  const Value& v = a[static_cast<rapidjson::SizeType>(i)];
  if (!v.IsNumber())
    throw ModelError(fmt::format("trees[{}].{}[{}]: expected a number", t, name, i));
  return static_cast<float>(v.GetDouble());
}

Output output_of(const std::string& objective) {
  if (objective == "binary:logistic" || objective == "reg:logistic") return Output::sigmoid;
  if (objective == "binary:logitraw" || objective == "reg:squarederror" ||
      objective == "reg:linear" || objective == "reg:absoluteerror" ||
      objective == "reg:pseudohubererror")
    return Output::identity;
  if (objective == "count:poisson" || objective == "reg:gamma" || objective == "reg:tweedie")
    return Output::exp;
  if (objective == "multi:softprob") return Output::softprob;
  if (objective == "multi:softmax") return Output::softmax;
  throw ModelError(
      fmt::format("learner.objective.name: '{}' is not supported (supported: binary:logistic, "
                  "binary:logitraw, reg:logistic, reg:squarederror, reg:absoluteerror, "
                  "reg:pseudohubererror, count:poisson, reg:gamma, reg:tweedie, multi:softprob, "
                  "multi:softmax)",
                  objective));
}

// XGBoost's ObjFunction::ProbToMargin, in float as XGBoost computes it.
float base_margin_of(const std::string& objective, Output output, double base_score) {
  (void)objective;
  auto b = static_cast<float>(base_score);
  const char* where = "learner.learner_model_param.base_score";
  // binary:logitraw keeps base_score as it is (measured against XGBoost 1.7.4).
  if (output == Output::sigmoid) {
    if (!(b > 0.0f && b < 1.0f))
      throw ModelError(fmt::format("{}: {} is not in (0, 1)", where, base_score));
    return -std::log(1.0f / b - 1.0f);
  }
  if (output == Output::exp) {
    if (!(b > 0.0f))
      throw ModelError(fmt::format("{}: {} must be positive for {}", where, base_score, objective));
    return std::log(b);
  }
  if (!std::isfinite(b)) throw ModelError(fmt::format("{}: not finite", where));
  return b;
}

}  // namespace

Model ModelBuilder::build(const rapidjson::Document& doc) {
  Model m;
  m.shap_ = std::make_shared<LazyShapTables>();
  const Value& learner = require(doc, "learner", "model");
  const Value& params = require(learner, "learner_model_param", "learner");
  const std::string pw = "learner.learner_model_param";
  m.objective_ =
      string_member(require(learner, "objective", "learner"), "name", "learner.objective");
  m.output_ = output_of(m.objective_);

  double nf = number_param(params, "num_feature", pw);
  if (!(nf >= 1 && nf <= static_cast<double>(Model::kMaxFeatures)))
    throw ModelError(fmt::format("{}.num_feature: {} is out of range", pw, nf));
  m.num_features_ = static_cast<std::size_t>(nf);
  double num_class =
      optional_member(params, "num_class") ? number_param(params, "num_class", pw) : 0;
  if (!(num_class >= 0 && num_class <= 100000))
    throw ModelError(fmt::format("{}.num_class: out of range", pw));
  m.num_groups_ = num_class > 1 ? static_cast<std::size_t>(num_class) : 1;
  if ((m.output_ == Output::softprob || m.output_ == Output::softmax) && m.num_groups_ < 2)
    throw ModelError(fmt::format("{}.num_class: {} needs at least 2 classes", pw, m.objective_));
  if (optional_member(params, "num_target") && number_param(params, "num_target", pw) > 1)
    throw ModelError(fmt::format("{}.num_target: multi-target models are not supported", pw));
  m.base_margin_ = base_margin_of(m.objective_, m.output_, number_param(params, "base_score", pw));

  if (const Value* names = optional_member(learner, "feature_names");
      names != nullptr && names->IsArray()) {
    for (const auto& n : names->GetArray())
      if (n.IsString()) m.feature_names_.emplace_back(n.GetString());
    if (!m.feature_names_.empty() && m.feature_names_.size() != m.num_features_)
      throw ModelError(fmt::format("learner.feature_names: {} names for {} features",
                                   m.feature_names_.size(), m.num_features_));
  }

  const Value& booster = require(learner, "gradient_booster", "learner");
  std::string bname = string_member(booster, "name", "learner.gradient_booster");
  if (bname != "gbtree")
    throw ModelError(
        fmt::format("learner.gradient_booster.name: '{}' is not supported (only gbtree)", bname));
  const Value& model = require(booster, "model", "learner.gradient_booster");
  const Value& trees = require(model, "trees", "learner.gradient_booster.model");
  if (!trees.IsArray() || trees.Empty())
    throw ModelError("learner.gradient_booster.model.trees: expected a non-empty array");
  const Value& info = require(model, "tree_info", "learner.gradient_booster.model");
  if (!info.IsArray() || info.Size() != trees.Size())
    throw ModelError(
        fmt::format("learner.gradient_booster.model.tree_info: expected {} entries", trees.Size()));

  for (rapidjson::SizeType t = 0; t < trees.Size(); ++t) {
    if (!info[t].IsInt() || info[t].GetInt() < 0 ||
        static_cast<std::size_t>(info[t].GetInt()) >= m.num_groups_)
      throw ModelError(fmt::format(
          "learner.gradient_booster.model.tree_info[{}]: not a class below {}", t, m.num_groups_));
    m.groups_.push_back(static_cast<std::uint32_t>(info[t].GetInt()));
    add_tree(m, trees[t], t);
  }
  m.nodes_.shrink_to_fit();
  m.cover_.shrink_to_fit();
  m.category_words_.shrink_to_fit();
  m.binned_ = BinnedForest::compile(m, m.node_walk_reason_);
  return m;
}

void ModelBuilder::add_tree(Model& m, const Value& tree, std::size_t t) {
  if (const Value* tp = optional_member(tree, "tree_param"); tp != nullptr && tp->IsObject()) {
    if (optional_member(*tp, "size_leaf_vector") &&
        number_param(*tp, "size_leaf_vector", fmt::format("trees[{}].tree_param", t)) > 1)
      throw ModelError(
          fmt::format("trees[{}].tree_param.size_leaf_vector: vector leaves are not supported", t));
  }
  const Value& left = array_of(tree, "left_children", 0, t);
  const std::size_t n = left.Size();
  if (n == 0 || n > kMaxNodesPerTree)
    throw ModelError(fmt::format("trees[{}].left_children: {} nodes", t, n));
  const Value& right = array_of(tree, "right_children", n, t);
  const Value& split = array_of(tree, "split_indices", n, t);
  const Value& cond = array_of(tree, "split_conditions", n, t);
  const Value& dleft = array_of(tree, "default_left", n, t);
  const Value& hess = array_of(tree, "sum_hessian", n, t);
  const Value* stype = optional_member(tree, "split_type");
  if (stype != nullptr && (!stype->IsArray() || (stype->Size() != n && stype->Size() != 0)))
    throw ModelError(fmt::format("trees[{}].split_type: has the wrong length", t));
  auto is_categorical = [&](std::size_t i) {
    return stype != nullptr && stype->Size() == n && int_at(*stype, i, "split_type", t) == 1;
  };

  // Category sets by node: categories[segments[j] .. + sizes[j]] go right at categories_nodes[j].
  std::vector<std::int64_t> set_of(n, -1);
  std::vector<std::vector<std::uint32_t>> sets;
  if (const Value* cn = optional_member(tree, "categories_nodes");
      cn != nullptr && cn->IsArray() && !cn->Empty()) {
    const Value& cats = array_of(tree, "categories", 0, t);
    const Value& segs = array_of(tree, "categories_segments", cn->Size(), t);
    const Value& sizes = array_of(tree, "categories_sizes", cn->Size(), t);
    for (std::size_t j = 0; j < cn->Size(); ++j) {
      std::int64_t node = int_at(*cn, j, "categories_nodes", t);
      std::int64_t beg = int_at(segs, j, "categories_segments", t);
      std::int64_t cnt = int_at(sizes, j, "categories_sizes", t);
      if (node < 0 || static_cast<std::size_t>(node) >= n || beg < 0 || cnt < 0 ||
          static_cast<std::uint64_t>(beg + cnt) > cats.Size())
        throw ModelError(fmt::format("trees[{}].categories_nodes[{}]: segment out of range", t, j));
      std::vector<std::uint32_t> words;
      for (std::int64_t k = beg; k < beg + cnt; ++k) {
        std::int64_t c = int_at(cats, static_cast<std::size_t>(k), "categories", t);
        if (c < 0 || c >= kMaxCategory)
          throw ModelError(
              fmt::format("trees[{}].categories[{}]: {} is not a category (0..2^24)", t, k, c));
        auto cu = static_cast<std::uint32_t>(c);
        if (words.size() <= cu / 32) words.resize(cu / 32 + 1, 0);
        words[cu / 32] |= 1u << (cu % 32);
      }
      set_of[static_cast<std::size_t>(node)] = static_cast<std::int64_t>(sets.size());
      sets.push_back(std::move(words));
    }
  }

  // Breadth-first order puts the two children of a node next to each other. A node reached
  // twice (a cycle or a shared child) or a child out of range is refused.
  const std::uint32_t base = static_cast<std::uint32_t>(m.nodes_.size());
  std::vector<std::uint32_t> order{0}, depth{0};
  std::vector<std::uint32_t> new_id(n, std::numeric_limits<std::uint32_t>::max());
  new_id[0] = 0;
  std::uint32_t max_depth = 0;
  for (std::size_t k = 0; k < order.size(); ++k) {
    std::uint32_t old = order[k];
    std::int64_t l = int_at(left, old, "left_children", t);
    if (l == -1) continue;
    std::int64_t r = int_at(right, old, "right_children", t);
    if (l < 0 || r < 0 || static_cast<std::size_t>(l) >= n || static_cast<std::size_t>(r) >= n ||
        l == r)
      throw ModelError(fmt::format(
          "trees[{}]: node {} has children {} and {} out of range ({} nodes)", t, old, l, r, n));
    for (std::int64_t c : {l, r}) {
      if (new_id[static_cast<std::size_t>(c)] != std::numeric_limits<std::uint32_t>::max())
        throw ModelError(fmt::format("trees[{}]: node {} is reached twice (not a tree)", t, c));
      new_id[static_cast<std::size_t>(c)] = static_cast<std::uint32_t>(order.size());
      order.push_back(static_cast<std::uint32_t>(c));
      depth.push_back(depth[k] + 1);
      max_depth = std::max(max_depth, depth[k] + 1);
    }
  }
  if (max_depth > 200)
    throw ModelError(fmt::format("trees[{}]: depth {} is more than 200", t, max_depth));

  for (std::size_t k = 0; k < order.size(); ++k) {
    std::uint32_t old = order[k];
    Model::Node node{};
    float h = float_at(hess, old, "sum_hessian", t);
    std::int64_t l = int_at(left, old, "left_children", t);
    if (l == -1) {
      node.value = float_at(cond, old, "split_conditions", t);
      if (!std::isfinite(node.value))
        throw ModelError(
            fmt::format("trees[{}].split_conditions[{}]: leaf value is not finite", t, old));
      node.meta = Model::kLeaf;
    } else {
      std::int64_t f = int_at(split, old, "split_indices", t);
      if (f < 0 || static_cast<std::size_t>(f) >= m.num_features_)
        throw ModelError(
            fmt::format("trees[{}].split_indices[{}]: feature {} is not below num_feature {}", t,
                        old, f, m.num_features_));
      const bool missing_left = int_at(dleft, old, "default_left", t) != 0;
      node.meta = static_cast<std::uint32_t>(f) * 2 + (missing_left ? 0 : 1);
      node.left = base + new_id[static_cast<std::size_t>(l)];
      if (is_categorical(old)) {
        if (set_of[old] < 0)
          throw ModelError(
              fmt::format("trees[{}]: categorical split at node {} has no categories", t, old));
        const auto& words = sets[static_cast<std::size_t>(set_of[old])];
        node.meta |= Model::kCategorical;
        node.value = std::bit_cast<float>(static_cast<std::uint32_t>(m.category_sets_.size()));
        m.category_sets_.push_back({static_cast<std::uint32_t>(m.category_words_.size()),
                                    static_cast<std::uint32_t>(words.size())});
        m.category_words_.insert(m.category_words_.end(), words.begin(), words.end());
        m.has_categorical_ = true;
      } else {
        node.value = float_at(cond, old, "split_conditions", t);
        if (std::isnan(node.value))
          throw ModelError(fmt::format("trees[{}].split_conditions[{}]: threshold is NaN", t, old));
        // Missing stands in as -inf where it goes left: a threshold of -inf would send it right.
        if (missing_left && node.value == -std::numeric_limits<float>::infinity())
          m.doubled_rows_ = false;
      }
    }
    m.nodes_.push_back(node);
    m.cover_.push_back(h);
  }

  // The tree's expected value, as XGBoost's FillNodeMeanValue computes it (children follow
  // their parent, so a reverse walk sees children first).
  std::vector<float> mean(order.size());
  for (std::size_t k = order.size(); k-- > 0;) {
    const Model::Node& node = m.nodes_[base + k];
    if (node.meta & Model::kLeaf) {
      mean[k] = node.value;
    } else {
      std::size_t lk = node.left - base;
      float result = mean[lk] * m.cover_[node.left];
      result += mean[lk + 1] * m.cover_[node.left + 1];
      result /= m.cover_[base + k];
      mean[k] = result;
    }
  }
  m.roots_.push_back(base);
  m.depths_.push_back(static_cast<std::uint8_t>(max_depth));
  m.max_depth_ = std::max<std::uint8_t>(m.max_depth_, static_cast<std::uint8_t>(max_depth));
  m.mean_values_.push_back(mean[0]);
}

Model Model::from_bytes(std::string_view bytes) {
  rapidjson::Document doc;
  if (looks_like_ubjson(bytes)) {
    std::string error = ubjson_to_document(bytes, doc);
    if (!error.empty()) throw ModelError(error);
  } else {
    // XGBoost writes NaN literally for categorical splits.
    doc.Parse<rapidjson::kParseNanAndInfFlag | rapidjson::kParseIterativeFlag>(bytes.data(),
                                                                               bytes.size());
    if (doc.HasParseError())
      throw ModelError(fmt::format("not JSON at offset {}: {}", doc.GetErrorOffset(),
                                   rapidjson::GetParseError_En(doc.GetParseError())));
  }
  return ModelBuilder::build(doc);
}

Model Model::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ModelError(fmt::format("{}: cannot read the model file", path));
  // A file of known size is read at once into a buffer of that size (a 20 MB JSON model
  // copied through a stringstream costs more than parsing it); a pipe, which cannot seek,
  // through the stream.
  std::string bytes;
  in.seekg(0, std::ios::end);
  const std::streamoff size = in ? static_cast<std::streamoff>(in.tellg()) : -1;
  if (size > 0) {
    bytes.resize(static_cast<std::size_t>(size));
    in.seekg(0);
    in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  } else {
    in.clear();
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  if (in.bad() || (size > 0 && !in))
    throw ModelError(fmt::format("{}: cannot read the model file", path));
  try {
    return from_bytes(bytes);
  } catch (const ModelError& e) {
    throw ModelError(fmt::format("{}: {}", path, e.what()));
  }
}

std::size_t Model::memory_bytes() const {
  return nodes_.capacity() * sizeof(Node) + cover_.capacity() * sizeof(float) +
         (roots_.capacity() + groups_.capacity()) * sizeof(std::uint32_t) + depths_.capacity() +
         mean_values_.capacity() * sizeof(float) + category_sets_.capacity() * sizeof(CategorySet) +
         category_words_.capacity() * sizeof(std::uint32_t) +
         (binned_ ? binned_->memory_bytes() : 0);
}

std::string Model::scoring_layout() const {
  return binned_ ? binned_->describe() : "node walk (" + node_walk_reason_ + ")";
}

std::vector<std::size_t> Model::split_counts() const {
  std::vector<std::size_t> out(num_features_, 0);
  for (const auto& n : nodes_)
    if (!(n.meta & kLeaf)) ++out[feature_of(n)];
  return out;
}

}  // namespace fra::score
