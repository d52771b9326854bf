#include "mapping/pseudonym.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstring>
#include <memory>
#include <stdexcept>

namespace fra::mapping {
namespace {

constexpr std::size_t kNonce = 12;
constexpr std::size_t kTag = 16;

std::string hmac(std::string_view key, std::string_view msg) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

struct CipherCtx {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ~CipherCtx() { EVP_CIPHER_CTX_free(ctx); }
};

}  // namespace

std::string to_hex(const unsigned char* data, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 15];
  }
  return out;
}

// HMAC-SHA256 with the key's inner and outer pads hashed once: each message then costs two
// context copies and two short digests, with no digest lookup (which takes locks in OpenSSL 3).
struct Pseudonymizer::Keyed {
  EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  EVP_MD_CTX* inner = EVP_MD_CTX_new();
  EVP_MD_CTX* outer = EVP_MD_CTX_new();

  explicit Keyed(std::string_view key) {
    unsigned char block[64] = {};
    if (key.size() > sizeof block) {
      unsigned int n = 0;
      EVP_Digest(key.data(), key.size(), block, &n, md, nullptr);
    } else {
      std::memcpy(block, key.data(), key.size());
    }
    unsigned char ipad[64], opad[64];
    for (int i = 0; i < 64; ++i) {
      ipad[i] = block[i] ^ 0x36;
      opad[i] = block[i] ^ 0x5c;
    }
    if (md == nullptr || inner == nullptr || outer == nullptr ||
        EVP_DigestInit_ex2(inner, md, nullptr) != 1 ||
        EVP_DigestUpdate(inner, ipad, sizeof ipad) != 1 ||
        EVP_DigestInit_ex2(outer, md, nullptr) != 1 ||
        EVP_DigestUpdate(outer, opad, sizeof opad) != 1)
      throw std::runtime_error("cannot set up HMAC-SHA256");
    OPENSSL_cleanse(block, sizeof block);
    OPENSSL_cleanse(ipad, sizeof ipad);
    OPENSSL_cleanse(opad, sizeof opad);
  }
  ~Keyed() {
    EVP_MD_CTX_free(inner);
    EVP_MD_CTX_free(outer);
    EVP_MD_free(md);
  }

  void mac(std::string_view msg, unsigned char out[32]) const {
    // One context a thread, freed with it (the sync maps pages on threads of their own).
    thread_local std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> owned(EVP_MD_CTX_new(),
                                                                               &EVP_MD_CTX_free);
    EVP_MD_CTX* ctx = owned.get();
    unsigned char digest[32];
    unsigned int n = 0;
    EVP_MD_CTX_copy_ex(ctx, inner);
    EVP_DigestUpdate(ctx, msg.data(), msg.size());
    EVP_DigestFinal_ex(ctx, digest, &n);
    EVP_MD_CTX_copy_ex(ctx, outer);
    EVP_DigestUpdate(ctx, digest, sizeof digest);
    EVP_DigestFinal_ex(ctx, out, &n);
  }
};

Pseudonymizer::Pseudonymizer(std::string key, std::optional<std::string> seal_key)
    : key_(std::move(key)) {
  if (key_.size() < kMinKeyBytes)
    throw std::invalid_argument(fmt::format("pseudonym key is {} bytes; at least {} are required",
                                            key_.size(), kMinKeyBytes));
  keyed_ = std::make_unique<Keyed>(key_);
  if (seal_key && seal_key->size() < kMinKeyBytes)
    throw std::invalid_argument(fmt::format("sealing key is {} bytes; at least {} are required",
                                            seal_key->size(), kMinKeyBytes));
  seal_key_ = hmac(seal_key.value_or(key_), "fhir-risk-adapter/seal/v1");
}

Pseudonymizer::~Pseudonymizer() = default;

Pseudonym Pseudonymizer::of(std::string_view type, const fhir::FhirId& id) const {
  std::string msg;
  msg.reserve(type.size() + 1 + id.value.size());
  msg.append(type).append("/").append(id.value);
  unsigned char mac[32];
  keyed_->mac(msg, mac);
  return {to_hex(mac, sizeof mac)};
}

Pseudonym Pseudonymizer::derive(std::string_view purpose, std::string_view text) const {
  std::string msg(purpose);
  msg.append("|").append(text);
  unsigned char mac[32];
  keyed_->mac(msg, mac);
  return {to_hex(mac, sizeof mac)};
}

std::vector<std::uint8_t> Pseudonymizer::seal(std::string_view plaintext) const {
  std::vector<std::uint8_t> out(kNonce + plaintext.size() + kTag);
  if (RAND_bytes(out.data(), kNonce) != 1) throw std::runtime_error("no randomness for sealing");
  CipherCtx c;
  int len = 0;
  auto* key = reinterpret_cast<const unsigned char*>(seal_key_.data());
  if (c.ctx == nullptr ||
      EVP_EncryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, key, out.data()) != 1 ||
      EVP_EncryptUpdate(c.ctx, out.data() + kNonce, &len,
                        reinterpret_cast<const unsigned char*>(plaintext.data()),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(c.ctx, out.data() + kNonce + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_GET_TAG, kTag,
                          out.data() + kNonce + plaintext.size()) != 1)
    throw std::runtime_error("AES-256-GCM sealing failed");
  return out;
}

Result<std::string> Pseudonymizer::open(const std::vector<std::uint8_t>& sealed) const {
  if (sealed.size() < kNonce + kTag) return make_error("bad-seal", "sealed value is too short");
  std::size_t n = sealed.size() - kNonce - kTag;
  std::string out(n, '\0');
  CipherCtx c;
  int len = 0;
  auto* key = reinterpret_cast<const unsigned char*>(seal_key_.data());
  std::vector<std::uint8_t> tag(sealed.end() - kTag, sealed.end());
  if (c.ctx == nullptr ||
      EVP_DecryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, key, sealed.data()) != 1 ||
      EVP_DecryptUpdate(c.ctx, reinterpret_cast<unsigned char*>(out.data()), &len,
                        sealed.data() + kNonce, static_cast<int>(n)) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_TAG, kTag, tag.data()) != 1 ||
      EVP_DecryptFinal_ex(c.ctx, reinterpret_cast<unsigned char*>(out.data()) + len, &len) != 1)
    return make_error("bad-seal",
                      "sealed value does not open under this key (altered, or another key)");
  return out;
}

}  // namespace fra::mapping
