#pragma once
// The cohort repository: who is in the cohort a per-patient sync refreshes, and the durable
// refresh queue several adapter processes share (a lease a member, FOR UPDATE SKIP LOCKED).

#include <cstdint>
#include <string>
#include <vector>

#include "adapter/store/audit_log.hpp"
#include "adapter/store/session.hpp"
#include "fhir/datetime.hpp"
#include "mapping/pseudonym.hpp"

namespace fra::store {

/// A member of the cohort: pseudonym and sealed "Patient/<id>".
struct Member {
  mapping::Pseudonym key;
  std::vector<std::uint8_t> sealed;
};

struct CohortSize {
  long members = 0;
  long due = 0;
  long refreshes = 0;
};

class Cohort {
 public:
  Cohort(Session& session, AuditLog& audit) : session_(session), audit_(audit) {}

  /// Makes `members` the cohort: new members are due at once, members not in it stop being
  /// refreshed (their data stays). Audited with the counts only.
  void replace(const std::vector<Member>& members);
  /// Claims up to `limit` members due at `due_by` (and now), each leased for `lease_seconds`.
  std::vector<Member> claim(int limit, int lease_seconds, fhir::Micros due_by);
  /// Gives a claimed member back, due again in `due_in_seconds` (a refresh that failed).
  void release(const mapping::Pseudonym& key, int due_in_seconds);
  CohortSize size();

 private:
  Session& session_;
  AuditLog& audit_;
};

}  // namespace fra::store
