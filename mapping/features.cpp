#include "mapping/features.hpp"

#include <fmt/format.h>

#include <limits>

namespace fra::mapping {
namespace {

constexpr fhir::Micros kDay = 86400LL * 1000000LL;
constexpr float kMissing = std::numeric_limits<float>::quiet_NaN();

bool is_inpatient(const std::string& class_code) {
  return class_code == "IMP" || class_code == "ACUTE" || class_code == "NONAC";
}

float last_value(const FeatureDefinition& d, const PatientInputs& in, fhir::Micros as_of) {
  const TimedValue* best = nullptr;
  for (const auto& m : in.measurements) {
    if (m.code != d.code || m.effective > as_of) continue;
    if (d.lookback > 0 && m.effective <= as_of - d.lookback) continue;
    // Latest wins; equal times take the larger value so the result does not depend on order.
    if (best == nullptr || m.effective > best->effective ||
        (m.effective == best->effective && m.value > best->value))
      best = &m;
  }
  return best == nullptr ? kMissing : static_cast<float>(best->value);
}

float compute_one(const FeatureDefinition& d, const PatientInputs& in, fhir::Micros as_of) {
  switch (d.kind) {
    case FeatureDefinition::Kind::age_years:
      if (!in.birth_year) return kMissing;
      return static_cast<float>(fhir::year_of(as_of) - *in.birth_year);
    case FeatureDefinition::Kind::sex_female:
      if (in.sex == "female") return 1.0f;
      if (in.sex == "male") return 0.0f;
      return kMissing;
    case FeatureDefinition::Kind::last_value:
      return last_value(d, in, as_of);
    case FeatureDefinition::Kind::inpatient_admissions: {
      int n = 0;
      for (const auto& s : in.stays)
        if (is_inpatient(s.class_code) && s.start && *s.start <= as_of && *s.start > as_of - d.lookback) ++n;
      return static_cast<float>(n);
    }
  }
  return kMissing;
}

}  // namespace

const std::vector<FeatureDefinition>& known_features() {
  using K = FeatureDefinition::Kind;
  static const std::vector<FeatureDefinition> kAll{
      {"age_years", K::age_years, "", "a", "Age", 0},
      {"sex_female", K::sex_female, "", "1", "Female sex", 0},
      {"heart_rate", K::last_value, "8867-4", "/min", "Heart rate", 365 * kDay},
      {"respiratory_rate", K::last_value, "9279-1", "/min", "Respiratory rate", 365 * kDay},
      {"oxygen_saturation", K::last_value, "59408-5", "%", "Oxygen saturation", 365 * kDay},
      {"body_temperature", K::last_value, "8310-5", "Cel", "Body temperature", 365 * kDay},
      {"systolic_bp", K::last_value, "8480-6", "mm[Hg]", "Systolic blood pressure", 365 * kDay},
      {"diastolic_bp", K::last_value, "8462-4", "mm[Hg]", "Diastolic blood pressure", 365 * kDay},
      {"body_weight", K::last_value, "29463-7", "kg", "Body weight", 365 * kDay},
      {"bmi", K::last_value, "39156-5", "kg/m2", "Body mass index", 365 * kDay},
      {"inpatient_admissions_365d", K::inpatient_admissions, "", "1", "Inpatient admissions in the last year",
       365 * kDay},
  };
  return kAll;
}

Result<std::vector<FeatureDefinition>> bind_features(const std::vector<std::string>& names) {
  std::vector<FeatureDefinition> out;
  for (const auto& n : names) {
    const FeatureDefinition* found = nullptr;
    for (const auto& d : known_features())
      if (d.name == n) found = &d;
    if (found == nullptr) return make_error("unknown-feature", fmt::format("the model needs feature '{}', which has no definition", n));
    out.push_back(*found);
  }
  return out;
}

std::vector<float> compute_features(const std::vector<FeatureDefinition>& defs, const PatientInputs& in,
                                    fhir::Micros as_of) {
  std::vector<float> out;
  out.reserve(defs.size());
  for (const auto& d : defs) out.push_back(compute_one(d, in, as_of));
  return out;
}

}  // namespace fra::mapping
