#include "adapter/store/sql_values.hpp"

#include <fmt/format.h>

#include "fhir/json.hpp"
#include "mapping/pseudonym.hpp"

namespace fra::store::detail {

std::string to_hex(const std::vector<std::uint8_t>& b) {
  return mapping::to_hex(b.data(), b.size());
}

std::vector<std::uint8_t> from_hex(const std::string& hex) {
  std::vector<std::uint8_t> out(hex.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<std::uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  return out;
}

std::string plain_array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + items[i];
  return out + "}";
}

std::string text_array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    out += i ? ",\"" : "\"";
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  fhir::json::escape_string(s, std::back_inserter(out));
  out += '"';
}

}  // namespace fra::store::detail
