#include "mapping/features.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <set>

#include "mapping/units.hpp"

namespace fra::mapping {
namespace {

constexpr double kMicrosPerSecond = 1e6;
constexpr float kMissing = std::numeric_limits<float>::quiet_NaN();
using Def = FeatureDefinition;

bool in_window(const Def& d, fhir::Micros t, fhir::Micros as_of) {
  return t <= as_of && (d.window == 0 || t > as_of - d.window);
}

bool has_class(const Def& d, const std::string& c) {
  return std::find(d.classes.begin(), d.classes.end(), c) != d.classes.end();
}

// Seconds in one `unit` of a duration feature, or 0 when the unit is not a duration.
double seconds_per(std::string_view unit) {
  if (unit == "d") return 86400;
  if (unit == "h") return 3600;
  if (unit == "min") return 60;
  if (unit == "s") return 1;
  if (unit == "wk") return 7 * 86400;
  return 0;
}

struct Point {
  fhir::Micros t;
  double v;
};

float aggregate(Def::Aggregation a, std::vector<Point>& pts) {
  using A = Def::Aggregation;
  if (a == A::count) return static_cast<float>(pts.size());
  if (pts.empty()) return kMissing;
  // One order, whatever order the store returned them in: by time, then by value.
  std::sort(pts.begin(), pts.end(),
            [](const Point& x, const Point& y) { return x.t != y.t ? x.t < y.t : x.v < y.v; });
  switch (a) {
    case A::last:
      return static_cast<float>(pts.back().v);
    case A::delta:
      return static_cast<float>(pts.back().v - pts.front().v);
    case A::min: {
      double m = pts.front().v;
      for (const auto& p : pts) m = std::min(m, p.v);
      return static_cast<float>(m);
    }
    case A::max: {
      double m = pts.front().v;
      for (const auto& p : pts) m = std::max(m, p.v);
      return static_cast<float>(m);
    }
    case A::mean: {
      double s = 0;
      for (const auto& p : pts) s += p.v;
      return static_cast<float>(s / static_cast<double>(pts.size()));
    }
    case A::slope: {
      // Least squares of value against days since the first value.
      const double n = static_cast<double>(pts.size());
      double mt = 0, mv = 0;
      for (const auto& p : pts) {
        mt += static_cast<double>(p.t - pts.front().t) / (86400 * kMicrosPerSecond);
        mv += p.v;
      }
      mt /= n;
      mv /= n;
      double sxy = 0, sxx = 0;
      for (const auto& p : pts) {
        double dt = static_cast<double>(p.t - pts.front().t) / (86400 * kMicrosPerSecond) - mt;
        sxy += dt * (p.v - mv);
        sxx += dt * dt;
      }
      return sxx > 0 ? static_cast<float>(sxy / sxx) : kMissing;
    }
    case A::count:
    case A::last_code:
      break;
  }
  return kMissing;
}

constexpr fhir::Micros kDay = 86400LL * 1000000;

// The last stay of the feature's classes that ended at or before as-of, inside the window (the
// longer one at equal ends): the index stay of the encounter measures; nullptr when none.
const Stay* index_stay(const Def& d, const PatientInputs& in, fhir::Micros as_of) {
  const Stay* last = nullptr;
  for (const auto& s : in.stays) {
    if (!has_class(d, s.class_code) || !s.start || !s.end || !in_window(d, *s.end, as_of) ||
        *s.start > *s.end)
      continue;
    if (last == nullptr || *s.end > *last->end || (*s.end == *last->end && *s.start < *last->start))
      last = &s;
  }
  return last;
}

// An emergency visit (class EMER) that led to a stay: it began before the stay did and had not
// ended, or had ended less than a day before, when the stay began.
bool led_to(const Stay& visit, const Stay& stay) {
  if (visit.class_code != "EMER" || !visit.start || !stay.start || &visit == &stay) return false;
  return *visit.start < *stay.start && (!visit.end || *visit.end > *stay.start - kDay);
}

// Whether a Condition coding holds at as-of: begun by then, and active, or ended only after.
bool holds(const ConditionCoding& c, fhir::Micros as_of) {
  if (!c.onset || *c.onset > as_of) return false;
  return c.active || (c.abatement && *c.abatement > as_of);
}

bool any_matches(const std::vector<std::string>& patterns, const std::string& code) {
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const std::string& p) { return code_matches(p, code); });
}

float condition_measure(const Def& d, const PatientInputs& in, fhir::Micros as_of) {
  if (d.measure == Def::Measure::charlson) {
    std::set<std::string> present;
    for (const auto& c : in.conditions)
      if (holds(c, as_of))
        for (const auto& cat : d.categories)
          if (any_matches(cat.codes, c.code)) present.insert(cat.name);
    int sum = 0;
    for (const auto& cat : d.categories)
      if (present.contains(cat.name) &&
          (cat.superseded_by.empty() || !present.contains(cat.superseded_by)))
        sum += cat.weight;
    return static_cast<float>(sum);
  }
  std::set<std::string> found;  // Conditions, not codings: one may carry ICD-10 and SNOMED
  for (const auto& c : in.conditions)
    if (holds(c, as_of) && any_matches(d.codes, c.code)) found.insert(c.resource);
  if (d.measure == Def::Measure::count) return static_cast<float>(found.size());
  return found.empty() ? 0.0f : 1.0f;
}

float encounter_measure(const Def& d, const PatientInputs& in, fhir::Micros as_of) {
  using M = Def::Measure;
  if (d.measure == M::admissions) {
    int n = 0;
    for (const auto& s : in.stays)
      if (has_class(d, s.class_code) && s.start && in_window(d, *s.start, as_of)) ++n;
    return static_cast<float>(n);
  }
  const Stay* stay = index_stay(d, in, as_of);
  if (d.measure == M::emergency_visits) {
    // Before the index stay began (before as-of without one), not counting the visit that led
    // to it.
    const fhir::Micros until = stay != nullptr ? *stay->start : as_of;
    int n = 0;
    for (const auto& s : in.stays)
      if (s.class_code == "EMER" && s.start && *s.start < until &&
          (d.window == 0 || *s.start > until - d.window) && !(stay != nullptr && led_to(s, *stay)))
        ++n;
    return static_cast<float>(n);
  }
  if (stay == nullptr) return kMissing;
  if (d.measure == M::acuity) {
    if (stay->emergent) return 1.0f;
    for (const auto& s : in.stays)
      if (led_to(s, *stay)) return 1.0f;
    return 0.0f;
  }
  const double per = seconds_per(d.unit) * kMicrosPerSecond;
  return static_cast<float>(d.measure == M::length_of_stay
                                ? static_cast<double>(*stay->end - *stay->start) / per
                                : static_cast<double>(as_of - *stay->end) / per);
}

// The latest coded value of the feature's codes in its window: 1 when one of its answers, 0 for
// another code; missing when there is none (at equal times, the larger code, for one order).
float last_code(const Def& d, const PatientInputs& in, fhir::Micros as_of) {
  const TimedValue* last = nullptr;
  for (const auto& m : in.measurements) {
    if (m.coded.empty() || !in_window(d, m.effective, as_of) ||
        std::find(d.codes.begin(), d.codes.end(), m.code) == d.codes.end())
      continue;
    if (last == nullptr || m.effective > last->effective ||
        (m.effective == last->effective && m.coded > last->coded))
      last = &m;
  }
  if (last == nullptr) return kMissing;
  return std::find(d.answers.begin(), d.answers.end(), last->coded) != d.answers.end() ? 1.0f
                                                                                       : 0.0f;
}

bool valid_name(const std::string& n) {
  if (n.empty() || !(n[0] >= 'a' && n[0] <= 'z')) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

bool well_formed_code(const std::string& c) {
  auto bar = c.find('|');
  return bar != std::string::npos && bar != 0 && bar + 1 != c.size();
}

std::string without_dots(std::string_view s) {
  std::string out;
  for (char c : s)
    if (c != '.') out += c;
  return out;
}

}  // namespace

bool code_matches(std::string_view pattern, std::string_view code) {
  if (pattern.empty() || pattern.back() != '*') return pattern == code;
  const auto bar = pattern.find('|');
  if (bar == std::string_view::npos || code.substr(0, bar + 1) != pattern.substr(0, bar + 1))
    return false;
  return without_dots(code.substr(bar + 1))
      .starts_with(without_dots(pattern.substr(bar + 1, pattern.size() - bar - 2)));
}

Result<fhir::Micros> parse_window(std::string_view text) {
  auto bad = [&](std::string why) {
    return make_error("bad-window", fmt::format("window \"{}\": {}", text, why));
  };
  if (text.size() < 3 || text[0] != 'P')
    return bad("expected an ISO 8601 duration such as P365D or PT48H");
  bool time = false, any = false;
  double seconds = 0;
  std::size_t i = 1;
  while (i < text.size()) {
    if (text[i] == 'T') {
      if (time) return bad("two T designators");
      time = true;
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < text.size() && ((text[j] >= '0' && text[j] <= '9') || text[j] == '.')) ++j;
    if (j == i || j == text.size()) return bad("expected a number followed by W, D, H, M or S");
    double n = 0;
    auto [p, ec] = std::from_chars(text.data() + i, text.data() + j, n);
    if (ec != std::errc() || p != text.data() + j) return bad("not a number");
    const char unit = text[j];
    double per = 0;
    if (!time && unit == 'W')
      per = 7 * 86400;
    else if (!time && unit == 'D')
      per = 86400;
    else if (time && unit == 'H')
      per = 3600;
    else if (time && unit == 'M')
      per = 60;
    else if (time && unit == 'S')
      per = 1;
    else if (!time && (unit == 'Y' || unit == 'M'))
      return bad("years and months vary in length; give days instead (P365D, P30D)");
    else
      return bad(fmt::format("unexpected '{}'", unit));
    seconds += n * per;
    any = true;
    i = j + 1;
  }
  if (!any || seconds <= 0) return bad("must be longer than zero");
  return static_cast<fhir::Micros>(std::llround(seconds * kMicrosPerSecond));
}

std::optional<Error> check_definitions(const std::vector<FeatureDefinition>& defs) {
  std::set<std::string> names;
  for (const auto& d : defs) {
    auto err = [&](std::string what) {
      return make_error("bad-feature", fmt::format("feature '{}': {}", d.name, what));
    };
    if (!valid_name(d.name)) return err("the name must match [a-z][a-z0-9_]*");
    if (!names.insert(d.name).second) return err("defined twice");
    switch (d.source) {
      case Def::Source::observation:
        if (d.codes.empty())
          return err("an observation feature needs codes = [\"system|code\", ...]");
        for (const auto& c : d.codes)
          if (!well_formed_code(c)) return err(fmt::format("code \"{}\" is not system|code", c));
        if (d.aggregation == Def::Aggregation::last_code) {
          if (d.unit != "1") return err("last_code has unit \"1\"");
          if (d.answers.empty())
            return err("last_code needs equals = [\"system|code\", ...]: the values that give 1");
          for (const auto& c : d.answers)
            if (!well_formed_code(c))
              return err(fmt::format("equals: \"{}\" is not system|code", c));
          break;
        }
        if (!d.answers.empty()) return err("equals is for aggregation = \"last_code\"");
        if (d.aggregation == Def::Aggregation::count ? d.unit != "1" : !known_unit(d.unit))
          return err(
              d.aggregation == Def::Aggregation::count
                  ? "a count has unit \"1\""
                  : fmt::format("unit \"{}\" is not a UCUM unit the adapter converts", d.unit));
        if (d.plausible_min && d.plausible_max && *d.plausible_min > *d.plausible_max)
          return err("plausible = [min, max] with min above max");
        break;
      case Def::Source::encounter: {
        using M = Def::Measure;
        if (d.classes.empty()) return err("an encounter feature needs classes = [\"IMP\", ...]");
        const bool duration =
            d.measure == M::length_of_stay || d.measure == M::days_since_discharge;
        if (d.measure == M::present || d.measure == M::count || d.measure == M::charlson)
          return err("measure: present, count and charlson are for a source of \"condition\"");
        if (duration ? seconds_per(d.unit) == 0 : d.unit != "1")
          return err(duration ? "a duration has unit \"d\", \"h\", \"min\", \"s\" or \"wk\""
                              : "a count or a yes/no has unit \"1\"");
        break;
      }
      case Def::Source::condition:
        if (d.unit != "1") return err("a condition feature has unit \"1\"");
        if (d.measure == Def::Measure::charlson) {
          if (d.categories.empty())
            return err("charlson needs a value set with [[category]] tables (value_set = ...)");
          for (const auto& cat : d.categories) {
            if (cat.codes.empty()) return err(fmt::format("category '{}' has no codes", cat.name));
            for (const auto& c : cat.codes)
              if (!well_formed_code(c))
                return err(
                    fmt::format("category '{}': code \"{}\" is not system|code", cat.name, c));
            if (!cat.superseded_by.empty() &&
                std::none_of(d.categories.begin(), d.categories.end(),
                             [&](const CodeCategory& o) { return o.name == cat.superseded_by; }))
              return err(fmt::format("category '{}': superseded_by names no category '{}'",
                                     cat.name, cat.superseded_by));
          }
        } else if (d.measure == Def::Measure::present || d.measure == Def::Measure::count) {
          if (d.codes.empty())
            return err("a condition feature needs codes = [\"system|code\", ...] or a value_set");
          for (const auto& c : d.codes)
            if (!well_formed_code(c)) return err(fmt::format("code \"{}\" is not system|code", c));
        } else {
          return err("a condition feature's measure is present, count or charlson");
        }
        break;
      case Def::Source::patient:
        if (d.attribute == Def::Attribute::age && d.unit != "a") return err("age has unit \"a\"");
        if (d.attribute == Def::Attribute::sex) {
          if (d.unit != "1") return err("sex has unit \"1\"");
          if (d.equals.empty())
            return err("sex needs equals = \"female\" (or another administrative gender)");
        }
        break;
    }
  }
  return std::nullopt;
}

Result<ObservationCatalog> catalog_of(const std::vector<FeatureDefinition>& defs) {
  ObservationCatalog out;
  for (const auto& d : defs) out.conditions = out.conditions || d.source == Def::Source::condition;
  // Codes read as coded values first: such a code keeps no number.
  for (const auto& d : defs) {
    if (d.source != Def::Source::observation || d.aggregation != Def::Aggregation::last_code)
      continue;
    for (const auto& code : d.codes) {
      auto& rule = out[code];
      rule.coded = true;
      for (const auto& a : d.answers)
        if (std::find(rule.answers.begin(), rule.answers.end(), a) == rule.answers.end())
          rule.answers.push_back(a);
    }
  }
  for (const auto& d : defs) {
    if (d.source != Def::Source::observation || d.aggregation == Def::Aggregation::last_code)
      continue;
    for (const auto& code : d.codes) {
      if (auto it = out.find(code); it != out.end() && it->second.coded)
        return make_error("bad-feature",
                          fmt::format("feature '{}': code {} is read as coded values by another "
                                      "feature, and cannot also be read as numbers",
                                      d.name, code));
      // A count reads the code's values in whatever unit another feature keeps them.
      const bool counts = d.aggregation == Def::Aggregation::count;
      auto it = out.find(code);
      if (it == out.end()) {
        if (counts) continue;
        CodeRule rule;
        rule.unit = d.unit;
        if (d.plausible_min) rule.min_plausible = *d.plausible_min;
        if (d.plausible_max) rule.max_plausible = *d.plausible_max;
        out.emplace(code, rule);
      } else if (!counts && !convert_unit(1.0, it->second.unit, d.unit)) {
        return make_error(
            "bad-feature",
            fmt::format("feature '{}': code {} is kept in \"{}\" for another feature, "
                        "which does not convert to \"{}\"",
                        d.name, code, it->second.unit, d.unit));
      }
    }
  }
  // Codes only counted still need to be kept: in no particular unit, any value.
  for (const auto& d : defs)
    if (d.source == Def::Source::observation && d.aggregation == Def::Aggregation::count)
      for (const auto& code : d.codes) out.try_emplace(code, CodeRule{});
  return out;
}

Result<std::vector<FeatureDefinition>> bind_features(
    const std::vector<FeatureDefinition>& defined,
    const std::vector<std::pair<std::string, std::string>>& wanted) {
  std::vector<FeatureDefinition> out;
  for (const auto& [name, unit] : wanted) {
    auto it = std::find_if(defined.begin(), defined.end(),
                           [&wanted = name](const Def& d) { return d.name == wanted; });
    if (it == defined.end())
      return make_error("unknown-feature",
                        fmt::format("the model needs feature '{}', which has no definition", name));
    Def d = *it;
    if (d.unit != unit) {
      const bool convertible =
          (d.source == Def::Source::observation && d.aggregation != Def::Aggregation::count &&
           d.aggregation != Def::Aggregation::last_code && convert_unit(1.0, d.unit, unit)) ||
          (d.source == Def::Source::encounter && seconds_per(d.unit) > 0 && seconds_per(unit) > 0);
      if (!convertible)
        return make_error(
            "feature-unit",
            fmt::format("the model wants feature '{}' in \"{}\", its definition gives \"{}\"", name,
                        unit, d.unit));
      d.unit = unit;
    }
    out.push_back(std::move(d));
  }
  return out;
}

FeatureComputer::FeatureComputer(std::vector<FeatureDefinition> defs,
                                 const ObservationCatalog& catalog)
    : defs_(std::move(defs)) {
  for (const auto& d : defs_) {
    std::vector<std::pair<std::string, Affine>> codes;
    if (d.source == Def::Source::observation) {
      for (const auto& c : d.codes) {
        Affine a;
        auto it = catalog.find(c);
        if (d.aggregation != Def::Aggregation::count &&
            d.aggregation != Def::Aggregation::last_code && it != catalog.end() &&
            it->second.unit != d.unit) {
          a.offset = convert_unit(0.0, it->second.unit, d.unit).value_or(0.0);
          a.scale = convert_unit(1.0, it->second.unit, d.unit).value_or(1.0) - a.offset;
        }
        codes.emplace_back(c, a);
      }
    }
    codes_.push_back(std::move(codes));
  }
}

std::vector<float> FeatureComputer::compute(const PatientInputs& in, fhir::Micros as_of) const {
  std::vector<float> out(defs_.size());
  compute(in, as_of, out.data());
  return out;
}

void FeatureComputer::compute(const PatientInputs& in, fhir::Micros as_of, float* out) const {
  std::vector<Point> pts;
  for (std::size_t f = 0; f < defs_.size(); ++f) {
    const Def& d = defs_[f];
    float v = kMissing;
    switch (d.source) {
      case Def::Source::observation: {
        if (d.aggregation == Def::Aggregation::last_code) {
          v = last_code(d, in, as_of);
          break;
        }
        pts.clear();
        for (const auto& m : in.measurements) {
          if (!m.coded.empty() || !in_window(d, m.effective, as_of)) continue;
          for (const auto& [code, conv] : codes_[f])
            if (m.code == code) {
              pts.push_back({m.effective, m.value * conv.scale + conv.offset});
              break;
            }
        }
        v = aggregate(d.aggregation, pts);
        break;
      }
      case Def::Source::encounter:
        v = encounter_measure(d, in, as_of);
        break;
      case Def::Source::condition:
        v = condition_measure(d, in, as_of);
        break;
      case Def::Source::patient:
        if (d.attribute == Def::Attribute::age) {
          if (in.birth_year) v = static_cast<float>(fhir::year_of(as_of) - *in.birth_year);
        } else if (in.sex && *in.sex != "unknown") {
          v = *in.sex == d.equals ? 1.0f : 0.0f;
        }
        break;
    }
    out[f] = v;
  }
}

}  // namespace fra::mapping
