// libFuzzer target: any configuration file either loads into a Config whose every key holds a
// value of its type and range (one of its words, not empty when required), or gives problems;
// the same bytes read as a features file (`features.file`) either give definitions and their
// catalog or problems. Never a crash, a hang or a leak. Lines "#!FRA_<SECTION>_<KEY>=value" of the
// input (TOML comments) become environment overrides, so that those are fuzzed too.
//
// config::load reads a path: the input is written to one file per process, in
// $FRA_FUZZ_WORKDIR (run.sh sets it) or else a directory of its own under /dev/shm, next to a copy
// of the shipped features.toml that the seeds name as `features.file = "features.toml"`.

#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <variant>

#include "adapter/config/config.hpp"

namespace {

using namespace fra;

std::string g_dir;
std::string g_file;
std::map<std::string, std::string, std::less<>> g_env;

void require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz_config: %s\n", what);
  std::abort();
}

const char* env(const char* name) {
  auto it = g_env.find(name);
  return it == g_env.end() ? nullptr : it->second.c_str();
}

void remove_own_dir() { std::filesystem::remove_all(g_dir); }

void check(const config::LoadResult& r) {
  require(r.config.has_value() == r.problems.empty(),
          "a configuration with problems, or none without");
  for (const auto& p : r.problems)
    require(!p.format().empty() && !p.message.empty(), "an empty problem");
  if (!r.config) return;
  const auto& cfg = *r.config;
  for (const auto& k : config::key_specs()) {
    const config::Value v = k.field.get(cfg);
    switch (k.field.type) {
      case config::Type::string: {
        require(std::holds_alternative<std::string>(v), "a string key holding another type");
        const auto& s = std::get<std::string>(v);
        require(k.choices.empty() ||
                    std::find(k.choices.begin(), k.choices.end(), s) != k.choices.end(),
                "a word outside its key's choices");
        require(k.default_value || !s.empty(), "a required key left empty");
        break;
      }
      case config::Type::integer: {
        require(std::holds_alternative<std::int64_t>(v), "an integer key holding another type");
        auto i = std::get<std::int64_t>(v);
        require(i >= k.min && i <= k.max, "an integer outside its range");
        break;
      }
      case config::Type::boolean:
        require(std::holds_alternative<bool>(v), "a boolean key holding another type");
        break;
    }
  }
  for (const auto& d : cfg.features.definitions)
    for (const auto& code : d.codes)
      require(d.source != mapping::FeatureDefinition::Source::observation ||
                  d.aggregation == mapping::FeatureDefinition::Aggregation::count ||
                  cfg.features.catalog.count(code) == 1,
              "an observation code missing from the catalog");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("FRA_FUZZ_WORKDIR"); dir != nullptr && *dir != '\0') {
    g_dir = dir;
    std::filesystem::create_directories(g_dir);
  } else {
    std::string tmpl = std::filesystem::is_directory("/dev/shm") ? "/dev/shm/fra-fuzz-config-XXXXXX"
                                                                 : "/tmp/fra-fuzz-config-XXXXXX";
    require(mkdtemp(tmpl.data()) != nullptr, "cannot make a working directory");
    g_dir = tmpl;
    std::atexit(remove_own_dir);
  }
  g_file = g_dir + "/adapter.toml";
  std::filesystem::copy_file(FRA_SOURCE_DIR "/models/readmission-risk/features.toml",
                             g_dir + "/features.toml",
                             std::filesystem::copy_options::overwrite_existing);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  {
    std::FILE* f = std::fopen(g_file.c_str(), "wb");
    require(f != nullptr, "cannot write the input file");
    require(std::fwrite(data, 1, size, f) == size, "cannot write the input file");
    std::fclose(f);
  }
  g_env.clear();
  for (std::size_t at = 0; at < text.size();) {
    auto end = std::min(text.find('\n', at), text.size());
    auto line = text.substr(at, end - at);
    if (line.starts_with("#!")) {
      auto eq = line.find('=');
      if (eq != std::string_view::npos)
        g_env[std::string(line.substr(2, eq - 2))] = std::string(line.substr(eq + 1));
    }
    at = end + 1;
  }

  check(config::load(g_file, &env));

  auto features = config::load_features(g_file);
  require(features.problems.empty() || features.features.empty(),
          "features given despite problems");
  for (const auto& p : features.problems) require(!p.format().empty(), "an empty problem");
  return 0;
}
