#include "fhir/bundle.hpp"

#include <rapidjson/error/en.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "fhir/datetime.hpp"
#include "fhir/json.hpp"

namespace fra::fhir {

using json::is_string;
using json::member;

Result<SearchPage> parse_search_page(std::string_view body) {
  SearchPage page;
  page.doc = std::make_unique<rapidjson::Document>();
  // Iterative: hostile nesting cannot exhaust the stack. Text is checked for UTF-8 where it is
  // kept (mapping/), so that one bad resource does not cost the page.
  page.doc->Parse<rapidjson::kParseStopWhenDoneFlag | rapidjson::kParseIterativeFlag>(body.data(),
                                                                                      body.size());
  if (page.doc->HasParseError())
    return make_error("not-json", std::string("search page is not JSON: ") +
                                      rapidjson::GetParseError_En(page.doc->GetParseError()));
  const auto& doc = *page.doc;
  if (!is_string(member(doc, "resourceType"), "Bundle"))
    return make_error("not-bundle", "search page is not a Bundle", "/resourceType");
  if (const auto* entries = member(doc, "entry"); entries != nullptr && entries->IsArray()) {
    for (const auto& e : entries->GetArray()) {
      const auto* search = member(e, "search");
      if (search != nullptr && member(*search, "mode") != nullptr &&
          !is_string(member(*search, "mode"), "match"))
        continue;  // includes and OperationOutcome entries are not results
      if (const auto* r = member(e, "resource"); r != nullptr && r->IsObject())
        page.resources.push_back(r);
    }
  }
  if (const auto* links = member(doc, "link"); links != nullptr && links->IsArray()) {
    for (const auto& l : links->GetArray()) {
      const auto* url = member(l, "url");
      if (is_string(member(l, "relation"), "next") && url != nullptr && url->IsString())
        page.next = std::string(url->GetString(), url->GetStringLength());
    }
  }
  return page;
}

Result<HistoryPage> parse_history_page(std::string_view body, std::string_view type) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseStopWhenDoneFlag | rapidjson::kParseIterativeFlag>(body.data(),
                                                                                body.size());
  if (doc.HasParseError()) return make_error("not-json", "history page is not JSON");
  if (!is_string(member(doc, "resourceType"), "Bundle"))
    return make_error("not-bundle", "history page is not a Bundle");
  HistoryPage page;
  if (const auto* entries = member(doc, "entry"); entries != nullptr && entries->IsArray()) {
    for (const auto& e : entries->GetArray()) {
      const auto* request = member(e, "request");
      const auto* response = member(e, "response");
      Micros at = 0;
      if (response != nullptr) {
        const auto* lm = member(*response, "lastModified");
        if (lm != nullptr && lm->IsString()) at = parse_datetime(lm->GetString()).value_or(0);
      }
      page.newest = std::max(page.newest, at);
      if (request == nullptr || !is_string(member(*request, "method"), "DELETE")) continue;
      const auto* url = member(*request, "url");
      if (url == nullptr || !url->IsString()) continue;
      // "Observation/123" or "Observation/123/_history/4", possibly absolute.
      std::string_view u(url->GetString(), url->GetStringLength());
      std::string prefix = std::string(type) + "/";
      auto pos = u.rfind(prefix);
      if (pos == std::string_view::npos) continue;
      std::string_view id = u.substr(pos + prefix.size());
      id = id.substr(0, id.find('/'));
      if (id.empty()) continue;
      page.deletes.push_back({std::string(id), at});
    }
  }
  if (const auto* links = member(doc, "link"); links != nullptr && links->IsArray())
    for (const auto& l : links->GetArray()) {
      const auto* url = member(l, "url");
      if (is_string(member(l, "relation"), "next") && url != nullptr && url->IsString())
        page.next = url->GetString();
    }
  return page;
}

std::string scrub_server_text(std::string_view text) {
  // What a server says about a request may quote the request's data back (an identifier, a
  // name, a reference): quoted text, the id of a reference and runs of 4 or more digits go.
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  std::string out;
  std::size_t word = 0;  // where the word being copied starts in `out`
  for (std::size_t i = 0; i < text.size() && out.size() < 300; ++i) {
    const char c = text[i];
    if (c == '\'' || c == '"' || c == '`') {
      const auto close = text.find(c, i + 1);
      out += c;
      out += "...";
      out += c;
      i = close == std::string_view::npos ? text.size() : close;
      word = out.size();
    } else if (c == '/' && word < out.size() &&
               std::isupper(static_cast<unsigned char>(out[word])) && i + 1 < text.size() &&
               alnum(text[i + 1])) {
      out += "/...";  // Type/id: the type stays
      while (i + 1 < text.size() &&
             (alnum(text[i + 1]) || text[i + 1] == '-' || text[i + 1] == '.'))
        ++i;
      word = out.size();
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      std::size_t j = i, digits = 0;
      for (;
           j < text.size() && (std::isdigit(static_cast<unsigned char>(text[j])) || text[j] == '-');
           ++j)
        digits += text[j] != '-' ? 1 : 0;
      if (digits >= 4)
        out += "#";
      else
        out.append(text.substr(i, j - i));
      i = j - 1;
    } else {
      out += c;
      if (!alnum(c)) word = out.size();
    }
  }
  return out;
}

namespace {

// The text of the issues of a parsed OperationOutcome: a flat walk, no recursion into the input.
std::string outcome_text(const rapidjson::Value& doc) {
  if (!is_string(member(doc, "resourceType"), "OperationOutcome")) return "";
  std::string out;
  const auto* issues = member(doc, "issue");
  if (issues == nullptr || !issues->IsArray()) return out;
  for (const auto& issue : issues->GetArray()) {
    const rapidjson::Value* text = member(issue, "diagnostics");
    if (text == nullptr || !text->IsString()) {
      const auto* details = member(issue, "details");
      text = details != nullptr ? member(*details, "text") : nullptr;
    }
    if (text == nullptr || !text->IsString()) continue;
    if (!out.empty()) out += "; ";
    out.append(text->GetString(), text->GetStringLength());
  }
  return out;
}

}  // namespace

std::string operation_outcome_text(std::string_view body) {
  rapidjson::Document doc;
  // Iterative, as every body from the server: hostile nesting cannot exhaust the stack.
  doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (doc.HasParseError()) return "";
  return outcome_text(doc);
}

std::string batch_bundle(const std::vector<BatchEntry>& entries) {
  std::string out = R"({"resourceType":"Bundle","type":"batch","entry":[)";
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    // The resource is already JSON; method and URL are ASCII the adapter made (percent-encoded).
    out += i ? "," : "";
    out += R"({"resource":)" + e.resource_json + R"(,"request":{"method":")" + e.method +
           R"(","url":")" + e.url + R"("}})";
  }
  return out + "]}";
}

Result<std::vector<EntryOutcome>> parse_batch_response(std::string_view body,
                                                       std::size_t expected) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (doc.HasParseError() || !is_string(member(doc, "resourceType"), "Bundle"))
    return make_error("not-bundle", "the batch response is not a Bundle");
  const auto* entries = member(doc, "entry");
  if (entries == nullptr || !entries->IsArray() || entries->Size() != expected)
    return make_error("bad-batch-response",
                      "the batch response does not have one entry per request", "/entry");
  std::vector<EntryOutcome> out;
  for (const auto& e : entries->GetArray()) {
    EntryOutcome o;
    const auto* resp = member(e, "response");
    const auto* status = resp != nullptr ? member(*resp, "status") : nullptr;
    if (status != nullptr && status->IsString())
      o.status = std::atoi(status->GetString());  // "201 Created"
    if (o.status < 200 || o.status >= 300) {
      const auto* outcome = resp != nullptr ? member(*resp, "outcome") : nullptr;
      // Read in place: writing it out to parse it again recursed once per level of nesting.
      if (outcome != nullptr) o.problem = outcome_text(*outcome);
    }
    out.push_back(std::move(o));
  }
  return out;
}

}  // namespace fra::fhir
