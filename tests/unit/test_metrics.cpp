#include <doctest/doctest.h>

#include <string>

#include "adapter/daemon/metrics.hpp"

TEST_CASE("metrics render in the Prometheus text format, declared ones before they move") {
  fra::daemon::Metrics m;
  m.declare("fra_queue_depth", "gauge", "Patients waiting");
  m.declare("fra_scores_total", "counter", "Scores by band", "band");
  m.declare("fra_scoring_seconds", "histogram", "Scoring pass", "", {0.1, 1});
  std::string before = m.render();
  CHECK(before.find("# HELP fra_queue_depth Patients waiting\n# TYPE fra_queue_depth "
                    "gauge\nfra_queue_depth 0\n") != std::string::npos);
  CHECK(before.find("# TYPE fra_scores_total counter\n") != std::string::npos);
  CHECK(before.find("fra_scoring_seconds_bucket{le=\"+Inf\"} 0\n") != std::string::npos);

  m.add("fra_scores_total", 2, "high");
  m.add("fra_scores_total", 1, "lo\"w");
  m.set("fra_queue_depth", 7);
  m.observe("fra_scoring_seconds", 0.05);
  m.observe("fra_scoring_seconds", 0.5);
  m.observe("fra_scoring_seconds", 5);
  std::string text = m.render();
  CHECK(text.find("fra_scores_total{band=\"high\"} 2\n") != std::string::npos);
  CHECK(text.find("fra_scores_total{band=\"lo\\\"w\"} 1\n") != std::string::npos);
  CHECK(text.find("fra_queue_depth 7\n") != std::string::npos);
  CHECK(text.find("fra_scoring_seconds_bucket{le=\"0.1\"} 1\n") != std::string::npos);
  CHECK(text.find("fra_scoring_seconds_bucket{le=\"1\"} 2\n") != std::string::npos);
  CHECK(text.find("fra_scoring_seconds_bucket{le=\"+Inf\"} 3\n") != std::string::npos);
  CHECK(text.find("fra_scoring_seconds_sum 5.55\n") != std::string::npos);
  CHECK(text.find("fra_scoring_seconds_count 3\n") != std::string::npos);
  CHECK(m.value("fra_scores_total", "high") == 2);
}
