#include "adapter/sync/training_export.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace fra::sync {

void for_each_index_event(store::Store& store, const mapping::FeatureComputer& features,
                          const TrainingOptions& options, const IndexEventVisitor& visit,
                          TrainingReport& rep) {
  const auto& defs = features.definitions();
  const auto newest = store.scores.newest_encounter_time();
  if (!newest) return;
  auto indexed = [&](const mapping::Stay& s) {
    return std::find(options.index_classes.begin(), options.index_classes.end(), s.class_code) !=
           options.index_classes.end();
  };
  std::vector<float> row(defs.size());
  store.scores.for_each_patient(1000, [&](const std::vector<std::string>& keys,
                                          const std::vector<mapping::PatientInputs>& in) {
    for (std::size_t p = 0; p < keys.size(); ++p) {
      ++rep.patients;
      std::vector<fhir::Micros> discharges;
      for (const auto& s : in[p].stays)
        if (indexed(s) && s.start && s.end && *s.end >= *s.start) discharges.push_back(*s.end);
      std::sort(discharges.begin(), discharges.end());
      discharges.erase(std::unique(discharges.begin(), discharges.end()), discharges.end());
      for (fhir::Micros t : discharges) {
        if (t + options.horizon > *newest) {
          ++rep.censored;
          continue;
        }
        bool readmitted = false;
        for (const auto& s : in[p].stays)
          readmitted = readmitted ||
                       (indexed(s) && s.start && *s.start > t && *s.start <= t + options.horizon);
        features.compute(in[p], t, row.data());
        visit(keys[p], in[p], t, row, readmitted);
        ++rep.rows;
        rep.positives += readmitted ? 1 : 0;
      }
    }
  });
}

TrainingReport export_training(store::Store& store, const mapping::FeatureComputer& features,
                               const TrainingOptions& options, std::ostream& out) {
  TrainingReport rep;
  out << "patient,as_of";
  for (const auto& d : features.definitions()) out << ',' << d.name;
  out << ",label\n";
  std::string line;
  for_each_index_event(
      store, features, options,
      [&](const std::string& key, const mapping::PatientInputs&, fhir::Micros t,
          const std::vector<float>& row, bool readmitted) {
        line = key + ',' + fhir::format_instant(t);
        for (float v : row) {
          line += ',';
          if (!std::isnan(v)) line += fmt::format("{:.9g}", v);
        }
        line += readmitted ? ",1\n" : ",0\n";
        out << line;
      },
      rep);
  return rep;
}

}  // namespace fra::sync
