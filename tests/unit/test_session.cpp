// The database boundary's classify(): every row of its table, and libpqxx 6.4's exception types
// that are not sql_error (the defect "a lost database connection exits with the wrong code").

#include <doctest/doctest.h>

#include "adapter/store/session.hpp"
#include "adapter/store/statements.hpp"

namespace fra::store {

TEST_CASE("classify_sqlstate: each class of SQLSTATE to its kind") {
  struct Row {
    const char* state;
    StoreErrorKind kind;
  };
  const Row rows[] = {
      {"08000", StoreErrorKind::unavailable},  // connection exception
      {"08006", StoreErrorKind::unavailable},  // connection failure
      {"40001", StoreErrorKind::unavailable},  // serialization failure: retry
      {"40P01", StoreErrorKind::unavailable},  // deadlock detected: retry
      {"40003", StoreErrorKind::in_doubt},     // statement completion unknown
      {"53100", StoreErrorKind::unavailable},  // disk full
      {"53300", StoreErrorKind::unavailable},  // too many connections
      {"57P01", StoreErrorKind::unavailable},  // admin shutdown
      {"57014", StoreErrorKind::unavailable},  // query canceled
      {"58030", StoreErrorKind::unavailable},  // I/O error
      {"22001", StoreErrorKind::bad_data},     // string data right truncation
      {"22P02", StoreErrorKind::bad_data},     // invalid text representation
      {"23505", StoreErrorKind::bad_data},     // unique violation
      {"42P01", StoreErrorKind::refused},      // undefined table: not migrated
      {"42501", StoreErrorKind::refused},      // insufficient privilege
      {"28P01", StoreErrorKind::refused},      // invalid password
      {"3D000", StoreErrorKind::refused},      // invalid catalog name: no such database
      {"P0001", StoreErrorKind::refused},      // raise exception (the audit log's triggers)
  };
  for (const auto& r : rows) {
    CAPTURE(r.state);
    CHECK(classify_sqlstate(r.state) == r.kind);
  }
}

TEST_CASE("classify: a lost connection is unavailable, a broken COMMIT in doubt") {
  // broken_connection and in_doubt_error derive from pqxx::failure, not from sql_error: the
  // store used to catch sql_error only, and a lost connection escaped as an internal error.
  CHECK(classify(pqxx::broken_connection("server closed the connection unexpectedly")) ==
        StoreErrorKind::unavailable);
  CHECK(classify(pqxx::failure("Could not obtain client encoding: not connected.")) ==
        StoreErrorKind::unavailable);
  CHECK(classify(pqxx::in_doubt_error("connection lost during commit")) ==
        StoreErrorKind::in_doubt);
  CHECK(classify(pqxx::sql_error("no state", "SELECT 1")) == StoreErrorKind::unavailable);
  CHECK(classify(pqxx::unique_violation("dup", "INSERT", "23505")) == StoreErrorKind::bad_data);
  CHECK(classify(pqxx::undefined_table("no table", "SELECT", "42P01")) == StoreErrorKind::refused);
  CHECK(classify(pqxx::serialization_failure("retry")) == StoreErrorKind::unavailable);
}

TEST_CASE("Session: an unreachable database is a StoreError of kind unavailable, one line") {
  try {
    Session s("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2");
    FAIL("connected to port 1");
  } catch (const StoreError& e) {
    CHECK(e.kind() == StoreErrorKind::unavailable);
    CHECK(std::string(e.what()).rfind("cannot connect to the database: ", 0) == 0);
    CHECK(std::string(e.what()).find('\n') == std::string::npos);
  }
}

TEST_CASE("statements: every sql/statements file is embedded under its name") {
  const auto names = statement_names();
  CHECK(names.size() >= 20);
  for (const auto& n : names) {
    CAPTURE(n);
    CHECK(!statement(n).empty());
  }
  CHECK(statement("ingest_page").find("INSERT INTO resource_version") != std::string::npos);
}

}  // namespace fra::store
