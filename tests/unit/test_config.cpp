#include <doctest/doctest.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "adapter/config/config.hpp"

namespace {
std::map<std::string, std::string> g_env;
const char* fake_env(const char* name) {
  auto it = g_env.find(name);
  return it == g_env.end() ? nullptr : it->second.c_str();
}

fra::config::LoadResult load_text(const std::string& text) {
  std::string path = "/tmp/fra-unit-config-" + std::to_string(::getpid()) + ".toml";
  std::ofstream(path) << text;
  auto r = fra::config::load(path, &fake_env);
  std::remove(path.c_str());
  for (auto& p : r.problems) p.file = "adapter.toml";
  return r;
}

const char* kComplete = R"([fhir]
base_url = "http://127.0.0.1:8103/fhir/R4"
[database]
url = "postgresql://fra@127.0.0.1/fra"
[pseudonym]
key_file = "/etc/fra/key"
[model]
path = "/usr/share/fra/model"
)";
}  // namespace

TEST_CASE("a complete file loads with defaults filled") {
  g_env.clear();
  auto r = load_text(kComplete);
  REQUIRE(r.problems.empty());
  const auto& cfg = *r.config;
  CHECK(cfg.fhir.base_url == "http://127.0.0.1:8103/fhir/R4");
  CHECK(cfg.fhir.page_size == 200);
  CHECK(cfg.fhir.verify_tls);
  CHECK(cfg.sync.mode == "poll");
  CHECK(cfg.fhir.smart_scope ==
        "system/Patient.read system/Observation.read system/Encounter.read "
        "system/RiskAssessment.write");
  CHECK(cfg.http.listen == "127.0.0.1:9464");
  CHECK(cfg.retention.raw_inputs_days == 0);
  CHECK(cfg.features.file.empty());
}

TEST_CASE("environment variables override the file") {
  g_env = {{"FRA_DATABASE_URL", "postgresql://other/db"}, {"FRA_FHIR_PAGE_SIZE", "50"}};
  auto r = load_text(kComplete);
  REQUIRE(r.problems.empty());
  CHECK(r.config->database.url == "postgresql://other/db");
  CHECK(r.config->fhir.page_size == 50);
  g_env.clear();
}

TEST_CASE("every problem is reported like a compiler, with file, line and column") {
  g_env = {{"FRA_FHIR_TIMEOUT_SECONDS", "soon"}};
  auto r = load_text(
      "[fhir]\nbase_url = \"http://x\"\npage_size = \"ten\"\nbase_ulr = \"y\"\n[modle]\npath = "
      "\"z\"\n");
  g_env.clear();
  REQUIRE(!r.config);
  std::vector<std::string> lines;
  for (const auto& p : r.problems) lines.push_back(p.format());
  REQUIRE(lines.size() == 7);
  CHECK(lines[0] ==
        "adapter.toml:3:13: error: fhir.page_size: expected integer 1..1000, got \"ten\"");
  CHECK(lines[1] ==
        "adapter.toml:4:12: error: fhir.base_ulr: unknown key (did you mean 'fhir.base_url'?)");
  CHECK(lines[2] ==
        "adapter.toml:6:8: error: modle.path: unknown key (did you mean 'model.path'?)");
  CHECK(lines[3] ==
        "adapter.toml: error: fhir.timeout_seconds (from FRA_FHIR_TIMEOUT_SECONDS): expected "
        "integer 1..600");
  CHECK(lines[4] ==
        "adapter.toml: error: database.url: required key is missing (set it in the file or in "
        "FRA_DATABASE_URL)");
  CHECK(lines[5] ==
        "adapter.toml: error: pseudonym.key_file: required key is missing (set it in the file or "
        "in FRA_PSEUDONYM_KEY_FILE)");
  CHECK(lines[6] ==
        "adapter.toml: error: model.path: required key is missing (set it in the file or in "
        "FRA_MODEL_PATH)");
}

TEST_CASE("out of range, invalid TOML and a missing file") {
  auto r = load_text(std::string(kComplete) + "[score]\nbatch_size = 0\n");
  REQUIRE(r.problems.size() == 1);
  CHECK(r.problems[0].format() ==
        "adapter.toml:10:14: error: score.batch_size: expected integer 1..100000, got 0");
  auto bad = load_text("[fhir\n");
  REQUIRE(bad.problems.size() == 1);
  CHECK(bad.problems[0].format().find("adapter.toml:1:") == 0);
  CHECK(bad.problems[0].message.find("not valid TOML") == 0);
  auto missing = fra::config::load("/nonexistent/adapter.toml", &fake_env);
  REQUIRE(missing.problems.size() == 1);
  CHECK(missing.problems[0].format() ==
        "/nonexistent/adapter.toml: error: cannot read the configuration file");
}

TEST_CASE("the example configuration names every key and loads") {
  std::string ex = fra::config::example();
  for (const auto& k : fra::config::key_specs())
    CHECK(ex.find(std::string(k.name.substr(k.name.find('.') + 1)) + " = ") != std::string::npos);
  // Its features file is where `cmake --install` puts the shipped one; here, the source tree's.
  g_env["FRA_FEATURES_FILE"] = FRA_SOURCE_DIR "/models/readmission-risk/features.toml";
  auto r = load_text(ex);
  g_env.clear();
  for (const auto& p : r.problems) INFO(p.format());
  CHECK(r.problems.empty());
  REQUIRE(r.config);
  CHECK(r.config->features.definitions.size() >= 11);
}

TEST_CASE("[[feature]] tables in the configuration add to those of features.file") {
  auto r = load_text(std::string(kComplete) +
                     "[features]\nfile = \"" FRA_SOURCE_DIR
                     "/models/readmission-risk/features.toml\"\n"
                     "[[feature]]\nname = \"heart_rate_max_48h\"\nsource = \"observation\"\n"
                     "codes = [\"http://loinc.org|8867-4\"]\nunit = \"/min\"\naggregation = "
                     "\"max\"\nwindow = \"PT48H\"\n");
  for (const auto& p : r.problems) INFO(p.format());
  REQUIRE(r.config);
  const auto& f = r.config->features.definitions;
  CHECK(f.front().name == "heart_rate_max_48h");
  CHECK(f.front().label == "heart_rate_max_48h");
  CHECK(f.size() >= 12);
  auto twice =
      load_text(std::string(kComplete) + "[features]\nfile = \"" FRA_SOURCE_DIR
                                         "/models/readmission-risk/features.toml\"\n"
                                         "[[feature]]\nname = \"age_years\"\nsource = "
                                         "\"patient\"\nattribute = \"age\"\nunit = \"a\"\n");
  REQUIRE(twice.problems.size() == 1);
  CHECK(twice.problems[0].message == "feature 'age_years': defined twice");
  auto missing =
      load_text(std::string(kComplete) + "[features]\nfile = \"/nonexistent/features.toml\"\n");
  REQUIRE(missing.problems.size() == 1);
  CHECK(missing.problems[0].format() ==
        "adapter.toml: error: features.file: /nonexistent/features.toml: cannot read");
}

TEST_CASE(
    "a word outside a key's choices is named with its line; subscription mode needs its keys") {
  auto r = load_text(std::string(kComplete) + "[log]\nformat = \"xml\"\n[sync]\nmode = \"push\"\n");
  std::vector<std::string> lines;
  for (const auto& p : r.problems) lines.push_back(p.format());
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] ==
        "adapter.toml:10:10: error: log.format: expected one of text, json, got \"xml\"");
  CHECK(lines[1] ==
        "adapter.toml:12:8: error: sync.mode: expected one of poll, subscription, got \"push\"");
  auto sub = load_text(std::string(kComplete) + "[sync]\nmode = \"subscription\"\n");
  lines.clear();
  for (const auto& p : sub.problems) lines.push_back(p.format());
  REQUIRE(lines.size() == 2);  // at sync.mode, whose value set the rule off
  CHECK(lines[0] ==
        "adapter.toml:10:8: error: subscription.endpoint: required when sync.mode is "
        "\"subscription\"");
  CHECK(lines[1] ==
        "adapter.toml:10:8: error: subscription.secret_file: required when sync.mode is "
        "\"subscription\"");
  g_env = {{"FRA_LOG_FORMAT", "yaml"}};
  auto env = load_text(kComplete);
  g_env.clear();
  REQUIRE(env.problems.size() == 1);
  CHECK(env.problems[0].format() ==
        "adapter.toml: error: log.format: expected one of text, json, got \"yaml\" (from "
        "FRA_LOG_FORMAT)");
}

namespace {

// The complete file with `lines` added to its [fhir] table, from line 3 on.
std::string with_fhir(const std::string& lines) {
  std::string text = kComplete;
  const auto after_base_url = text.find('\n', text.find("base_url")) + 1;
  return text.insert(after_base_url, lines);
}

std::vector<std::string> formatted(const fra::config::LoadResult& r) {
  std::vector<std::string> lines;
  for (const auto& p : r.problems) lines.push_back(p.format());
  return lines;
}

}  // namespace

TEST_CASE("rules between keys: SMART needs its client id and key, and no bearer token file") {
  g_env.clear();
  auto smart = load_text(with_fhir("smart_token_url = \"https://ehr.example.org/token\"\n"));
  CHECK(formatted(smart) ==
        std::vector<std::string>{
            "adapter.toml:3:19: error: fhir.smart_client_id: required when fhir.smart_token_url "
            "is set",
            "adapter.toml:3:19: error: fhir.smart_private_key_file: required when "
            "fhir.smart_token_url is set"});
  // A key the rule names, written empty in the file, is where the problem is.
  auto empty_id =
      load_text(with_fhir("smart_token_url = \"https://ehr.example.org/token\"\nsmart_client_id = "
                          "\"\"\nsmart_private_key_file = \"/k\"\n"));
  CHECK(formatted(empty_id) ==
        std::vector<std::string>{"adapter.toml:4:19: error: fhir.smart_client_id: required when "
                                 "fhir.smart_token_url is set"});
  auto both = load_text(
      with_fhir("smart_token_url = \"https://ehr.example.org/token\"\nsmart_client_id = \"c\"\n"
                "smart_private_key_file = \"/k\"\nbearer_token_file = \"/t\"\n"));
  CHECK(formatted(both) ==
        std::vector<std::string>{"adapter.toml:6:21: error: fhir.bearer_token_file: set it or "
                                 "fhir.smart_token_url, not both"});
}

TEST_CASE("rules between keys: basic authentication needs its password file and stands alone") {
  g_env.clear();
  auto user = load_text(with_fhir("basic_user = \"fra\"\n"));
  CHECK(formatted(user) ==
        std::vector<std::string>{"adapter.toml:3:14: error: fhir.basic_password_file: required "
                                 "when fhir.basic_user is set"});
  auto with_token = load_text(with_fhir(
      "basic_user = \"fra\"\nbasic_password_file = \"/p\"\nbearer_token_file = \"/t\"\n"));
  CHECK(formatted(with_token) ==
        std::vector<std::string>{"adapter.toml:3:14: error: fhir.basic_user: basic "
                                 "authentication, a bearer token and SMART exclude each other"});
  // Set off by a variable: no place in the file, so the variable is named.
  g_env = {{"FRA_FHIR_BASIC_USER", "fra"}};
  auto from_env = load_text(kComplete);
  g_env.clear();
  CHECK(formatted(from_env) ==
        std::vector<std::string>{"adapter.toml: error: fhir.basic_password_file: required when "
                                 "fhir.basic_user is set (from FRA_FHIR_BASIC_USER)"});
}

TEST_CASE("rules between keys: a client certificate and its key go together") {
  g_env.clear();
  auto key = load_text(with_fhir("client_key_file = \"/k\"\n"));
  CHECK(formatted(key) ==
        std::vector<std::string>{"adapter.toml:3:19: error: fhir.client_cert_file "
                                 "and fhir.client_key_file go together"});
  auto cert = load_text(with_fhir("client_cert_file = \"/c\"\n"));
  CHECK(formatted(cert) ==
        std::vector<std::string>{"adapter.toml:3:20: error: fhir.client_cert_file and "
                                 "fhir.client_key_file go together"});
  CHECK(load_text(with_fhir("client_cert_file = \"/c\"\nclient_key_file = \"/k\"\n")).config);
}

TEST_CASE("rules between keys: subscription mode needs an endpoint, a secret and http.listen") {
  g_env.clear();
  auto r = load_text(std::string(kComplete) +
                     "[sync]\nmode = \"subscription\"\n[subscription]\nendpoint = "
                     "\"http://fra/notify\"\nsecret_file = \"/s\"\n[http]\nlisten = \"\"\n");
  CHECK(formatted(r) ==
        std::vector<std::string>{"adapter.toml:15:10: error: http.listen: required when sync.mode "
                                 "is \"subscription\" (notifications arrive there)"});
  g_env = {{"FRA_SYNC_MODE", "subscription"}, {"FRA_HTTP_LISTEN", ""}};
  auto env = load_text(std::string(kComplete) +
                       "[subscription]\nendpoint = \"http://fra/notify\"\nsecret_file = \"/s\"\n");
  g_env.clear();
  CHECK(formatted(env) ==
        std::vector<std::string>{"adapter.toml: error: http.listen: required when sync.mode is "
                                 "\"subscription\" (notifications arrive there) (from "
                                 "FRA_HTTP_LISTEN)"});
  auto ok = load_text(std::string(kComplete) +
                      "[sync]\nmode = \"subscription\"\n[subscription]\nendpoint = "
                      "\"http://fra/notify\"\nsecret_file = \"/s\"\n");
  REQUIRE(ok.config);
  CHECK(ok.config->sync.subscription_mode());
}

TEST_CASE("a required key of the wrong type is one problem, not also a missing key") {
  g_env.clear();
  auto r = load_text(
      "[fhir]\nbase_url = \"http://x\"\n[database]\nurl = 5\n[pseudonym]\nkey_file = "
      "\"/k\"\n[model]\npath = \"/m\"\n");
  CHECK(formatted(r) ==
        std::vector<std::string>{"adapter.toml:4:7: error: database.url: expected string, got 5"});
  auto empty = load_text(
      "[fhir]\nbase_url = \"\"\n[database]\nurl = \"u\"\n[pseudonym]\nkey_file = "
      "\"/k\"\n[model]\npath = \"/m\"\n");
  CHECK(formatted(empty) ==
        std::vector<std::string>{"adapter.toml:2:12: error: fhir.base_url: must not be empty"});
}

TEST_CASE("the table: each key writes its own field, and reads back what it wrote") {
  using fra::config::Type;
  using fra::config::Value;
  fra::config::Config cfg;
  const auto& specs = fra::config::key_specs();
  // A value of its own for every key; had two keys one field, the first would read the second's.
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const auto& k = specs[i];
    switch (k.field.type) {
      case Type::string:
        k.field.set(cfg, Value(std::string(k.name)));
        break;
      case Type::integer:
        k.field.set(cfg, Value(static_cast<std::int64_t>(k.min + 1 + static_cast<int64_t>(i))));
        break;
      case Type::boolean:
        k.field.set(cfg, Value(i % 2 == 0));
        break;
    }
  }
  std::set<std::string_view> names;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const auto& k = specs[i];
    INFO(k.name);
    CHECK(names.insert(k.name).second);
    const Value v = k.field.get(cfg);
    switch (k.field.type) {
      case Type::string:
        CHECK(std::get<std::string>(v) == k.name);
        break;
      case Type::integer:
        CHECK(std::get<std::int64_t>(v) == k.min + 1 + static_cast<int64_t>(i));
        CHECK(k.min < k.max);
        break;
      case Type::boolean:
        CHECK(std::get<bool>(v) == (i % 2 == 0));
        break;
    }
    CHECK(!k.description.empty());
    CHECK((k.default_value || !k.example.empty()));  // `config example` has a value for each
    CHECK((k.choices.empty() || k.field.type == Type::string));
    if (k.default_value && !k.choices.empty())
      CHECK(std::find(k.choices.begin(), k.choices.end(), *k.default_value) != k.choices.end());
  }
  CHECK(cfg.fhir.page_size != cfg.fhir.timeout_seconds);
  CHECK(cfg.sync.mode == "sync.mode");
}

TEST_CASE("the reference: one row per key, its type, words, default and description") {
  const std::string ref = fra::config::reference();
  CHECK(ref.starts_with("<!-- BEGIN keys: "));
  CHECK(ref.ends_with("<!-- END keys -->\n"));
  for (const auto& k : fra::config::key_specs())
    CHECK(ref.find(fmt::format("| `{}` | `{}` | ", k.name, fra::config::env_name(k.name))) !=
          std::string::npos);
  for (const char* row :
       {"| `fhir.page_size` | `FRA_FHIR_PAGE_SIZE` | integer 1..1000 | 200 | ",
        "| `database.url` | `FRA_DATABASE_URL` | string, not empty | required | ",
        "| `pseudonym.key_file` | `FRA_PSEUDONYM_KEY_FILE` | string (path), not empty | required "
        "| ",
        "| `sync.mode` | `FRA_SYNC_MODE` | string: `poll` or `subscription` | poll | ",
        "| `log.level` | `FRA_LOG_LEVEL` | string: `trace`, `debug`, `info`, `warn` or `error` | "
        "info | ",
        "| `fhir.ca_file` | `FRA_FHIR_CA_FILE` | string (path) | \"\" | ",
        "| `fhir.verify_tls` | `FRA_FHIR_VERIFY_TLS` | boolean | true | "})
    CHECK(ref.find(row) != std::string::npos);
}

TEST_CASE("the example's comments are its keys' descriptions as plain text") {
  const std::string ex = fra::config::example();
  // Markdown links keep their text, code spans lose their backticks; lines stay short.
  CHECK(ex.find("](") == std::string::npos);
  CHECK(ex.find('`') == std::string::npos);
  CHECK(ex.find("# Resources asked for per search page (_count), and per _history page\n"
                "page_size = 200\n") != std::string::npos);
  CHECK(ex.find("(required)\nurl = \"postgresql://fra@127.0.0.1:5432/fra\"\n") !=
        std::string::npos);
  std::size_t at = 0;
  while (at < ex.size()) {
    auto end = ex.find('\n', at);
    if (end == std::string::npos) end = ex.size();
    if (ex[at] == '#') CHECK(end - at <= 100);
    at = end + 1;
  }
}

TEST_CASE("problems of keys and of rules between them come in file order, unplaced ones last") {
  g_env = {{"FRA_SCORE_BATCH_SIZE", "0"}};
  auto r = load_text(
      "[fhir]\nbase_url = \"http://x\"\npage_size = \"ten\"\nbasic_user = \"fra\"\n[database]\nurl "
      "= 5\n[pseudonym]\nkey_file = \"/k\"\n[model]\npath = \"/m\"\n");
  g_env.clear();
  CHECK(formatted(r) ==
        std::vector<std::string>{
            "adapter.toml:3:13: error: fhir.page_size: expected integer 1..1000, got \"ten\"",
            "adapter.toml:4:14: error: fhir.basic_password_file: required when fhir.basic_user "
            "is set",
            "adapter.toml:6:7: error: database.url: expected string, got 5",
            "adapter.toml: error: score.batch_size: expected integer 1..100000, got 0 (from "
            "FRA_SCORE_BATCH_SIZE)"});
}
