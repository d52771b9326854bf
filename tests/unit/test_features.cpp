#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>

#include "adapter/config/config.hpp"
#include "fhir/datetime.hpp"
#include "mapping/features.hpp"

using namespace fra;
using Def = mapping::FeatureDefinition;

namespace {
fhir::Micros at(const char* s) { return *fhir::parse_datetime(s); }
constexpr fhir::Micros kDay = 86400LL * 1000000;

const config::FeatureFile& shipped() {
  static config::FeatureFile f =
      config::load_features(FRA_SOURCE_DIR "/models/readmission-risk/features.toml");
  return f;
}

mapping::FeatureComputer computer(const std::vector<std::string>& names) {
  std::vector<std::pair<std::string, std::string>> wanted;
  for (const auto& n : names)
    for (const auto& d : shipped().features)
      if (d.name == n) wanted.emplace_back(n, d.unit);
  auto bound = mapping::bind_features(shipped().features, wanted);
  REQUIRE(bound.ok());
  return mapping::FeatureComputer(bound.value(), shipped().catalog);
}

Def observation(std::string name, Def::Aggregation a, std::string window = "") {
  Def d;
  d.name = std::move(name);
  d.source = Def::Source::observation;
  d.codes = {"http://loinc.org|8867-4"};
  d.unit = a == Def::Aggregation::count ? "1" : "/min";
  d.aggregation = a;
  if (!window.empty()) d.window = *mapping::parse_window(window);
  return d;
}

const char* kHr = "http://loinc.org|8867-4";
}  // namespace

TEST_CASE("the shipped feature definitions load and cover the shipped model") {
  REQUIRE_MESSAGE(shipped().problems.empty(),
                  (shipped().problems.empty() ? "" : shipped().problems[0].format()));
  CHECK(shipped().features.size() >= 11);
  CHECK(shipped().catalog.count(kHr) == 1);
  CHECK(shipped().catalog.at("http://loinc.org|8310-5").unit == "Cel");
}

TEST_CASE("a feature vector as of T uses only data effective at or before T") {
  auto fc = computer({"age_years", "sex_female", "heart_rate", "inpatient_admissions_365d",
                      "length_of_stay_days"});
  mapping::PatientInputs in;
  in.birth_year = 1950;
  in.sex = "female";
  in.measurements = {{kHr, 70, at("2026-01-01T00:00:00Z"), ""},
                     {kHr, 90, at("2026-06-01T00:00:00Z"), ""},
                     {kHr, 120, at("2026-09-01T00:00:00Z"), ""}};
  in.stays = {{"IMP", at("2026-02-01"), at("2026-02-05")},
              {"AMB", at("2026-03-01"), at("2026-03-01")},
              {"IMP", at("2026-06-28"), at("2026-07-03")}};

  auto v = fc.compute(in, at("2026-07-01T00:00:00Z"));
  CHECK(v[0] == 76.0f);
  CHECK(v[1] == 1.0f);
  CHECK(v[2] == 90.0f);  // the September value is after T
  CHECK(v[3] == 2.0f);   // the stay that started before T counts as an admission
  CHECK(v[4] == 4.0f);  // but its length is not known at T: the February stay is the last one ended

  auto later = fc.compute(in, at("2026-10-01T00:00:00Z"));
  CHECK(later[2] == 120.0f);
  CHECK(later[4] == 5.0f);

  // Leakage: adding anything after T changes nothing as of T.
  mapping::PatientInputs more = in;
  more.measurements.push_back({kHr, 200, at("2026-07-01T00:00:00.000001Z"), ""});
  more.stays.push_back({"IMP", at("2026-07-02"), at("2026-07-04")});
  auto same = fc.compute(more, at("2026-07-01T00:00:00Z"));
  for (std::size_t i = 0; i < v.size(); ++i) CHECK(same[i] == v[i]);
}

TEST_CASE("missing data is NaN, and the look-back window drops stale values") {
  auto fc = computer({"age_years", "sex_female", "heart_rate", "oxygen_saturation"});
  mapping::PatientInputs in;
  in.sex = "unknown";
  in.measurements = {{kHr, 70, at("2024-01-01T00:00:00Z"), ""}};
  auto v = fc.compute(in, at("2026-07-01T00:00:00Z"));
  for (float x : v) CHECK(std::isnan(x));
  in.sex = "male";
  CHECK(fc.compute(in, at("2026-07-01T00:00:00Z"))[1] == 0.0f);
}

TEST_CASE("aggregations over a window, whatever order the values come in") {
  using A = Def::Aggregation;
  std::vector<Def> defs{
      observation("last", A::last, "P10D"),   observation("min", A::min, "P10D"),
      observation("max", A::max, "P10D"),     observation("mean", A::mean, "P10D"),
      observation("count", A::count, "P10D"), observation("delta", A::delta, "P10D"),
      observation("slope", A::slope, "P10D"), observation("all", A::count)};
  REQUIRE(!mapping::check_definitions(defs));
  auto cat = mapping::catalog_of(defs);
  REQUIRE(cat.ok());
  mapping::FeatureComputer fc(defs, cat.value());
  const auto t = at("2026-07-11T00:00:00Z");
  mapping::PatientInputs in;
  in.measurements = {{kHr, 100, t - 2 * kDay, ""},
                     {kHr, 80, t - 6 * kDay, ""},
                     {kHr, 90, t - 4 * kDay, ""},
                     {kHr, 500, t - 10 * kDay, ""},  // on the window's open edge: out
                     {kHr, 300, t + 1, ""}};         // after as-of: out
  auto v = fc.compute(in, t);
  CHECK(v[0] == 100.0f);
  CHECK(v[1] == 80.0f);
  CHECK(v[2] == 100.0f);
  CHECK(v[3] == 90.0f);
  CHECK(v[4] == 3.0f);
  CHECK(v[5] == 20.0f);
  CHECK(v[6] == doctest::Approx(5.0));  // 80, 90, 100 two days apart: 5 per day
  CHECK(v[7] == 4.0f);
  std::reverse(in.measurements.begin(), in.measurements.end());
  auto w = fc.compute(in, t);
  for (std::size_t i = 0; i < v.size(); ++i) CHECK(w[i] == v[i]);

  mapping::PatientInputs none;
  auto e = fc.compute(none, t);
  CHECK(std::isnan(e[0]));
  CHECK(e[4] == 0.0f);
  CHECK(std::isnan(e[6]));
}

TEST_CASE("days since discharge, and units converted to what the model wants") {
  Def since;
  since.name = "days_since_discharge";
  since.source = Def::Source::encounter;
  since.classes = {"IMP"};
  since.measure = Def::Measure::days_since_discharge;
  since.unit = "d";
  Def temp = observation("temp", Def::Aggregation::last);
  temp.codes = {"http://loinc.org|8310-5"};
  temp.unit = "Cel";
  auto cat = mapping::catalog_of({since, temp});
  REQUIRE(cat.ok());
  auto bound =
      mapping::bind_features({since, temp}, {{"days_since_discharge", "h"}, {"temp", "[degF]"}});
  REQUIRE(bound.ok());
  mapping::FeatureComputer fc(bound.value(), cat.value());
  mapping::PatientInputs in;
  in.stays = {{"IMP", at("2026-07-01"), at("2026-07-03")}};
  in.measurements = {{"http://loinc.org|8310-5", 37.0, at("2026-07-02"), ""}};
  auto v = fc.compute(in, at("2026-07-05"));
  CHECK(v[0] == doctest::Approx(48.0));
  CHECK(v[1] == doctest::Approx(98.6));
}

TEST_CASE("binding names the feature without a definition or with a unit that does not convert") {
  auto r =
      mapping::bind_features(shipped().features, {{"heart_rate", "/min"}, {"lactate", "mmol/L"}});
  REQUIRE(!r.ok());
  CHECK(r.error().message == "the model needs feature 'lactate', which has no definition");
  auto u = mapping::bind_features(shipped().features, {{"heart_rate", "kg"}});
  REQUIRE(!u.ok());
  CHECK(u.error().message ==
        "the model wants feature 'heart_rate' in \"kg\", its definition gives \"/min\"");
}

TEST_CASE("windows are ISO 8601 durations of fixed length") {
  CHECK(*mapping::parse_window("P365D") == 365 * kDay);
  CHECK(*mapping::parse_window("P2W") == 14 * kDay);
  CHECK(*mapping::parse_window("PT48H") == 2 * kDay);
  CHECK(*mapping::parse_window("P1DT12H") == kDay + kDay / 2);
  CHECK(mapping::parse_window("P1Y").error().message.find("years and months vary") !=
        std::string::npos);
  CHECK(!mapping::parse_window("365D").ok());
  CHECK(!mapping::parse_window("P").ok());
  CHECK(!mapping::parse_window("PT0S").ok());
}

TEST_CASE("[[feature]] tables: each mistake named with file, line and the feature") {
  std::string path = "/tmp/fra-unit-features-" + std::to_string(::getpid()) + ".toml";
  auto problems = [&](const std::string& text) {
    std::ofstream(path) << text;
    auto f = config::load_features(path);
    std::remove(path.c_str());
    std::string all;
    for (auto& p : f.problems) {
      p.file = "f.toml";
      all += p.format() + "\n";
    }
    return all;
  };
  CHECK(problems("[[feature]]\nname = \"hr\"\nsource = \"observation\"\ncodes = "
                 "[\"http://loinc.org|8867-4\"]\n"
                 "unit = \"/min\"\naggregation = \"median\"\n") ==
        "f.toml:6:15: error: feature 'hr'.aggregation: expected one of last, min, max, mean, "
        "count, delta, slope, last_code, got "
        "\"median\"\n");
  CHECK(problems("[[feature]]\nname = \"hr\"\nsource = \"patient\"\nattribute = \"age\"\nunit = "
                 "\"a\"\nwindow = \"P1D\"\n") ==
        "f.toml:6:10: error: feature 'hr': unknown key 'window' for a source of \"patient\"\n");
  CHECK(problems("[[feature]]\nname = \"hr\"\nsource = \"observation\"\ncodes = [\"8867-4\"]\nunit "
                 "= \"/min\"\n"
                 "aggregation = \"last\"\n") ==
        "f.toml: error: feature 'hr': code \"8867-4\" is not system|code\n");
  CHECK(problems("[[feature]]\nname = \"hr\"\nsource = \"encounter\"\nunit = \"1\"\n") ==
        "f.toml:1:1: error: feature 'hr': classes is missing (Encounter.class codes such as "
        "[\"IMP\"])\n"
        "f.toml:1:1: error: feature 'hr': measure is missing (admissions, length_of_stay, "
        "days_since_discharge, acuity or emergency_visits)\n");
  CHECK(
      problems("[[feature]]\nname = \"w\"\nsource = \"observation\"\ncodes = "
               "[\"http://loinc.org|29463-7\"]\n"
               "unit = \"kg\"\naggregation = \"last\"\nwindow = \"P1M\"\n")
          .find("f.toml:7:10: error: feature 'w'.window: window \"P1M\": years and months vary") ==
      0);
  CHECK(problems("[[feature]]\nname = \"a\"\nsource = \"observation\"\ncodes = [\"s|c\"]\nunit = "
                 "\"kg\"\naggregation = \"last\"\n"
                 "[[feature]]\nname = \"b\"\nsource = \"observation\"\ncodes = [\"s|c\"]\nunit = "
                 "\"cm\"\naggregation = \"last\"\n") ==
        "f.toml: error: feature 'b': code s|c is kept in \"kg\" for another feature, which does "
        "not convert to \"cm\"\n");
}
