// `fhir-risk-adapter audit verify`: walks the audit log's hash chain through the auditor's views
// and recomputes every row's hash, independently of the database's own trigger.

#include "adapter/store/audit_log.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <pqxx/pqxx>

#include "adapter/store/statements.hpp"
#include "mapping/pseudonym.hpp"

namespace fra::store {
namespace {

std::string sha256_hex(const std::string& text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(text.data(), text.size(), digest, &n, EVP_sha256(), nullptr);
  return mapping::to_hex(digest, n);
}

}  // namespace

std::string audit_canonical(const std::vector<std::string>& fields) {
  std::string out;
  for (const auto& f : fields) out += std::to_string(f.size()) + ":" + f + "\n";
  return out;
}

void AuditLog::append(pqxx::work& w, std::string_view action, std::string_view object,
                      const std::string& details) {
  session_.run(w, "audit_append", session_.actor(), std::string(action), std::string(object),
               details);
}

void AuditLog::append(std::string_view action, std::string_view object,
                      const std::string& details) {
  session_.transact("writing the audit log",
                    [&](pqxx::work& w) { append(w, action, object, details); });
}

void AuditLog::record_scores(pqxx::work& w, const std::string& score_ids) {
  session_.run(w, "audit_scores", session_.actor(), score_ids);
}

void AuditLog::record_dead_letters(pqxx::work& w, const std::string& dead_letter_ids) {
  session_.run(w, "audit_dead_letters", session_.actor(), dead_letter_ids);
}

namespace {

// "row 7 is" or "rows 7 to 9 are", as a message on what is missing says it.
std::string row_range(std::int64_t first, std::int64_t last) {
  return first == last ? fmt::format("row {} is", first)
                       : fmt::format("rows {} to {} are", first, last);
}

// Why audit row `r` does not hold as row `expected` after a row whose hash is `prev`, or
// nullopt when it holds.
std::optional<AuditProblem> check_row(const pqxx::row& r, std::int64_t expected,
                                      const std::string& prev) {
  const auto id = r[0].as<std::int64_t>();
  std::vector<std::string> fields;
  for (int i = 0; i < 7; ++i)
    fields.push_back(i == 0 ? std::to_string(id) : r[i].as<std::string>());
  const std::string stored_prev = r[6].as<std::string>(), stored_hash = r[7].as<std::string>();
  if (id != expected)
    return AuditProblem{id, fmt::format("row {} follows row {}: {} missing", id, expected - 1,
                                        row_range(expected, id - 1))};
  if (stored_prev != prev)
    return AuditProblem{id, fmt::format("row {}: prev_hash is not the hash of row {}", id, id - 1)};
  if (sha256_hex(audit_canonical(fields)) != stored_hash)
    return AuditProblem{id,
                        fmt::format("row {}: its content does not match its hash (altered)", id)};
  return std::nullopt;
}

// Walks the chain in id order, a batch at a time, up to the first row that does not hold:
// check.rows counts those that do, and `prev` ends as the hash of the last of them.
void walk_chain(pqxx::work& w, AuditCheck& check, std::string& prev,
                const std::function<void(std::int64_t)>& progress) {
  constexpr int kBatch = 10000;
  for (std::int64_t after = 0;;) {
    auto rows = w.exec_params(
        "SELECT id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), actor, "
        "action, object, "
        "details::text, prev_hash, row_hash FROM audit_events WHERE id > $1 ORDER BY id LIMIT $2",
        after, kBatch);
    for (const auto& r : rows) {
      check.problem = check_row(r, check.rows + 1, prev);
      if (check.problem) return;
      prev = r[7].as<std::string>();
      ++check.rows;
      after = r[0].as<std::int64_t>();
    }
    if (progress) progress(check.rows);
    if (rows.size() < static_cast<std::size_t>(kBatch)) break;
  }
}

// Why the chain's head does not name its last row (`last`, whose hash is `prev`), or nullopt.
std::optional<AuditProblem> check_head(pqxx::work& w, std::int64_t last, const std::string& prev) {
  auto head = w.exec("SELECT last_id, last_hash FROM audit_chain_head");
  if (head.empty()) return std::nullopt;
  const auto last_id = head[0][0].as<std::int64_t>();
  if (last_id == last && head[0][1].as<std::string>() == prev) return std::nullopt;
  return AuditProblem{
      last + 1,
      last_id > last
          ? fmt::format("the chain ends at row {} but its head says {}: {} missing", last, last_id,
                        row_range(last + 1, last_id))
          : fmt::format("the chain's head (row {}) does not match its last row", last_id)};
}

}  // namespace

AuditCheck AuditLog::verify(const std::function<void(std::int64_t)>& progress) {
  session_.outside_transaction("reading the audit log", [](pqxx::nontransaction& n) {
    n.exec("SET application_name = 'fhir-risk-adapter audit'");
  });
  return session_.transact("reading the audit log", [&](pqxx::work& w) {
    AuditCheck check;
    // One snapshot for the whole walk: rows appended meanwhile are not half seen.
    w.exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY");
    std::string prev(64, '0');
    walk_chain(w, check, prev, progress);
    if (!check.problem) check.problem = check_head(w, check.rows, prev);
    if (!check.problem) check.head_hash = prev;
    return check;
  });
}

std::vector<StoredScore> AuditLog::stored_scores(std::optional<int> sample) {
  session_.outside_transaction("reading the scores", [](pqxx::nontransaction& n) {
    n.exec("SET application_name = 'fhir-risk-adapter audit'");
  });
  return session_.transact("reading the scores", [&](pqxx::work& w) {
    std::vector<StoredScore> out;
    // The stored scores, and the scores CDS Hooks cards carried (their audit events hold the
    // feature vector itself).
    const std::string select =
        "SELECT * FROM (SELECT score_id, model_sha256, probability, features::text, false AS card "
        "FROM audit_scores UNION ALL SELECT id, details->>'model_sha256', "
        "(details->>'probability')::float8, (details->'features')::text, true FROM audit_events "
        "WHERE action = 'cds-score') scores";
    auto rows = sample ? w.exec_params("SELECT * FROM (" + select +
                                           " ORDER BY random() LIMIT $1) s ORDER BY card, score_id",
                                       *sample)
                       : w.exec(select + " ORDER BY card, score_id");
    for (const auto& r : rows)
      out.push_back({r[0].as<std::int64_t>(), r[1].as<std::string>(), r[2].as<double>(),
                     r[3].as<std::string>(), r[4].as<bool>()});
    return out;
  });
}

}  // namespace fra::store
