#include "adapter/config/config.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <charconv>
#include <filesystem>
#include <map>

namespace fra::config {
namespace {

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
  if (k.type == Type::integer) return fmt::format("integer {}..{}", k.min, k.max);
  return type_name(k.type);
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
  switch (k.type) {
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

// Keys whose string value is one of a few words.
const std::vector<std::string_view>* choices_of(std::string_view key) {
  static const std::map<std::string_view, std::vector<std::string_view>> kChoices{
      {"log.level", {"trace", "debug", "info", "warn", "error"}},
      {"log.format", {"text", "json"}},
      {"sync.mode", {"poll", "subscription"}},
      {"subscription.shape", {"auto", "r4", "backport"}},
  };
  auto it = kChoices.find(key);
  return it == kChoices.end() ? nullptr : &it->second;
}

std::optional<std::string> range_problem(const KeySpec& k, const Value& v) {
  if (const auto* words = choices_of(k.name); words != nullptr) {
    const auto& s = std::get<std::string>(v);
    if (std::find(words->begin(), words->end(), s) == words->end())
      return fmt::format("{}: expected one of {}, got \"{}\"", k.name, fmt::join(*words, ", "), s);
  }
  if (k.type == Type::integer) {
    auto i = std::get<std::int64_t>(v);
    if (i < k.min || i > k.max)
      return fmt::format("{}: expected {}, got {}", k.name, expected(k), i);
  }
  if (k.type == Type::string && !k.default_value && std::get<std::string>(v).empty())
    return fmt::format("{}: must not be empty", k.name);
  return std::nullopt;
}

std::string describe(const toml::node& n) {
  if (auto s = n.as_string()) return fmt::format("\"{}\"", s->get());
  if (auto i = n.as_integer()) return std::to_string(i->get());
  if (auto b = n.as_boolean()) return b->get() ? "true" : "false";
  if (n.is_table()) return "a table";
  if (n.is_array()) return "an array";
  return "a value of another type";
}

// ---- [[feature]] tables ---------------------------------------------------------------------

using mapping::FeatureDefinition;

template <typename E>
struct Choice {
  std::string_view name;
  E value;
};

constexpr Choice<FeatureDefinition::Source> kSources[] = {
    {"observation", FeatureDefinition::Source::observation},
    {"encounter", FeatureDefinition::Source::encounter},
    {"patient", FeatureDefinition::Source::patient}};
constexpr Choice<FeatureDefinition::Aggregation> kAggregations[] = {
    {"last", FeatureDefinition::Aggregation::last},
    {"min", FeatureDefinition::Aggregation::min},
    {"max", FeatureDefinition::Aggregation::max},
    {"mean", FeatureDefinition::Aggregation::mean},
    {"count", FeatureDefinition::Aggregation::count},
    {"delta", FeatureDefinition::Aggregation::delta},
    {"slope", FeatureDefinition::Aggregation::slope}};
constexpr Choice<FeatureDefinition::Measure> kMeasures[] = {
    {"admissions", FeatureDefinition::Measure::admissions},
    {"length_of_stay", FeatureDefinition::Measure::length_of_stay},
    {"days_since_discharge", FeatureDefinition::Measure::days_since_discharge}};
constexpr Choice<FeatureDefinition::Attribute> kAttributes[] = {
    {"age", FeatureDefinition::Attribute::age}, {"sex", FeatureDefinition::Attribute::sex}};

// Which keys each source takes, beyond name, label, source, unit.
bool key_fits(std::string_view key, FeatureDefinition::Source s) {
  using S = FeatureDefinition::Source;
  if (key == "name" || key == "label" || key == "source" || key == "unit") return true;
  if (key == "window") return s != S::patient;
  if (key == "codes" || key == "aggregation" || key == "plausible") return s == S::observation;
  if (key == "classes" || key == "measure") return s == S::encounter;
  if (key == "attribute" || key == "equals") return s == S::patient;
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
      problem(t, where + ": source is missing (observation, encounter or patient)");
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
        if (auto v = texts(value, what)) d.codes = *v;
      } else if (key.str() == "classes") {
        if (auto v = texts(value, what)) d.classes = *v;
      } else if (key.str() == "aggregation") {
        if (auto v = choice(value, what, kAggregations)) d.aggregation = *v;
      } else if (key.str() == "measure") {
        if (auto v = choice(value, what, kMeasures)) d.measure = *v;
      } else if (key.str() == "attribute") {
        if (auto v = choice(value, what, kAttributes)) d.attribute = *v;
      } else if (key.str() == "equals") {
        if (auto v = text(value, what)) d.equals = *v;
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
      need("measure", "admissions, length_of_stay or days_since_discharge");
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

const std::vector<KeySpec>& key_specs() {
  static const std::vector<KeySpec> kSpecs{
      {"fhir.base_url", Type::string, std::nullopt, 0, 0,
       "Base URL of the FHIR R4 server, e.g. https://ehr.example.org/fhir/R4"},
      {"fhir.page_size", Type::integer, "200", 1, 1000,
       "Resources asked for per search page (_count)"},
      {"fhir.timeout_seconds", Type::integer, "30", 1, 600, "Timeout of one HTTP request"},
      {"fhir.max_attempts", Type::integer, "5", 1, 20,
       "Tries per request before giving up on 429, 5xx, timeouts and lost connections"},
      {"fhir.bearer_token_file", Type::string, "", 0, 0,
       "File holding a static bearer token; empty for no authentication"},
      {"fhir.verify_tls", Type::boolean, "true", 0, 0, "Verify the server's TLS certificate"},
      {"fhir.ca_file", Type::string, "", 0, 0,
       "PEM bundle of the CAs to trust for the FHIR server (a hospital's own CA); empty for the "
       "system's"},
      {"fhir.client_cert_file", Type::string, "", 0, 0,
       "PEM client certificate for mutual TLS; empty for none"},
      {"fhir.client_key_file", Type::string, "", 0, 0,
       "PEM private key of the client certificate, mode 0600"},
      {"fhir.basic_user", Type::string, "", 0, 0, "HTTP basic authentication user; empty for none"},
      {"fhir.basic_password_file", Type::string, "", 0, 0,
       "File holding the basic authentication password, mode 0600"},
      {"fhir.smart_token_url", Type::string, "", 0, 0,
       "SMART Backend Services: the token endpoint; empty to not use SMART"},
      {"fhir.smart_client_id", Type::string, "", 0, 0,
       "SMART Backend Services: the registered client id"},
      {"fhir.smart_private_key_file", Type::string, "", 0, 0,
       "SMART Backend Services: PEM private key, RSA (RS384) or EC P-384 (ES384), mode 0600"},
      {"fhir.smart_key_id", Type::string, "", 0, 0,
       "SMART Backend Services: the key's kid in the registered JWK set"},
      {"fhir.smart_scope", Type::string,
       "system/Patient.read system/Observation.read system/Encounter.read "
       "system/RiskAssessment.write",
       0, 0, "SMART Backend Services: the scopes asked for"},
      {"database.url", Type::string, std::nullopt, 0, 0,
       "libpq connection string or URL of the PostgreSQL feature store"},
      {"pseudonym.key_file", Type::string, std::nullopt, 0, 0,
       "File holding the secret pseudonym key (at least 32 bytes, mode 0600)"},
      {"pseudonym.seal_key_file", Type::string, "", 0, 0,
       "File holding the key (>= 32 bytes, mode 0600) that seals the Patient references the "
       "write-back needs, "
       "kept apart from pseudonym.key_file; empty derives it from pseudonym.key_file"},
      {"model.path", Type::string, std::nullopt, 0, 0,
       "Directory of the model package (manifest.json and the model it names)"},
      {"sync.overlap_seconds", Type::integer, "5", 0, 86400,
       "Each search starts this long before the cursor, for servers whose lastUpdated order lags; "
       "versions already stored are skipped"},
      {"sync.track_deletions", Type::boolean, "true", 0, 0,
       "Follow each type's _history for deleted Observations and Encounters (a server without it "
       "is "
       "noted once and the sync goes on)"},
      {"sync.mode", Type::string, "poll", 0, 0,
       "run: poll (search each type on its interval) or subscription (register rest-hook "
       "Subscriptions "
       "and fetch when notified; poll at sync.safety_net_seconds as well)"},
      {"sync.patient_interval_seconds", Type::integer, "60", 1, 86400,
       "run, poll mode: seconds between Patient searches"},
      {"sync.encounter_interval_seconds", Type::integer, "30", 1, 86400,
       "run, poll mode: seconds between Encounter searches"},
      {"sync.observation_interval_seconds", Type::integer, "15", 1, 86400,
       "run, poll mode: seconds between Observation searches"},
      {"sync.safety_net_seconds", Type::integer, "300", 1, 86400,
       "run, subscription mode: seconds between searches of every type, so that a lost "
       "notification delays "
       "a score but never loses it"},
      {"features.file", Type::string, "", 0, 0,
       "A TOML file of [[feature]] tables (docs/features.md), relative to this file; they add to "
       "the "
       "[[feature]] tables here"},
      {"retention.raw_inputs_days", Type::integer, "0", 0, 36500,
       "Observation values, encounters and dead letters older than this many days are purged "
       "(daily by run, or "
       "by `purge`); scores and their feature vectors stay. 0 keeps everything. Must exceed every "
       "feature's window"},
      {"score.batch_size", Type::integer, "1000", 1, 100000, "Patients scored per transaction"},
      {"writeback.batch_size", Type::integer, "100", 1, 1000, "RiskAssessments per batch Bundle"},
      {"writeback.in_flight", Type::integer, "4", 1, 32,
       "Batch Bundles sent at once, each on its own connection"},
      {"log.level", Type::string, "info", 0, 0, "One of trace, debug, info, warn, error"},
      {"log.format", Type::string, "text", 0, 0,
       "text: one human-readable line per event; json: one JSON object per line (for a log "
       "collector)"},
      {"subscription.endpoint", Type::string, "", 0, 0,
       "subscription mode: the URL at which the FHIR server reaches this adapter's /notify (e.g. "
       "https://adapter.example.org:9464/notify); each type's Subscription posts to it plus "
       "/<type>"},
      {"subscription.shape", Type::string, "auto", 0, 0,
       "subscription mode: r4 (one Subscription per resource type, criteria the type), backport "
       "(one Subscription "
       "to a SubscriptionTopic, Subscriptions R5 Backport IG) or auto (backport when the server's "
       "CapabilityStatement offers a topic, else r4)"},
      {"subscription.topic", Type::string, "", 0, 0,
       "subscription mode, backport: the SubscriptionTopic canonical URL to subscribe to; empty "
       "for the first "
       "the server advertises"},
      {"subscription.secret_file", Type::string, "", 0, 0,
       "subscription mode: file holding the secret the FHIR server sends in the X-Fra-Secret "
       "header, mode 0600"},
      {"http.listen", Type::string, "127.0.0.1:9464", 0, 0,
       "run: address:port of /healthz, /readyz, /metrics and /notify; empty for none"},
  };
  return kSpecs;
}

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

const std::string& Config::str(std::string_view key) const {
  auto it = values_.find(key);
  assert(it != values_.end() && std::holds_alternative<std::string>(it->second));
  return std::get<std::string>(it->second);
}

std::int64_t Config::integer(std::string_view key) const {
  auto it = values_.find(key);
  assert(it != values_.end() && std::holds_alternative<std::int64_t>(it->second));
  return std::get<std::int64_t>(it->second);
}

bool Config::boolean(std::string_view key) const {
  auto it = values_.find(key);
  assert(it != values_.end() && std::holds_alternative<bool>(it->second));
  return std::get<bool>(it->second);
}

struct Loader {
  static LoadResult run(const std::string& path, const char* (*env)(const char*)) {
    LoadResult r;
    Config cfg;
    cfg.file_ = path;
    auto problem = [&](int line, int col, std::string msg) {
      r.problems.push_back({path, line, col, std::move(msg)});
    };

    toml::table root;
    try {
      root = toml::parse_file(path);
    } catch (const toml::parse_error& e) {
      const auto& b = e.source().begin;
      std::string what(e.description());
      if (what.find("File could not be opened") != std::string::npos)
        problem(0, 0, "cannot read the configuration file");
      else
        problem(static_cast<int>(b.line), static_cast<int>(b.column),
                fmt::format("not valid TOML: {}", what));
      return r;
    }

    FeatureReader features{path, r.problems};
    for (auto&& [section, node] : root) {
      if (section.str() == "feature") {
        features.read_all(node, cfg.features_);
        continue;
      }
      const auto& sb = node.source().begin;
      auto* table = node.as_table();
      if (table == nullptr) {
        problem(static_cast<int>(sb.line), static_cast<int>(sb.column),
                fmt::format("{}: expected a [section], got {}", section.str(), describe(node)));
        continue;
      }
      for (auto&& [key, value] : *table) {
        std::string name = fmt::format("{}.{}", section.str(), key.str());
        const auto& b = value.source().begin;
        int line = static_cast<int>(b.line), col = static_cast<int>(b.column);
        const KeySpec* spec = find_spec(name);
        if (spec == nullptr) {
          problem(line, col, fmt::format("{}: unknown key{}", name, did_you_mean(name)));
          continue;
        }
        std::optional<Value> v;
        if (spec->type == Type::string && value.is_string()) v = Value(value.as_string()->get());
        if (spec->type == Type::integer && value.is_integer()) v = Value(value.as_integer()->get());
        if (spec->type == Type::boolean && value.is_boolean()) v = Value(value.as_boolean()->get());
        if (!v) {
          problem(line, col,
                  fmt::format("{}: expected {}, got {}", name, expected(*spec), describe(value)));
          continue;
        }
        if (auto p = range_problem(*spec, *v)) {
          problem(line, col, *p);
          continue;
        }
        cfg.values_[std::string(spec->name)] = *v;
      }
    }

    // toml++ iterates keys in name order; report in file order, as a compiler does.
    std::stable_sort(r.problems.begin(), r.problems.end(), [](const Problem& a, const Problem& b) {
      return std::pair(a.line, a.column) < std::pair(b.line, b.column);
    });
    for (const auto& spec : key_specs()) {
      std::string var = env_name(spec.name);
      if (const char* text = env(var.c_str()); text != nullptr) {
        auto v = parse_text(spec, text);
        if (!v) {
          problem(0, 0, fmt::format("{} (from {}): expected {}", spec.name, var, expected(spec)));
          continue;
        }
        if (auto p = range_problem(spec, *v)) {
          problem(0, 0, fmt::format("{} (from {})", *p, var));
          continue;
        }
        cfg.values_[std::string(spec.name)] = *v;
      }
      if (cfg.values_.count(spec.name) != 0) continue;
      if (!spec.default_value) {
        problem(0, 0,
                fmt::format("{}: required key is missing (set it in the file or in {})", spec.name,
                            var));
        continue;
      }
      cfg.values_[std::string(spec.name)] = *parse_text(spec, *spec.default_value);
    }
    if (auto url = cfg.values_.find("fhir.smart_token_url");
        url != cfg.values_.end() && !std::get<std::string>(url->second).empty()) {
      for (const char* k : {"fhir.smart_client_id", "fhir.smart_private_key_file"})
        if (std::get<std::string>(cfg.values_[k]).empty())
          problem(0, 0, fmt::format("{}: required when fhir.smart_token_url is set", k));
      if (!std::get<std::string>(cfg.values_["fhir.bearer_token_file"]).empty())
        problem(0, 0, "fhir.bearer_token_file: set it or fhir.smart_token_url, not both");
    }
    if (auto user = cfg.values_.find("fhir.basic_user");
        user != cfg.values_.end() && !std::get<std::string>(user->second).empty()) {
      if (std::get<std::string>(cfg.values_["fhir.basic_password_file"]).empty())
        problem(0, 0, "fhir.basic_password_file: required when fhir.basic_user is set");
      if (!std::get<std::string>(cfg.values_["fhir.bearer_token_file"]).empty() ||
          !std::get<std::string>(cfg.values_["fhir.smart_token_url"]).empty())
        problem(
            0, 0,
            "fhir.basic_user: basic authentication, a bearer token and SMART exclude each other");
    }
    if (std::get<std::string>(cfg.values_["fhir.client_cert_file"]).empty() !=
        std::get<std::string>(cfg.values_["fhir.client_key_file"]).empty())
      problem(0, 0, "fhir.client_cert_file and fhir.client_key_file go together");
    if (std::get<std::string>(cfg.values_["sync.mode"]) == "subscription") {
      for (const char* k : {"subscription.endpoint", "subscription.secret_file"})
        if (std::get<std::string>(cfg.values_[k]).empty())
          problem(0, 0, fmt::format("{}: required when sync.mode is \"subscription\"", k));
      if (std::get<std::string>(cfg.values_["http.listen"]).empty())
        problem(0, 0,
                "http.listen: required when sync.mode is \"subscription\" (notifications arrive "
                "there)");
    }
    read_feature_file(path, cfg, r.problems);
    if (r.problems.empty()) {
      if (auto e = mapping::check_definitions(cfg.features_))
        problem(0, 0, e->message);
      else if (auto cat = mapping::catalog_of(cfg.features_); !cat)
        problem(0, 0, cat.error().message);
      else
        cfg.catalog_ = std::move(cat).value();
    }
    if (r.problems.empty()) r.config = std::move(cfg);
    return r;
  }

  static FeatureFile features_only(const std::string& path) {
    FeatureFile out;
    Config cfg;
    cfg.values_["features.file"] = Value(std::filesystem::absolute(path).string());
    Loader::read_feature_file(std::filesystem::absolute(path).string(), cfg, out.problems);
    if (!out.problems.empty()) return out;
    if (auto e = mapping::check_definitions(cfg.features_)) {
      out.problems.push_back({path, 0, 0, e->message});
      return out;
    }
    auto cat = mapping::catalog_of(cfg.features_);
    if (!cat) {
      out.problems.push_back({path, 0, 0, cat.error().message});
      return out;
    }
    out.features = std::move(cfg.features_);
    out.catalog = std::move(cat).value();
    return out;
  }

  // The [[feature]] tables of `features.file`, after those of the configuration itself.
  static void read_feature_file(const std::string& config_path, Config& cfg,
                                std::vector<Problem>& problems) {
    auto it = cfg.values_.find("features.file");
    if (it == cfg.values_.end() || std::get<std::string>(it->second).empty()) return;
    std::filesystem::path file = std::get<std::string>(it->second);
    if (file.is_relative()) file = std::filesystem::path(config_path).parent_path() / file;
    toml::table root;
    try {
      root = toml::parse_file(file.string());
    } catch (const toml::parse_error& e) {
      const auto& b = e.source().begin;
      std::string what(e.description());
      if (what.find("File could not be opened") != std::string::npos)
        problems.push_back(
            {config_path, 0, 0, fmt::format("features.file: {}: cannot read", file.string())});
      else
        problems.push_back({file.string(), static_cast<int>(b.line), static_cast<int>(b.column),
                            fmt::format("not valid TOML: {}", what)});
      return;
    }
    FeatureReader features{file.string(), problems};
    for (auto&& [key, node] : root) {
      if (key.str() == "feature")
        features.read_all(node, cfg.features_);
      else
        features.problem(
            node, fmt::format("{}: unknown key; a features file holds [[feature]] tables only",
                              key.str()));
    }
  }
};

LoadResult load(const std::string& path, const char* (*env)(const char*)) {
  return Loader::run(path, env);
}

FeatureFile load_features(const std::string& path) { return Loader::features_only(path); }

std::string example() {
  std::string out =
      "# fhir-risk-adapter configuration. Every key can be overridden by an environment\n"
      "# variable FRA_<SECTION>_<KEY>, e.g. FRA_DATABASE_URL.\n";
  std::string section;
  for (const auto& k : key_specs()) {
    auto dot = k.name.find('.');
    std::string sec(k.name.substr(0, dot));
    if (sec != section) {
      out += fmt::format("\n[{}]\n", sec);
      section = sec;
    }
    out += fmt::format("# {}{}\n", k.description, k.default_value ? "" : " (required)");
    std::string key(k.name.substr(dot + 1));
    std::string value;
    if (k.name == "features.file") {
      value = "\"/usr/local/share/fhir-risk-adapter/models/readmission-risk/features.toml\"";
    } else if (k.default_value) {
      value = k.type == Type::string ? fmt::format("\"{}\"", *k.default_value)
                                     : std::string(*k.default_value);
    } else if (k.name == "fhir.base_url") {
      value = "\"http://127.0.0.1:8103/fhir/R4\"";
    } else if (k.name == "database.url") {
      value = "\"postgresql://fra@127.0.0.1:5432/fra\"";
    } else if (k.name == "pseudonym.key_file") {
      value = "\"/etc/fhir-risk-adapter/pseudonym.key\"";
    } else {
      value = "\"/usr/local/share/fhir-risk-adapter/models/readmission-risk\"";
    }
    out += fmt::format("{} = {}\n", key, value);
  }
  out += R"(
# Features may also be declared here, one [[feature]] table each (docs/features.md):
#
# [[feature]]
# name = "heart_rate_max_48h"
# label = "Highest heart rate in the last 48 hours"
# source = "observation"
# codes = ["http://loinc.org|8867-4"]
# unit = "/min"
# aggregation = "max"
# window = "PT48H"
# plausible = [10, 350]
)";
  return out;
}

}  // namespace fra::config
