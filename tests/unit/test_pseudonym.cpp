#include <doctest/doctest.h>
#include <openssl/hmac.h>

#include <stdexcept>

#include "mapping/pseudonym.hpp"

using fra::mapping::Pseudonymizer;

namespace {
const std::string kKey(32, 'k');
}

TEST_CASE("pseudonyms are HMAC-SHA256 of type/id, hex") {
  Pseudonymizer ps(kKey);
  auto p = ps.of("Patient", {"123"});
  unsigned char mac[32];
  unsigned int len = 0;
  std::string msg = "Patient/123";
  HMAC(EVP_sha256(), kKey.data(), 32, reinterpret_cast<const unsigned char*>(msg.data()),
       msg.size(), mac, &len);
  CHECK(p.hex == fra::mapping::to_hex(mac, len));
  CHECK(p.hex.size() == 64);
  CHECK(ps.of("Patient", {"123"}) == p);
  CHECK(ps.of("Observation", {"123"}) != p);
  CHECK(Pseudonymizer(std::string(32, 'x')).of("Patient", {"123"}) != p);
}

TEST_CASE("a key longer than SHA-256's block is hashed first, as HMAC requires") {
  const std::string long_key(100, 'q');
  unsigned char mac[32];
  unsigned int len = 0;
  std::string msg = "Patient/abc";
  HMAC(EVP_sha256(), long_key.data(), 100, reinterpret_cast<const unsigned char*>(msg.data()),
       msg.size(), mac, &len);
  CHECK(Pseudonymizer(long_key).of("Patient", {"abc"}).hex == fra::mapping::to_hex(mac, len));
}

TEST_CASE("a key shorter than 32 bytes is refused") {
  CHECK_THROWS_AS(Pseudonymizer(std::string(31, 'k')), std::invalid_argument);
}

TEST_CASE("sealing round-trips, is randomised, and detects tampering and another key") {
  Pseudonymizer ps(kKey);
  auto a = ps.seal("Patient/123");
  auto b = ps.seal("Patient/123");
  CHECK(a != b);
  CHECK(ps.open(a).value() == "Patient/123");
  auto tampered = a;
  tampered[14] ^= 1;
  CHECK(!ps.open(tampered).ok());
  CHECK(!Pseudonymizer(std::string(32, 'x')).open(a).ok());
  CHECK(std::string(a.begin(), a.end()).find("123") == std::string::npos);
}

TEST_CASE("derived names are HMAC-SHA256 of purpose|text") {
  unsigned char mac[32];
  unsigned int len = 0;
  std::string msg = "risk-assessment/m|abc";
  HMAC(EVP_sha256(), kKey.data(), 32, reinterpret_cast<const unsigned char*>(msg.data()),
       msg.size(), mac, &len);
  CHECK(Pseudonymizer(kKey).derive("risk-assessment/m", "abc").hex ==
        fra::mapping::to_hex(mac, len));
}
