#include "adapter/writeback/wording.hpp"

#include <rapidjson/document.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace fra::writeback {

std::string unit_words(const std::string& ucum) {
  if (ucum == "1") return "";
  if (ucum == "a") return "years";
  if (ucum == "d") return "days";
  if (ucum == "h") return "hours";
  if (ucum == "Cel") return "°C";
  if (ucum == "[degF]") return "°F";
  if (ucum == "[lb_av]") return "lb";
  if (ucum == "[in_i]") return "in";
  return ucum;
}

std::vector<fhir::RiskFactor> factors_in_words(
    const std::string& contributions_json, const std::vector<mapping::FeatureDefinition>& defs) {
  std::vector<fhir::RiskFactor> out;
  rapidjson::Document doc;
  doc.Parse(contributions_json.c_str());
  if (doc.HasParseError() || !doc.IsArray()) return out;
  for (const auto& c : doc.GetArray()) {
    if (!c.IsObject() || !c.HasMember("feature") || !c["feature"].IsString()) continue;
    auto d = std::find_if(defs.begin(), defs.end(),
                          [&](const auto& x) { return x.name == c["feature"].GetString(); });
    if (d == defs.end()) continue;
    const double v = c.HasMember("value") && c["value"].IsNumber()
                         ? c["value"].GetDouble()
                         : std::numeric_limits<double>::quiet_NaN();
    const double contribution = c.HasMember("contribution") && c["contribution"].IsNumber()
                                    ? c["contribution"].GetDouble()
                                    : 0;
    fhir::RiskFactor f{d->name, d->label, v, unit_words(d->unit), d->unit, "", contribution};
    if (d->source == mapping::FeatureDefinition::Source::patient &&
        d->attribute == mapping::FeatureDefinition::Attribute::sex && !std::isnan(v))
      f.name = "Sex", f.text = v == 1.0 ? d->equals : "not " + d->equals;
    out.push_back(std::move(f));
  }
  return out;
}

fhir::RiskAssessmentInput score_in_words(const store::PendingWrite& pw, const score::Manifest& m,
                                         const std::vector<mapping::FeatureDefinition>& definitions,
                                         const std::string& identifier_system,
                                         const std::string& patient_reference,
                                         const std::string& resource_id) {
  const score::Band& band = m.band_for(pw.probability);
  auto factors = factors_in_words(pw.contributions_json, definitions);
  // An index's parts that give no points are not factors (their contributions are a rounding
  // of zero).
  if (m.points)
    std::erase_if(factors,
                  [](const fhir::RiskFactor& f) { return std::abs(f.contribution) < 1e-3; });
  return {identifier_system,
          pw.identifier,
          patient_reference,
          pw.as_of,
          m.name,
          m.version,
          m.model_sha256,
          {m.outcome_system, m.outcome_code},
          m.outcome_display,
          pw.probability,
          band.code,
          band.display,
          std::move(factors),
          resource_id,
          m.points};
}

}  // namespace fra::writeback
