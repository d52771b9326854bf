#include "adapter/monitor/stats.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace fra::monitor {

std::optional<double> auc(const std::vector<double>& p, const std::vector<int>& y) {
  const std::size_t n = p.size();
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return p[a] < p[b]; });
  // Mann-Whitney: the rank sum of the positives, tied predictions sharing their mean rank.
  double rank_sum = 0;
  long positives = 0;
  for (std::size_t i = 0; i < n;) {
    std::size_t j = i;
    while (j + 1 < n && p[order[j + 1]] == p[order[i]]) ++j;
    const double rank = (static_cast<double>(i + j) / 2) + 1;
    for (std::size_t k = i; k <= j; ++k)
      if (y[order[k]] == 1) rank_sum += rank, ++positives;
    i = j + 1;
  }
  const long negatives = static_cast<long>(n) - positives;
  if (positives == 0 || negatives == 0) return std::nullopt;
  const double n1 = static_cast<double>(positives);
  return (rank_sum - n1 * (n1 + 1) / 2) / (n1 * static_cast<double>(negatives));
}

std::optional<double> brier(const std::vector<double>& p, const std::vector<int>& y) {
  if (p.empty()) return std::nullopt;
  double s = 0;
  for (std::size_t i = 0; i < p.size(); ++i) s += (p[i] - y[i]) * (p[i] - y[i]);
  return s / static_cast<double>(p.size());
}

std::optional<std::pair<double, double>> calibration(const std::vector<double>& p,
                                                     const std::vector<int>& y) {
  const std::size_t n = p.size();
  long events = 0;
  for (int v : y) events += v;
  if (events == 0 || events == static_cast<long>(n)) return std::nullopt;
  std::vector<double> x(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double q = std::clamp(p[i], 1e-12, 1 - 1e-12);
    x[i] = std::log(q / (1 - q));
  }
  double b0 = 0, b1 = 0;  // intercept, slope
  for (int iter = 0; iter < 100; ++iter) {
    // Newton's step on the log-likelihood: (X'WX) d = X'(y - mu).
    double h00 = 0, h01 = 0, h11 = 0, g0 = 0, g1 = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double mu = 1 / (1 + std::exp(-(b0 + b1 * x[i])));
      const double w = mu * (1 - mu);
      h00 += w, h01 += w * x[i], h11 += w * x[i] * x[i];
      g0 += y[i] - mu, g1 += (y[i] - mu) * x[i];
    }
    const double det = h00 * h11 - h01 * h01;
    if (!(std::abs(det) > 0)) return std::nullopt;
    const double d0 = (h11 * g0 - h01 * g1) / det, d1 = (h00 * g1 - h01 * g0) / det;
    b0 += d0, b1 += d1;
    if (!std::isfinite(b0) || !std::isfinite(b1)) return std::nullopt;
    if (std::max(std::abs(d0), std::abs(d1)) < 1e-13) return std::pair{b1, b0};
  }
  return std::pair{b1, b0};
}

std::pair<double, double> wilson(long k, long n) {
  if (n == 0) return {0, 0};
  const double z = 1.959963984540054, nn = static_cast<double>(n);
  const double ph = static_cast<double>(k) / nn;
  const double centre = (ph + z * z / (2 * nn)) / (1 + z * z / nn);
  const double half = z * std::sqrt(ph * (1 - ph) / nn + z * z / (4 * nn * nn)) / (1 + z * z / nn);
  return {std::max(0.0, centre - half), std::min(1.0, centre + half)};
}

std::vector<Decile> deciles(const std::vector<double>& p, const std::vector<int>& y) {
  const std::size_t n = p.size();
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return p[a] < p[b]; });
  const std::size_t groups = std::min<std::size_t>(10, n);
  std::vector<Decile> out;
  std::size_t at = 0;
  for (std::size_t g = 0; g < groups; ++g) {
    // As numpy's array_split: the first n % groups groups take one more row.
    const std::size_t size = n / groups + (g < n % groups ? 1 : 0);
    Decile d;
    long events = 0;
    double sum = 0;
    for (std::size_t k = at; k < at + size; ++k) sum += p[order[k]], events += y[order[k]];
    d.n = static_cast<long>(size);
    d.predicted = sum / static_cast<double>(size);
    d.observed = static_cast<double>(events) / static_cast<double>(size);
    const auto interval = wilson(events, d.n);
    d.low = interval.first;
    d.high = interval.second;
    out.push_back(d);
    at += size;
  }
  return out;
}

std::vector<double> shares(const std::vector<double>& values, const std::vector<double>& edges) {
  std::vector<double> out(edges.size() + 2, 0.0);
  if (values.empty()) return out;
  for (double v : values) {
    if (std::isnan(v)) {
      out.back() += 1;
      continue;
    }
    out[static_cast<std::size_t>(std::upper_bound(edges.begin(), edges.end(), v) -
                                 edges.begin())] += 1;
  }
  for (double& s : out) s /= static_cast<double>(values.size());
  return out;
}

double psi(const std::vector<double>& reference, const std::vector<double>& current) {
  double s = 0;
  for (std::size_t i = 0; i < reference.size() && i < current.size(); ++i) {
    const double r = std::max(reference[i], 1e-4), c = std::max(current[i], 1e-4);
    s += (c - r) * std::log(c / r);
  }
  return s;
}

}  // namespace fra::monitor
