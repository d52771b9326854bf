#include "adapter/daemon/metrics.hpp"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

namespace fra::daemon {
namespace {

// A label value, escaped as the text format wants: backslash, double quote and newline.
std::string escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

std::string labels(const std::string& label, const std::string& value,
                   const std::string& extra = "") {
  std::string inner = label.empty() ? "" : fmt::format("{}=\"{}\"", label, escape(value));
  if (!extra.empty()) inner += (inner.empty() ? "" : ",") + extra;
  return inner.empty() ? "" : "{" + inner + "}";
}

}  // namespace

std::vector<double> latency_buckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

void Metrics::declare(const std::string& name, const std::string& type, const std::string& help,
                      const std::string& label, std::vector<double> buckets) {
  std::lock_guard lock(mu_);
  Family& f = families_[name];
  f.type = type;
  f.help = help;
  f.label = label;
  f.buckets = std::move(buckets);
  if (label.empty() && type != "histogram") f.values.emplace("", 0.0);
  if (label.empty() && type == "histogram") f.histograms[""].counts.assign(f.buckets.size(), 0);
}

void Metrics::add(const std::string& name, double by, const std::string& label_value) {
  std::lock_guard lock(mu_);
  families_.at(name).values[label_value] += by;
}

void Metrics::set(const std::string& name, double value, const std::string& label_value) {
  std::lock_guard lock(mu_);
  families_.at(name).values[label_value] = value;
}

void Metrics::observe(const std::string& name, double value, const std::string& label_value) {
  std::lock_guard lock(mu_);
  Family& f = families_.at(name);
  Histogram& h = f.histograms[label_value];
  if (h.counts.size() != f.buckets.size()) h.counts.assign(f.buckets.size(), 0);
  for (std::size_t i = 0; i < f.buckets.size(); ++i)
    if (value <= f.buckets[i]) {
      ++h.counts[i];
      break;
    }
  h.sum += value;
  ++h.count;
}

double Metrics::value(const std::string& name, const std::string& label_value) const {
  std::lock_guard lock(mu_);
  auto f = families_.find(name);
  if (f == families_.end()) return 0;
  auto v = f->second.values.find(label_value);
  return v == f->second.values.end() ? 0 : v->second;
}

std::string Metrics::render() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, f.help, name, f.type);
    for (const auto& [lv, v] : f.values)
      out += fmt::format("{}{} {}\n", name, labels(f.label, lv), number(v));
    for (const auto& [lv, h] : f.histograms) {
      double cumulative = 0;
      for (std::size_t i = 0; i < f.buckets.size(); ++i) {
        cumulative += h.counts[i];
        out += fmt::format("{}_bucket{} {}\n", name,
                           labels(f.label, lv, fmt::format("le=\"{}\"", number(f.buckets[i]))),
                           number(cumulative));
      }
      out += fmt::format("{}_bucket{} {}\n", name, labels(f.label, lv, "le=\"+Inf\""),
                         number(h.count));
      out += fmt::format("{}_sum{} {}\n{}_count{} {}\n", name, labels(f.label, lv), number(h.sum),
                         name, labels(f.label, lv), number(h.count));
    }
  }
  return out;
}

}  // namespace fra::daemon
