// Who may call the CDS Hooks service: the issuers file, keys from a JWK set file or a jku, and a
// refusal with its reason for each way a call can fail.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <variant>

#include "adapter/cds/trust.hpp"
#include "tests/unit/jose_keys.hpp"

using namespace fra;
using fra::test::Pair;

namespace {

constexpr fhir::Micros kNow = 1'800'000'000'000'000LL;
const std::string kAud = "https://fra.example.org/cds-services/readmission-risk";

std::string payload(const std::string& iss, const std::string& jti) {
  return R"({"iss": ")" + iss + R"(", "aud": ")" + kAud +
         R"(", "exp": 1800000300, "iat": 1800000000, "jti": ")" + jti + R"("})";
}

std::string reason(const std::variant<fhir::JwtClaims, cds::Refusal>& r) {
  return std::holds_alternative<cds::Refusal>(r) ? std::get<cds::Refusal>(r).reason : "accepted";
}

}  // namespace

TEST_CASE("the issuers file: a JWK set file or a jku an issuer, nothing else") {
  auto ok = cds::parse_issuers(
      R"([{"iss": "https://ehr.example.org", "jwks_file": "ehr.jwks"},
          {"iss": "https://sandbox.example.org", "jku": "https://sandbox.example.org/jwks.json"}])",
      "/etc/fra");
  REQUIRE(ok);
  CHECK(ok->at(0).jwks_file == "/etc/fra/ehr.jwks");
  CHECK(ok->at(1).jku == "https://sandbox.example.org/jwks.json");
  CHECK_FALSE(cds::parse_issuers(R"({"iss": "x"})", "/"));
  CHECK_FALSE(cds::parse_issuers(R"([{"iss": "x"}])", "/"));
  CHECK_FALSE(cds::parse_issuers(R"([{"iss": "x", "jwks_file": "a", "jku": "https://b"}])", "/"));
  CHECK_FALSE(cds::parse_issuers(R"([{"iss": "x", "jku": "file:///etc/passwd"}])", "/"));
}

TEST_CASE("a call is accepted once with a trusted issuer's key, and refused for each reason") {
  Pair ec(true), rsa(false), stranger(true);
  const std::string path = "/tmp/fra-test-ehr.jwks";
  {
    std::ofstream f(path);
    f << R"({"keys": [)" << ec.jwk("ec-1") << "]}";
  }
  int fetches = 0;
  cds::Trust trust(
      {{"https://ehr.example.org", path, ""}, {"https://sandbox.example.org", "", "https://j"}},
      [&](const std::string& url) {
        ++fetches;
        CHECK(url == "https://j");
        return R"({"keys": [)" + rsa.jwk("rsa-1") + "]}";
      });
  const std::string es_header = R"({"alg": "ES384", "kid": "ec-1"})";
  const std::string rs_header = R"({"alg": "RS384", "kid": "rsa-1"})";
  auto bearer = [](const std::string& t) { return "Bearer " + t; };

  CHECK(reason(trust.check(bearer(ec.sign(es_header, payload("https://ehr.example.org", "a"))),
                           kAud, kNow)) == "accepted");
  CHECK(reason(trust.check(bearer(rsa.sign(rs_header, payload("https://sandbox.example.org", "b"))),
                           kAud, kNow)) == "accepted");
  CHECK(fetches == 1);
  // The same token again; another issuer; a stranger's key under a known kid; a kid the set
  // lacks; another audience; no token; not a token.
  const std::string again = ec.sign(es_header, payload("https://ehr.example.org", "c"));
  CHECK(reason(trust.check(bearer(again), kAud, kNow)) == "accepted");
  CHECK(reason(trust.check(bearer(again), kAud, kNow)) == "replay");
  CHECK(reason(trust.check(bearer(ec.sign(es_header, payload("https://other.example.org", "d"))),
                           kAud, kNow)) == "unknown-issuer");
  CHECK(
      reason(trust.check(bearer(stranger.sign(es_header, payload("https://ehr.example.org", "e"))),
                         kAud, kNow)) == "signature");
  CHECK(reason(trust.check(bearer(ec.sign(R"({"alg": "ES384", "kid": "nope"})",
                                          payload("https://ehr.example.org", "f"))),
                           kAud, kNow)) == "unknown-key");
  CHECK(reason(trust.check(bearer(ec.sign(es_header, payload("https://ehr.example.org", "g"))),
                           kAud + "x", kNow)) == "claims");
  CHECK(reason(trust.check("", kAud, kNow)) == "no-token");
  CHECK(reason(trust.check("Bearer not-a-jwt", kAud, kNow)) == "malformed");
  // An unknown kid of a jku issuer fetches the set again, but not twice within a minute.
  CHECK(reason(trust.check(bearer(rsa.sign(R"({"alg": "RS384", "kid": "rsa-2"})",
                                           payload("https://sandbox.example.org", "h"))),
                           kAud, kNow + 61'000'000)) == "unknown-key");
  CHECK(reason(trust.check(bearer(rsa.sign(R"({"alg": "RS384", "kid": "rsa-3"})",
                                           payload("https://sandbox.example.org", "i"))),
                           kAud, kNow + 62'000'000)) == "unknown-key");
  CHECK(fetches == 2);
  std::remove(path.c_str());
}
