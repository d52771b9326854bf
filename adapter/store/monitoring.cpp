#include "adapter/store/monitoring.hpp"

#include "adapter/store/statements.hpp"

namespace fra::store {

std::vector<LatestScore> Monitoring::latest_scores(const std::string& model_name,
                                                   fhir::Micros since) {
  return session_.transact("reading the latest scores", [&](pqxx::work& w) {
    std::vector<LatestScore> out;
    for (const auto& row : session_.run(w, "monitor_latest_scores", model_name, since))
      out.push_back({row[0].as<double>(), row[1].as<std::string>(), row[2].as<std::string>()});
    return out;
  });
}

std::vector<WeekBand> Monitoring::weeks(const std::string& model_name, fhir::Micros since) {
  return session_.transact("reading the scores by week", [&](pqxx::work& w) {
    std::vector<WeekBand> out;
    for (const auto& row : session_.run(w, "monitor_weeks", model_name, since))
      out.push_back({row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<long>(),
                     row[3].as<long>(), row[4].as<long>()});
    return out;
  });
}

}  // namespace fra::store
