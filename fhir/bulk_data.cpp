#include "fhir/bulk_data.hpp"

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <cctype>
#include <chrono>
#include <thread>

#include "fhir/bundle.hpp"
#include "fhir/retry.hpp"

namespace fra::fhir {
namespace {

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

std::string problem_of(const Response& r) {
  std::string text = operation_outcome_text(r.body);
  return text.empty() ? fmt::format("HTTP {}", r.status)
                      : fmt::format("HTTP {}: {}", r.status, text);
}

}  // namespace

std::string origin_of(const std::string& url) {
  const auto scheme = url.find("://");
  if (scheme == std::string::npos) return "";
  const auto end = url.find_first_of("/?#", scheme + 3);
  std::string origin = url.substr(0, end);
  for (auto& c : origin) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return origin;
}

ExportResult run_bulk_export(Client& client, const std::string& kickoff,
                             const std::vector<std::string>& types, const std::string& dir,
                             long max_wait_seconds,
                             const std::function<void(const std::string&)>& progress) {
  ExportResult result;
  const std::string url = fmt::format("{}?_type={}", kickoff, join(types, ","));
  Response r = client.get_with(url, "application/fhir+json", {"Prefer: respond-async"});
  if (r.status != 202 || r.content_location.empty())
    throw FhirError(fmt::format("bulk export kick-off {}: {} (expected 202 with Content-Location)",
                                path_without_query(kickoff), problem_of(r)),
                    r.status);
  const std::string status_url = r.content_location;

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(max_wait_seconds);
  for (;;) {
    r = client.get_with(status_url, "application/json", {});
    ++result.polls;
    if (r.status == 200) break;
    if (r.status != 202)
      throw FhirError(fmt::format("bulk export status: {}", problem_of(r)), r.status);
    if (progress && !r.progress.empty()) progress(r.progress);
    if (std::chrono::steady_clock::now() > deadline)
      throw FhirError(fmt::format("bulk export not finished after {} s", max_wait_seconds), 202);
    auto wait = parse_retry_after(r.retry_after, std::chrono::system_clock::now())
                    .value_or(std::chrono::milliseconds(2000));
    std::this_thread::sleep_for(
        std::clamp(wait, std::chrono::milliseconds(100), std::chrono::milliseconds(60000)));
  }

  rapidjson::Document manifest;
  manifest.Parse<rapidjson::kParseIterativeFlag>(r.body.data(), r.body.size());
  if (manifest.HasParseError() || !manifest.IsObject() || !manifest.HasMember("output") ||
      !manifest["output"].IsArray())
    throw FhirError("bulk export: the completion manifest has no output list", 200);
  if (manifest.HasMember("transactionTime") && manifest["transactionTime"].IsString())
    result.transaction_time = parse_datetime(manifest["transactionTime"].GetString()).value_or(0);
  // The files want the access token only when the manifest says so, and only on the server's
  // own origin: a file on another host (storage) never sees it.
  const bool token_wanted = manifest.HasMember("requiresAccessToken") &&
                            manifest["requiresAccessToken"].IsBool() &&
                            manifest["requiresAccessToken"].GetBool();
  const std::string origin = origin_of(client.options().base_url);
  int n = 0;
  for (const auto& out : manifest["output"].GetArray()) {
    if (!out.IsObject() || !out.HasMember("type") || !out["type"].IsString() ||
        !out.HasMember("url") || !out["url"].IsString())
      throw FhirError("bulk export: an output entry has no type or url", 200);
    ExportedFile f{out["type"].GetString(), fmt::format("{}/{:03}.export.ndjson", dir, n++)};
    const std::string file_url = out["url"].GetString();
    Response d = client.download(file_url, f.path, "application/fhir+ndjson",
                                 token_wanted && origin_of(file_url) == origin);
    if (d.status != 200)
      throw FhirError(fmt::format("bulk export file {}: {}", f.resource_type, problem_of(d)),
                      d.status);
    result.files.push_back(std::move(f));
  }
  // The server may drop the files now (Bulk Data: DELETE on the status URL); a refusal is no error.
  try {
    client.request_delete(status_url);
  } catch (const FhirError&) {
  }
  return result;
}

}  // namespace fra::fhir
