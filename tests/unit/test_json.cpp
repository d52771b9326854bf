// fhir/json.hpp: the escaping that the store's page parameters and the JSON log lines share.

#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include <iterator>
#include <string>

#include "fhir/json.hpp"

TEST_CASE("escape_string: what RapidJSON reads back is the text, whatever it holds") {
  for (std::string text : {std::string("plain"), std::string("a \"quote\" and a \\ backslash"),
                           std::string("line\nbreak\ttab\r\x01\x1f"), std::string("°C, µg, ✓"),
                           std::string("nul \0 inside", 13), std::string()}) {
    CAPTURE(text);
    std::string json = "\"";
    fra::fhir::json::escape_string(text, std::back_inserter(json));
    json += '"';
    rapidjson::Document d;
    d.Parse(json.data(), json.size());
    REQUIRE(!d.HasParseError());
    CHECK(std::string(d.GetString(), d.GetStringLength()) == text);
  }
  std::string out;
  fra::fhir::json::escape_string("\x01", std::back_inserter(out));
  CHECK(out == "\\u0001");
}
