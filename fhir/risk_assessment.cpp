#include "fhir/risk_assessment.hpp"

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cctype>
#include <cmath>

#include "fhir/client.hpp"
#include "fhir/json.hpp"

namespace fra::fhir {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;
using json::key_string;

void coding(Writer& w, const std::string& system, const std::string& code,
            const std::string& display, const std::string& version = {}) {
  w.StartObject();
  key_string(w, "system", system);
  if (!version.empty()) key_string(w, "version", version);
  key_string(w, "code", code);
  if (!display.empty()) key_string(w, "display", display);
  w.EndObject();
}

void decimal(Writer& w, double v, const char* format = "{:.9g}") {
  std::string text = fmt::format(fmt::runtime(format), v);
  w.RawValue(text.c_str(), text.size(), rapidjson::kNumberType);
}

// One factor as data: a complex extension whose parts a program can read without parsing the note.
void factor_extension(Writer& w, const RiskFactor& f, int rank) {
  auto part = [&](const char* url, const char* type, auto&& value) {
    w.StartObject();
    key_string(w, "url", url);
    w.Key(type);
    value();
    w.EndObject();
  };
  w.StartObject();
  w.Key("extension");
  w.StartArray();
  part("rank", "valuePositiveInt", [&] { w.Int(rank); });
  part("feature", "valueString", [&] { w.String(f.feature.c_str()); });
  part("label", "valueString", [&] { w.String(f.name.c_str()); });
  if (!f.text.empty()) {
    part("value", "valueString", [&] { w.String(f.text.c_str()); });
  } else if (std::isfinite(f.value)) {
    part("value", "valueQuantity", [&] {
      w.StartObject();
      w.Key("value");
      decimal(w, f.value);
      const std::string code = f.ucum.empty() ? "1" : f.ucum;
      key_string(w, "unit", f.unit.empty() ? code : f.unit);
      key_string(w, "system", "http://unitsofmeasure.org");
      key_string(w, "code", code);
      w.EndObject();
    });
  }
  part("contribution", "valueDecimal", [&] { decimal(w, f.contribution, "{:.6g}"); });
  part("effect", "valueCode", [&] { w.String(f.contribution > 0 ? "raises" : "lowers"); });
  w.EndArray();
  key_string(w, "url", kRiskFactorExtension);
  w.EndObject();
}

std::string factor_text(const RiskFactor& f, bool points) {
  const std::string effect =
      points ? fmt::format("{:+g} points", std::round(f.contribution * 1e3) / 1e3)
             : std::string(f.contribution > 0 ? "raises the risk" : "lowers the risk");
  if (!f.text.empty()) return fmt::format("{} {} ({})", f.name, f.text, effect);
  if (std::isnan(f.value)) return fmt::format("{} not recorded ({})", f.name, effect);
  if (f.unit.empty()) return fmt::format("{} {:.4g} ({})", f.name, f.value, effect);
  return fmt::format("{} {:.4g} {} ({})", f.name, f.value, f.unit, effect);
}

}  // namespace

std::string conditional_path(const RiskAssessmentInput& in) {
  return "RiskAssessment?identifier=" +
         url_encode(in.identifier_system + "|" + in.identifier_value);
}

std::string score_text(const RiskAssessmentInput& in) {
  return in.points ? fmt::format("{:g} points", in.probability)
                   : fmt::format("{:.1f}%", in.probability * 100);
}

std::string score_note(const RiskAssessmentInput& in) {
  std::string note = fmt::format("{} risk: {} ({}), {} {}.", in.outcome_display, score_text(in),
                                 in.band_display, in.model_name, in.model_version);
  if (!in.factors.empty()) {
    note += in.points ? " Points:" : " Main factors:";
    for (std::size_t i = 0; i < in.factors.size(); ++i)
      note += (i == 0 ? " " : "; ") + factor_text(in.factors[i], in.points);
    note += ".";
  }
  return note;
}

namespace {

// resourceType, id (for an update by id), identifier, status and subject: what both resources
// open with.
void head(Writer& w, const char* type, const RiskAssessmentInput& in) {
  key_string(w, "resourceType", type);
  if (!in.resource_id.empty()) key_string(w, "id", in.resource_id);
  w.Key("identifier");
  w.StartArray();
  w.StartObject();
  key_string(w, "system", in.identifier_system);
  key_string(w, "value", in.identifier_value);
  w.EndObject();
  w.EndArray();
  key_string(w, "status", "final");
  w.Key("subject");
  w.StartObject();
  key_string(w, "reference", in.patient_reference);
  w.EndObject();
}

void method(Writer& w, const RiskAssessmentInput& in) {
  w.Key("method");
  w.StartObject();
  w.Key("coding");
  w.StartArray();
  coding(w, kModelSystem, in.model_name, in.model_name + " " + in.model_version, in.model_version);
  w.EndArray();
  key_string(w, "text",
             fmt::format("{} {} (sha256 {})", in.model_name, in.model_version, in.model_sha256));
  w.EndObject();
}

void note(Writer& w, const RiskAssessmentInput& in) {
  w.Key("note");
  w.StartArray();
  w.StartObject();
  key_string(w, "text", score_note(in));
  w.EndObject();
  w.EndArray();
}

}  // namespace

std::string build_score_observation(const RiskAssessmentInput& in, const Coding& code) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  head(w, "Observation", in);
  w.Key("code");
  w.StartObject();
  w.Key("coding");
  w.StartArray();
  const std::string display = fmt::format("{} risk ({})", in.outcome_display, in.model_name);
  coding(w, code.system, code.code, display);
  w.EndArray();
  key_string(w, "text", display);
  w.EndObject();
  key_string(w, "effectiveDateTime", format_instant(in.occurrence));
  w.Key("valueQuantity");
  w.StartObject();
  w.Key("value");
  decimal(w, in.points ? in.probability : in.probability * 100, "{:.12g}");
  key_string(w, "unit", in.points ? "points" : "%");
  key_string(w, "system", "http://unitsofmeasure.org");
  key_string(w, "code", in.points ? kPointsUnit : "%");
  w.EndObject();
  w.Key("interpretation");
  w.StartArray();
  w.StartObject();
  w.Key("coding");
  w.StartArray();
  coding(w, kRiskProbabilitySystem, in.band_code, in.band_display);
  w.EndArray();
  key_string(w, "text", in.band_display);
  w.EndObject();
  w.EndArray();
  method(w, in);
  note(w, in);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string build_risk_assessment(const RiskAssessmentInput& in) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  head(w, "RiskAssessment", in);
  key_string(w, "occurrenceDateTime", format_instant(in.occurrence));
  method(w, in);
  w.Key("prediction");
  w.StartArray();
  w.StartObject();
  if (!in.factors.empty() || in.points) {
    w.Key("extension");
    w.StartArray();
    if (in.points) {
      w.StartObject();
      key_string(w, "url", kScorePointsExtension);
      w.Key("valueDecimal");
      decimal(w, in.probability, "{:.12g}");
      w.EndObject();
    }
    for (std::size_t i = 0; i < in.factors.size(); ++i)
      factor_extension(w, in.factors[i], static_cast<int>(i + 1));
    w.EndArray();
  }
  w.Key("outcome");
  w.StartObject();
  w.Key("coding");
  w.StartArray();
  coding(w, in.outcome.system, in.outcome.code, in.outcome_display);
  w.EndArray();
  key_string(w, "text", in.outcome_display);
  w.EndObject();
  if (in.points) {
    key_string(w, "rationale", fmt::format("{} {}", in.model_name, score_text(in)));
  } else {
    w.Key("probabilityDecimal");
    // FHIR decimals keep their digits: round-trip precision without float noise.
    std::string p = fmt::format("{:.9g}", in.probability);
    w.RawValue(p.c_str(), p.size(), rapidjson::kNumberType);
  }
  w.Key("qualitativeRisk");
  w.StartObject();
  w.Key("coding");
  w.StartArray();
  coding(w, kRiskProbabilitySystem, in.band_code, in.band_display);
  w.EndArray();
  w.EndObject();
  w.EndObject();
  w.EndArray();
  note(w, in);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace fra::fhir
