// Loading a configuration: the TOML file, then the environment, then the defaults, each value
// checked against its key in key_specs(); then the rules between keys and the feature tables.

#include "adapter/config/config.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <map>
#include <tuple>

#include "adapter/config/feature_tables.hpp"

namespace fra::config {
namespace {

using detail::describe;

const char* type_name(Type t) {
  switch (t) {
    case Type::string:
      return "string";
    case Type::integer:
      return "integer";
    case Type::boolean:
      return "boolean";
  }
  return "?";
}

std::string expected(const KeySpec& k) {
  if (k.field.type == Type::integer) return fmt::format("integer {}..{}", k.min, k.max);
  return type_name(k.field.type);
}

const KeySpec* find_spec(std::string_view name) {
  for (const auto& k : key_specs())
    if (k.name == name) return &k;
  return nullptr;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j)
      cur[j] =
          std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string did_you_mean(std::string_view name) {
  const KeySpec* best = nullptr;
  std::size_t best_d = 3;
  for (const auto& k : key_specs()) {
    std::size_t d = edit_distance(name, k.name);
    if (d < best_d) best_d = d, best = &k;
  }
  return best == nullptr ? "" : fmt::format(" (did you mean '{}'?)", best->name);
}

// Parses a text value (default or environment) into the key's type.
std::optional<Value> parse_text(const KeySpec& k, std::string_view text) {
  switch (k.field.type) {
    case Type::string:
      return Value(std::string(text));
    case Type::boolean:
      if (text == "true" || text == "1") return Value(true);
      if (text == "false" || text == "0") return Value(false);
      return std::nullopt;
    case Type::integer: {
      std::int64_t v = 0;
      auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (ec != std::errc() || p != text.data() + text.size()) return std::nullopt;
      return Value(v);
    }
  }
  return std::nullopt;
}

// The value of a TOML node, when it is of the key's type.
std::optional<Value> toml_value(const KeySpec& k, const toml::node& n) {
  if (k.field.type == Type::string && n.is_string()) return Value(n.as_string()->get());
  if (k.field.type == Type::integer && n.is_integer()) return Value(n.as_integer()->get());
  if (k.field.type == Type::boolean && n.is_boolean()) return Value(n.as_boolean()->get());
  return std::nullopt;
}

std::optional<std::string> range_problem(const KeySpec& k, const Value& v) {
  if (!k.choices.empty()) {
    const auto& s = std::get<std::string>(v);
    if (std::find(k.choices.begin(), k.choices.end(), s) == k.choices.end())
      return fmt::format("{}: expected one of {}, got \"{}\"", k.name, fmt::join(k.choices, ", "),
                         s);
  }
  if (k.field.type == Type::integer) {
    auto i = std::get<std::int64_t>(v);
    if (i < k.min || i > k.max)
      return fmt::format("{}: expected {}, got {}", k.name, expected(k), i);
  }
  if (k.field.type == Type::string && !k.default_value && std::get<std::string>(v).empty())
    return fmt::format("{}: must not be empty", k.name);
  return std::nullopt;
}

// Where a key's value came from: a place in the file, an environment variable, or neither
// (its default).
struct Origin {
  int line = 0;
  int column = 0;
  std::string variable;
};

class Loader {
 public:
  Loader(std::string path, const char* (*env)(const char*)) : path_(std::move(path)), env_(env) {
    cfg_.file = path_;
  }

  LoadResult run() {
    for (const auto& spec : key_specs())
      if (spec.default_value) spec.field.set(cfg_, *parse_text(spec, *spec.default_value));
    toml::table root;
    if (!parse(root)) return {std::nullopt, std::move(problems_)};
    read_file(root);
    read_environment();
    check_rules();
    // toml++ iterates keys in name order; report in file order, as a compiler does, and the
    // problems with no place in the file after those, in the order they were found.
    std::stable_sort(problems_.begin(), problems_.end(), [](const Problem& a, const Problem& b) {
      return std::tuple(a.line == 0, a.line, a.column) < std::tuple(b.line == 0, b.line, b.column);
    });
    if (!cfg_.features.file.empty())
      detail::read_feature_file(path_, cfg_.features.file, cfg_.features.definitions, problems_);
    if (problems_.empty()) {
      if (auto e = mapping::check_definitions(cfg_.features.definitions))
        problem({}, e->message);
      else if (auto cat = mapping::catalog_of(cfg_.features.definitions); !cat)
        problem({}, cat.error().message);
      else
        cfg_.features.catalog = std::move(cat).value();
    }
    if (!problems_.empty()) return {std::nullopt, std::move(problems_)};
    return {std::move(cfg_), {}};
  }

 private:
  void problem(const Origin& at, std::string msg) {
    problems_.push_back({path_, at.line, at.column, std::move(msg)});
  }

  static Origin place(const toml::node& n) {
    const auto& b = n.source().begin;
    return {static_cast<int>(b.line), static_cast<int>(b.column), ""};
  }

  bool parse(toml::table& root) {
    try {
      root = toml::parse_file(path_);
      return true;
    } catch (const toml::parse_error& e) {
      const auto& b = e.source().begin;
      std::string what(e.description());
      if (what.find("File could not be opened") != std::string::npos)
        problem({}, "cannot read the configuration file");
      else
        problem({static_cast<int>(b.line), static_cast<int>(b.column), ""},
                fmt::format("not valid TOML: {}", what));
      return false;
    }
  }

  void read_file(const toml::table& root) {
    for (auto&& [section, node] : root) {
      if (section.str() == "feature") {
        detail::read_feature_tables(path_, node, cfg_.features.definitions, problems_);
        continue;
      }
      auto* table = node.as_table();
      if (table == nullptr) {
        problem(place(node),
                fmt::format("{}: expected a [section], got {}", section.str(), describe(node)));
        continue;
      }
      for (auto&& [key, value] : *table) {
        std::string name = fmt::format("{}.{}", section.str(), key.str());
        const KeySpec* spec = find_spec(name);
        if (spec == nullptr) {
          problem(place(value), fmt::format("{}: unknown key{}", name, did_you_mean(name)));
          continue;
        }
        // Present, even when wrong: one problem for it, not also "required key is missing".
        origins_[spec->name] = place(value);
        auto v = toml_value(*spec, value);
        if (!v) {
          problem(place(value),
                  fmt::format("{}: expected {}, got {}", name, expected(*spec), describe(value)));
        } else if (auto p = range_problem(*spec, *v)) {
          problem(place(value), *p);
        } else {
          spec->field.set(cfg_, *v);
        }
      }
    }
  }

  void read_environment() {
    for (const auto& spec : key_specs()) {
      std::string var = env_name(spec.name);
      if (const char* text = env_(var.c_str()); text != nullptr) {
        origins_[spec.name] = {0, 0, var};
        auto v = parse_text(spec, text);
        if (!v)
          problem({}, fmt::format("{} (from {}): expected {}", spec.name, var, expected(spec)));
        else if (auto p = range_problem(spec, *v))
          problem({}, fmt::format("{} (from {})", *p, var));
        else
          spec.field.set(cfg_, *v);
      } else if (!spec.default_value && origins_.count(spec.name) == 0) {
        problem({}, fmt::format("{}: required key is missing (set it in the file or in {})",
                                spec.name, var));
      }
    }
  }

  // A rule between keys is reported where the keys were set: at the key the message names
  // first, else at the key whose value set the rule off, when the file sets them; else naming
  // the variable that set one of them.
  void rule_problem(std::string_view named, std::string_view trigger, std::string msg) {
    const Origin* in_file = nullptr;
    const Origin* in_env = nullptr;
    for (auto key : {trigger, named}) {
      auto it = origins_.find(key);
      if (it == origins_.end()) continue;
      (it->second.line > 0 ? in_file : in_env) = &it->second;
    }
    if (in_file != nullptr) return problem(*in_file, std::move(msg));
    if (in_env != nullptr) msg += fmt::format(" (from {})", in_env->variable);
    problem({}, std::move(msg));
  }

  void check_rules() {
    const FhirSection& f = cfg_.fhir;
    if (!f.smart_token_url.empty()) {
      if (f.smart_client_id.empty())
        rule_problem("fhir.smart_client_id", "fhir.smart_token_url",
                     "fhir.smart_client_id: required when fhir.smart_token_url is set");
      if (f.smart_private_key_file.empty())
        rule_problem("fhir.smart_private_key_file", "fhir.smart_token_url",
                     "fhir.smart_private_key_file: required when fhir.smart_token_url is set");
      if (!f.bearer_token_file.empty())
        rule_problem("fhir.bearer_token_file", "fhir.smart_token_url",
                     "fhir.bearer_token_file: set it or fhir.smart_token_url, not both");
    }
    if (!f.basic_user.empty()) {
      if (f.basic_password_file.empty())
        rule_problem("fhir.basic_password_file", "fhir.basic_user",
                     "fhir.basic_password_file: required when fhir.basic_user is set");
      if (!f.bearer_token_file.empty() || !f.smart_token_url.empty())
        rule_problem(
            "fhir.basic_user", "fhir.basic_user",
            "fhir.basic_user: basic authentication, a bearer token and SMART exclude each other");
    }
    if (f.client_cert_file.empty() != f.client_key_file.empty()) {
      const char* set =
          f.client_cert_file.empty() ? "fhir.client_key_file" : "fhir.client_cert_file";
      rule_problem(set, set, "fhir.client_cert_file and fhir.client_key_file go together");
    }
    const SubscriptionSection& s = cfg_.subscription;
    if (cfg_.sync.subscription_mode()) {
      if (s.endpoint.empty())
        rule_problem("subscription.endpoint", "sync.mode",
                     "subscription.endpoint: required when sync.mode is \"subscription\"");
      if (s.secret_file.empty())
        rule_problem("subscription.secret_file", "sync.mode",
                     "subscription.secret_file: required when sync.mode is \"subscription\"");
      if (cfg_.http.listen.empty())
        rule_problem("http.listen", "sync.mode",
                     "http.listen: required when sync.mode is \"subscription\" (notifications "
                     "arrive there)");
    }
  }

  std::string path_;
  const char* (*env_)(const char*);
  Config cfg_;
  std::vector<Problem> problems_;
  std::map<std::string_view, Origin> origins_;  // the keys the file or the environment set
};

}  // namespace

std::string env_name(std::string_view key) {
  std::string out = "FRA_";
  for (char c : key)
    out += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string Problem::format() const {
  if (line > 0) return fmt::format("{}:{}:{}: error: {}", file, line, column, message);
  return fmt::format("{}: error: {}", file, message);
}

LoadResult load(const std::string& path, const char* (*env)(const char*)) {
  return Loader(path, env).run();
}

FeatureFile load_features(const std::string& path) {
  FeatureFile out;
  const std::string absolute = std::filesystem::absolute(path).string();
  std::vector<mapping::FeatureDefinition> definitions;
  detail::read_feature_file(absolute, absolute, definitions, out.problems);
  if (!out.problems.empty()) return out;
  if (auto e = mapping::check_definitions(definitions)) {
    out.problems.push_back({path, 0, 0, e->message});
    return out;
  }
  auto cat = mapping::catalog_of(definitions);
  if (!cat) {
    out.problems.push_back({path, 0, 0, cat.error().message});
    return out;
  }
  out.features = std::move(definitions);
  out.catalog = std::move(cat).value();
  return out;
}

}  // namespace fra::config
