#include "adapter/monitor/report_html.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adapter/monitor/svg.hpp"

namespace fra::monitor {
namespace {

using svg::escape, svg::line, svg::text, svg::rect, svg::dot, svg::legend, svg::no_data, svg::put;
using svg::nice_max, svg::nice_step, svg::Plot;

// Every chart is as wide as the text column, so the page reads (and prints) as one column.
constexpr double kWidth = 960;
constexpr std::string_view kDash = "—";

// Data marks are drawn in groups of class "mark" (svg.hpp draws axes as "axis" and the words of
// an empty chart as "nodata"): tests/check_report_chromium.py shows one class at a time to tell
// a drawn chart from a blank one. Text in SVG takes no stroke, whatever its group's.
constexpr std::string_view kStyle = R"(
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;
background:#fff;max-width:1000px;margin:0 auto;padding:16px 20px 40px}
h1{font-size:24px;margin:8px 0 4px}h2{font-size:18px;margin:28px 0 8px;
border-bottom:1px solid #ccc;padding-bottom:4px}
.meta{color:#555;margin:0}p.explain{max-width:920px;color:#333}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ccc;padding:3px 8px;
text-align:left;vertical-align:top}th{background:#f3f3f3}td.num{text-align:right;
font-variant-numeric:tabular-nums}code{font-size:12px;word-break:break-all}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:8px 0}
dt{font-weight:600}dd{margin:0}svg{display:block;font-size:12px;margin:8px 0}
svg text{stroke:none}@media print{section{break-inside:avoid}}
)";

std::string or_dash(std::string s) { return s.empty() ? std::string(kDash) : s; }
std::string fixed(double v, int digits) {
  return std::isfinite(v) ? fmt::format("{:.{}f}", v, digits) : std::string(kDash);
}
std::string fixed(const std::optional<double>& v, int digits) {
  return v ? fixed(*v, digits) : std::string(kDash);
}
std::string percent(double share) { return fixed(share * 100, 1) + "%"; }
double finite_or(double v, double fallback) { return std::isfinite(v) ? v : fallback; }

// Charts over weeks share one layout, so that the bands and the AUC line up on the page.
Plot weeks_plot(size_t weeks, double height, double y0, double y1) {
  return {80, 40, kWidth - 180, height, 0, double(std::max<size_t>(weeks, 1)), y0, y1};
}

// The bottom axis of one slot per week; labels thinned so that they never overlap.
void week_axis(std::string& out, const Plot& p, const std::vector<Week>& weeks) {
  out += svg::kAxisGroup;
  line(out, p.left, p.bottom(), p.right(), p.bottom());
  const auto every = static_cast<size_t>(
      std::max(1.0, std::ceil(static_cast<double>(weeks.size()) * 74.0 / p.width)));
  for (size_t i = 0; i < weeks.size(); i += every)
    text(out, p.slot(i), p.bottom() + 16, "middle", escape(weeks[i].start));
  text(out, p.left + p.width / 2, p.bottom() + 36, "middle", "week starting (Monday)");
  out += "</g>";
}

// ---- Score histogram -------------------------------------------------------------------

std::string bin_range(const std::vector<double>& edges, size_t i) {
  if (edges.empty()) return "all scores";
  if (i == 0) return fmt::format("below {:g}", edges[0]);
  if (i >= edges.size()) return fmt::format("{:g} and above", edges.back());
  return fmt::format("{:g} to {:g}", edges[i - 1], edges[i]);
}

// The training reference as an outline of steps over the bars, so both stay readable.
void reference_steps(std::string& out, const Plot& p, const std::vector<double>& shares) {
  out += R"(<path class="mark" fill="none" stroke="#222" stroke-width="2" d=")";
  for (size_t i = 0; i < shares.size(); ++i) {
    const double y = p.y(finite_or(shares[i], 0));
    if (i == 0) put(out, "M{:.1f},{:.1f}", p.x(0), y);
    put(out, " V{:.1f} H{:.1f}", y, p.slot(i, 1));
  }
  out += R"("/>)";
}

std::string chart_scores(const Report& r) {
  const size_t bins = r.score_counts.size();
  const long total = std::accumulate(r.score_counts.begin(), r.score_counts.end(), 0L);
  const bool reference =
      !r.reference_score_shares.empty() && r.reference_score_shares.size() == bins;
  auto share = [&](size_t i) {
    return total > 0 ? double(r.score_counts[i]) / double(total) : 0.0;
  };
  double top = 0;
  for (size_t i = 0; i < bins; ++i)
    top = std::max({top, share(i), reference ? finite_or(r.reference_score_shares[i], 0) : 0});
  Plot p{80, 40, kWidth - 120, 240, 0, double(std::max<size_t>(bins, 1)), 0, nice_max(top, 5)};
  std::string out = svg::open("chart-scores", kWidth, 340,
                              fmt::format("Latest score of each patient: {} patients", total));
  svg::y_axis(out, p, {nice_step(p.y1, 5), 100, "%"}, "share of patients");
  out += svg::kAxisGroup;
  line(out, p.left, p.bottom(), p.right(), p.bottom());
  // Edge labels sit between the bars they separate: bins may be uneven and the ends are open.
  const auto every =
      static_cast<size_t>(std::max(1.0, std::ceil(static_cast<double>(bins) * 48.0 / p.width)));
  for (size_t i = 1; i < bins && i - 1 < r.score_edges.size(); i += every)
    text(out, p.slot(i, 0), p.bottom() + 16, "middle", fmt::format("{:g}", r.score_edges[i - 1]));
  text(out, p.left + p.width / 2, p.bottom() + 36, "middle", "score");
  out += "</g>";
  if (total == 0) no_data(out, p, "no scores in this period");
  out += R"(<g class="mark" fill="#4a78b5">)";
  for (size_t i = 0; i < bins && total > 0; ++i)
    rect(out, p.slot(i, 0.1), p.y(share(i)), p.x(0.8) - p.left, p.bottom() - p.y(share(i)),
         fmt::format("{}: {} patients ({})", bin_range(r.score_edges, i), r.score_counts[i],
                     percent(share(i))));
  out += "</g>";
  if (reference) reference_steps(out, p, r.reference_score_shares);
  double x = p.left;
  legend(out, x, "#4a78b5", "this period");
  if (reference) legend(out, x, "#222", "training reference", "solid");
  return out + "</svg>";
}

// ---- Bands and alerts by week ------------------------------------------------------------

std::vector<std::string> band_codes(const Report& r) {
  std::vector<std::string> codes;
  for (const auto& w : r.weeks)
    for (const auto& [code, n] : w.bands)
      if (std::find(codes.begin(), codes.end(), code) == codes.end()) codes.push_back(code);
  return codes;
}

// Low green, moderate amber, high red, as clinicians read them; other codes blue and greys.
std::vector<std::string> band_colours(const std::vector<std::string>& codes) {
  static constexpr const char* kOthers[] = {"#5b7fa6", "#8c8c8c", "#2f5f8a", "#b0b0b0"};
  std::vector<std::string> colours;
  size_t others = 0;
  for (const auto& code : codes)
    colours.push_back(code == "low"        ? "#3a9a48"
                      : code == "moderate" ? "#f0a202"
                      : code == "high"     ? "#c8322b"
                                           : kOthers[others++ % std::size(kOthers)]);
  return colours;
}

long band_count(const Week& w, const std::string& code) {
  for (const auto& [c, n] : w.bands)
    if (c == code) return n;
  return 0;
}

void alert_line(std::string& out, const Plot& p, const std::vector<Week>& weeks) {
  out += R"(<g class="mark" stroke="#222" fill="#222"><polyline fill="none" stroke-width="2" )"
         R"(points=")";
  for (size_t i = 0; i < weeks.size(); ++i)
    put(out, "{}{:.1f},{:.1f}", i ? " " : "", p.slot(i), p.y(finite_or(weeks[i].alert_rate, 0)));
  out += R"("/>)";
  for (size_t i = 0; i < weeks.size(); ++i)
    dot(out, p.slot(i), p.y(finite_or(weeks[i].alert_rate, 0)), 3.5,
        fmt::format("{}: alert rate {}", weeks[i].start, percent(weeks[i].alert_rate)));
  out += "</g>";
}

std::string chart_bands(const Report& r, const std::vector<std::string>& codes) {
  const auto& weeks = r.weeks;
  double most = 10, rate = 0;
  for (const auto& w : weeks) {
    long sum = 0;
    for (const auto& [c, n] : w.bands) sum += n;
    most = std::max({most, double(sum), double(w.scores)});
    rate = std::max(rate, finite_or(w.alert_rate, 0));
  }
  const Plot p = weeks_plot(weeks.size(), 250, 0, nice_max(most, 5));
  const Plot alerts = weeks_plot(weeks.size(), 250, 0, nice_max(rate > 0 ? rate : 0.1, 5));
  std::string out = svg::open("chart-bands", kWidth, 350, "Scores by band and alert rate, by week");
  svg::y_axis(out, p, {nice_step(p.y1, 5)}, "scores");
  svg::y_axis(out, alerts, {nice_step(alerts.y1, 5), 100, "%"}, "alert rate", true);
  week_axis(out, p, weeks);
  if (weeks.empty()) no_data(out, p, "no scores in this period");
  const auto colours = band_colours(codes);
  for (size_t b = 0; b < codes.size(); ++b) {
    put(out, R"(<g class="mark" fill="{}">)", colours[b]);
    for (size_t i = 0; i < weeks.size(); ++i) {
      long below = 0;
      for (size_t k = 0; k < b; ++k) below += band_count(weeks[i], codes[k]);
      const long n = band_count(weeks[i], codes[b]);
      rect(out, p.slot(i, 0.15), p.y(double(below + n)), p.x(0.7) - p.left,
           p.y(double(below)) - p.y(double(below + n)),
           fmt::format("{}: {} {}", weeks[i].start, n, codes[b]));
    }
    out += "</g>";
  }
  if (!weeks.empty()) alert_line(out, alerts, weeks);
  double x = p.left;
  for (size_t b = 0; b < codes.size(); ++b) legend(out, x, colours[b], codes[b]);
  legend(out, x, "#222", "alert rate (right axis)", "solid");
  return out + "</svg>";
}

std::string weeks_table(const Report& r, const std::vector<std::string>& codes) {
  std::string out = "<table><thead><tr><th>week starting</th>";
  for (const auto& c : codes) put(out, "<th>{}</th>", escape(c));
  out += "<th>scores</th><th>alerts</th><th>alert rate</th><th>AUC</th></tr></thead><tbody>";
  for (const auto& w : r.weeks) {
    put(out, "<tr><td>{}</td>", escape(w.start));
    for (const auto& c : codes) put(out, R"(<td class="num">{}</td>)", band_count(w, c));
    put(out, R"(<td class="num">{}</td><td class="num">{}</td><td class="num">{}</td>)", w.scores,
        w.alerts, percent(w.alert_rate));
    put(out, R"(<td class="num">{}</td></tr>)", fixed(w.auc, 3));
  }
  if (r.weeks.empty())
    put(out, R"(<tr><td colspan="{}">no scores in this period</td></tr>)", codes.size() + 5);
  return out + "</tbody></table>";
}

// ---- Feature drift -----------------------------------------------------------------------

std::string_view psi_zone(double psi) {
  if (!std::isfinite(psi)) return "unknown";
  return psi < 0.1 ? "stable" : psi <= 0.25 ? "watch" : "investigate";
}
std::string_view zone_colour(std::string_view zone) {
  return zone == "stable" ? "#3a9a48" : zone == "watch" ? "#f0a202" : "#c8322b";
}

// Most drifted first: the reader looks for the features to investigate.
std::vector<const FeatureDrift*> by_psi(const Report& r) {
  std::vector<const FeatureDrift*> out;
  for (const auto& d : r.drift) out.push_back(&d);
  std::stable_sort(out.begin(), out.end(), [](auto* a, auto* b) {
    return finite_or(a->psi, 1e9) > finite_or(b->psi, 1e9);
  });
  return out;
}

std::string short_label(const FeatureDrift& d) {
  const std::string& words = d.label.empty() ? d.name : d.label;
  if (words.size() <= 34) return words;
  size_t cut = 33;  // not inside a UTF-8 sequence
  while (cut > 0 && (static_cast<unsigned char>(words[cut]) & 0xC0) == 0x80) --cut;
  return words.substr(0, cut) + "…";
}

std::string chart_psi(const std::vector<const FeatureDrift*>& drift) {
  const double row = 24, rows = double(std::max<size_t>(drift.size(), 6));
  double most = 0.3;
  for (auto* d : drift) most = std::max(most, finite_or(d->psi, 0));
  Plot p{250, 40, kWidth - 490, row * rows, 0, nice_max(most, 6), 0, rows};
  std::string out = svg::open("chart-psi", kWidth, p.bottom() + 50,
                              "Population stability index (PSI) of each feature against training");
  svg::x_axis(out, p, {nice_step(p.x1, 6)}, "PSI");
  out += svg::kAxisGroup;
  line(out, p.left, p.top, p.left, p.bottom());
  for (size_t i = 0; i < drift.size(); ++i) {
    const double y = p.top + row * static_cast<double>(i) + 16;
    text(out, p.left - 8, y, "end", escape(short_label(*drift[i])));
    text(out, p.right() + 12, y, "start",
         fmt::format("missing {} (training {})", percent(drift[i]->missing_ratio),
                     percent(drift[i]->reference_missing)));
  }
  out += "</g>";
  out += R"(<g class="mark">)";
  for (size_t i = 0; i < drift.size(); ++i) {
    const auto zone = psi_zone(drift[i]->psi);
    rect(out, p.left, p.top + row * static_cast<double>(i) + 4,
         p.x(finite_or(drift[i]->psi, 0)) - p.left, row - 8,
         fmt::format("{}: PSI {} ({})", drift[i]->name, fixed(drift[i]->psi, 3), zone),
         fmt::format(R"( fill="{}")", zone_colour(zone)));
  }
  out += R"(</g><g fill="#333" stroke="#555">)";
  for (auto [at, words] : {std::pair{0.1, "0.1 watch"}, std::pair{0.25, "0.25 investigate"}}) {
    line(out, p.x(at), p.top - 6, p.x(at), p.bottom(), R"( stroke-dasharray="5 4")");
    text(out, p.x(at), p.top - 12, "middle", words);
  }
  out += "</g>";
  if (drift.empty()) no_data(out, p, "no feature drift computed for this period");
  return out + "</svg>";
}

std::string drift_table(const std::vector<const FeatureDrift*>& drift) {
  std::string out =
      "<table><thead><tr><th>feature</th><th>label</th><th>PSI</th><th>zone</th>"
      "<th>missing</th><th>missing in training</th></tr></thead><tbody>";
  for (auto* d : drift) {
    put(out, R"(<tr><td><code>{}</code></td><td>{}</td><td class="num">{}</td><td>{}</td>)",
        escape(d->name), escape(d->label), fixed(d->psi, 3), psi_zone(d->psi));
    put(out, R"(<td class="num">{}</td><td class="num">{}</td></tr>)", percent(d->missing_ratio),
        percent(d->reference_missing));
  }
  if (drift.empty()) out += R"(<tr><td colspan="6">no feature drift computed</td></tr>)";
  return out + "</tbody></table>";
}

// ---- Performance -------------------------------------------------------------------------

const Performance* overall(const Report& r) {
  for (const auto& g : r.performance)
    if (g.group == "all") return &g;
  return r.performance.empty() ? nullptr : &r.performance.front();
}

void calibration_notes(std::string& out, const Report& r, const Performance* all, double x) {
  const std::string lines[] = {
      fmt::format("n = {} scores, {} with the outcome", all ? all->n : 0, all ? all->events : 0),
      "calibration slope " + (all ? fixed(all->calibration_slope, 3) : std::string(kDash)),
      "calibration intercept " + (all ? fixed(all->calibration_intercept, 3) : std::string(kDash)),
      fmt::format("at validation: slope {}, intercept {}", fixed(r.validation_slope, 3),
                  fixed(r.validation_intercept, 3)),
      "points: deciles of predicted risk",
      "vertical lines: 95% interval",
      "dashed: calibrated"};
  out += R"(<g fill="#333">)";
  for (size_t i = 0; i < std::size(lines); ++i)
    text(out, x, 50 + 22 * static_cast<double>(i), "start", escape(lines[i]));
  out += "</g>";
}

std::string chart_calibration(const Report& r) {
  const Performance* all = overall(r);
  const std::vector<Decile> none;
  const auto& deciles = all ? all->deciles : none;
  double most = 0;
  for (const auto& d : deciles)
    most = std::max({most, finite_or(d.predicted, 0), finite_or(d.high, 0)});
  const double m = nice_max(most > 0 ? most : 1, 5);
  Plot p{80, 30, 400, 400, 0, m, 0, m};
  std::string out = svg::open("chart-calibration", kWidth, 490,
                              "Calibration: observed against predicted risk, by decile");
  svg::x_axis(out, p, {nice_step(m, 6), 100, "%"}, "mean predicted risk");
  svg::y_axis(out, p, {nice_step(m, 6), 100, "%"}, "observed share with the outcome");
  line(out, p.x(0), p.y(0), p.x(m), p.y(m), R"( stroke="#888" stroke-dasharray="6 4")");
  if (deciles.empty()) no_data(out, p, "no outcome known yet");
  out += R"(<g class="mark" stroke="#2f5f8a" fill="#2f5f8a">)";
  for (const auto& d : deciles) {
    const double x = p.x(finite_or(d.predicted, 0));
    line(out, x, p.y(finite_or(d.low, 0)), x, p.y(finite_or(d.high, 0)), R"( stroke-width="2")");
    dot(out, x, p.y(finite_or(d.observed, 0)), 4.5,
        fmt::format("predicted {}, observed {} ({} to {}), n = {}", percent(d.predicted),
                    percent(d.observed), percent(d.low), percent(d.high), d.n));
  }
  out += "</g>";
  calibration_notes(out, r, all, p.right() + 60);
  return out + "</svg>";
}

std::string chart_auc(const Report& r) {
  const auto& weeks = r.weeks;
  double lowest = r.validation_auc.value_or(1);
  bool any = false;
  for (const auto& w : weeks)
    if (w.auc && std::isfinite(*w.auc)) lowest = std::min(lowest, *w.auc), any = true;
  const Plot p = weeks_plot(weeks.size(), 220, std::min(0.5, std::floor(lowest * 10) / 10), 1);
  std::string out =
      svg::open("chart-auc", kWidth, 320, "AUC of each week's scores whose outcome is known");
  svg::y_axis(out, p, {0.1}, "AUC");
  week_axis(out, p, weeks);
  double x = p.left;
  legend(out, x, "#2f5f8a", "AUC of the week", "solid");
  if (r.validation_auc) {
    const double y = p.y(*r.validation_auc);
    out += R"(<g fill="#555" stroke="#555">)";
    line(out, p.left, y, p.right(), y, R"( stroke-dasharray="6 4" stroke-width="1.5")");
    text(out, p.right() - 4, y - 6, "end", "validation AUC " + fixed(*r.validation_auc, 3));
    out += "</g>";
    legend(out, x, "#555", "validation AUC (model card)", "dashed");
  }
  if (!any) no_data(out, p, weeks.empty() ? "no scores in this period" : "no outcome known yet");
  out += R"(<g class="mark" stroke="#2f5f8a" fill="#2f5f8a" stroke-width="2">)";
  // A week without a known outcome breaks the line: joining across it would invent a trend.
  for (size_t i = 0; i + 1 < weeks.size(); ++i)
    if (weeks[i].auc && weeks[i + 1].auc)
      line(out, p.slot(i), p.y(*weeks[i].auc), p.slot(i, 1.5), p.y(*weeks[i + 1].auc));
  for (size_t i = 0; i < weeks.size(); ++i)
    if (weeks[i].auc && std::isfinite(*weeks[i].auc))
      dot(out, p.slot(i), p.y(*weeks[i].auc), 4,
          fmt::format("{}: AUC {}", weeks[i].start, fixed(*weeks[i].auc, 3)));
  return out + "</g></svg>";
}

void performance_row(std::string& out, std::string_view group, std::string_view n,
                     std::string_view events, const Performance& g) {
  put(out, R"(<tr><td>{}</td><td class="num">{}</td><td class="num">{}</td>)", group, n, events);
  put(out, R"(<td class="num">{}</td><td class="num">{}</td><td class="num">{}</td>)",
      fixed(g.auc, 3), fixed(g.brier, 4), fixed(g.calibration_slope, 3));
  put(out, R"(<td class="num">{}</td></tr>)", fixed(g.calibration_intercept, 3));
}

std::string performance_table(const Report& r) {
  std::string out =
      "<table><thead><tr><th>group</th><th>n</th><th>events</th><th>AUC</th><th>Brier</th>"
      "<th>calibration slope</th><th>calibration intercept</th></tr></thead><tbody>";
  for (const auto& g : r.performance)
    performance_row(out, escape(g.group), std::to_string(g.n), std::to_string(g.events), g);
  if (r.performance.empty()) out += R"(<tr><td colspan="7">no outcome known yet</td></tr>)";
  Performance validation;
  validation.auc = r.validation_auc;
  validation.calibration_slope = r.validation_slope;
  validation.calibration_intercept = r.validation_intercept;
  performance_row(out, "<em>validation (model card)</em>", kDash, kDash, validation);
  return out + "</tbody></table>";
}

// ---- Page --------------------------------------------------------------------------------

std::string model_card(const Report& r) {
  std::string out = R"(<section id="s-model-card"><h2>Model card</h2><dl>)";
  auto row = [&](std::string_view term, const std::string& html) {
    put(out, "<dt>{}</dt><dd>{}</dd>", term, or_dash(html));
  };
  row("Model", escape(r.model_name));
  row("Version", escape(r.model_version));
  row("SHA-256 of the model file",
      r.model_sha256.empty() ? "" : "<code>" + escape(r.model_sha256) + "</code>");
  row("Intended use (and what it is not for)", escape(r.description));
  row("Outcome", escape(r.outcome) + (r.horizon.empty() ? "" : ": " + escape(r.horizon)));
  row("Training population", escape(r.training_population));
  row("Validation",
      fmt::format("AUC {}, calibration slope {}, intercept {}", fixed(r.validation_auc, 3),
                  fixed(r.validation_slope, 3), fixed(r.validation_intercept, 3)));
  row("In production this period",
      fmt::format("{} scores of {} patients over {} weeks", r.scores, r.patients, r.weeks.size()));
  out += "</dl><table><thead><tr><th>feature</th><th>label</th></tr></thead><tbody>";
  for (const auto& [name, label] : r.features)
    put(out, "<tr><td><code>{}</code></td><td>{}</td></tr>", escape(name), escape(label));
  if (r.features.empty()) out += R"(<tr><td colspan="2">no features listed</td></tr>)";
  return out + "</tbody></table></section>";
}

// One section: a heading, the chart or table, what it shows and what to do when it moves.
std::string section(std::string_view id, std::string_view heading, const std::string& body,
                    std::string_view explanation, const std::string& after = "") {
  return fmt::format(R"(<section id="s-{}"><h2>{}</h2>{}<p class="explain">{}</p>{}</section>)", id,
                     heading, body, explanation, after);
}

}  // namespace

std::string render_html(const Report& r) {
  const std::string title =
      escape(fmt::format("Model monitoring: {} {}", r.model_name, r.model_version));
  const auto codes = band_codes(r);
  const auto drift = by_psi(r);
  std::string out;
  put(out,
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/><title>{0}</title>"
      "<style>{1}</style></head><body><header><h1>{0}</h1><p class=\"meta\">Generated {2}. "
      "Period covered: since {3}.</p></header>",
      title, kStyle, or_dash(escape(r.generated)), or_dash(escape(r.since)));
  out += model_card(r);
  out += section(
      "chart-scores", "Score distribution", chart_scores(r),
      "Each bar is the share of patients whose latest score in the period falls in that range; "
      "the outlined steps are the same shares in the data the model was trained on. When the bars "
      "move away from the outline, the patients scored today differ from those the model learned "
      "from, and its predictions may be less reliable: the feature drift chart below shows which "
      "inputs changed. A shift is not an error by itself (a new ward, a season), but a lasting one "
      "should be reviewed with the model's owner.");
  out += section(
      "chart-bands", "Risk bands and alerts by week", chart_bands(r, codes),
      "Each bar is one week of scores (weeks start on Monday), split by risk band; the line, read "
      "on the right axis, is the share of the patients scored that week for whom an alert was "
      "raised. A sudden change in the mix of bands or in the alert rate without a known cause (a "
      "change in the wards covered, a new data feed) means the inputs or the population changed: "
      "check the drift chart and the data feeds before relying on the alerts.",
      weeks_table(r, codes));
  out += section(
      "chart-psi", "Feature drift against training", chart_psi(drift),
      "The population stability index (PSI) measures how far the distribution of each input in "
      "this period is from the one in training, missing values included; features are listed "
      "most changed first. Below 0.1 the input is stable; from 0.1 to 0.25 watch it; above 0.25 "
      "investigate: a changed unit, code or data feed is the usual cause, and the model's "
      "predictions may be wrong until it is fixed. The missing share is compared with training: a "
      "rise often means a feed stopped sending that value.",
      drift_table(drift));
  out += section(
      "chart-calibration", "Calibration", chart_calibration(r),
      "Scores whose outcome is now known are split into ten groups by predicted risk; each point "
      "compares the group's mean predicted risk (across) with the share that had the outcome (up), "
      "and its vertical line is the 95% interval of that share. On a calibrated model the points "
      "lie near the dashed diagonal. The calibration slope sums this up: 1 is calibrated; below 1 "
      "the model is overconfident (its high risks too high, its low risks too low); above 1 it is "
      "underconfident. Act when the slope is outside 0.8 to 1.25, or when several intervals miss "
      "the diagonal: the model may need recalibration.");
  out += section(
      "chart-auc", "Discrimination (AUC) by week", chart_auc(r),
      "The AUC measures discrimination: the chance that a patient who had the outcome was given a "
      "higher score than one who did not (0.5 is chance, 1 is perfect). Each point is one week's "
      "scores whose outcome is known; the dashed line is the AUC measured when the model was "
      "validated (model card). Outcomes are known only once their window has passed, so the "
      "latest weeks have no point yet. A lasting fall below the validation AUC (by 0.05 or more) "
      "means the model ranks patients less well than it was validated to, and should be reviewed "
      "with its owner.");
  out += section(
      "performance", "Performance by group", performance_table(r),
      "Each row is a group of scores whose outcome is known: n scores, of which events had the "
      "outcome. AUC as above; the Brier score is the mean squared error of the predicted risk "
      "(lower is better, comparable only between groups with similar outcome rates); calibration "
      "slope as above, and the intercept is 0 when predicted and observed rates agree overall. A "
      "group much worse than \"all\" may mean the model serves it less well, a fairness question "
      "to raise with the model's owner; small groups give uncertain figures. An em dash means the "
      "figure cannot be computed yet.");
  return out + "</body></html>\n";
}

}  // namespace fra::monitor
