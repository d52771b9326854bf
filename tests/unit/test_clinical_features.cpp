// Coded values, Conditions and the encounter measures of readmission indices: how they are
// mapped from FHIR and computed as of a time.
#include <doctest/doctest.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "adapter/config/config.hpp"
#include "fhir/datetime.hpp"
#include "mapping/features.hpp"
#include "mapping/rows.hpp"

using namespace fra;
using Def = mapping::FeatureDefinition;

namespace {
fhir::Micros at(const char* s) { return *fhir::parse_datetime(s); }
constexpr fhir::Micros kDay = 86400LL * 1000000;

const mapping::Pseudonymizer& ps() {
  static mapping::Pseudonymizer p(std::string(32, 'k'));
  return p;
}

const char* kSmoking = "http://loinc.org|72166-2";
const char* kDaily = "http://snomed.info/sct|449868002";
const char* kNever = "http://snomed.info/sct|266919005";

Def smoker() {
  Def d;
  d.name = "current_smoker";
  d.source = Def::Source::observation;
  d.codes = {kSmoking};
  d.aggregation = Def::Aggregation::last_code;
  d.answers = {kDaily, "http://snomed.info/sct|428041000124106"};
  d.unit = "1";
  return d;
}

Def condition(std::string name, Def::Measure m, std::vector<std::string> codes) {
  Def d;
  d.name = std::move(name);
  d.source = Def::Source::condition;
  d.measure = m;
  d.codes = std::move(codes);
  d.unit = "1";
  return d;
}

Def encounter(std::string name, Def::Measure m, std::string unit, const char* window) {
  Def d;
  d.name = std::move(name);
  d.source = Def::Source::encounter;
  d.classes = {"IMP"};
  d.measure = m;
  d.unit = std::move(unit);
  d.window = *mapping::parse_window(window);
  return d;
}

float one(const Def& d, const mapping::PatientInputs& in, fhir::Micros as_of) {
  auto catalog = mapping::catalog_of({d});
  REQUIRE(catalog.ok());
  return mapping::FeatureComputer({d}, catalog.value()).compute(in, as_of)[0];
}

mapping::ConditionCoding coding(const char* resource, const char* code, bool active,
                                std::optional<fhir::Micros> onset,
                                std::optional<fhir::Micros> abatement = std::nullopt) {
  return {resource, code, active, onset, abatement};
}

rapidjson::Document parse(const std::string& json) {
  rapidjson::Document d;
  d.Parse(json.c_str());
  REQUIRE(!d.HasParseError());
  return d;
}
}  // namespace

TEST_CASE("a prefix code matches its system's codes below it, dots ignored") {
  const char* hf = "http://hl7.org/fhir/sid/icd-10-cm|I50*";
  CHECK(mapping::code_matches(hf, "http://hl7.org/fhir/sid/icd-10-cm|I50.22"));
  CHECK(mapping::code_matches(hf, "http://hl7.org/fhir/sid/icd-10-cm|I509"));
  CHECK(mapping::code_matches("http://hl7.org/fhir/sid/icd-10-cm|I25.2*",
                              "http://hl7.org/fhir/sid/icd-10-cm|I252"));
  CHECK_FALSE(mapping::code_matches(hf, "http://hl7.org/fhir/sid/icd-10-cm|I51.9"));
  CHECK_FALSE(mapping::code_matches(hf, "http://hl7.org/fhir/sid/icd-10|I50.9"));
  CHECK(
      mapping::code_matches("http://snomed.info/sct|88805009", "http://snomed.info/sct|88805009"));
  CHECK_FALSE(
      mapping::code_matches("http://snomed.info/sct|8880500", "http://snomed.info/sct|88805009"));
}

TEST_CASE("last_code: 1 for one of its codes, 0 for another, missing without one") {
  const Def d = smoker();
  mapping::PatientInputs in;
  CHECK(std::isnan(one(d, in, at("2026-06-01"))));
  in.measurements = {{kSmoking, 0, at("2025-01-01"), kDaily},
                     {kSmoking, 0, at("2026-01-01"), kNever},
                     {"http://loinc.org|8867-4", 80, at("2026-02-01"), ""}};
  CHECK(one(d, in, at("2026-06-01")) == 0.0f);      // the latest says never smoked
  CHECK(one(d, in, at("2025-06-01")) == 1.0f);      // as of then, a daily smoker
  CHECK(std::isnan(one(d, in, at("2024-06-01"))));  // nothing yet
}

TEST_CASE("a smoking-status Observation keeps the coding a feature compares with") {
  const auto catalog = mapping::catalog_of({smoker()}).value();
  CHECK(catalog.at(kSmoking).coded);
  auto read = [&](const std::string& value) {
    auto d = parse(
        R"({"resourceType":"Observation","id":"s1","status":"final",
            "code":{"coding":[{"system":"http://loinc.org","code":"72166-2"}]},
            "subject":{"reference":"Patient/p1"},"effectiveDateTime":"2026-01-01T10:00:00+00:00",)" +
        value + "}");
    return mapping::map_observation(fhir::read_observation(d).value(), ps(), catalog);
  };
  auto r = read(
      R"("valueCodeableConcept":{"coding":[{"system":"http://example.org","code":"x"},
                                         {"system":"http://snomed.info/sct","code":"449868002"}]})");
  REQUIRE(r.ok());
  REQUIRE(r->values.size() == 1);
  CHECK(r->values[0].value_code == kDaily);  // the coding the feature names, not the first
  CHECK(r->values[0].code == kSmoking);
  auto text = read(R"("valueString":"smokes")");
  REQUIRE_FALSE(text.ok());  // read by a feature and not usable: a dead letter
  CHECK(text.error().code == "bad-value");
  CHECK(text.error().pointer == "/valueCodeableConcept");
  auto none = read(R"("dataAbsentReason":{"text":"asked, declined"})");
  REQUIRE(none.ok());
  CHECK(none->values.empty());
}

TEST_CASE("a Condition holds from its onset while active, or until its abatement") {
  const Def hf =
      condition("heart_failure", Def::Measure::present,
                {"http://hl7.org/fhir/sid/icd-10-cm|I50*", "http://snomed.info/sct|88805009"});
  mapping::PatientInputs in;
  CHECK(one(hf, in, at("2026-01-01")) == 0.0f);
  in.conditions = {coding("c1", "http://snomed.info/sct|88805009", true, at("2020-03-01"))};
  CHECK(one(hf, in, at("2020-02-01")) == 0.0f);  // not begun yet
  CHECK(one(hf, in, at("2026-01-01")) == 1.0f);
  // Resolved in 2022: it held in 2021, not after.
  in.conditions = {coding("c1", "http://hl7.org/fhir/sid/icd-10-cm|I50.9", false, at("2020-03-01"),
                          at("2022-01-01"))};
  CHECK(one(hf, in, at("2021-01-01")) == 1.0f);
  CHECK(one(hf, in, at("2023-01-01")) == 0.0f);
  // No onset and no recorded date: never known to hold.
  in.conditions = {coding("c1", "http://snomed.info/sct|88805009", true, std::nullopt)};
  CHECK(one(hf, in, at("2026-01-01")) == 0.0f);
}

TEST_CASE("a count counts Conditions, not their codings") {
  const Def n =
      condition("chronic_conditions", Def::Measure::count,
                {"http://hl7.org/fhir/sid/icd-10-cm|E11*", "http://snomed.info/sct|44054006",
                 "http://hl7.org/fhir/sid/icd-10-cm|I10*"});
  mapping::PatientInputs in;
  in.conditions = {coding("c1", "http://hl7.org/fhir/sid/icd-10-cm|E11.9", true, at("2020-01-01")),
                   coding("c1", "http://snomed.info/sct|44054006", true, at("2020-01-01")),
                   coding("c2", "http://hl7.org/fhir/sid/icd-10-cm|I10", true, at("2021-01-01"))};
  CHECK(one(n, in, at("2026-01-01")) == 2.0f);
  CHECK(one(n, in, at("2020-06-01")) == 1.0f);
}

TEST_CASE("the Charlson index sums category weights, the heavier of a pair replacing the lighter") {
  config::FeatureFile f =
      config::load_features(FRA_SOURCE_DIR "/models/readmission-risk/features.toml");
  REQUIRE(f.problems.empty());
  auto it = std::find_if(f.features.begin(), f.features.end(), [](const Def& d) {
    return d.measure == Def::Measure::charlson && d.source == Def::Source::condition;
  });
  REQUIRE(it != f.features.end());
  const Def& charlson = *it;
  CHECK(charlson.categories.size() == 17);
  mapping::PatientInputs in;
  const auto onset = at("2019-01-01");
  in.conditions = {
      // Diabetes without (1) and with (2) chronic complication: 2, not 3.
      coding("c1", "http://snomed.info/sct|44054006", true, onset),
      coding("c2", "http://snomed.info/sct|127013003", true, onset),
      // Congestive heart failure (1), ICD-10-CM as a prefix.
      coding("c3", "http://hl7.org/fhir/sid/icd-10-cm|I50.22", true, onset),
      // A malignancy (2) replaced by metastasis (6).
      coding("c4", "http://hl7.org/fhir/sid/icd-10-cm|C18.9", true, onset),
      coding("c5", "http://hl7.org/fhir/sid/icd-10-cm|C78.00", true, onset),
      // Hypertension is not a Charlson category; a refuted code never reaches the features.
      coding("c6", "http://snomed.info/sct|38341003", true, onset)};
  CHECK(one(charlson, in, at("2026-01-01")) == 2.0f + 1.0f + 6.0f);
  CHECK(one(charlson, in, at("2018-01-01")) == 0.0f);
}

TEST_CASE("acuity and emergency visits of the index stay, the visit that led to it not counted") {
  const Def acuity = encounter("emergent", Def::Measure::acuity, "1", "P365D");
  Def visits = encounter("ed_visits", Def::Measure::emergency_visits, "1", "P183D");
  mapping::PatientInputs in;
  CHECK(std::isnan(one(acuity, in, at("2026-06-01"))));
  CHECK(one(visits, in, at("2026-06-01")) == 0.0f);
  const auto admit = at("2026-05-10T08:00:00Z"), discharge = at("2026-05-15T08:00:00Z");
  in.stays = {{"IMP", admit, discharge, false},
              {"EMER", at("2026-05-10T02:00:00Z"), at("2026-05-10T07:00:00Z"), false},  // led to it
              {"EMER", at("2026-03-01T10:00:00Z"), at("2026-03-01T14:00:00Z"), false},
              {"EMER", at("2026-01-20T10:00:00Z"), at("2026-01-20T12:00:00Z"), false},
              {"EMER", at("2025-10-01T10:00:00Z"), at("2025-10-01T12:00:00Z"), false},   // > 183 d
              {"EMER", at("2026-05-20T10:00:00Z"), at("2026-05-20T12:00:00Z"), false}};  // after
  CHECK(one(acuity, in, at("2026-06-01")) == 1.0f);
  CHECK(one(visits, in, at("2026-06-01")) == 2.0f);
  // Without the visit that led to it, the stay is elective unless the record says otherwise.
  in.stays.erase(in.stays.begin() + 1);
  CHECK(one(acuity, in, at("2026-06-01")) == 0.0f);
  in.stays[0].emergent = true;  // priority EM, or admitted from the emergency department
  CHECK(one(acuity, in, at("2026-06-01")) == 1.0f);
  // Before the stay ended there is no index stay: the window ends at as-of.
  CHECK(one(visits, in, admit + kDay) == 2.0f);
}

TEST_CASE("a Condition maps every coding, its statuses and times; no subject is a dead letter") {
  auto d = parse(R"({"resourceType":"Condition","id":"c1",
      "clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"resolved"}]},
      "verificationStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-ver-status","code":"confirmed"}]},
      "code":{"coding":[{"system":"http://snomed.info/sct","code":"10509002"},
                        {"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"J20.9"}],"text":"Acute bronchitis"},
      "subject":{"reference":"Patient/p1","display":"Mr. Liam Smith"},
      "onsetDateTime":"2020-01-01T10:00:00+00:00","abatementDateTime":"2020-01-15T10:00:00+00:00",
      "recordedDate":"2020-01-02"})");
  auto c = fhir::read_condition(d);
  REQUIRE(c.ok());
  auto r = mapping::map_condition(c.value(), ps());
  REQUIRE(r.ok());
  CHECK(r->codes == std::vector<std::string>{"http://snomed.info/sct|10509002",
                                             "http://hl7.org/fhir/sid/icd-10-cm|J20.9"});
  CHECK(r->counts);
  CHECK_FALSE(r->active);
  CHECK(r->onset == at("2020-01-01T10:00:00Z"));
  CHECK(r->abatement == at("2020-01-15T10:00:00Z"));
  CHECK(r->patient == ps().of("Patient", fhir::FhirId{"p1"}));

  auto refuted =
      parse(R"({"resourceType":"Condition","id":"c2","subject":{"reference":"Patient/p1"},
      "verificationStatus":{"coding":[{"code":"refuted"}]},"recordedDate":"2021-03-04"})");
  auto rr = mapping::map_condition(fhir::read_condition(refuted).value(), ps());
  REQUIRE(rr.ok());
  CHECK_FALSE(rr->counts);
  CHECK(rr->active);                     // no clinicalStatus and no abatement
  CHECK(rr->onset == at("2021-03-04"));  // the recorded date stands in for the onset

  auto orphan =
      parse(R"({"resourceType":"Condition","id":"c3","subject":{"reference":"Group/g"}})");
  auto ro = mapping::map_condition(fhir::read_condition(orphan).value(), ps());
  REQUIRE_FALSE(ro.ok());
  CHECK(ro.error().code == "missing-subject");
}

TEST_CASE("condition features: value sets load from files, mistakes named") {
  auto problems = [](const std::string& toml) {
    const std::string dir = "/tmp/fra-unit-valueset-" + std::to_string(::getpid());
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/f.toml") << toml;
    std::ofstream(dir + "/vs.toml") << "name = \"x\"\ncodes = [\"http://snomed.info/sct|1\"]\n";
    auto f = config::load_features(dir + "/f.toml");
    std::string out;
    for (const auto& p : f.problems) out += p.format() + "\n";
    std::filesystem::remove_all(dir);
    return out;
  };
  CHECK(problems("[[feature]]\nname = \"x\"\nsource = \"condition\"\nmeasure = \"present\"\n"
                 "value_set = \"vs.toml\"\nunit = \"1\"\n") == "");
  CHECK(problems("[[feature]]\nname = \"x\"\nsource = \"condition\"\nmeasure = \"present\"\n"
                 "value_set = \"nowhere.toml\"\nunit = \"1\"\n")
            .find("nowhere.toml: cannot read") != std::string::npos);
  CHECK(problems("[[feature]]\nname = \"x\"\nsource = \"condition\"\nmeasure = \"charlson\"\n"
                 "value_set = \"vs.toml\"\nunit = \"1\"\n")
            .find("charlson needs a value set with [[category]] tables") != std::string::npos);
  CHECK(problems("[[feature]]\nname = \"x\"\nsource = \"condition\"\nmeasure = \"admissions\"\n"
                 "codes = [\"http://snomed.info/sct|1\"]\nunit = \"1\"\n")
            .find("measure is present, count or charlson") != std::string::npos);
  CHECK(
      problems("[[feature]]\nname = \"x\"\nsource = \"observation\"\naggregation = \"last_code\"\n"
               "codes = [\"http://loinc.org|72166-2\"]\nunit = \"1\"\n")
          .find("last_code needs equals") != std::string::npos);
}
