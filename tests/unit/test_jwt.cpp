// The CDS Hooks caller's JWT: keys from a JWK set, RS384 and ES384 signatures, the claims, and
// replays. Keys are made here with OpenSSL; tokens are signed here as an EHR signs them.
#include <doctest/doctest.h>

#include <string>

#include "fhir/jwt.hpp"
#include "tests/unit/jose_keys.hpp"

using namespace fra;

namespace {

using fra::test::Pair;

constexpr fhir::Micros kNow = 1'800'000'000'000'000LL;
const std::string kAud = "https://fra.example.org/cds-services/readmission-risk";

std::string claims(const std::string& aud = kAud, long exp = 1'800'000'300,
                   long iat = 1'800'000'000, const std::string& jti = "j-1") {
  return R"({"iss": "https://ehr.example.org", "aud": ")" + aud + R"(", "exp": )" +
         std::to_string(exp) + R"(, "iat": )" + std::to_string(iat) + R"(, "jti": ")" + jti +
         R"("})";
}

}  // namespace

TEST_CASE("RS384 and ES384 tokens verify with the key their kid names, and no other") {
  for (bool ec : {false, true}) {
    Pair key(ec), other(ec);
    const char* alg = ec ? "ES384" : "RS384";
    auto jwks = fhir::parse_jwks(R"({"keys": [)" + key.jwk("k1") + "]}");
    REQUIRE(jwks);
    REQUIRE(jwks->size() == 1);
    const std::string header =
        std::string(R"({"alg": ")") + alg + R"(", "kid": "k1", "typ": "JWT"})";
    const std::string token = key.sign(header, claims());
    auto c = fhir::peek_jwt(token);
    REQUIRE(c);
    CHECK(c->iss == "https://ehr.example.org");
    CHECK(c->kid == "k1");
    CHECK(c->exp == 1'800'000'300'000'000LL);
    CHECK(fhir::signature_valid(token, alg, (*jwks)[0]));
    // Signed by another key under the same kid; a payload changed after signing; the other
    // algorithm claimed in the header.
    CHECK_FALSE(fhir::signature_valid(other.sign(header, claims()), alg, (*jwks)[0]));
    const std::string tampered = token.substr(0, token.find('.') + 1) +
                                 fhir::base64url(claims("https://evil.example.org")) +
                                 token.substr(token.rfind('.'));
    CHECK_FALSE(fhir::signature_valid(tampered, alg, (*jwks)[0]));
    CHECK_FALSE(fhir::signature_valid(token, ec ? "RS384" : "ES384", (*jwks)[0]));
    CHECK_FALSE(fhir::signature_valid(token, "HS256", (*jwks)[0]));
  }
}

TEST_CASE("the claims: audience exactly, exp and iat with a small skew, a jti") {
  const fhir::Micros skew = 60'000'000;
  auto check = [&](const std::string& payload) {
    Pair key(true);
    auto c = fhir::peek_jwt(key.sign(R"({"alg": "ES384", "kid": "k"})", payload));
    REQUIRE(c);
    return fhir::claims_refusal(*c, kAud, kNow, skew);
  };
  CHECK_FALSE(check(claims()));
  CHECK(check(claims(kAud + "/")).has_value());  // not exactly the service's URL
  CHECK(check(claims("https://other.example.org/cds-services/readmission-risk")).has_value());
  CHECK(check(claims(kAud, 1'800'000'000 - 61)).has_value());  // expired beyond the skew
  CHECK_FALSE(check(claims(kAud, 1'800'000'000 - 30)));        // within it
  CHECK(check(claims(kAud, 1'800'000'300, 1'800'000'000 + 61)).has_value());  // issued later
  CHECK(check(claims(kAud, 1'800'000'300, 1'800'000'000, "")).has_value());   // no jti
}

TEST_CASE("a jti is used once within its token's lifetime") {
  fhir::ReplayGuard guard;
  CHECK(guard.first_use("a", kNow + 300, kNow));
  CHECK_FALSE(guard.first_use("a", kNow + 300, kNow + 10));
  CHECK(guard.first_use("b", kNow + 300, kNow + 10));
  CHECK(guard.first_use("a", kNow + 900, kNow + 301));  // the first token expired: forgotten
  CHECK(guard.size() == 1);                             // "b" expired with it
}

TEST_CASE("what is not a token or not a JWK set is refused, not crashed on") {
  CHECK_FALSE(fhir::peek_jwt("abc"));
  CHECK_FALSE(fhir::peek_jwt("a.b.c.d"));
  CHECK_FALSE(fhir::peek_jwt("e30.e30.sig"));  // {} header: no alg, no kid
  CHECK_FALSE(fhir::peek_jwt("!!.e30.sig"));
  CHECK_FALSE(fhir::parse_jwks("[]"));
  auto none = fhir::parse_jwks(
      R"({"keys": [{"kty": "oct", "k": "AAAA"}, {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]})");
  REQUIRE(none);
  CHECK(none->empty());
}
