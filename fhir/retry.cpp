#include "fhir/retry.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <string>

namespace fra::fhir {

Action classify_status(long status) {
  switch (status) {
    case 408:  // request timeout
    case 425:  // too early
    case 429:  // throttled
    case 500:  // some servers answer a transient overload with 500
    case 502:
    case 503:
    case 504:
      return Action::retry;
    default:
      break;
  }
  if (status >= 200 && status < 300) return Action::done;
  if (status == 404 || status == 410 || status == 412) return Action::done;  // caller's decision
  return Action::fail;
}

Action classify_transport(int code) {
  switch (static_cast<CURLcode>(code)) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return Action::retry;
    default:
      return Action::fail;  // TLS verification, bad URL, out of memory: retrying won't help
  }
}

std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (value.size() > 6) return std::chrono::hours(24);
    return std::chrono::seconds(std::stol(std::string(value)));
  }
  std::tm tm{};
  std::string s(value);
  if (strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm) == nullptr) return std::nullopt;
  auto when = std::chrono::system_clock::from_time_t(timegm(&tm));
  auto delta = std::chrono::duration_cast<std::chrono::milliseconds>(when - now);
  return std::max(delta, std::chrono::milliseconds(0));
}

std::chrono::milliseconds backoff(int attempt, std::chrono::milliseconds base,
                                  std::chrono::milliseconds cap, double jitter,
                                  std::optional<std::chrono::milliseconds> retry_after) {
  double exp = static_cast<double>(base.count()) * std::pow(2.0, std::max(attempt - 1, 0));
  double capped = std::min(exp, static_cast<double>(cap.count()));
  auto delay = std::chrono::milliseconds(static_cast<long>(capped * std::clamp(jitter, 0.0, 1.0)));
  if (retry_after && *retry_after > delay)
    delay = std::min(*retry_after, std::chrono::milliseconds(300000));
  return delay;
}

}  // namespace fra::fhir
