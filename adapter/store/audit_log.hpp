#pragma once
// The audit log: the only writer of audit_log (every event of every repository goes through
// here, in the caller's transaction), and its verification through the auditor's views.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adapter/store/session.hpp"

namespace fra::store {

/// The first row of the audit log that does not hold, by its position in the chain.
struct AuditProblem {
  std::int64_t id = 0;
  std::string message;
};

struct AuditCheck {
  std::int64_t rows = 0;                ///< rows checked and found whole
  std::optional<AuditProblem> problem;  ///< the first that is not
  std::string head_hash;                ///< the last row's hash, when the whole chain holds
};

/// A stored score, as the auditor's view shows it.
struct StoredScore {
  std::int64_t id = 0;
  std::string model_sha256;
  double probability = 0;
  std::string features_json;  ///< feature name -> value, null when missing
  bool card = false;  ///< a CDS Hooks card's score (id: its audit event's), not a stored one
};

/// The canonical form of an audit row's fields (id, at, actor, action, object, details,
/// prev_hash): each as <byte length>:<text> and a newline. sql/004_audit.sql computes the same.
std::string audit_canonical(const std::vector<std::string>& fields);

class AuditLog {
 public:
  explicit AuditLog(Session& session) : session_(session) {}

  /// Appends one event in the transaction `w`; `details` is a JSON object. The actor is the
  /// session's (the database user is added by the log itself).
  void append(pqxx::work& w, std::string_view action, std::string_view object,
              const std::string& details);
  /// Appends one event in a transaction of its own. Throws StoreError.
  void append(std::string_view action, std::string_view object, const std::string& details);
  /// One 'score' event per score (ids as a bigint array literal), in the transaction `w`.
  void record_scores(pqxx::work& w, const std::string& score_ids);
  /// One 'dead-letter' event per dead letter (ids as a bigint array literal), in `w`.
  void record_dead_letters(pqxx::work& w, const std::string& dead_letter_ids);

  /// Walks the audit log (through the auditor's views, so an auditor's login can run it) and
  /// recomputes each row's hash and link; `progress` gets the rows checked so far.
  AuditCheck verify(const std::function<void(std::int64_t)>& progress = {});
  /// Stored scores (through the auditor's view), in id order: all, or a random sample.
  std::vector<StoredScore> stored_scores(std::optional<int> sample);

 private:
  Session& session_;
};

}  // namespace fra::store
