#include "adapter/store/writeback_state.hpp"

#include <fmt/format.h>

#include "adapter/store/sql_values.hpp"
#include "adapter/store/statements.hpp"

namespace fra::store {

std::vector<PendingWrite> WritebackState::pending(const std::string& model_name, int limit,
                                                  std::int64_t after_score_id) {
  return session_.transact("reading pending write-backs", [&](pqxx::work& w) {
    std::vector<PendingWrite> out;
    for (const auto& row : session_.run(w, "writeback_pending", model_name, limit, after_score_id))
      out.push_back({row[0].as<std::string>(), row[1].as<std::string>(),
                     detail::from_hex(row[2].as<std::string>()), row[3].as<std::int64_t>(),
                     row[4].as<double>(), row[5].as<std::string>(), row[6].as<fhir::Micros>(),
                     row[7].as<std::string>(), row[8].as<std::string>(), row[9].as<std::string>(),
                     detail::from_hex(row[10].as<std::string>()), row[11].as<std::string>()});
    return out;
  });
}

void WritebackState::mark_written(const std::string& model_name,
                                  const std::vector<PendingWrite>& written) {
  if (written.empty()) return;
  std::vector<std::string> keys, ids, probs, bands;
  std::string targets = "[";
  for (const auto& pw : written) {
    if (!pw.target_type.empty()) {
      targets += fmt::format(R"({}{{"key":"{}","type":"{}","ref":"{}","version":)",
                             targets.size() > 1 ? "," : "", pw.patient_key, pw.target_type,
                             detail::to_hex(pw.target_ref));
      detail::append_json_string(targets, pw.target_version);
      targets += '}';
    }
    keys.push_back(pw.patient_key);
    ids.push_back(std::to_string(pw.score_id));
    probs.push_back(fmt::format("{:.17g}", pw.probability));
    bands.push_back(pw.band);
  }
  session_.transact("recording written RiskAssessments", [&](pqxx::work& w) {
    session_.run(w, "writeback_mark_written", model_name, detail::plain_array(keys),
                 detail::plain_array(ids), detail::plain_array(probs), detail::text_array(bands));
    if (targets.size() > 1) session_.run(w, "writeback_mark_target", model_name, targets + "]");
    audit_.append(w, "write-back", model_name,
                  fmt::format(R"({{"risk_assessments": {}, "score_ids": [{}]}})", ids.size(),
                              fmt::join(ids, ", ")));
  });
}

bool WritebackState::try_lock(const std::string& model_name) {
  return session_.transact("taking the write-back lock", [&](pqxx::work& w) {
    return session_.run(w, "writeback_lock", model_name)[0][0].as<bool>();
  });
}

void WritebackState::unlock(const std::string& model_name) {
  session_.transact("releasing the write-back lock",
                    [&](pqxx::work& w) { session_.run(w, "writeback_unlock", model_name); });
}

}  // namespace fra::store
