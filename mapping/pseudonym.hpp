#pragma once
// Pseudonymisation: the store keys everything by HMAC-SHA256 of the FHIR reference under a
// secret key that lives outside the database. What the write-back needs to address a patient
// is sealed with AES-256-GCM under a key derived from the same secret, so the database alone
// can neither re-identify nor address anyone.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/resources.hpp"
#include "fhir/result.hpp"

namespace fra::mapping {

/// An HMAC-SHA256 pseudonym as 64 lower-case hex digits. Distinct from fhir::FhirId on purpose.
struct Pseudonym {
  std::string hex;
  bool operator==(const Pseudonym&) const = default;
  auto operator<=>(const Pseudonym&) const = default;
};

/// The minimum key length, in bytes.
inline constexpr std::size_t kMinKeyBytes = 32;

class Pseudonymizer {
 public:
  /// Takes the secret pseudonym key and, when given, a separate sealing key (else the sealing
  /// key is derived from the pseudonym key); refuses (std::invalid_argument) one shorter than
  /// kMinKeyBytes.
  explicit Pseudonymizer(std::string key, std::optional<std::string> seal_key = std::nullopt);
  ~Pseudonymizer();
  Pseudonymizer(const Pseudonymizer&) = delete;
  Pseudonymizer& operator=(const Pseudonymizer&) = delete;

  /// Pseudonym of a resource: HMAC(key, "<type>/<id>").
  Pseudonym of(std::string_view resource_type, const fhir::FhirId& id) const;
  /// Pseudonym of a derived name (e.g. an identifier for a RiskAssessment): HMAC(key,
  /// purpose|text).
  Pseudonym derive(std::string_view purpose, std::string_view text) const;

  /// A fingerprint of the pseudonym key (an HMAC under it), to tell keys apart without showing
  /// them.
  std::string fingerprint() const { return derive("key-fingerprint", "v1").hex; }

  /// Seals a plaintext (AES-256-GCM, random nonce): nonce || ciphertext || tag.
  std::vector<std::uint8_t> seal(std::string_view plaintext) const;
  /// Opens what seal() produced; an error when it was altered or sealed under another key.
  Result<std::string> open(const std::vector<std::uint8_t>& sealed) const;

 private:
  struct Keyed;
  std::string key_;
  std::string seal_key_;
  std::unique_ptr<Keyed> keyed_;
};

/// Lower-case hex of bytes.
std::string to_hex(const unsigned char* data, std::size_t n);

}  // namespace fra::mapping
