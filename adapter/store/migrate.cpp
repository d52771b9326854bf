#include <pqxx/pqxx>

#include "adapter/store/connection.hpp"
#include "adapter/store/store.hpp"

namespace fra::store {
namespace {

struct Migration {
  int version;
  const char* name;
  const char* sql;
};

// Generated from sql/NNN_*.sql at build time.
constexpr Migration kMigrations[] = {
#include "migrations.inc"
};

constexpr const char* kCreateTable =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version integer PRIMARY KEY, name text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())";

// Any number: it only has to be the same in every process that migrates this database.
constexpr long kMigrationLock = 0x66726131;

}  // namespace

int Store::latest_schema_version() { return std::end(kMigrations)[-1].version; }

int Store::schema_version() {
  try {
    pqxx::work w(conn_->c);
    auto exists = w.exec("SELECT to_regclass('schema_migrations') IS NOT NULL")[0][0].as<bool>();
    if (!exists) return 0;
    return w.exec("SELECT coalesce(max(version), 0) FROM schema_migrations")[0][0].as<int>();
  } catch (const pqxx::sql_error& e) {
    throw StoreError(std::string("reading the schema version: ") + e.what());
  }
}

std::vector<std::string> Store::migrate() {
  std::vector<std::string> applied;
  try {
    pqxx::work w(conn_->c);
    // One migrator at a time; a second one waits and then finds nothing to do.
    w.exec_params("SELECT pg_advisory_xact_lock($1)", kMigrationLock);
    w.exec(kCreateTable);
    for (const auto& m : kMigrations) {
      auto done = w.exec_params("SELECT 1 FROM schema_migrations WHERE version = $1", m.version);
      if (!done.empty()) continue;
      w.exec(m.sql);
      w.exec_params("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version,
                    m.name);
      applied.emplace_back(m.name);
    }
    if (!applied.empty() &&
        w.exec("SELECT to_regclass('audit_log') IS NOT NULL")[0][0].as<bool>()) {
      std::string names;
      for (const auto& a : applied) names += (names.empty() ? "\"" : ", \"") + a + "\"";
      w.exec_params(
          "INSERT INTO audit_log (actor, action, object, details) VALUES ('fhir-risk-adapter "
          "migrate', "
          "'migrate', 'schema', $1::jsonb)",
          "{\"applied\": [" + names +
              "], \"schema_version\": " + std::to_string(latest_schema_version()) + "}");
    }
    w.commit();
  } catch (const pqxx::sql_error& e) {
    std::string what = e.what();
    throw StoreError("migration failed: " + what.substr(0, what.find('\n')));
  }
  return applied;
}

}  // namespace fra::store
