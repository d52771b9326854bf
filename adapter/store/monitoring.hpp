#pragma once
// What the monitoring reads of a model's scores: the latest one of each patient since a time,
// and the scores and alerts of each week. Read only.

#include <string>
#include <vector>

#include "adapter/store/session.hpp"
#include "fhir/datetime.hpp"

namespace fra::store {

struct LatestScore {
  double probability = 0;
  std::string band;
  std::string features_json;  ///< {"name": value | null}
};

/// One week's scores in one band.
struct WeekBand {
  std::string week;  ///< its Monday, "YYYY-MM-DD"
  std::string band;
  long scores = 0;
  long patients = 0;  ///< patients scored that week, whatever the band
  long alerts = 0;    ///< alerts sent that week
};

class Monitoring {
 public:
  explicit Monitoring(Session& session) : session_(session) {}

  /// The latest score of each patient made by the model since `since`.
  std::vector<LatestScore> latest_scores(const std::string& model_name, fhir::Micros since);
  /// The model's scores by week and band since `since`, in week order.
  std::vector<WeekBand> weeks(const std::string& model_name, fhir::Micros since);

 private:
  Session& session_;
};

}  // namespace fra::store
