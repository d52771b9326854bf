#include "adapter/config/config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cassert>
#include <toml++/toml.h>

namespace fra::config {
namespace {

const char* type_name(Type t) {
  switch (t) {
    case Type::string: return "string";
    case Type::integer: return "integer";
    case Type::boolean: return "boolean";
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
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
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

std::optional<std::string> range_problem(const KeySpec& k, const Value& v) {
  if (k.type == Type::integer) {
    auto i = std::get<std::int64_t>(v);
    if (i < k.min || i > k.max) return fmt::format("{}: expected {}, got {}", k.name, expected(k), i);
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

}  // namespace

const std::vector<KeySpec>& key_specs() {
  static const std::vector<KeySpec> kSpecs{
      {"fhir.base_url", Type::string, std::nullopt, 0, 0,
       "Base URL of the FHIR R4 server, e.g. https://ehr.example.org/fhir/R4"},
      {"fhir.page_size", Type::integer, "200", 1, 1000, "Resources asked for per search page (_count)"},
      {"fhir.timeout_seconds", Type::integer, "30", 1, 600, "Timeout of one HTTP request"},
      {"fhir.max_attempts", Type::integer, "5", 1, 20,
       "Tries per request before giving up on 429, 5xx, timeouts and lost connections"},
      {"fhir.bearer_token_file", Type::string, "", 0, 0,
       "File holding a static bearer token; empty for no authentication"},
      {"fhir.verify_tls", Type::boolean, "true", 0, 0, "Verify the server's TLS certificate"},
      {"fhir.ca_file", Type::string, "", 0, 0,
       "PEM bundle of the CAs to trust for the FHIR server (a hospital's own CA); empty for the system's"},
      {"fhir.client_cert_file", Type::string, "", 0, 0, "PEM client certificate for mutual TLS; empty for none"},
      {"fhir.client_key_file", Type::string, "", 0, 0, "PEM private key of the client certificate, mode 0600"},
      {"fhir.basic_user", Type::string, "", 0, 0, "HTTP basic authentication user; empty for none"},
      {"fhir.basic_password_file", Type::string, "", 0, 0, "File holding the basic authentication password, mode 0600"},
      {"fhir.smart_token_url", Type::string, "", 0, 0,
       "SMART Backend Services: the token endpoint; empty to not use SMART"},
      {"fhir.smart_client_id", Type::string, "", 0, 0, "SMART Backend Services: the registered client id"},
      {"fhir.smart_private_key_file", Type::string, "", 0, 0,
       "SMART Backend Services: PEM private key, RSA (RS384) or EC P-384 (ES384), mode 0600"},
      {"fhir.smart_key_id", Type::string, "", 0, 0, "SMART Backend Services: the key's kid in the registered JWK set"},
      {"fhir.smart_scope", Type::string,
       "system/Patient.read system/Observation.read system/Encounter.read system/RiskAssessment.write", 0, 0,
       "SMART Backend Services: the scopes asked for"},
      {"database.url", Type::string, std::nullopt, 0, 0,
       "libpq connection string or URL of the PostgreSQL feature store"},
      {"pseudonym.key_file", Type::string, std::nullopt, 0, 0,
       "File holding the secret pseudonym key (at least 32 bytes, mode 0600)"},
      {"model.path", Type::string, std::nullopt, 0, 0,
       "Directory of the model package (manifest.json and the model it names)"},
      {"sync.overlap_seconds", Type::integer, "5", 0, 86400,
       "Each search starts this long before the cursor, for servers whose lastUpdated order lags; "
       "versions already stored are skipped"},
      {"sync.track_deletions", Type::boolean, "true", 0, 0,
       "Follow each type's _history for deleted Observations and Encounters (a server without it is "
       "noted once and the sync goes on)"},
      {"score.batch_size", Type::integer, "500", 1, 100000, "Patients scored per transaction"},
      {"log.level", Type::string, "info", 0, 0, "One of trace, debug, info, warn, error"},
  };
  return kSpecs;
}

std::string env_name(std::string_view key) {
  std::string out = "FRA_";
  for (char c : key) out += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
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
    auto problem = [&](int line, int col, std::string msg) { r.problems.push_back({path, line, col, std::move(msg)}); };

    toml::table root;
    try {
      root = toml::parse_file(path);
    } catch (const toml::parse_error& e) {
      const auto& b = e.source().begin;
      std::string what(e.description());
      if (what.find("File could not be opened") != std::string::npos)
        problem(0, 0, "cannot read the configuration file");
      else
        problem(static_cast<int>(b.line), static_cast<int>(b.column), fmt::format("not valid TOML: {}", what));
      return r;
    }

    for (auto&& [section, node] : root) {
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
          problem(line, col, fmt::format("{}: expected {}, got {}", name, expected(*spec), describe(value)));
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
        problem(0, 0, fmt::format("{}: required key is missing (set it in the file or in {})", spec.name, var));
        continue;
      }
      cfg.values_[std::string(spec.name)] = *parse_text(spec, *spec.default_value);
    }
    if (auto url = cfg.values_.find("fhir.smart_token_url"); url != cfg.values_.end() && !std::get<std::string>(url->second).empty()) {
      for (const char* k : {"fhir.smart_client_id", "fhir.smart_private_key_file"})
        if (std::get<std::string>(cfg.values_[k]).empty())
          problem(0, 0, fmt::format("{}: required when fhir.smart_token_url is set", k));
      if (!std::get<std::string>(cfg.values_["fhir.bearer_token_file"]).empty())
        problem(0, 0, "fhir.bearer_token_file: set it or fhir.smart_token_url, not both");
    }
    if (auto user = cfg.values_.find("fhir.basic_user"); user != cfg.values_.end() && !std::get<std::string>(user->second).empty()) {
      if (std::get<std::string>(cfg.values_["fhir.basic_password_file"]).empty())
        problem(0, 0, "fhir.basic_password_file: required when fhir.basic_user is set");
      if (!std::get<std::string>(cfg.values_["fhir.bearer_token_file"]).empty() ||
          !std::get<std::string>(cfg.values_["fhir.smart_token_url"]).empty())
        problem(0, 0, "fhir.basic_user: basic authentication, a bearer token and SMART exclude each other");
    }
    if (std::get<std::string>(cfg.values_["fhir.client_cert_file"]).empty() !=
        std::get<std::string>(cfg.values_["fhir.client_key_file"]).empty())
      problem(0, 0, "fhir.client_cert_file and fhir.client_key_file go together");
    static constexpr std::array<std::string_view, 5> kLevels{"trace", "debug", "info", "warn", "error"};
    if (auto it = cfg.values_.find("log.level"); it != cfg.values_.end()) {
      const auto& level = std::get<std::string>(it->second);
      if (std::find(kLevels.begin(), kLevels.end(), level) == kLevels.end())
        problem(0, 0, fmt::format("log.level: expected one of trace, debug, info, warn, error, got \"{}\"", level));
    }
    if (r.problems.empty()) r.config = std::move(cfg);
    return r;
  }
};

LoadResult load(const std::string& path, const char* (*env)(const char*)) { return Loader::run(path, env); }

std::string example() {
  std::string out = "# fhir-risk-adapter configuration. Every key can be overridden by an environment\n"
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
    if (k.default_value) {
      value = k.type == Type::string ? fmt::format("\"{}\"", *k.default_value) : std::string(*k.default_value);
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
  return out;
}

}  // namespace fra::config
