#pragma once
// Keys made with OpenSSL and tokens signed with them as an EHR signs a CDS Hooks call: for the
// tests of fhir/jwt and adapter/cds/trust.
#include <doctest/doctest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include <string>

#include "fhir/smart.hpp"

namespace fra::test {

/// An RSA 2048 (RS384) or EC P-384 (ES384) key pair: its public JWK, and tokens it signs.
struct Pair {
  EVP_PKEY* pkey = nullptr;
  bool ec = false;
  explicit Pair(bool is_ec) : ec(is_ec) {
    pkey = ec ? EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384")
              : EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
    REQUIRE(pkey != nullptr);
  }
  ~Pair() { EVP_PKEY_free(pkey); }
  Pair(const Pair&) = delete;

  std::string bn(const char* name) const {
    BIGNUM* b = nullptr;
    REQUIRE(EVP_PKEY_get_bn_param(pkey, name, &b) == 1);
    std::string out(static_cast<std::size_t>(BN_num_bytes(b)), '\0');
    BN_bn2bin(b, reinterpret_cast<unsigned char*>(out.data()));
    BN_free(b);
    return out;
  }
  std::string jwk(const std::string& kid) const {
    if (!ec)
      return R"({"kty": "RSA", "kid": ")" + kid + R"(", "n": ")" +
             fhir::base64url(bn(OSSL_PKEY_PARAM_RSA_N)) + R"(", "e": ")" +
             fhir::base64url(bn(OSSL_PKEY_PARAM_RSA_E)) + R"("})";
    unsigned char point[97];
    size_t len = 0;
    REQUIRE(EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point,
                                            &len) == 1);
    REQUIRE(len == 97);
    const std::string x(reinterpret_cast<char*>(point) + 1, 48),
        y(reinterpret_cast<char*>(point) + 49, 48);
    return R"({"kty": "EC", "crv": "P-384", "kid": ")" + kid + R"(", "x": ")" + fhir::base64url(x) +
           R"(", "y": ")" + fhir::base64url(y) + R"("})";
  }
  std::string sign(const std::string& header, const std::string& payload) const {
    const std::string input = fhir::base64url(header) + "." + fhir::base64url(payload);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    size_t len = 0;
    REQUIRE(EVP_DigestSignInit(ctx, nullptr, EVP_sha384(), nullptr, pkey) == 1);
    REQUIRE(EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                           input.size()) == 1);
    std::string sig(len, '\0');
    REQUIRE(EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                           reinterpret_cast<const unsigned char*>(input.data()),
                           input.size()) == 1);
    sig.resize(len);
    EVP_MD_CTX_free(ctx);
    if (ec) {
      const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
      ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
      unsigned char raw[96];
      BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 48);
      BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 48, 48);
      ECDSA_SIG_free(es);
      sig.assign(reinterpret_cast<char*>(raw), sizeof raw);
    }
    return input + "." + fhir::base64url(sig);
  }
};

}  // namespace fra::test
