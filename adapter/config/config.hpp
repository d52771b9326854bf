#pragma once
// The adapter's configuration: one table of keys (name, type, default, range, description)
// drives parsing, validation, environment overrides, `config example` and docs/configuration.md.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "mapping/features.hpp"

namespace fra::config {

enum class Type { string, integer, boolean };

/// One configuration key, declared once.
struct KeySpec {
  std::string_view name;  ///< "section.key"
  Type type;
  std::optional<std::string_view> default_value;  ///< nullopt: required
  std::int64_t min = 0;                           ///< integers only
  std::int64_t max = 0;
  std::string_view description;
};

/// Every key the adapter reads.
const std::vector<KeySpec>& key_specs();

/// One problem with the configuration, printed like a compiler diagnostic.
struct Problem {
  std::string file;
  int line = 0;  ///< 0 when the problem has no place in the file
  int column = 0;
  std::string message;  ///< "fhir.page_size: expected integer 1..1000, got \"ten\""
  std::string format() const;
};

using Value = std::variant<std::string, std::int64_t, bool>;

class Config {
 public:
  /// The string value of a key of type string.
  const std::string& str(std::string_view key) const;
  /// The value of a key of type integer.
  std::int64_t integer(std::string_view key) const;
  /// The value of a key of type boolean.
  bool boolean(std::string_view key) const;
  /// The file it was read from.
  const std::string& file() const { return file_; }
  /// The feature definitions: `[[feature]]` tables of this file, then of `features.file`.
  const std::vector<mapping::FeatureDefinition>& features() const { return features_; }
  /// The Observation codes those features read.
  const mapping::ObservationCatalog& catalog() const { return catalog_; }

 private:
  friend struct Loader;
  std::string file_;
  std::map<std::string, Value, std::less<>> values_;
  std::vector<mapping::FeatureDefinition> features_;
  mapping::ObservationCatalog catalog_;
};

/// Either a Config or every problem found.
struct LoadResult {
  std::optional<Config> config;
  std::vector<Problem> problems;
};

/// Reads a TOML file, applies FRA_<SECTION>_<KEY> environment overrides (`env` returns the
/// value of a variable or nullptr), fills defaults and checks every key. Collects all
/// problems rather than stopping at the first.
LoadResult load(const std::string& path, const char* (*env)(const char*));

/// The definitions of a features file (a TOML file of [[feature]] tables), checked, with the
/// catalog of the Observation codes they read.
struct FeatureFile {
  std::vector<mapping::FeatureDefinition> features;
  mapping::ObservationCatalog catalog;
  std::vector<Problem> problems;
};
FeatureFile load_features(const std::string& path);

/// A complete, commented example configuration.
std::string example();

/// The environment variable that overrides a key: "fhir.base_url" → "FRA_FHIR_BASE_URL".
std::string env_name(std::string_view key);

/// The exit code for a configuration error (EX_CONFIG).
inline constexpr int kExitConfig = 78;

}  // namespace fra::config
