#pragma once
// Universal Binary JSON (ubjson.org, draft 12), the binary form XGBoost saves models in
// (`save_model("m.ubj")`), read into a RapidJSON document so that one loader serves both forms.

#include <rapidjson/document.h>

#include <string>
#include <string_view>

namespace fra::score {

/// Parses UBJSON `bytes` into `doc`. Returns "" on success, otherwise what is wrong and at
/// which byte offset. Bounded: nesting deeper than 128 levels and counts larger than the
/// input are refused, so hostile input cannot exhaust the stack or memory.
std::string ubjson_to_document(std::string_view bytes, rapidjson::Document& doc);

/// True when `bytes` look like UBJSON rather than JSON text: an object whose first key is
/// introduced by a length marker instead of a quote.
bool looks_like_ubjson(std::string_view bytes);

}  // namespace fra::score
