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

AuditCheck AuditLog::verify(const std::function<void(std::int64_t)>& progress) {
  session_.outside_transaction("reading the audit log", [](pqxx::nontransaction& n) {
    n.exec("SET application_name = 'fhir-risk-adapter audit'");
  });
  return session_.transact("reading the audit log", [&](pqxx::work& w) {
    AuditCheck check;
    // One snapshot for the whole walk: rows appended meanwhile are not half seen.
    w.exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY");
    std::string prev(64, '0');
    std::int64_t expected = 1;
    constexpr int kBatch = 10000;
    for (std::int64_t after = 0;;) {
      auto rows = w.exec_params(
          "SELECT id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), actor, "
          "action, object, "
          "details::text, prev_hash, row_hash FROM audit_events WHERE id > $1 ORDER BY id LIMIT $2",
          after, kBatch);
      for (const auto& r : rows) {
        const auto id = r[0].as<std::int64_t>();
        std::vector<std::string> fields;
        for (int i = 0; i < 7; ++i)
          fields.push_back(i == 0 ? std::to_string(id) : r[i].as<std::string>());
        const std::string stored_prev = r[6].as<std::string>(),
                          stored_hash = r[7].as<std::string>();
        if (id != expected) {
          check.problem = AuditProblem{
              id,
              fmt::format("row {} follows row {}: {} missing", id, expected - 1,
                          id - expected == 1 ? fmt::format("row {} is", expected)
                                             : fmt::format("rows {} to {} are", expected, id - 1))};
          return check;
        }
        if (stored_prev != prev) {
          check.problem = AuditProblem{
              id, fmt::format("row {}: prev_hash is not the hash of row {}", id, id - 1)};
          return check;
        }
        if (sha256_hex(audit_canonical(fields)) != stored_hash) {
          check.problem = AuditProblem{
              id, fmt::format("row {}: its content does not match its hash (altered)", id)};
          return check;
        }
        prev = stored_hash;
        ++expected;
        ++check.rows;
        after = id;
      }
      if (progress) progress(check.rows);
      if (rows.size() < static_cast<std::size_t>(kBatch)) break;
    }
    auto head = w.exec("SELECT last_id, last_hash FROM audit_chain_head");
    if (!head.empty()) {
      const auto last_id = head[0][0].as<std::int64_t>();
      if (last_id != expected - 1 || head[0][1].as<std::string>() != prev) {
        check.problem = AuditProblem{
            expected,
            last_id > expected - 1
                ? fmt::format("the chain ends at row {} but its head says {}: {} missing",
                              expected - 1, last_id,
                              last_id - (expected - 1) == 1
                                  ? fmt::format("row {} is", last_id)
                                  : fmt::format("rows {} to {} are", expected, last_id))
                : fmt::format("the chain's head (row {}) does not match its last row", last_id)};
        return check;
      }
    }
    check.head_hash = prev;
    return check;
  });
}

std::vector<StoredScore> AuditLog::stored_scores(std::optional<int> sample) {
  session_.outside_transaction("reading the scores", [](pqxx::nontransaction& n) {
    n.exec("SET application_name = 'fhir-risk-adapter audit'");
  });
  return session_.transact("reading the scores", [&](pqxx::work& w) {
    std::vector<StoredScore> out;
    const std::string select =
        "SELECT score_id, model_sha256, probability, features::text FROM audit_scores";
    auto rows = sample ? w.exec_params("SELECT * FROM (" + select +
                                           " ORDER BY random() LIMIT $1) s ORDER BY score_id",
                                       *sample)
                       : w.exec(select + " ORDER BY score_id");
    for (const auto& r : rows)
      out.push_back({r[0].as<std::int64_t>(), r[1].as<std::string>(), r[2].as<double>(),
                     r[3].as<std::string>()});
    return out;
  });
}

}  // namespace fra::store
