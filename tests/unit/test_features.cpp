#include <doctest/doctest.h>

#include <cmath>

#include "fhir/datetime.hpp"
#include "mapping/features.hpp"

using namespace fra;

namespace {
fhir::Micros at(const char* s) { return *fhir::parse_datetime(s); }
}  // namespace

TEST_CASE("a feature vector as of T uses only data effective at or before T") {
  auto defs = mapping::bind_features({"age_years", "sex_female", "heart_rate", "inpatient_admissions_365d"});
  REQUIRE(defs.ok());
  mapping::PatientInputs in;
  in.birth_year = 1950;
  in.sex = "female";
  in.measurements = {{"8867-4", 70, at("2026-01-01T00:00:00Z")},
                     {"8867-4", 90, at("2026-06-01T00:00:00Z")},
                     {"8867-4", 120, at("2026-09-01T00:00:00Z")}};
  in.stays = {{"IMP", at("2026-02-01"), at("2026-02-05")},
              {"AMB", at("2026-03-01"), at("2026-03-01")},
              {"IMP", at("2026-08-01"), at("2026-08-03")}};

  auto v = mapping::compute_features(defs.value(), in, at("2026-07-01T00:00:00Z"));
  CHECK(v[0] == 76.0f);
  CHECK(v[1] == 1.0f);
  CHECK(v[2] == 90.0f);  // the September value is after T
  CHECK(v[3] == 1.0f);   // the August admission is after T

  auto later = mapping::compute_features(defs.value(), in, at("2026-10-01T00:00:00Z"));
  CHECK(later[2] == 120.0f);
  CHECK(later[3] == 2.0f);
}

TEST_CASE("missing data is NaN, and the look-back window drops stale values") {
  auto defs = mapping::bind_features({"age_years", "sex_female", "heart_rate", "oxygen_saturation"});
  mapping::PatientInputs in;
  in.sex = "unknown";
  in.measurements = {{"8867-4", 70, at("2024-01-01T00:00:00Z")}};
  auto v = mapping::compute_features(defs.value(), in, at("2026-07-01T00:00:00Z"));
  for (float x : v) CHECK(std::isnan(x));
}

TEST_CASE("binding names the first feature without a definition") {
  auto r = mapping::bind_features({"heart_rate", "lactate"});
  REQUIRE(!r.ok());
  CHECK(r.error().message == "the model needs feature 'lactate', which has no definition");
}
