#include "adapter/config/feature_tables.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <optional>

namespace fra::config::detail {
namespace {

using mapping::FeatureDefinition;

template <typename E>
struct Choice {
  std::string_view name;
  E value;
};

constexpr Choice<FeatureDefinition::Source> kSources[] = {
    {"observation", FeatureDefinition::Source::observation},
    {"encounter", FeatureDefinition::Source::encounter},
    {"patient", FeatureDefinition::Source::patient},
    {"condition", FeatureDefinition::Source::condition}};
constexpr Choice<FeatureDefinition::Aggregation> kAggregations[] = {
    {"last", FeatureDefinition::Aggregation::last},
    {"min", FeatureDefinition::Aggregation::min},
    {"max", FeatureDefinition::Aggregation::max},
    {"mean", FeatureDefinition::Aggregation::mean},
    {"count", FeatureDefinition::Aggregation::count},
    {"delta", FeatureDefinition::Aggregation::delta},
    {"slope", FeatureDefinition::Aggregation::slope},
    {"last_code", FeatureDefinition::Aggregation::last_code}};
constexpr Choice<FeatureDefinition::Measure> kMeasures[] = {
    {"admissions", FeatureDefinition::Measure::admissions},
    {"length_of_stay", FeatureDefinition::Measure::length_of_stay},
    {"days_since_discharge", FeatureDefinition::Measure::days_since_discharge},
    {"acuity", FeatureDefinition::Measure::acuity},
    {"emergency_visits", FeatureDefinition::Measure::emergency_visits},
    {"present", FeatureDefinition::Measure::present},
    {"count", FeatureDefinition::Measure::count},
    {"charlson", FeatureDefinition::Measure::charlson}};
constexpr Choice<FeatureDefinition::Attribute> kAttributes[] = {
    {"age", FeatureDefinition::Attribute::age}, {"sex", FeatureDefinition::Attribute::sex}};

// Which keys each source takes, beyond name, label, source, unit.
bool key_fits(std::string_view key, FeatureDefinition::Source s) {
  using S = FeatureDefinition::Source;
  if (key == "name" || key == "label" || key == "source" || key == "unit") return true;
  if (key == "window") return s == S::observation || s == S::encounter;
  if (key == "codes") return s == S::observation || s == S::condition;
  if (key == "aggregation" || key == "plausible") return s == S::observation;
  if (key == "classes") return s == S::encounter;
  if (key == "measure") return s == S::encounter || s == S::condition;
  if (key == "value_set") return s == S::condition;
  if (key == "attribute") return s == S::patient;
  if (key == "equals") return s == S::patient || s == S::observation;
  return false;
}

struct FeatureReader {
  std::string file;
  std::vector<Problem>& problems;

  void problem(const toml::node& n, std::string msg) {
    const auto& b = n.source().begin;
    problems.push_back(
        {file, static_cast<int>(b.line), static_cast<int>(b.column), std::move(msg)});
  }

  template <typename E, std::size_t N>
  std::optional<E> choice(const toml::node& n, const std::string& what,
                          const Choice<E> (&choices)[N]) {
    std::string names;
    if (auto s = n.as_string())
      for (const auto& c : choices)
        if (c.name == s->get()) return c.value;
    for (const auto& c : choices) names += (names.empty() ? "" : ", ") + std::string(c.name);
    problem(n, fmt::format("{}: expected one of {}, got {}", what, names, describe(n)));
    return std::nullopt;
  }

  std::optional<std::string> text(const toml::node& n, const std::string& what) {
    if (auto s = n.as_string(); s && !s->get().empty()) return s->get();
    problem(n, fmt::format("{}: expected a non-empty string, got {}", what, describe(n)));
    return std::nullopt;
  }

  std::optional<std::vector<std::string>> texts(const toml::node& n, const std::string& what) {
    std::vector<std::string> out;
    auto* a = n.as_array();
    if (a != nullptr)
      for (const auto& e : *a)
        if (auto s = e.as_string(); s && !s->get().empty()) out.push_back(s->get());
    if (a == nullptr || a->empty() || out.size() != a->size()) {
      problem(n,
              fmt::format("{}: expected an array of non-empty strings, got {}", what, describe(n)));
      return std::nullopt;
    }
    return out;
  }

  std::optional<double> number(const toml::node& n) {
    if (auto i = n.as_integer()) return static_cast<double>(i->get());
    if (auto f = n.as_floating_point()) return f->get();
    return std::nullopt;
  }

  // A value-set file (models/value-sets/README.md), relative to the file that names it: its
  // `codes` join the feature's, its [[category]] tables become the feature's categories.
  void read_value_set(const toml::node& at, const std::string& what, const std::string& name,
                      FeatureDefinition& d) {
    std::filesystem::path path = name;
    if (path.is_relative()) path = std::filesystem::path(file).parent_path() / path;
    toml::table root;
    try {
      root = toml::parse_file(path.string());
    } catch (const toml::parse_error& e) {
      const std::string desc(e.description());
      if (desc.find("File could not be opened") != std::string::npos)
        problem(at, fmt::format("{}: {}: cannot read", what, path.string()));
      else
        problems.push_back({path.string(), static_cast<int>(e.source().begin.line),
                            static_cast<int>(e.source().begin.column),
                            fmt::format("not valid TOML: {}", desc)});
      return;
    }
    FeatureReader in{path.string(), problems};
    for (auto&& [key, node] : root) {
      const std::string k(key.str());
      if (k == "name" || k == "title") continue;
      if (k == "codes") {
        if (auto v = in.texts(node, "codes")) d.codes.insert(d.codes.end(), v->begin(), v->end());
      } else if (k == "category" && node.is_array_of_tables()) {
        for (auto&& c : *node.as_array()) in.read_category(*c.as_table(), d.categories);
      } else {
        in.problem(node, fmt::format("{}: unknown key; a value set holds name, title, codes and "
                                     "[[category]] tables",
                                     k));
      }
    }
  }

  void read_category(const toml::table& t, std::vector<mapping::CodeCategory>& out) {
    mapping::CodeCategory c;
    for (auto&& [key, node] : t) {
      const std::string k(key.str());
      const std::string what = fmt::format("category[{}].{}", out.size() + 1, k);
      if (k == "name") {
        if (auto v = text(node, what)) c.name = *v;
      } else if (k == "title") {
        if (auto v = text(node, what)) c.label = *v;
      } else if (k == "superseded_by") {
        if (auto v = text(node, what)) c.superseded_by = *v;
      } else if (k == "codes") {
        if (auto v = texts(node, what)) c.codes = *v;
      } else if (k == "weight") {
        if (auto i = node.as_integer(); i != nullptr && i->get() > 0 && i->get() < 100)
          c.weight = static_cast<int>(i->get());
        else
          problem(node, fmt::format("{}: expected an integer 1..99, got {}", what, describe(node)));
      } else {
        problem(node, fmt::format("{}: unknown key", what));
      }
    }
    if (c.name.empty()) problem(t, fmt::format("category[{}]: name is missing", out.size() + 1));
    out.push_back(std::move(c));
  }

  // One [[feature]] table; nullopt after recording its problems.
  std::optional<FeatureDefinition> read(const toml::table& t, std::size_t index) {
    FeatureDefinition d;
    std::size_t before = problems.size();
    std::string where = fmt::format("feature[{}]", index);
    if (auto n = t.get("name")) {
      if (auto v = text(*n, where + ".name")) {
        d.name = *v;
        where = fmt::format("feature '{}'", d.name);
      }
    } else {
      problem(t, where + ": name is missing");
    }
    auto src = t.get("source");
    if (src == nullptr) {
      problem(t, where + ": source is missing (observation, encounter, condition or patient)");
      return std::nullopt;
    }
    auto source = choice(*src, where + ".source", kSources);
    if (!source) return std::nullopt;
    d.source = *source;
    for (auto&& [key, value] : t) {
      if (!key_fits(key.str(), d.source)) {
        problem(value, fmt::format("{}: unknown key '{}' for a source of {}", where, key.str(),
                                   describe(*src)));
        continue;
      }
      const std::string what = fmt::format("{}.{}", where, key.str());
      if (key.str() == "label") {
        if (auto v = text(value, what)) d.label = *v;
      } else if (key.str() == "unit") {
        if (auto v = text(value, what)) d.unit = *v;
      } else if (key.str() == "window") {
        if (auto v = text(value, what)) {
          auto w = mapping::parse_window(*v);
          if (w)
            d.window = *w;
          else
            problem(value, fmt::format("{}: {}", what, w.error().message));
        }
      } else if (key.str() == "codes") {
        if (auto v = texts(value, what)) d.codes.insert(d.codes.end(), v->begin(), v->end());
      } else if (key.str() == "value_set") {
        if (auto v = text(value, what)) read_value_set(value, what, *v, d);
      } else if (key.str() == "classes") {
        if (auto v = texts(value, what)) d.classes = *v;
      } else if (key.str() == "aggregation") {
        if (auto v = choice(value, what, kAggregations)) d.aggregation = *v;
      } else if (key.str() == "measure") {
        if (auto v = choice(value, what, kMeasures)) d.measure = *v;
      } else if (key.str() == "attribute") {
        if (auto v = choice(value, what, kAttributes)) d.attribute = *v;
      } else if (key.str() == "equals") {
        if (d.source == FeatureDefinition::Source::patient) {
          if (auto v = text(value, what)) d.equals = *v;
        } else if (auto v = texts(value, what)) {
          d.answers = *v;
        }
      } else if (key.str() == "plausible") {
        auto* a = value.as_array();
        std::optional<double> lo, hi;
        if (a != nullptr && a->size() == 2) lo = number(*a->get(0)), hi = number(*a->get(1));
        if (!lo || !hi)
          problem(value, fmt::format("{}: expected [min, max], got {}", what, describe(value)));
        else
          d.plausible_min = lo, d.plausible_max = hi;
      }
    }
    auto need = [&](const char* key, const char* why) {
      if (t.get(key) == nullptr) problem(t, fmt::format("{}: {} is missing ({})", where, key, why));
    };
    need("unit", "the UCUM unit of the value");
    if (d.source == FeatureDefinition::Source::observation) {
      need("codes", "[\"system|code\", ...]");
      need("aggregation", "last, min, max, mean, count, delta or slope");
    } else if (d.source == FeatureDefinition::Source::encounter) {
      need("classes", "Encounter.class codes such as [\"IMP\"]");
      need("measure",
           "admissions, length_of_stay, days_since_discharge, acuity or emergency_visits");
    } else if (d.source == FeatureDefinition::Source::condition) {
      need("measure", "present, count or charlson");
      if (t.get("codes") == nullptr && t.get("value_set") == nullptr)
        problem(t, fmt::format("{}: codes or value_set is missing", where));
    } else {
      need("attribute", "age or sex");
    }
    if (d.label.empty()) d.label = d.name;
    if (problems.size() != before) return std::nullopt;
    return d;
  }

  // Every [[feature]] of a parsed file, in order.
  void read_all(const toml::node& features, std::vector<FeatureDefinition>& out) {
    auto* a = features.as_array();
    if (a == nullptr || !a->is_array_of_tables()) {
      problem(features,
              fmt::format("feature: expected [[feature]] tables, got {}", describe(features)));
      return;
    }
    for (std::size_t i = 0; i < a->size(); ++i)
      if (auto d = read(*a->get(i)->as_table(), out.size() + 1)) out.push_back(std::move(*d));
  }
};

}  // namespace

std::string describe(const toml::node& n) {
  if (auto s = n.as_string()) return fmt::format("\"{}\"", s->get());
  if (auto i = n.as_integer()) return std::to_string(i->get());
  if (auto b = n.as_boolean()) return b->get() ? "true" : "false";
  if (n.is_table()) return "a table";
  if (n.is_array()) return "an array";
  return "a value of another type";
}

void read_feature_tables(const std::string& file, const toml::node& features,
                         std::vector<FeatureDefinition>& out, std::vector<Problem>& problems) {
  FeatureReader{file, problems}.read_all(features, out);
}

void read_feature_file(const std::string& config_path, const std::string& file,
                       std::vector<FeatureDefinition>& out, std::vector<Problem>& problems) {
  std::filesystem::path path = file;
  if (path.is_relative()) path = std::filesystem::path(config_path).parent_path() / path;
  toml::table root;
  try {
    root = toml::parse_file(path.string());
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    std::string what(e.description());
    if (what.find("File could not be opened") != std::string::npos)
      problems.push_back(
          {config_path, 0, 0, fmt::format("features.file: {}: cannot read", path.string())});
    else
      problems.push_back({path.string(), static_cast<int>(b.line), static_cast<int>(b.column),
                          fmt::format("not valid TOML: {}", what)});
    return;
  }
  FeatureReader reader{path.string(), problems};
  for (auto&& [key, node] : root) {
    if (key.str() == "feature")
      reader.read_all(node, out);
    else
      reader.problem(
          node,
          fmt::format("{}: unknown key; a features file holds [[feature]] tables only", key.str()));
  }
}

}  // namespace fra::config::detail
