#pragma once
// The daemon's metrics, rendered in the Prometheus text exposition format (version 0.0.4).
// Counters, gauges and histograms with at most one label; every method is thread-safe.

#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace fra::daemon {

class Metrics {
 public:
  /// Declares a metric so that it is listed (with its HELP and TYPE) before it first moves.
  /// `type` is "counter", "gauge" or "histogram"; `label` names its one label, "" for none.
  void declare(const std::string& name, const std::string& type, const std::string& help,
               const std::string& label = "", std::vector<double> buckets = {});
  void add(const std::string& name, double by = 1, const std::string& label_value = "");
  void set(const std::string& name, double value, const std::string& label_value = "");
  void observe(const std::string& name, double value, const std::string& label_value = "");
  /// The current value of a counter or gauge (0 when never moved).
  double value(const std::string& name, const std::string& label_value = "") const;
  std::string render() const;

 private:
  struct Histogram {
    std::vector<double> counts;  // one per bucket, not cumulative
    double sum = 0;
    double count = 0;
  };
  struct Family {
    std::string type, help, label;
    std::vector<double> buckets;
    std::map<std::string, double> values;         // label value -> value
    std::map<std::string, Histogram> histograms;  // label value -> histogram
  };
  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
};

/// Buckets for durations from a millisecond to a minute.
std::vector<double> latency_buckets();

}  // namespace fra::daemon
