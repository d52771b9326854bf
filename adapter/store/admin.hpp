#pragma once
// The admin repository: schema migrations, the pseudonym key's fingerprint, retention purges and
// key rotation. Each action one transaction, audited.

#include <cstdint>
#include <string>
#include <vector>

#include "adapter/store/audit_log.hpp"
#include "adapter/store/session.hpp"
#include "fhir/datetime.hpp"
#include "mapping/pseudonym.hpp"

namespace fra::store {

/// What a retention purge removed.
struct PurgeCounts {
  std::int64_t observation_values = 0;
  std::int64_t encounters = 0;
  std::int64_t dead_letters = 0;
};

/// What `rekey` re-derived.
struct RekeyCounts {
  std::int64_t resources = 0;  ///< stored versions, patients among them
  std::int64_t patients = 0;
  std::int64_t dead_letters = 0;
  std::int64_t dropped_tombstones =
      0;  ///< deletions of resources never stored, with no sealed reference
};

class Admin {
 public:
  Admin(Session& session, AuditLog& audit) : session_(session), audit_(audit) {}

  /// Applies the migrations not yet recorded; returns the names applied (empty: up to date).
  std::vector<std::string> migrate();
  /// The highest migration applied, 0 for an empty database.
  int schema_version();
  /// The highest migration this binary knows.
  static int latest_schema_version();

  /// Records `fingerprint` as the store's pseudonym key when none is recorded (audited), and
  /// says whether it is the one recorded.
  bool pseudonym_key_matches(const std::string& fingerprint);
  /// Removes raw inputs older than `cutoff` in one transaction, audited: observation values
  /// effective before it, encounters that ended (or, open, started) before it, dead letters
  /// seen before it. Scores, their feature vectors, patients and resource versions stay (a
  /// purged version fetched again is recognised and not stored again).
  PurgeCounts purge_raw_inputs(fhir::Micros cutoff);
  /// Moves every pseudonym from the key of `from` to the key of `to`, in one transaction,
  /// audited: each "<type>/<id>" is opened from its sealed reference with `from`, its pseudonym
  /// derived with `to` and sealed again with `to`, in every table; RiskAssessment identifiers
  /// stay as they are (the server knows them). Refused (StoreError) while another adapter
  /// process is connected, when `from` is not the store's key, or when a stored version has no
  /// sealed reference.
  RekeyCounts rekey(const mapping::Pseudonymizer& from, const mapping::Pseudonymizer& to);

 private:
  Session& session_;
  AuditLog& audit_;
};

}  // namespace fra::store
