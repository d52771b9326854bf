#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include <string>

#include "fhir/communication.hpp"

using namespace fra::fhir;

TEST_CASE("an alert is a completed, urgent Communication of category alert, about the assessment") {
  AlertInput in;
  in.identifier_value = std::string(64, 'a');
  in.patient_reference = "Patient/p1";
  in.recipient = "Group/transitions-team";
  in.about_type = "RiskAssessment";
  in.about_identifier_system = "urn:fhir-risk-adapter:risk-assessment";
  in.about_identifier_value = "abc";
  in.sent = *parse_datetime("2026-11-25T10:00:00Z");
  in.text = "Hospital re-admission risk: 41.0% (High likelihood), readmission-risk 3.0.0.";
  rapidjson::Document d;
  d.Parse(build_alert_communication(in).c_str());
  REQUIRE(!d.HasParseError());
  CHECK(std::string(d["resourceType"].GetString()) == "Communication");
  CHECK(std::string(d["status"].GetString()) == "completed");
  CHECK(std::string(d["priority"].GetString()) == "urgent");
  CHECK(std::string(d["category"][0]["coding"][0]["system"].GetString()) ==
        kCommunicationCategorySystem);
  CHECK(std::string(d["category"][0]["coding"][0]["code"].GetString()) == "alert");
  CHECK(std::string(d["identifier"][0]["system"].GetString()) == kAlertSystem);
  CHECK(std::string(d["subject"]["reference"].GetString()) == "Patient/p1");
  CHECK(std::string(d["recipient"][0]["reference"].GetString()) == "Group/transitions-team");
  CHECK(std::string(d["about"][0]["type"].GetString()) == "RiskAssessment");
  CHECK(std::string(d["about"][0]["identifier"]["value"].GetString()) == "abc");
  CHECK(std::string(d["sent"].GetString()) == "2026-11-25T10:00:00.000000Z");
  CHECK(std::string(d["payload"][0]["contentString"].GetString()) == in.text);
  CHECK(alert_conditional_path(in) ==
        "Communication?identifier=urn%3Afhir-risk-adapter%3Aalert%7C" + std::string(64, 'a'));

  in.about_reference = "Observation/score-1";  // a score Observation written by id
  d.Parse(build_alert_communication(in).c_str());
  CHECK(std::string(d["about"][0]["reference"].GetString()) == "Observation/score-1");
  CHECK_FALSE(d["about"][0].HasMember("identifier"));
}
