#pragma once
// What the store's test cases share: a fresh migrated database per case (FRA_TEST_DB names the
// cluster; ctest's postgresql fixture starts it), a pseudonym key, and records to store.

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>

#include "adapter/store/sql_values.hpp"
#include "adapter/store/store.hpp"
#include "fhir/resources.hpp"
#include "mapping/pseudonym.hpp"
#include "mapping/rows.hpp"

namespace fra::store {

inline std::string cluster_url() {
  const char* url = std::getenv("FRA_TEST_DB");
  REQUIRE_MESSAGE(url != nullptr, "FRA_TEST_DB is not set: run through ctest (postgresql fixture)");
  return url;
}

// A fresh, migrated database for one test case, dropped afterwards.
struct Fresh {
  std::string name;
  std::string url;
  std::unique_ptr<Store> db;

  Fresh() {
    static std::atomic<int> n{0};
    name = fmt::format("store_test_{}_{}", ::getpid(), n++);
    const std::string cluster = cluster_url();
    Session admin(cluster, "fhir-risk-adapter test");
    admin.outside_transaction("create",
                              [&](pqxx::nontransaction& t) { t.exec("CREATE DATABASE " + name); });
    url = cluster.substr(0, cluster.rfind('/') + 1) + name;
    db = std::make_unique<Store>(url);
    db->admin.migrate();
  }
  ~Fresh() {
    db.reset();
    Session admin(cluster_url(), "fhir-risk-adapter test");
    admin.outside_transaction("drop", [&](pqxx::nontransaction& t) {
      t.exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
    });
  }
  long count(const std::string& query) {
    return db->session.transact("count",
                                [&](pqxx::work& w) { return w.exec(query)[0][0].as<long>(); });
  }
};

inline const mapping::Pseudonymizer& ps() {
  static mapping::Pseudonymizer p(std::string(32, 'k'));
  return p;
}

inline constexpr const char* kHeartRate = "http://loinc.org|8867-4";
inline constexpr const char* kWeight = "http://loinc.org|29463-7";

inline mapping::Version version(std::string_view type, const std::string& id, const std::string& v,
                                fhir::Micros updated) {
  return {ps().of(type, fhir::FhirId{id}), v, updated, ps().seal(std::string(type) + "/" + id)};
}

inline mapping::PatientRecord patient(const std::string& id) {
  return {version("Patient", id, "1", 1'000'000), 1950, std::string("female"),
          ps().seal("Patient/" + id)};
}

inline mapping::ObservationRecord observation(const std::string& id, const std::string& v,
                                              fhir::Micros updated, const std::string& patient_id,
                                              std::vector<mapping::Measurement> values) {
  return {version("Observation", id, v, updated), ps().of("Patient", fhir::FhirId{patient_id}),
          "final", updated, std::move(values)};
}

inline Page page_of(std::vector<mapping::ObservationRecord> obs, fhir::Micros cursor = 0) {
  Page p;
  p.resource_type = "Observation";
  p.observations = std::move(obs);
  p.max_last_updated = cursor;
  return p;
}

}  // namespace fra::store
