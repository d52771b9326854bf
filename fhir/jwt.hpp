#pragma once
// Verifying the JWTs an EHR signs when it calls a CDS Hooks service (CDS Hooks 2.0, "Trusting
// CDS Clients"): RS384 or ES384, the key named by `kid` in the issuer's JWK set, and the claims
// `iss`, `aud` (exactly the service's URL), `exp`, `iat` and a `jti` never seen within its
// lifetime. Nothing of a token is ever logged: a refusal says why, not what.

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "fhir/datetime.hpp"
#include "fhir/result.hpp"

namespace fra::fhir {

/// One public key of a JWK set: RSA (`n`, `e`) or EC P-384 (`x`, `y`).
struct Jwk {
  std::string kid;
  std::string kty;            ///< "RSA" or "EC"
  std::shared_ptr<void> key;  ///< EVP_PKEY*, freed with it
};

/// The keys of a JWK set (`{"keys": [...]}`) that can verify RS384 or ES384; others are skipped.
/// Fails when the text is not a JWK set.
Result<std::vector<Jwk>> parse_jwks(const std::string& json);

struct JwtClaims {
  std::string iss, sub, jti, kid, alg;
  std::vector<std::string> aud;
  Micros exp = 0, iat = 0;
};

/// The header and claims of a compact JWS, unverified (to find the issuer and its key first).
/// Fails on anything but three base64url parts of JSON objects with `alg` and `kid`.
Result<JwtClaims> peek_jwt(const std::string& token);

/// Checks the signature of a compact JWS with `key` (RS384 with an RSA key, ES384 with a P-384
/// key; any other pairing fails).
bool signature_valid(const std::string& token, const std::string& alg, const Jwk& key);

/// Remembers the `jti`s seen until their tokens expire: a second use within the lifetime is a
/// replay. Thread-safe.
class ReplayGuard {
 public:
  /// True the first time `jti` is seen before `exp`; forgets the expired ones as it goes.
  bool first_use(const std::string& jti, Micros exp, Micros now);
  std::size_t size() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, Micros> seen_;         // jti -> when its token expires
  std::multimap<Micros, std::string> expiry_;  // the same, by expiry: what to forget first
};

/// The claims' checks, after the signature: `aud` holds `audience`; `exp` after now and `iat`
/// not after now, each with `skew` of slack; a `jti` present. Returns the reason of a refusal.
std::optional<std::string> claims_refusal(const JwtClaims& c, const std::string& audience,
                                          Micros now, Micros skew);

}  // namespace fra::fhir
