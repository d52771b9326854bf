#include <doctest/doctest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <map>
#include <string>

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
  CHECK(r.config->str("fhir.base_url") == "http://127.0.0.1:8103/fhir/R4");
  CHECK(r.config->integer("fhir.page_size") == 200);
  CHECK(r.config->boolean("fhir.verify_tls"));
}

TEST_CASE("environment variables override the file") {
  g_env = {{"FRA_DATABASE_URL", "postgresql://other/db"}, {"FRA_FHIR_PAGE_SIZE", "50"}};
  auto r = load_text(kComplete);
  REQUIRE(r.problems.empty());
  CHECK(r.config->str("database.url") == "postgresql://other/db");
  CHECK(r.config->integer("fhir.page_size") == 50);
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
  CHECK(r.config->features().size() >= 11);
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
  const auto& f = r.config->features();
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
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] ==
        "adapter.toml: error: subscription.endpoint: required when sync.mode is \"subscription\"");
  CHECK(
      lines[1] ==
      "adapter.toml: error: subscription.secret_file: required when sync.mode is \"subscription\"");
  g_env = {{"FRA_LOG_FORMAT", "yaml"}};
  auto env = load_text(kComplete);
  g_env.clear();
  REQUIRE(env.problems.size() == 1);
  CHECK(env.problems[0].format() ==
        "adapter.toml: error: log.format: expected one of text, json, got \"yaml\" (from "
        "FRA_LOG_FORMAT)");
}
