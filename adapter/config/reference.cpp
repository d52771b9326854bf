// What the table of keys prints: `config example` (a commented TOML file) and `config
// reference` (the Markdown key table of docs/configuration.md).

#include <fmt/format.h>

#include <cassert>
#include <string>
#include <string_view>

#include "adapter/config/config.hpp"

namespace fra::config {
namespace {

// A description's Markdown as plain text for a TOML comment: code spans lose their backticks,
// links keep their text.
std::string plain(std::string_view md) {
  std::string out;
  for (std::size_t i = 0; i < md.size(); ++i) {
    if (md[i] == '`') continue;
    if (md[i] == '[') {
      const auto close = md.find(']', i);
      const auto end = md.find(')', close);
      if (close != std::string_view::npos && close + 1 < md.size() && md[close + 1] == '(' &&
          end != std::string_view::npos) {
        out += plain(md.substr(i + 1, close - i - 1));
        i = end;
        continue;
      }
    }
    out += md[i];
  }
  return out;
}

// `text` as "# " comment lines of at most `width` characters, broken between words.
std::string comment(const std::string& text, std::size_t width = 98) {
  std::string out, line;
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t end = text.find(' ', at);
    if (end == std::string::npos) end = text.size();
    std::string word = text.substr(at, end - at);
    if (!line.empty() && line.size() + 1 + word.size() > width - 2) {
      out += "# " + line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
    at = end + 1;
  }
  if (!line.empty()) out += "# " + line + "\n";
  return out;
}

// The reference's type column: "integer 1..1000", "string: `poll` or `subscription`",
// "string (path), not empty".
std::string type_column(const KeySpec& k) {
  switch (k.field.type) {
    case Type::boolean:
      return "boolean";
    case Type::integer:
      return fmt::format("integer {}..{}", k.min, k.max);
    case Type::string:
      break;
  }
  std::string out = "string";
  if (!k.choices.empty()) {
    out += ": ";
    for (std::size_t i = 0; i < k.choices.size(); ++i) {
      const char* sep = i == 0 ? "" : i + 1 == k.choices.size() ? " or " : ", ";
      out += fmt::format("{}`{}`", sep, k.choices[i]);
    }
  }
  if (!k.form.empty()) out += fmt::format(" ({})", k.form);
  if (!k.default_value) out += ", not empty";
  return out;
}

std::string default_column(const KeySpec& k) {
  if (!k.default_value) return "required";
  if (k.default_value->empty()) return "\"\"";
  return std::string(*k.default_value);
}

}  // namespace

std::string example() {
  std::string out =
      "# fhir-risk-adapter configuration. Every key can be overridden by an environment\n"
      "# variable FRA_<SECTION>_<KEY>, e.g. FRA_DATABASE_URL.\n";
  std::string_view section;
  for (const auto& k : key_specs()) {
    const auto dot = k.name.find('.');
    if (k.name.substr(0, dot) != section) {
      section = k.name.substr(0, dot);
      out += fmt::format("\n[{}]\n", section);
    }
    out += comment(plain(k.description) + (k.default_value ? "" : " (required)"));
    std::string value(k.example);
    assert(!value.empty() || k.default_value);  // a required key has an example
    if (value.empty())
      value = k.field.type == Type::string ? fmt::format("\"{}\"", *k.default_value)
                                           : std::string(*k.default_value);
    out += fmt::format("{} = {}\n", k.name.substr(dot + 1), value);
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

std::string reference() {
  std::string out =
      "<!-- BEGIN keys: printed by `fhir-risk-adapter config reference` from key_specs() in "
      "adapter/config/keys.cpp; edit the table there, then run "
      "`python3 tests/configuration_reference.py BUILD/fhir-risk-adapter --write` -->\n"
      "| key | environment variable | type, allowed values | default | description |\n"
      "|---|---|---|---|---|\n";
  for (const auto& k : key_specs())
    out += fmt::format("| `{}` | `{}` | {} | {} | {} |\n", k.name, env_name(k.name), type_column(k),
                       default_column(k), k.description);
  out += "<!-- END keys -->\n";
  return out;
}

}  // namespace fra::config
