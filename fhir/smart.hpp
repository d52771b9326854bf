#pragma once
// SMART Backend Services (HL7 FHIR SMART App Launch 2.0, "Backend Services"): an access token
// from the server's token endpoint through the client_credentials grant, the client proving
// itself with a JWT assertion signed RS384 or ES384 by its private key. The token is cached until
// shortly before it expires; a 401 from the FHIR server asks for a new one.

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "fhir/client.hpp"
#include "fhir/datetime.hpp"

namespace fra::fhir {

struct SmartOptions {
  std::string token_url;        ///< the token endpoint, also the assertion's `aud`
  std::string client_id;        ///< `iss` and `sub`
  std::string private_key_pem;  ///< RSA (RS384) or EC P-384 (ES384); never logged
  std::string key_id;           ///< `kid` of the key in the client's registered JWK set
  std::string scope;            ///< e.g. "system/Patient.rs system/Observation.rs ..."
};

/// Refused configuration or a refused token request; the message holds no secret.
class SmartError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

class SmartTokenSource {
 public:
  /// Loads the private key. Throws SmartError when it is not an RSA or P-384 EC key in PEM.
  SmartTokenSource(SmartOptions options, ClientOptions http);
  ~SmartTokenSource();

  /// A valid access token; asks the token endpoint when there is none or it expires within a
  /// minute, or when `renew`. Throws SmartError or FhirError.
  std::string token(bool renew = false);

  /// A signed client assertion issued at `now` (exposed for tests).
  std::string assertion(Micros now) const;
  /// "RS384" or "ES384".
  const char* algorithm() const;

 private:
  struct Key;
  SmartOptions options_;
  std::unique_ptr<Key> key_;
  Client http_;
  std::mutex mutex_;
  std::string token_;
  Micros expires_ = 0;
  Micros fetched_ = 0;  // when the token in hand was issued
};

/// base64url without padding (RFC 7515 section 2).
std::string base64url(std::string_view bytes);

}  // namespace fra::fhir
