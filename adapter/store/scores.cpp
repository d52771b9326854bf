#include "adapter/store/scores.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "adapter/store/sql_values.hpp"
#include "adapter/store/statements.hpp"

namespace fra::store {
namespace {

using detail::opt;
using detail::plain_array;
using detail::text_array;
using fhir::Micros;

std::string features_json(const std::vector<std::string>& names, const std::vector<float>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < names.size(); ++i) {
    out += fmt::format("{}\"{}\": ", i ? ", " : "", names[i]);
    out += std::isnan(values[i]) ? "null" : fmt::format("{:.9g}", values[i]);
  }
  return out + "}";
}

// The stored inputs of the given patients, in the order of `keys` (whose birth year and sex are
// filled by the caller's query).
void load_inputs(Session& session, pqxx::work& w, const std::vector<std::string>& keys,
                 std::vector<mapping::PatientInputs>& inputs) {
  std::map<std::string, std::size_t, std::less<>> at;
  for (std::size_t i = 0; i < keys.size(); ++i) at.emplace(keys[i], i);
  const std::string arr = plain_array(keys);
  for (const auto& row : session.run(w, "inputs_measurements", arr))
    inputs[at.at(row[0].as<std::string>())].measurements.push_back(
        {row[1].as<std::string>(), row[2].is_null() ? 0.0 : row[2].as<double>(),
         row[3].as<Micros>(), row[4].is_null() ? std::string() : row[4].as<std::string>()});
  for (const auto& row : session.run(w, "inputs_stays", arr))
    inputs[at.at(row[0].as<std::string>())].stays.push_back(
        {row[1].as<std::string>(), opt<Micros>(row[2]), opt<Micros>(row[3]), row[4].as<bool>()});
  for (const auto& row : session.run(w, "inputs_conditions", arr))
    inputs[at.at(row[0].as<std::string>())].conditions.push_back(
        {row[1].as<std::string>(), row[2].as<std::string>(), row[3].as<bool>(), opt<Micros>(row[4]),
         opt<Micros>(row[5])});
}

// Patients' keys and their birth year and sex, from rows of (patient_key, birth_year, sex).
void read_patients(const pqxx::result& rows, std::vector<std::string>& keys,
                   std::vector<mapping::PatientInputs>& inputs) {
  inputs.resize(rows.size());
  for (const auto& row : rows) {
    inputs[keys.size()].birth_year = opt<int>(row[1]);
    inputs[keys.size()].sex = opt<std::string>(row[2]);
    keys.push_back(row[0].as<std::string>());
  }
}

}  // namespace

ScoreCounts Scores::score_batch(int limit, const ModelInfo& model, Micros as_of,
                                const BatchScorer& score, const IdentifierOf& identifier_of) {
  return session_.transact("scoring", [&](pqxx::work& w) {
    ScoreCounts c;
    std::vector<std::string> keys;
    std::vector<mapping::PatientInputs> inputs;
    read_patients(session_.run(w, "score_claim_queue", limit), keys, inputs);
    c.waiting = session_.run(w, "score_waiting")[0][0].as<int>();
    if (keys.empty()) return c;
    load_inputs(session_, w, keys, inputs);
    std::vector<Scored> scored = score(inputs);

    // Every score in one statement, then every RiskAssessment row in one more.
    std::vector<std::string> probs, bands, features, contributions, identifiers;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      probs.push_back(fmt::format("{:.17g}", scored[i].probability));
      bands.push_back(scored[i].band);
      features.push_back(features_json(model.feature_names, scored[i].features));
      contributions.push_back(scored[i].contributions_json);
      identifiers.push_back(identifier_of(keys[i]));
    }
    const std::string arr = plain_array(keys);
    auto ids = session_.run(w, "score_insert", arr, model.name, model.version, model.sha256, as_of,
                            plain_array(probs), text_array(bands), text_array(features),
                            text_array(contributions));
    std::map<std::string, std::string, std::less<>> id_of;
    for (const auto& row : ids) id_of.emplace(row[0].as<std::string>(), row[1].as<std::string>());
    std::vector<std::string> id_text;
    for (const auto& k : keys) id_text.push_back(id_of.at(k));
    const std::string score_ids = plain_array(id_text);
    session_.run(w, "writeback_mark_pending", arr, model.name, text_array(identifiers), score_ids);
    auto unchanged = session_.run(w, "writeback_unmark_unchanged", arr, model.name);
    c.scored = static_cast<int>(keys.size());
    c.to_write = c.scored - static_cast<int>(unchanged.affected_rows());
    if (!model.alert_bands.empty()) {
      std::vector<std::string> in_band;
      for (const auto& s : scored)
        in_band.push_back(std::find(model.alert_bands.begin(), model.alert_bands.end(), s.band) !=
                                  model.alert_bands.end()
                              ? "t"
                              : "f");
      for (const auto& row :
           session_.run(w, "alert_track", arr, score_ids, detail::plain_array(in_band), model.name,
                        model.rearm_seconds))
        c.alerts += row[1].as<bool>() ? 1 : 0;
    }
    audit_.record_scores(w, score_ids);
    session_.run(w, "score_dequeue", arr);
    return c;
  });
}

void Scores::for_each_patient(int batch, const PatientVisitor& visit) {
  std::string after;
  for (;;) {
    std::vector<std::string> keys;
    std::vector<mapping::PatientInputs> inputs;
    session_.transact("reading patients", [&](pqxx::work& w) {
      read_patients(session_.run(w, "inputs_patients_after", after, batch), keys, inputs);
      if (!keys.empty()) load_inputs(session_, w, keys, inputs);
    });
    if (keys.empty()) return;
    visit(keys, inputs);
    after = keys.back();
  }
}

std::optional<Micros> Scores::newest_encounter_time() {
  return session_.transact("reading encounters", [&](pqxx::work& w) {
    return opt<Micros>(session_.run(w, "inputs_newest_encounter")[0][0]);
  });
}

std::int64_t Scores::queue_depth() {
  return session_.transact("reading the scoring queue", [&](pqxx::work& w) {
    return session_.run(w, "score_queue_depth")[0][0].as<std::int64_t>();
  });
}

}  // namespace fra::store
