#pragma once
// The one database boundary: a Session owns the connection, and every statement runs inside
// transact(), which turns whatever libpqxx throws into one typed StoreError.

#include <exception>
#include <functional>
#include <pqxx/pqxx>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

#include "adapter/store/statements.hpp"

namespace fra::store {

/// Why the database did not do what was asked.
enum class StoreErrorKind {
  unavailable,  ///< not reachable, connection lost, shutting down, overloaded, a serialization
                ///< conflict or deadlock: retry later
  refused,      ///< it answered no: permissions, a missing table (schema not migrated), bad SQL
  in_doubt,     ///< the connection broke during COMMIT: the transaction may or may not have
                ///< committed (idempotent keys make a replay safe, but it is never blind)
  bad_data,     ///< the data was refused: a constraint, a value out of range
};

/// "unavailable", "refused", "in doubt", "bad data".
std::string_view to_string(StoreErrorKind k);

/// The database refused or could not be reached. One line, no credentials, no field values.
class StoreError : public std::runtime_error {
 public:
  StoreError(StoreErrorKind kind, const std::string& message)
      : std::runtime_error(message), kind_(kind) {}
  StoreErrorKind kind() const noexcept { return kind_; }

 private:
  StoreErrorKind kind_;
};

/// The kind of a failure libpqxx reported, by its SQLSTATE where it has one (class 08, 40, 53,
/// 57, 58: unavailable; 22, 23: bad data; 40003: in doubt; everything else: refused), by its
/// type otherwise (broken_connection: unavailable, in_doubt_error: in doubt).
StoreErrorKind classify(const pqxx::failure& e);
/// The kind of an SQLSTATE ("08006", "23505", ...).
StoreErrorKind classify_sqlstate(std::string_view sqlstate);

/// The first line of a message (libpq's messages go on with DETAIL and HINT lines).
std::string first_line(const std::string& s);

class Session {
 public:
  /// Connects and names the connection `application_name` (so `rekey` can tell whether another
  /// adapter process is connected). Throws StoreError (unavailable or refused).
  explicit Session(const std::string& url,
                   const std::string& application_name = "fhir-risk-adapter");

  /// Runs `fn` in one read-write transaction and commits it. Every pqxx::failure (from the
  /// connection, a statement or the commit) becomes a StoreError "<what>: <first line>" of its
  /// kind; other exceptions pass through untouched. Returns what `fn` returns.
  template <typename F>
  auto transact(std::string_view what, F&& fn) -> std::invoke_result_t<F, pqxx::work&> {
    try {
      pqxx::work w(conn_);
      if constexpr (std::is_void_v<std::invoke_result_t<F, pqxx::work&>>) {
        fn(w);
        w.commit();
      } else {
        auto result = fn(w);
        w.commit();
        return result;
      }
    } catch (const pqxx::failure& e) {
      throw StoreError(classify(e), std::string(what) + ": " + first_line(e.what()));
    }
  }

  /// Runs `fn` outside a transaction (session settings), with the same translation.
  void outside_transaction(std::string_view what,
                           const std::function<void(pqxx::nontransaction&)>& fn);

  /// Who the audit log names for what this session does ("fhir-risk-adapter sync", say).
  const std::string& actor() const { return actor_; }
  void set_actor(std::string actor) { actor_ = std::move(actor); }

  /// Runs sql/statements/<name>.sql with `args` in `w`, prepared on this connection the first
  /// time (its parameters are arrays and JSON, so one plan serves every call: preparing saves
  /// parsing and planning on every page).
  template <typename... Args>
  pqxx::result run(pqxx::work& w, const std::string& name, Args&&... args) {
    if (prepared_.insert(name).second) conn_.prepare(name, statement(name));
    return w.exec_prepared(name, std::forward<Args>(args)...);
  }

 private:
  pqxx::connection conn_;
  std::set<std::string> prepared_;
  std::string actor_ = "fhir-risk-adapter";
};

}  // namespace fra::store
