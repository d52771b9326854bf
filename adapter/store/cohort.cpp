#include "adapter/store/cohort.hpp"

#include <fmt/format.h>

#include "adapter/store/sql_values.hpp"
#include "adapter/store/statements.hpp"

namespace fra::store {

void Cohort::replace(const std::vector<Member>& members) {
  std::string rows = "[";
  std::vector<std::string> keys;
  for (const auto& m : members) {
    rows += fmt::format(R"({}{{"key":"{}","sealed":"{}"}})", rows.size() > 1 ? "," : "", m.key.hex,
                        detail::to_hex(m.sealed));
    keys.push_back(m.key.hex);
  }
  rows += ']';
  session_.transact("recording the cohort", [&](pqxx::work& w) {
    const auto joined = session_.run(w, "cohort_join", rows).affected_rows();
    const auto left = session_.run(w, "cohort_leave", detail::plain_array(keys)).affected_rows();
    if (joined > 0 || left > 0)
      audit_.append(w, "cohort", "members",
                    fmt::format(R"({{"members": {}, "joined": {}, "left": {}}})", members.size(),
                                joined, left));
  });
}

std::vector<Member> Cohort::claim(int limit, int lease_seconds, fhir::Micros due_by) {
  return session_.transact("claiming patients to refresh", [&](pqxx::work& w) {
    std::vector<Member> out;
    for (const auto& row : session_.run(w, "cohort_claim", limit, lease_seconds, due_by))
      out.push_back({{row[0].as<std::string>()}, detail::from_hex(row[1].as<std::string>())});
    return out;
  });
}

void Cohort::release(const mapping::Pseudonym& key, int due_in_seconds) {
  session_.transact("releasing a patient", [&](pqxx::work& w) {
    session_.run(w, "cohort_release", key.hex, due_in_seconds, -1);
  });
}

CohortSize Cohort::size() {
  return session_.transact("reading the cohort", [&](pqxx::work& w) {
    auto r = session_.run(w, "cohort_size");
    return CohortSize{r[0][0].as<long>(), r[0][1].as<long>(), r[0][2].as<long>()};
  });
}

}  // namespace fra::store
