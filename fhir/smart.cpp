#include "fhir/smart.hpp"

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cctype>
#include <thread>

#include "fhir/bundle.hpp"
#include "fhir/retry.hpp"

namespace fra::fhir {
namespace {

std::string form_encode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
      out += static_cast<char>(c);
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

std::string json_object(std::initializer_list<std::pair<const char*, std::string>> strings,
                        std::initializer_list<std::pair<const char*, long long>> numbers = {}) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  for (const auto& [k, v] : strings) {
    w.Key(k);
    w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
  }
  for (const auto& [k, v] : numbers) {
    w.Key(k);
    w.Int64(v);
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace

std::string base64url(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  auto at = [&](std::size_t k) { return static_cast<unsigned char>(bytes[k]); };
  for (; i + 2 < bytes.size(); i += 3) {
    std::uint32_t v = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (bytes.size() - i == 1) {
    std::uint32_t v = at(i) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
  } else if (bytes.size() - i == 2) {
    std::uint32_t v = (at(i) << 16) | (at(i + 1) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

struct SmartTokenSource::Key {
  EVP_PKEY* pkey = nullptr;
  bool ec = false;
  ~Key() { EVP_PKEY_free(pkey); }
};

SmartTokenSource::SmartTokenSource(SmartOptions options, ClientOptions http)
    : options_(std::move(options)), key_(std::make_unique<Key>()), http_(std::move(http)) {
  BIO* bio = BIO_new_mem_buf(options_.private_key_pem.data(),
                             static_cast<int>(options_.private_key_pem.size()));
  key_->pkey = bio != nullptr ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr) : nullptr;
  BIO_free(bio);
  if (key_->pkey == nullptr) throw SmartError("the SMART private key is not a PEM private key");
  const int type = EVP_PKEY_get_base_id(key_->pkey);
  if (type == EVP_PKEY_EC) {
    char curve[64] = {};
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(key_->pkey, "group", curve, sizeof curve, &len) != 1 ||
        std::string_view(curve) != "secp384r1")
      throw SmartError(
          "the SMART private key is an EC key on another curve than P-384 (ES384 needs P-384)");
    key_->ec = true;
  } else if (type != EVP_PKEY_RSA) {
    throw SmartError("the SMART private key is neither RSA (RS384) nor EC P-384 (ES384)");
  }
}

SmartTokenSource::~SmartTokenSource() = default;

const char* SmartTokenSource::algorithm() const { return key_->ec ? "ES384" : "RS384"; }

std::string SmartTokenSource::assertion(Micros now) const {
  unsigned char jti[16];
  RAND_bytes(jti, sizeof jti);
  const long long seconds = now / 1000000;
  std::string header =
      json_object({{"alg", algorithm()}, {"typ", "JWT"}, {"kid", options_.key_id}});
  std::string claims =
      json_object({{"iss", options_.client_id},
                   {"sub", options_.client_id},
                   {"aud", options_.token_url},
                   {"jti", base64url(std::string_view(reinterpret_cast<char*>(jti), sizeof jti))}},
                  {{"exp", seconds + 240}});
  std::string input = base64url(header) + "." + base64url(claims);

  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  std::string sig;
  size_t len = 0;
  bool ok = ctx != nullptr &&
            EVP_DigestSignInit(ctx, nullptr, EVP_sha384(), nullptr, key_->pkey) == 1 &&
            EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                           input.size()) == 1;
  if (ok) {
    sig.resize(len);
    ok = EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                        reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
    sig.resize(len);
  }
  EVP_MD_CTX_free(ctx);
  if (!ok) throw SmartError("signing the SMART client assertion failed");
  if (key_->ec) {
    // JWS wants R || S, 48 bytes each for P-384; OpenSSL gives a DER SEQUENCE of two INTEGERs.
    const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
    if (es == nullptr) throw SmartError("signing the SMART client assertion failed");
    unsigned char raw[96];
    BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 48);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 48, 48);
    ECDSA_SIG_free(es);
    sig.assign(reinterpret_cast<char*>(raw), sizeof raw);
  }
  return input + "." + base64url(sig);
}

std::string SmartTokenSource::token(bool renew) {
  std::lock_guard lock(mutex_);
  const Micros now = now_micros();
  // Renewed when under a minute remains, but not twice within a minute (endpoints throttle
  // that: Oracle Health's tokens last under 10 minutes); a refused token (401) is renewed at once.
  const bool fresh_enough = now < expires_ - 60LL * 1000000;
  const bool renewed_lately = now - fetched_ < 60LL * 1000000 && now < expires_;
  if (!renew && !token_.empty() && (fresh_enough || renewed_lately)) return token_;
  auto ask = [&] {
    std::string body = "grant_type=client_credentials&scope=" + form_encode(options_.scope) +
                       "&client_assertion_type=" +
                       form_encode("urn:ietf:params:oauth:client-assertion-type:jwt-bearer") +
                       "&client_assertion=" + assertion(now_micros());
    return http_.post_form(options_.token_url, body);
  };
  Response r = ask();
  if (r.status == 429) {  // slow_down: wait as told (at most a minute), then once more
    auto wait = parse_retry_after(r.retry_after, std::chrono::system_clock::now())
                    .value_or(std::chrono::milliseconds(5000));
    std::this_thread::sleep_for(std::min(wait, std::chrono::milliseconds(60000)));
    r = ask();
  }
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(r.body.data(), r.body.size());
  if (r.status != 200) {
    std::string why;
    if (!doc.HasParseError() && doc.IsObject()) {
      if (doc.HasMember("error") && doc["error"].IsString()) why = doc["error"].GetString();
      if (doc.HasMember("error_description") && doc["error_description"].IsString())
        why += std::string(": ") + doc["error_description"].GetString();
    }
    throw SmartError(fmt::format("token endpoint {} refused the client credentials: HTTP {}{}{}",
                                 path_without_query(options_.token_url), r.status,
                                 why.empty() ? "" : ", ", why));
  }
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("access_token") ||
      !doc["access_token"].IsString())
    throw SmartError(fmt::format("token endpoint {} answered without an access_token",
                                 path_without_query(options_.token_url)));
  token_ = doc["access_token"].GetString();
  long long expires_in = doc.HasMember("expires_in") && doc["expires_in"].IsInt64()
                             ? doc["expires_in"].GetInt64()
                             : 300;
  expires_ = now + expires_in * 1000000LL;
  fetched_ = now;
  return token_;
}

}  // namespace fra::fhir
