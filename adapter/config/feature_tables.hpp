#pragma once
// The [[feature]] tables of a configuration or of a features file (docs/features.md), read into
// checked definitions, each problem with its place. Internal to fra_config.

#include <toml++/toml.h>

#include <string>
#include <vector>

#include "adapter/config/config.hpp"

namespace fra::config::detail {

/// How a TOML value reads in a message: "\"ten\"", "3", "a table".
std::string describe(const toml::node& n);

/// Every [[feature]] table of `features` (the value of the key `feature` in `file`), appended
/// to `out` when it holds; otherwise its problems are appended to `problems`.
void read_feature_tables(const std::string& file, const toml::node& features,
                         std::vector<mapping::FeatureDefinition>& out,
                         std::vector<Problem>& problems);

/// The [[feature]] tables of the features file `file` (features.file: relative to the folder of
/// `config_path`), appended to `out`; a problem of the file itself is reported against
/// `config_path`.
void read_feature_file(const std::string& config_path, const std::string& file,
                       std::vector<mapping::FeatureDefinition>& out,
                       std::vector<Problem>& problems);

}  // namespace fra::config::detail
