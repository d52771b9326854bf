#include "adapter/store/alerts.hpp"

#include <fmt/format.h>

#include "adapter/store/sql_values.hpp"
#include "adapter/store/statements.hpp"

namespace fra::store {

std::vector<PendingAlert> Alerts::pending(const std::string& model_name, int limit,
                                          std::int64_t after_score_id) {
  return session_.transact("reading pending alerts", [&](pqxx::work& w) {
    std::vector<PendingAlert> out;
    for (const auto& row : session_.run(w, "alert_pending", model_name, limit, after_score_id))
      out.push_back({row[0].as<std::string>(), detail::from_hex(row[1].as<std::string>()),
                     row[2].as<int>(), row[3].as<std::int64_t>(), row[4].as<double>(),
                     row[5].as<std::string>(), row[6].as<fhir::Micros>(), row[7].as<std::string>(),
                     row[8].as<std::string>(), row[9].as<std::string>(),
                     detail::from_hex(row[10].as<std::string>())});
    return out;
  });
}

void Alerts::mark_sent(const std::string& model_name, const std::vector<PendingAlert>& sent) {
  if (sent.empty()) return;
  std::vector<std::string> keys, ids;
  for (const auto& a : sent) {
    keys.push_back(a.patient_key);
    ids.push_back(std::to_string(a.score_id));
  }
  session_.transact("recording sent alerts", [&](pqxx::work& w) {
    for (const auto& row : session_.run(w, "alert_mark_sent", model_name, detail::plain_array(keys),
                                        detail::plain_array(ids)))
      audit_.append(w, "alert", model_name,
                    fmt::format(R"({{"score_id": {}}})", row[0].as<std::int64_t>()));
  });
}

}  // namespace fra::store
