#include "adapter/monitor/monitor.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "adapter/monitor/stats.hpp"
#include "fhir/json.hpp"

namespace fra::monitor {
namespace {

constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();
constexpr std::size_t kMinGroup = 10;  // discharges a subgroup needs to be shown

void model_card(Report& r, const score::Manifest& m) {
  r.model_name = m.name;
  r.model_version = m.version;
  r.model_sha256 = m.model_sha256;
  r.description = m.description;
  r.outcome = m.outcome_display;
  if (m.reference)
    r.training_population =
        fmt::format("{} training rows (the manifest's reference)", m.reference->rows);
  for (const auto& f : m.features) r.features.emplace_back(f.name, f.description);
  if (m.validation) {
    r.validation_auc = m.validation->auc;
    r.validation_slope = m.validation->calibration_slope;
    r.validation_intercept = m.validation->calibration_intercept;
  }
}

void weeks(Report& r, store::Store& store, const score::Manifest& m, fhir::Micros since) {
  std::map<std::string, Week> by_week;
  for (const auto& wb : store.monitoring.weeks(m.name, since)) {
    auto& w = by_week[wb.week];
    w.start = wb.week;
    w.scores += wb.scores;
    w.alerts = wb.alerts;
    w.alert_rate =
        wb.patients > 0 ? static_cast<double>(wb.alerts) / static_cast<double>(wb.patients) : 0;
    w.bands.emplace_back(wb.band, wb.scores);
  }
  for (auto& [_, w] : by_week) {
    // Bands in the manifest's order, every one present.
    std::vector<std::pair<std::string, long>> ordered;
    for (const auto& b : m.bands) {
      long n = 0;
      for (const auto& [code, count] : w.bands)
        if (code == b.code) n = count;
      ordered.emplace_back(b.code, n);
    }
    w.bands = std::move(ordered);
    r.weeks.push_back(w);
  }
}

void drift(Report& r, store::Store& store, const score::ModelPackage& model, fhir::Micros since) {
  const auto& m = model.manifest;
  const auto latest = store.monitoring.latest_scores(m.name, since);
  r.patients = static_cast<long>(latest.size());
  std::vector<std::vector<double>> values(m.features.size());
  std::vector<double> probabilities;
  for (const auto& s : latest) {
    probabilities.push_back(s.probability);
    rapidjson::Document d;
    d.Parse(s.features_json.c_str());
    for (std::size_t f = 0; f < m.features.size(); ++f) {
      const auto it = d.IsObject() ? d.FindMember(m.features[f].name.c_str()) : d.MemberEnd();
      values[f].push_back(d.IsObject() && it != d.MemberEnd() && it->value.IsNumber()
                              ? it->value.GetDouble()
                              : kMissing);
    }
  }
  if (m.reference) {
    r.score_edges = m.reference->score.edges;
    r.reference_score_shares = m.reference->score.shares;
  } else {
    for (int i = 1; i < 10; ++i) r.score_edges.push_back(i / 10.0);
  }
  auto counts = shares(probabilities, r.score_edges);
  counts.pop_back();  // a score is never missing
  for (double c : counts)
    r.score_counts.push_back(std::lround(c * static_cast<double>(probabilities.size())));
  if (!m.reference) return;
  for (std::size_t f = 0; f < m.features.size(); ++f) {
    auto ref = m.reference->features.find(m.features[f].name);
    if (ref == m.reference->features.end()) continue;
    FeatureDrift d;
    d.name = m.features[f].name;
    d.label = m.features[f].description;
    d.edges = ref->second.edges;
    d.reference_shares = ref->second.shares;
    d.reference_shares.push_back(ref->second.missing);
    d.reference_missing = ref->second.missing;
    d.current_shares = shares(values[f], d.edges);
    d.missing_ratio = values[f].empty() ? 0 : d.current_shares.back();
    d.psi = values[f].empty() ? 0 : psi(d.reference_shares, d.current_shares);
    r.drift.push_back(std::move(d));
  }
}

// The prediction as of each closed index event since `since`, its outcome, and the patient's
// sex and age band then.
struct Outcomes {
  std::map<std::string, std::pair<std::vector<double>, std::vector<int>>> groups;
  std::map<std::string, std::pair<std::vector<double>, std::vector<int>>> weeks;
};

std::string age_band(int age) {
  if (age < 50) return "age<50";
  if (age < 65) return "age=50-64";
  if (age < 80) return "age=65-79";
  return "age=80+";
}

Outcomes outcomes(store::Store& store, const score::ModelPackage& model,
                  const mapping::FeatureComputer& features, const Options& o) {
  Outcomes out;
  sync::TrainingReport rep;
  sync::for_each_index_event(
      store, features, o.outcome,
      [&](const std::string&, const mapping::PatientInputs& in, fhir::Micros t,
          const std::vector<float>& row, bool readmitted) {
        if (t < o.since) return;
        const double p = model.model.predict(row.data());
        const int y = readmitted ? 1 : 0;
        auto add = [&](auto& map, const std::string& key) {
          map[key].first.push_back(p);
          map[key].second.push_back(y);
        };
        add(out.groups, "all");
        if (in.sex && *in.sex != "unknown") add(out.groups, "sex=" + *in.sex);
        if (in.birth_year) add(out.groups, age_band(fhir::year_of(t) - *in.birth_year));
        // The week of the discharge, as the weeks of scores: Monday 00:00 UTC.
        const fhir::Micros day = 86400LL * 1000000, monday = 4 * day;  // 1970-01-05 was a Monday
        const fhir::Micros start = t - (((t - monday) % (7 * day)) + 7 * day) % (7 * day);
        add(out.weeks, fhir::format_instant(start).substr(0, 10));
      },
      rep);
  return out;
}

void performance(Report& r, const Outcomes& o) {
  auto perf = [](const std::string& group, const std::vector<double>& p,
                 const std::vector<int>& y) {
    Performance x;
    x.group = group;
    x.n = static_cast<long>(p.size());
    for (int v : y) x.events += v;
    x.auc = auc(p, y);
    x.brier = brier(p, y);
    if (auto c = calibration(p, y))
      x.calibration_slope = c->first, x.calibration_intercept = c->second;
    return x;
  };
  if (auto all = o.groups.find("all"); all != o.groups.end()) {
    auto x = perf("all", all->second.first, all->second.second);
    x.deciles = deciles(all->second.first, all->second.second);
    r.performance.push_back(std::move(x));
  }
  // A subgroup of a few discharges says little and comes close to naming patients: left out.
  for (const auto& [group, py] : o.groups)
    if (group != "all" && py.first.size() >= kMinGroup)
      r.performance.push_back(perf(group, py.first, py.second));
  for (auto& w : r.weeks)
    if (auto it = o.weeks.find(w.start); it != o.weeks.end())
      w.auc = auc(it->second.first, it->second.second);
  // Weeks with discharges and no scores still show their AUC.
  for (const auto& [week, py] : o.weeks)
    if (std::none_of(r.weeks.begin(), r.weeks.end(),
                     [&](const Week& w) { return w.start == week; })) {
      Week w;
      w.start = week;
      w.auc = auc(py.first, py.second);
      r.weeks.push_back(w);
    }
  std::sort(r.weeks.begin(), r.weeks.end(),
            [](const Week& a, const Week& b) { return a.start < b.start; });
}

}  // namespace

Report compute(store::Store& store, const score::ModelPackage& model,
               const mapping::FeatureComputer& features, const Options& options) {
  Report r;
  r.generated = fhir::format_instant(options.now);
  r.since = fhir::format_instant(options.since).substr(0, 10);
  r.horizon = fmt::format("another stay of class {} within {} days of a discharge",
                          fmt::join(options.outcome.index_classes, ", "),
                          options.outcome.horizon / (86400LL * 1000000));
  model_card(r, model.manifest);
  weeks(r, store, model.manifest, options.since);
  for (const auto& w : r.weeks) r.scores += w.scores;
  drift(r, store, model, options.since);
  performance(r, outcomes(store, model, features, options));
  return r;
}

}  // namespace fra::monitor

namespace fra::monitor {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void text(Writer& w, const char* key, const std::string& v) { fhir::json::key_string(w, key, v); }

void number(Writer& w, const char* key, const std::optional<double>& v) {
  w.Key(key);
  if (v && std::isfinite(*v))
    w.Double(*v);
  else
    w.Null();
}

void numbers(Writer& w, const char* key, const std::vector<double>& v) {
  w.Key(key);
  w.StartArray();
  for (double x : v) w.Double(x);
  w.EndArray();
}

}  // namespace

std::string to_json(const Report& r) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  text(w, "generated", r.generated);
  text(w, "since", r.since);
  w.Key("model");
  w.StartObject();
  text(w, "name", r.model_name);
  text(w, "version", r.model_version);
  text(w, "sha256", r.model_sha256);
  text(w, "description", r.description);
  text(w, "outcome", r.outcome);
  text(w, "training_population", r.training_population);
  number(w, "validation_auc", r.validation_auc);
  number(w, "validation_calibration_slope", r.validation_slope);
  number(w, "validation_calibration_intercept", r.validation_intercept);
  w.Key("features");
  w.StartArray();
  for (const auto& [name, label] : r.features) {
    w.StartObject();
    text(w, "name", name);
    text(w, "label", label);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  text(w, "outcome_definition", r.horizon);
  w.Key("scores");
  w.Int64(r.scores);
  w.Key("patients");
  w.Int64(r.patients);
  numbers(w, "score_edges", r.score_edges);
  w.Key("score_counts");
  w.StartArray();
  for (long c : r.score_counts) w.Int64(c);
  w.EndArray();
  numbers(w, "reference_score_shares", r.reference_score_shares);
  w.Key("weeks");
  w.StartArray();
  for (const auto& wk : r.weeks) {
    w.StartObject();
    text(w, "start", wk.start);
    w.Key("bands");
    w.StartObject();
    for (const auto& [band, n] : wk.bands) {
      w.Key(band.c_str());
      w.Int64(n);
    }
    w.EndObject();
    w.Key("scores");
    w.Int64(wk.scores);
    w.Key("alerts");
    w.Int64(wk.alerts);
    number(w, "alert_rate", wk.alert_rate);
    number(w, "auc", wk.auc);
    w.EndObject();
  }
  w.EndArray();
  w.Key("drift");
  w.StartArray();
  for (const auto& d : r.drift) {
    w.StartObject();
    text(w, "feature", d.name);
    number(w, "psi", d.psi);
    number(w, "missing_ratio", d.missing_ratio);
    number(w, "reference_missing", d.reference_missing);
    numbers(w, "edges", d.edges);
    numbers(w, "reference_shares", d.reference_shares);
    numbers(w, "current_shares", d.current_shares);
    w.EndObject();
  }
  w.EndArray();
  w.Key("performance");
  w.StartArray();
  for (const auto& p : r.performance) {
    w.StartObject();
    text(w, "group", p.group);
    w.Key("n");
    w.Int64(p.n);
    w.Key("events");
    w.Int64(p.events);
    number(w, "auc", p.auc);
    number(w, "brier", p.brier);
    number(w, "calibration_slope", p.calibration_slope);
    number(w, "calibration_intercept", p.calibration_intercept);
    w.Key("deciles");
    w.StartArray();
    for (const auto& d : p.deciles) {
      w.StartObject();
      number(w, "predicted", d.predicted);
      number(w, "observed", d.observed);
      w.Key("n");
      w.Int64(d.n);
      number(w, "low", d.low);
      number(w, "high", d.high);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace fra::monitor
