#include <fmt/format.h>

#include <pqxx/pqxx>

#include "adapter/store/admin.hpp"
#include "adapter/store/sql_values.hpp"
#include "adapter/store/statements.hpp"

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

int Admin::latest_schema_version() { return std::end(kMigrations)[-1].version; }

int Admin::schema_version() {
  return session_.transact("reading the schema version", [](pqxx::work& w) {
    auto exists = w.exec("SELECT to_regclass('schema_migrations') IS NOT NULL")[0][0].as<bool>();
    if (!exists) return 0;
    return w.exec("SELECT coalesce(max(version), 0) FROM schema_migrations")[0][0].as<int>();
  });
}

std::vector<std::string> Admin::migrate() {
  return session_.transact("migration failed", [&](pqxx::work& w) {
    std::vector<std::string> applied;
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
      audit_.append(w, "migrate", "schema",
                    "{\"applied\": [" + names +
                        "], \"schema_version\": " + std::to_string(latest_schema_version()) + "}");
    }
    return applied;
  });
}

bool Admin::pseudonym_key_matches(const std::string& fingerprint) {
  return session_.transact("reading the pseudonym key's fingerprint", [&](pqxx::work& w) {
    if (!session_.run(w, "key_fingerprint_record", fingerprint).empty())
      audit_.append(w, "key-fingerprint", "pseudonym key", R"({"recorded": true})");
    return session_.run(w, "key_fingerprint_read")[0][0].as<std::string>() == fingerprint;
  });
}

PurgeCounts Admin::purge_raw_inputs(fhir::Micros cutoff) {
  return session_.transact("purging raw inputs", [&](pqxx::work& w) {
    auto r = session_.run(w, "purge_raw_inputs", cutoff);
    PurgeCounts c{r[0][0].as<std::int64_t>(), r[0][1].as<std::int64_t>(),
                  r[0][2].as<std::int64_t>()};
    audit_.append(w, "purge", "raw inputs",
                  fmt::format(R"({{"cutoff": "{}", "observation_values": {}, "encounters": {}, )"
                              R"("dead_letters": {}}})",
                              fhir::format_instant(cutoff), c.observation_values, c.encounters,
                              c.dead_letters));
    return c;
  });
}

}  // namespace fra::store
