#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <rapidjson/document.h>

#include <set>
#include <string>

#include "fhir/smart.hpp"

using namespace fra::fhir;

namespace {
std::string pem_of(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  EVP_PKEY_free(key);
  return out;
}

std::string decode(const std::string& b64url) {
  std::string s = b64url;
  for (auto& c : s) c = c == '-' ? '+' : c == '_' ? '/' : c;
  while (s.size() % 4) s += '=';
  std::string out(s.size(), '\0');
  int n =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  out.resize(static_cast<std::size_t>(n) - (s.size() - b64url.size()));
  return out;
}
}  // namespace

TEST_CASE("base64url has no padding and the URL alphabet") {
  CHECK(base64url("") == "");
  CHECK(base64url("f") == "Zg");
  CHECK(base64url("fo") == "Zm8");
  CHECK(base64url("foo") == "Zm9v");
  CHECK(base64url("\xfb\xff") == "-_8");
}

TEST_CASE("client assertions: header, claims, fresh jti, and ES384 signatures of 96 bytes") {
  std::string pem = pem_of(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"));
  SmartTokenSource source(
      {"https://ehr.example.org/token", "client-1", pem, "kid-1", "system/Patient.read"}, {});
  CHECK(std::string(source.algorithm()) == "ES384");
  const Micros now = 1'800'000'000LL * 1'000'000;
  std::set<std::string> jtis;
  for (int i = 0; i < 3; ++i) {
    std::string jwt = source.assertion(now);
    auto d1 = jwt.find('.'), d2 = jwt.rfind('.');
    rapidjson::Document header, claims;
    header.Parse(decode(jwt.substr(0, d1)).c_str());
    claims.Parse(decode(jwt.substr(d1 + 1, d2 - d1 - 1)).c_str());
    CHECK(std::string(header["alg"].GetString()) == "ES384");
    CHECK(std::string(header["kid"].GetString()) == "kid-1");
    CHECK(std::string(claims["iss"].GetString()) == "client-1");
    CHECK(std::string(claims["sub"].GetString()) == "client-1");
    CHECK(std::string(claims["aud"].GetString()) == "https://ehr.example.org/token");
    CHECK(claims["exp"].GetInt64() == 1'800'000'240);
    jtis.insert(claims["jti"].GetString());
    CHECK(decode(jwt.substr(d2 + 1)).size() == 96);
  }
  CHECK(jtis.size() == 3);
}

TEST_CASE("keys that cannot sign RS384 or ES384 are refused with the reason") {
  CHECK_THROWS_WITH_AS(SmartTokenSource({"u", "c", "not a key", "", ""}, {}),
                       "the SMART private key is not a PEM private key", SmartError);
  std::string p256 = pem_of(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  CHECK_THROWS_WITH_AS(
      SmartTokenSource({"u", "c", p256, "", ""}, {}),
      "the SMART private key is an EC key on another curve than P-384 (ES384 needs P-384)",
      SmartError);
  std::string rsa = pem_of(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)));
  CHECK(std::string(SmartTokenSource({"u", "c", rsa, "", ""}, {}).algorithm()) == "RS384");
}
