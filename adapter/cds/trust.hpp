#pragma once
// Who may call the CDS Hooks service: the issuers a site trusts (cds_hooks.issuers_file), each
// with its public keys from a JWK set file or from its `jku` URL (fetched, cached, fetched again
// for an unknown kid at most once a minute), and the checks of every call's bearer JWT
// (fhir/jwt.hpp). A refusal names its reason for the metric and the log, never the token.

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "fhir/jwt.hpp"
#include "fhir/result.hpp"

namespace fra::cds {

struct Issuer {
  std::string iss;
  std::string jwks_file;  ///< a JWK set on disk, or
  std::string jku;        ///< the URL of the issuer's JWK set
};

/// Parses the issuers file: `[{"iss": "...", "jwks_file": "PATH"} | {"iss": "...", "jku":
/// "https://..."}]`; a relative path is taken from `base_dir`. Fails naming the entry.
Result<std::vector<Issuer>> parse_issuers(const std::string& json, const std::string& base_dir);

/// Why a call was refused: the label of `fra_cds_refused_total{reason}`.
struct Refusal {
  std::string reason;  ///< "no-token", "malformed", "unknown-issuer", "unknown-key", "signature",
                       ///< "claims", "replay"
  std::string detail;  ///< one line for the log, no token in it
};

class Trust {
 public:
  /// `fetch` GETs a URL and returns its body (a jku), throwing on failure.
  Trust(std::vector<Issuer> issuers, std::function<std::string(const std::string&)> fetch,
        std::chrono::seconds skew = std::chrono::seconds(60));

  /// Checks an `Authorization` header for a call to the service at `audience` (its full URL)
  /// at `now`: the claims of a token that passed, or why not.
  std::variant<fhir::JwtClaims, Refusal> check(const std::string& authorization,
                                               const std::string& audience, fhir::Micros now);

 private:
  const fhir::Jwk* key_for(const Issuer& issuer, const std::string& kid, fhir::Micros now);

  std::vector<Issuer> issuers_;
  std::function<std::string(const std::string&)> fetch_;
  fhir::Micros skew_;
  std::mutex mu_;
  std::map<std::string, std::vector<fhir::Jwk>> keys_;  // by iss
  std::map<std::string, fhir::Micros> fetched_at_;      // jku: when last fetched
  fhir::ReplayGuard replays_;
};

}  // namespace fra::cds
