#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "adapter/monitor/stats.hpp"

using namespace fra::monitor;

TEST_CASE("AUC: the share of positive-negative pairs ranked right, ties half") {
  CHECK(*auc({0.1, 0.4, 0.35, 0.8}, {0, 0, 1, 1}) == doctest::Approx(0.75));
  CHECK(*auc({0.5, 0.5, 0.5, 0.5}, {0, 1, 0, 1}) == doctest::Approx(0.5));
  CHECK(*auc({0.9, 0.1}, {0, 1}) == doctest::Approx(0.0));
  CHECK_FALSE(auc({0.2, 0.3}, {1, 1}).has_value());  // one outcome only
}

TEST_CASE("Brier score and calibration: a calibrated model fits slope 1, intercept 0") {
  CHECK(*brier({0.0, 1.0, 0.5}, {0, 1, 1}) == doctest::Approx(0.25 / 3));
  // Outcomes drawn exactly at the predicted rates: 1 in 10 at 0.1, 5 in 10 at 0.5, 9 in 10 at 0.9.
  std::vector<double> p;
  std::vector<int> y;
  for (double q : {0.1, 0.5, 0.9})
    for (int i = 0; i < 10; ++i) {
      p.push_back(q);
      y.push_back(i < static_cast<int>(std::lround(q * 10)) ? 1 : 0);
    }
  auto c = calibration(p, y);
  REQUIRE(c.has_value());
  CHECK(c->first == doctest::Approx(1.0).epsilon(1e-9));
  CHECK(c->second == doctest::Approx(0.0).scale(1).epsilon(1e-9));
  // Predictions twice as extreme in log-odds as the outcomes: slope 1/2.
  std::vector<double> extreme;
  for (double q : p) {
    const double l = 2 * std::log(q / (1 - q));
    extreme.push_back(1 / (1 + std::exp(-l)));
  }
  CHECK(calibration(extreme, y)->first == doctest::Approx(0.5).epsilon(1e-9));
  CHECK_FALSE(calibration({0.2, 0.3}, {0, 0}).has_value());
}

TEST_CASE("deciles split as evenly as numpy's array_split, with Wilson intervals") {
  std::vector<double> p;
  std::vector<int> y;
  for (int i = 0; i < 23; ++i) p.push_back(i / 23.0), y.push_back(i % 2);
  auto d = deciles(p, y);
  REQUIRE(d.size() == 10);
  CHECK(d[0].n == 3);
  CHECK(d[2].n == 3);
  CHECK(d[3].n == 2);
  long total = 0;
  for (const auto& x : d) total += x.n;
  CHECK(total == 23);
  auto [lo, hi] = wilson(5, 10);
  CHECK(lo == doctest::Approx(0.2366).epsilon(1e-3));
  CHECK(hi == doctest::Approx(0.7634).epsilon(1e-3));
}

TEST_CASE("shares per bin and missing; PSI zero for the same, large for a shift") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto s = shares({1, 2, 3, 4, nan}, {2, 4});
  CHECK(s == std::vector<double>{0.2, 0.4, 0.2, 0.2});  // [-inf,2), [2,4), [4,inf), missing
  CHECK(psi(s, s) == doctest::Approx(0.0));
  CHECK(psi({0.5, 0.5, 0}, {0.1, 0.9, 0}) > 0.25);
  CHECK(psi({0.5, 0.5, 0}, {0.48, 0.52, 0}) < 0.01);
  CHECK(std::isfinite(psi({1, 0, 0}, {0, 1, 0})));  // an empty bin does not divide by zero
}
