#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include <cmath>
#include <limits>

#include "fhir/risk_assessment.hpp"

using namespace fra::fhir;

TEST_CASE("a RiskAssessment carries identifier, subject, method, prediction, band and note") {
  RiskAssessmentInput in;
  in.identifier_system = "urn:fhir-risk-adapter:risk-assessment";
  in.identifier_value = "abc123";
  in.patient_reference = "Patient/p1";
  in.occurrence = *parse_datetime("2026-11-25T10:00:00Z");
  in.model_name = "readmission-risk";
  in.model_version = "1.0.0";
  in.model_sha256 = "ff";
  in.outcome = {"http://snomed.info/sct", "417005"};
  in.outcome_display = "Hospital re-admission";
  in.probability = 0.123456789;
  in.band_code = "moderate";
  in.band_display = "Moderate likelihood";
  in.factors = {{"heart_rate", "Heart rate", 92, "/min", "/min", "", 0.8},
                {"oxygen_saturation", "Oxygen saturation", std::numeric_limits<double>::quiet_NaN(),
                 "%", "%", "", 0.3},
                {"sex_female", "Sex", 1, "", "1", "female", -0.2},
                {"body_temperature", "Body temperature", 37.777779, "°C", "Cel", "", -0.1}};
  rapidjson::Document d;
  d.Parse(build_risk_assessment(in).c_str());
  REQUIRE(!d.HasParseError());
  CHECK(std::string(d["resourceType"].GetString()) == "RiskAssessment");
  CHECK(std::string(d["status"].GetString()) == "final");
  CHECK(std::string(d["identifier"][0]["value"].GetString()) == "abc123");
  CHECK(std::string(d["subject"]["reference"].GetString()) == "Patient/p1");
  CHECK(std::string(d["occurrenceDateTime"].GetString()) == "2026-11-25T10:00:00.000000Z");
  CHECK(std::string(d["method"]["coding"][0]["code"].GetString()) == "readmission-risk");
  CHECK(std::string(d["method"]["coding"][0]["version"].GetString()) == "1.0.0");
  const auto& pred = d["prediction"][0];
  CHECK(pred["probabilityDecimal"].GetDouble() == 0.123456789);
  CHECK(std::string(pred["qualitativeRisk"]["coding"][0]["system"].GetString()) ==
        kRiskProbabilitySystem);
  CHECK(std::string(pred["qualitativeRisk"]["coding"][0]["code"].GetString()) == "moderate");
  CHECK(std::string(pred["outcome"]["coding"][0]["code"].GetString()) == "417005");
  std::string note = d["note"][0]["text"].GetString();
  CHECK(note.find("12.3% (Moderate likelihood)") != std::string::npos);
  CHECK(note.find("Main factors: Heart rate 92 /min (raises the risk)") != std::string::npos);
  CHECK(note.find("Oxygen saturation not recorded (raises the risk)") != std::string::npos);
  CHECK(note.find("Sex female (lowers the risk)") != std::string::npos);
  CHECK(note.find("Body temperature 37.78 °C (lowers the risk)") != std::string::npos);

  // The same factors as data, in rank order, on the prediction.
  REQUIRE(pred["extension"].Size() == 4);
  const auto& hr = pred["extension"][0];
  CHECK(std::string(hr["url"].GetString()) == kRiskFactorExtension);
  auto part = [](const rapidjson::Value& ext, const char* url) -> const rapidjson::Value* {
    for (const auto& p : ext["extension"].GetArray())
      if (std::string(p["url"].GetString()) == url) return &p;
    return nullptr;
  };
  CHECK(part(hr, "rank")->operator[]("valuePositiveInt").GetInt() == 1);
  CHECK(std::string((*part(hr, "feature"))["valueString"].GetString()) == "heart_rate");
  CHECK((*part(hr, "value"))["valueQuantity"]["value"].GetDouble() == 92);
  CHECK(std::string((*part(hr, "value"))["valueQuantity"]["code"].GetString()) == "/min");
  CHECK((*part(hr, "contribution"))["valueDecimal"].GetDouble() == 0.8);
  CHECK(std::string((*part(hr, "effect"))["valueCode"].GetString()) == "raises");
  CHECK(part(pred["extension"][1], "value") == nullptr);  // not recorded: no value
  CHECK(std::string((*part(pred["extension"][2], "value"))["valueString"].GetString()) == "female");
  CHECK(std::string((*part(pred["extension"][3], "value"))["valueQuantity"]["unit"].GetString()) ==
        "°C");
  CHECK(conditional_path(in) ==
        "RiskAssessment?identifier=urn%3Afhir-risk-adapter%3Arisk-assessment%7Cabc123");
}

TEST_CASE("an index's points: no probability, the points in an extension, the rationale and note") {
  RiskAssessmentInput in;
  in.identifier_system = "urn:fhir-risk-adapter:risk-assessment";
  in.identifier_value = "lace1";
  in.patient_reference = "Patient/p1";
  in.occurrence = *parse_datetime("2026-11-25T10:00:00Z");
  in.model_name = "lace-index";
  in.model_version = "1.0.0";
  in.model_sha256 = "ff";
  in.outcome = {"http://snomed.info/sct", "417005"};
  in.outcome_display = "Hospital re-admission";
  in.probability = 12;
  in.points = true;
  in.band_code = "high";
  in.band_display = "High risk (LACE 10 or more)";
  in.factors = {{"lace_length_of_stay_days", "Length of stay (LACE L)", 5.2, "days", "d", "", 4},
                {"lace_emergent_admission", "Emergent admission (LACE A)", 1, "", "1", "", 3}};
  rapidjson::Document d;
  d.Parse(build_risk_assessment(in).c_str());
  REQUIRE(!d.HasParseError());
  const auto& pred = d["prediction"][0];
  CHECK_FALSE(pred.HasMember("probabilityDecimal"));
  CHECK(std::string(pred["extension"][0]["url"].GetString()) == kScorePointsExtension);
  CHECK(pred["extension"][0]["valueDecimal"].GetDouble() == 12);
  CHECK(std::string(pred["rationale"].GetString()) == "lace-index 12 points");
  std::string note = d["note"][0]["text"].GetString();
  CHECK(note.find("12 points (High risk (LACE 10 or more))") != std::string::npos);
  CHECK(note.find("Points: Length of stay (LACE L) 5.2 days (+4 points); Emergent admission (LACE "
                  "A) 1 (+3 points)") != std::string::npos);

  rapidjson::Document o;
  o.Parse(build_score_observation(in, {"http://loinc.org", "x"}).c_str());
  REQUIRE(!o.HasParseError());
  CHECK(o["valueQuantity"]["value"].GetDouble() == 12);
  CHECK(std::string(o["valueQuantity"]["code"].GetString()) == kPointsUnit);
}
