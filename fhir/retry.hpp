#pragma once
// What to do after one HTTP exchange with a FHIR server: the single classify() table of the
// fhir/ boundary, and the backoff between attempts.

#include <chrono>
#include <optional>
#include <string_view>

namespace fra::fhir {

enum class Action {
  done,   ///< use the response (2xx, or a 4xx the caller must handle such as 404/410/412)
  retry,  ///< transient: throttled, overloaded, timed out, connection lost
  fail,   ///< permanent: the request itself is wrong or not allowed
};

/// Classifies an HTTP status.
Action classify_status(long status);

/// Classifies a libcurl result code (CURLcode as int) of a request that got no response.
Action classify_transport(int curl_code);

/// Parses Retry-After: delta-seconds or an HTTP-date. nullopt when absent or malformed.
std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now);

/// Delay before attempt `attempt` (1 = first retry): exponential from `base`, capped at `cap`,
/// with full jitter (`jitter` in [0,1)); a server's Retry-After wins when it is longer.
std::chrono::milliseconds backoff(int attempt, std::chrono::milliseconds base,
                                  std::chrono::milliseconds cap, double jitter,
                                  std::optional<std::chrono::milliseconds> retry_after);

}  // namespace fra::fhir
