#include "fhir/jwt.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <optional>

#include "fhir/json.hpp"

namespace fra::fhir {
namespace {

using json::member;
using json::string_member;

std::optional<std::string> base64url_decode(std::string_view in) {
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '-')
      v = 62;
    else if (c == '_')
      v = 63;
    else
      return std::nullopt;  // padding and the standard alphabet are not base64url
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  if (bits >= 6) return std::nullopt;  // a length no encoding gives
  return out;
}

struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
using Bn = std::unique_ptr<BIGNUM, BnFree>;

Bn bignum(const std::string& bytes) {
  return Bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()),
                      static_cast<int>(bytes.size()), nullptr));
}

// An EVP_PKEY from OSSL parameters of `type` ("RSA" or "EC"); nullptr when they do not make one.
std::shared_ptr<void> key_from(const char* type, OSSL_PARAM_BLD* bld) {
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
  EVP_PKEY* pkey = nullptr;
  if (params != nullptr && ctx != nullptr && EVP_PKEY_fromdata_init(ctx) == 1)
    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  if (pkey == nullptr) return nullptr;
  return std::shared_ptr<void>(pkey, [](void* p) { EVP_PKEY_free(static_cast<EVP_PKEY*>(p)); });
}

std::shared_ptr<void> rsa_key(const std::string& n, const std::string& e) {
  Bn bn_n = bignum(n), bn_e = bignum(e);
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  if (bld == nullptr || !bn_n || !bn_e) {
    OSSL_PARAM_BLD_free(bld);
    return nullptr;
  }
  OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n.get());
  OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e.get());
  auto key = key_from("RSA", bld);
  OSSL_PARAM_BLD_free(bld);
  return key;
}

std::shared_ptr<void> p384_key(const std::string& x, const std::string& y) {
  if (x.size() != 48 || y.size() != 48) return nullptr;
  const std::string point = std::string(1, '\x04') + x + y;  // uncompressed
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  if (bld == nullptr) return nullptr;
  OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-384", 0);
  OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size());
  auto key = key_from("EC", bld);
  OSSL_PARAM_BLD_free(bld);
  return key;
}

std::optional<std::string> decoded_member(const rapidjson::Value& v, const char* name) {
  auto text = string_member(v, name);
  if (!text) return std::nullopt;
  return base64url_decode(*text);
}

Result<rapidjson::Document> json_part(std::string_view b64, const char* what) {
  auto text = base64url_decode(b64);
  rapidjson::Document doc;
  if (text) doc.Parse(text->data(), text->size());
  if (!text || doc.HasParseError() || !doc.IsObject())
    return make_error("bad-jwt", std::string("the token's ") + what + " is not base64url JSON");
  return doc;
}

std::optional<Micros> seconds_member(const rapidjson::Value& v, const char* name) {
  const auto* m = member(v, name);
  if (m == nullptr || !m->IsNumber()) return std::nullopt;
  return static_cast<Micros>(m->GetDouble() * 1e6);
}

}  // namespace

Result<std::vector<Jwk>> parse_jwks(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  const auto* keys = doc.HasParseError() ? nullptr : member(doc, "keys");
  if (keys == nullptr || !keys->IsArray()) return make_error("bad-jwks", "not a JWK set");
  std::vector<Jwk> out;
  for (const auto& k : keys->GetArray()) {
    Jwk jwk{string_member(k, "kid").value_or(""), string_member(k, "kty").value_or(""), nullptr};
    if (jwk.kty == "RSA") {
      auto n = decoded_member(k, "n"), e = decoded_member(k, "e");
      if (n && e) jwk.key = rsa_key(*n, *e);
    } else if (jwk.kty == "EC" && string_member(k, "crv") == "P-384") {
      auto x = decoded_member(k, "x"), y = decoded_member(k, "y");
      if (x && y) jwk.key = p384_key(*x, *y);
    }
    if (jwk.key) out.push_back(std::move(jwk));
  }
  return out;
}

Result<JwtClaims> peek_jwt(const std::string& token) {
  const auto a = token.find('.');
  const auto b = a == std::string::npos ? a : token.find('.', a + 1);
  if (b == std::string::npos || token.find('.', b + 1) != std::string::npos)
    return make_error("bad-jwt", "the token is not a compact JWS (three parts)");
  auto header = json_part(std::string_view(token).substr(0, a), "header");
  if (!header) return header.error();
  auto payload = json_part(std::string_view(token).substr(a + 1, b - a - 1), "payload");
  if (!payload) return payload.error();
  JwtClaims c;
  c.alg = string_member(header.value(), "alg").value_or("");
  c.kid = string_member(header.value(), "kid").value_or("");
  if (c.alg.empty() || c.kid.empty())
    return make_error("bad-jwt", "the token's header names no alg or no kid");
  const auto& p = payload.value();
  c.iss = string_member(p, "iss").value_or("");
  c.sub = string_member(p, "sub").value_or("");
  c.jti = string_member(p, "jti").value_or("");
  if (const auto* aud = member(p, "aud"); aud != nullptr && aud->IsString()) {
    c.aud.emplace_back(aud->GetString(), aud->GetStringLength());
  } else if (aud != nullptr && aud->IsArray()) {
    for (const auto& x : aud->GetArray())
      if (x.IsString()) c.aud.emplace_back(x.GetString(), x.GetStringLength());
  }
  c.exp = seconds_member(p, "exp").value_or(0);
  c.iat = seconds_member(p, "iat").value_or(0);
  return c;
}

bool signature_valid(const std::string& token, const std::string& alg, const Jwk& key) {
  const auto dot = token.rfind('.');
  if (dot == std::string::npos || !key.key) return false;
  auto sig = base64url_decode(std::string_view(token).substr(dot + 1));
  if (!sig) return false;
  if (alg == "ES384") {
    if (key.kty != "EC" || sig->size() != 96) return false;
    // JWS gives R || S, 48 bytes each; OpenSSL verifies a DER SEQUENCE of two INTEGERs.
    ECDSA_SIG* es = ECDSA_SIG_new();
    BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(sig->data()), 48, nullptr);
    BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(sig->data()) + 48, 48, nullptr);
    if (es == nullptr || r == nullptr || s == nullptr || ECDSA_SIG_set0(es, r, s) != 1) {
      BN_free(r);
      BN_free(s);
      ECDSA_SIG_free(es);
      return false;
    }
    unsigned char* der = nullptr;
    const int len = i2d_ECDSA_SIG(es, &der);
    ECDSA_SIG_free(es);
    if (len <= 0) return false;
    sig->assign(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
    OPENSSL_free(der);
  } else if (alg != "RS384" || key.kty != "RSA") {
    return false;
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok =
      ctx != nullptr &&
      EVP_DigestVerifyInit(ctx, nullptr, EVP_sha384(), nullptr,
                           static_cast<EVP_PKEY*>(key.key.get())) == 1 &&
      EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig->data()), sig->size(),
                       reinterpret_cast<const unsigned char*>(token.data()), dot) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

bool ReplayGuard::first_use(const std::string& jti, Micros exp, Micros now) {
  std::lock_guard lock(mu_);
  // Only what has expired is looked at: the oldest expiries first.
  while (!expiry_.empty() && expiry_.begin()->first < now) {
    seen_.erase(expiry_.begin()->second);
    expiry_.erase(expiry_.begin());
  }
  if (!seen_.emplace(jti, exp).second) return false;
  expiry_.emplace(exp, jti);
  return true;
}

std::size_t ReplayGuard::size() const {
  std::lock_guard lock(mu_);
  return seen_.size();
}

std::optional<std::string> claims_refusal(const JwtClaims& c, const std::string& audience,
                                          Micros now, Micros skew) {
  if (std::find(c.aud.begin(), c.aud.end(), audience) == c.aud.end())
    return "the token's aud is not this service's URL";
  if (c.exp == 0 || c.exp + skew < now) return "the token has expired (exp)";
  if (c.iat == 0 || c.iat - skew > now) return "the token's iat is missing or in the future";
  if (c.jti.empty()) return "the token has no jti";
  return std::nullopt;
}

}  // namespace fra::fhir
