#include <doctest/doctest.h>
#include <fmt/format.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "adapter/score/explain.hpp"
#include "adapter/score/manifest.hpp"
#include "adapter/score/model.hpp"

using fra::score::Model;
using fra::score::ModelError;

namespace {
// Two stumps on feature 0 (threshold 0.5, missing goes right) and feature 1 (threshold 2, missing
// goes left), binary:logistic with base_score 0.5.
std::string tiny(const std::string& left0 = "[1, -1, -1]",
                 const std::string& objective = "binary:logistic") {
  return R"({"learner":{"learner_model_param":{"base_score":"5E-1","num_class":"0","num_feature":"2"},
    "objective":{"name":")" +
         objective + R"("},
    "gradient_booster":{"name":"gbtree","model":{"tree_info":[0,0],"trees":[
      {"left_children":)" +
         left0 + R"(,"right_children":[2,-1,-1],"split_indices":[0,0,0],
       "split_conditions":[0.5,-1.0,1.0],"default_left":[0,0,0],"split_type":[0,0,0],"sum_hessian":[4,2,2]},
      {"left_children":[1,-1,-1],"right_children":[2,-1,-1],"split_indices":[1,0,0],
       "split_conditions":[2.0,0.25,-0.25],"default_left":[true,false,false],"split_type":[0,0,0],
       "sum_hessian":[4,3,1]}]}}}})";
}
const float kNaN = std::numeric_limits<float>::quiet_NaN();
}  // namespace

TEST_CASE("x < threshold goes left; equal goes right; NaN follows default_left") {
  Model m = Model::from_bytes(tiny());
  CHECK(m.num_trees() == 2);
  auto margin = [&m](const float* row) {
    float out = 0;
    m.margins(row, &out);
    return out;
  };
  float below[] = {0.49f, 1.0f};
  float equal[] = {0.5f, 2.0f};
  float missing[] = {kNaN, kNaN};
  CHECK(margin(below) == -1.0f + 0.25f);
  CHECK(margin(equal) == 1.0f - 0.25f);
  CHECK(margin(missing) == 1.0f + 0.25f);
  float inf[] = {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()};
  CHECK(margin(inf) == 1.0f + 0.25f);
  CHECK(m.predict(below) == doctest::Approx(1.0 / (1.0 + std::exp(0.75))).epsilon(1e-7));
}

TEST_CASE("malformed models are refused naming the field and tree") {
  auto message = [](const std::string& json) {
    try {
      Model::from_bytes(json);
    } catch (const ModelError& e) {
      return std::string(e.what());
    }
    return std::string("loaded");
  };
  CHECK(message(tiny("[5, -1, -1]")) ==
        "trees[0]: node 0 has children 5 and 2 out of range (3 nodes)");
  CHECK(message(tiny("[0, -1, -1]")) == "trees[0]: node 0 is reached twice (not a tree)");
  CHECK(message(tiny("[1, -1]")) == "trees[0].right_children: has 3 entries, left_children has 2");
  CHECK(message(tiny("[1, -1, -1]", "rank:ndcg"))
            .find("learner.objective.name: 'rank:ndcg' is not supported") == 0);
  CHECK(message(tiny("[1, -1, -1]", "multi:softmax")) ==
        "learner.learner_model_param.num_class: multi:softmax needs at least 2 classes");
  CHECK(message("{").find("not JSON at offset") == 0);
  CHECK(message("{}") == "model.learner: missing");
  std::string bad_feature = tiny();
  bad_feature.replace(bad_feature.find("\"split_indices\":[1,0,0]"), 23,
                      "\"split_indices\":[7,0,0]");
  CHECK(message(bad_feature) == "trees[1].split_indices[0]: feature 7 is not below num_feature 2");
}

TEST_CASE("the shipped model package loads and its manifest matches the model") {
  auto pkg =
      fra::score::load_model_package(std::string(FRA_SOURCE_DIR) + "/models/readmission-risk");
  CHECK(pkg.model.num_features() == pkg.manifest.features.size());
  CHECK(pkg.model.outputs_probability());
  CHECK(pkg.manifest.band_for(0.05).code == "low");
  CHECK(pkg.manifest.band_for(0.10).code == "moderate");
  CHECK(pkg.manifest.band_for(0.99).code == "high");
}

TEST_CASE(
    "contributions of the tiny model: each stump credits its own feature, bias is the expected "
    "value") {
  Model m = Model::from_bytes(tiny());
  float row[] = {0.49f, 1.0f};
  float c[3];
  m.contributions(row, c);
  // Tree 0: expected value (2*-1 + 2*1)/4 = 0, the row takes -1: feature 0 gets -1.
  // Tree 1: expected value (3*0.25 + 1*-0.25)/4 = 0.125, the row takes 0.25: feature 1 gets 0.125.
  CHECK(c[0] == doctest::Approx(-1.0));
  CHECK(c[1] == doctest::Approx(0.125));
  CHECK(c[2] == doctest::Approx(0.125));  // base margin logit(0.5) = 0, plus the expected values
  float margin = 0;
  m.margins(row, &margin);
  CHECK(c[0] + c[1] + c[2] == doctest::Approx(margin));
}

TEST_CASE("top contributions: largest absolute first, zeros left out") {
  float row[] = {1, 2, 3, 4};
  float contribs[] = {0.1f, -0.5f, 0.0f, 0.3f, 9.0f};
  auto top = fra::score::top_contributions(row, contribs, 4, 5);
  REQUIRE(top.size() == 3);
  CHECK(top[0].feature == 1);
  CHECK(top[0].value == 2);
  CHECK(top[1].feature == 3);
  CHECK(top[2].feature == 0);
  CHECK(fra::score::top_contributions(row, contribs, 4, 1).size() == 1);
}

namespace {
// 40 trees over 3 features whose thresholds include -inf, +inf, -0, +0, a denormal and
// FLT_MAX, mixed depths (a lone leaf, a leaf at depth 1, leaves at depth 2) and both default
// directions: enough trees for the single-row walk's full groups of 16 and a remainder.
struct Awkward {
  struct Tree {
    int a, b;
    float t1, t2;
    bool d1, d2;
    float v2, v3, v4;
    bool lone;
  };
  std::vector<Tree> trees;
  std::string json;

  int features;

  // `n` trees over `features` features; the first `distinct` trees split feature 0 at
  // thresholds of their own (to reach the wider node formats).
  explicit Awkward(int n = 40, int distinct = 0, int features_ = 3) : features(features_) {
    const float inf = std::numeric_limits<float>::infinity();
    const float cuts[] = {-inf, inf,  -0.0f, 0.0f, 1e-45f, std::numeric_limits<float>::max(),
                          0.5f, -2.0f};
    auto num = [](float x) {
      if (std::isinf(x)) return std::string(x > 0 ? "Infinity" : "-Infinity");
      return fmt::format("{:.9g}", x);
    };
    std::string body, info;
    for (int t = 0; t < n; ++t) {
      const auto ft = static_cast<float>(t);
      Tree tr{t % features,
              (t + 1) % features,
              cuts[t % 8],
              cuts[(t * 5 + 3) % 8],
              t % 2 == 0,
              t % 3 == 0,
              0.125f * (ft + 1),
              -0.0625f * ft,
              0.03125f * static_cast<float>(t % 7),
              t % 13 == 7};
      if (t < distinct) {
        tr.a = 0;
        tr.t1 = 0.001f * ft - 0.25f;
        tr.lone = false;
      }
      trees.push_back(tr);
      if (t > 0) {
        body += ",";
        info += ",";
      }
      info += "0";
      if (tr.lone) {
        body += fmt::format(
            R"({{"left_children":[-1],"right_children":[-1],"split_indices":[0],)"
            R"("split_conditions":[{}],"default_left":[0],"split_type":[0],"sum_hessian":[1]}})",
            num(tr.v2));
      } else {
        body += fmt::format(
            R"({{"left_children":[1,3,-1,-1,-1],"right_children":[2,4,-1,-1,-1],)"
            R"("split_indices":[{},{},0,0,0],"split_conditions":[{},{},{},{},{}],)"
            R"("default_left":[{},{},0,0,0],"split_type":[0,0,0,0,0],"sum_hessian":[6,4,2,2,2]}})",
            tr.a, tr.b, num(tr.t1), num(tr.t2), num(tr.v2), num(tr.v3), num(tr.v4), int(tr.d1),
            int(tr.d2));
      }
    }
    json =
        R"({"learner":{"learner_model_param":{"base_score":"0E0","num_class":"0","num_feature":")" +
        std::to_string(features) + R"("},
      "objective":{"name":"binary:logitraw"},"gradient_booster":{"name":"gbtree","model":{"tree_info":[)" +
        info + R"(],"trees":[)" + body + "]}}}}";
  }

  // XGBoost's rule, written out: x < threshold goes left, NaN takes the default direction;
  // leaves summed in tree order in float from the base margin (0 here).
  float margin(const float* row) const {
    float sum = 0.0f;
    auto left = [](float x, float t, bool d) { return std::isnan(x) ? d : x < t; };
    for (const Tree& tr : trees) {
      if (tr.lone)
        sum += tr.v2;
      else if (!left(row[tr.a], tr.t1, tr.d1))
        sum += tr.v2;
      else
        sum += left(row[tr.b], tr.t2, tr.d2) ? tr.v3 : tr.v4;
    }
    return sum;
  }
};
}  // namespace

TEST_CASE("one row at a time equals the rule and the batch, to the bit, on awkward thresholds") {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> values = {-inf,
                                     -std::numeric_limits<float>::max(),
                                     -2.0f,
                                     -1e-45f,
                                     -0.0f,
                                     0.0f,
                                     1e-45f,
                                     0.4999999f,
                                     0.5f,
                                     1.0f,
                                     std::numeric_limits<float>::max(),
                                     inf,
                                     kNaN};
  struct Case {
    int trees, distinct, features;
    const char* layout;  // how model inspect names it
  };
  // Each node format, and a model with too many features for the vector walk.
  for (const Case& k :
       {Case{40, 0, 3,
             "compact layout: 2-byte nodes (8-bit slots and ranks), 40 trees (padded to 48)"},
        Case{330, 300, 3, "compact layout: 2-byte nodes (7-bit slots, 9-bit ranks), 330 trees"},
        Case{620, 600, 3, "compact layout: 4-byte nodes (16-bit slots and ranks), 620 trees"},
        Case{40, 0, 70, "compact layout: 2-byte nodes (8-bit slots and ranks), 40 trees"}}) {
    const std::string layout = k.layout;
    CAPTURE(layout);
    const Awkward awkward(k.trees, k.distinct, k.features);
    const auto width = static_cast<std::size_t>(k.features);
    std::vector<float> rows;
    std::size_t n = 0;
    for (float x : values)
      for (float y : values)
        for (float z : {values[0], values[4], values[8], values[12], values[11], 0.05f, -0.2f}) {
          std::vector<float> row = {x, y, z};
          for (std::size_t f = 3; f < width; ++f)
            row.push_back(values[(n + 5 * f) % values.size()]);
          rows.insert(rows.end(), row.begin(), row.end());
          ++n;
        }
    // Once with the CPU's vector walk, where it has one, once with the portable walk.
    for (std::string simd : {"1", "0"}) {
      CAPTURE(simd);
      setenv("FRA_SIMD", simd.c_str(), 1);
      Model m = Model::from_bytes(awkward.json);
      CHECK(m.scoring_layout().rfind(k.layout, 0) == 0);
      if (simd == "0" || k.features > 32)
        CHECK(m.scoring_layout().find("portable walk") != std::string::npos);
      std::vector<float> batch(n);
      m.margins_batch(rows.data(), n, batch.data());
      std::size_t wrong = 0, unlike_batch = 0;
      for (std::size_t r = 0; r < n; ++r) {
        float one = 0;
        m.margins(rows.data() + width * r, &one);
        const auto bits = std::bit_cast<std::uint32_t>(one);
        wrong += bits != std::bit_cast<std::uint32_t>(awkward.margin(rows.data() + width * r));
        unlike_batch += bits != std::bit_cast<std::uint32_t>(batch[r]);
      }
      CHECK(wrong == 0);
      CHECK(unlike_batch == 0);
    }
  }
  unsetenv("FRA_SIMD");
}

TEST_CASE("a model declaring half a billion features loads without allocating by that count") {
  // The compact layout refuses more than 32,768 features before it allocates anything per
  // feature; a model may declare far more features than its trees use.
  const std::string json =
      R"({"learner":{"learner_model_param":{"base_score":"5E-1","num_class":"0",)"
      R"("num_feature":"536870911"},"objective":{"name":"binary:logistic"},)"
      R"("gradient_booster":{"name":"gbtree","model":{"tree_info":[0],"trees":[)"
      R"({"left_children":[-1],"right_children":[-1],"split_indices":[0],)"
      R"("split_conditions":[0.25],"default_left":[0],"split_type":[0],"sum_hessian":[1]}]}}}})";
  Model m = Model::from_bytes(json);
  CHECK(m.num_features() == 536870911u);
  CHECK(m.scoring_layout().find("node walk (536870911 features") == 0);
}
