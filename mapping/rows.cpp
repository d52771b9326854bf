#include "mapping/rows.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <string_view>
#include <utility>

#include "mapping/units.hpp"

namespace fra::mapping {

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t n;
    std::uint32_t cp;
    if ((c >> 5) == 0x6)
      n = 1, cp = c & 0x1Fu;
    else if ((c >> 4) == 0xE)
      n = 2, cp = c & 0x0Fu;
    else if ((c >> 3) == 0x1E)
      n = 3, cp = c & 0x07u;
    else
      return false;
    if (s.size() - i <= n) return false;
    for (std::size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 0x2) return false;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
        (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

namespace {

// The first text the store would keep that is not UTF-8, as an error naming its element.
std::optional<Error> bad_text(
    std::initializer_list<std::pair<std::string_view, const char*>> texts) {
  for (const auto& [text, pointer] : texts)
    if (!valid_utf8(text)) return make_error("invalid-utf8", "text is not valid UTF-8", pointer);
  return std::nullopt;
}

bool observation_counts(const std::string& status) {
  return status == "final" || status == "amended" || status == "corrected" ||
         status == "preliminary";
}

// The first coding some feature reads, as "system|code", with its rule.
const ObservationCatalog::value_type* coded(const std::vector<fhir::Coding>& codings,
                                            const ObservationCatalog& catalog) {
  for (const auto& c : codings) {
    auto it = catalog.find(c.system + "|" + c.code);
    if (it != catalog.end()) return &*it;
  }
  return nullptr;
}

// Converts one quantity to the unit the store keeps for its code; absent value → nullopt
// without error.
Result<std::optional<Measurement>> measure(const ObservationCatalog::value_type& code,
                                           const std::optional<fhir::Quantity>& q,
                                           const std::string& pointer) {
  if (!q || !q->value) return std::optional<Measurement>();
  const auto& [name, rule] = code;
  std::string unit = q->code.empty() ? q->unit : q->code;
  if (!q->system.empty() && q->system != kUcumSystem && !q->code.empty())
    return make_error("unknown-unit", fmt::format("unit of {} is not UCUM", name),
                      pointer + "/system");
  if (rule.unit.empty()) {  // only counted: any value, as it came
    if (!valid_utf8(unit))
      return make_error("invalid-utf8", "text is not valid UTF-8", pointer + "/code");
    return std::optional<Measurement>(Measurement{name, *q->value, unit, ""});
  }
  auto v = convert_unit(*q->value, unit, rule.unit);
  if (!v)
    return make_error("unknown-unit",
                      fmt::format("unit of {} cannot be converted to {}", name, rule.unit),
                      pointer + "/code");
  if (!std::isfinite(*v) || *v < rule.min_plausible || *v > rule.max_plausible)
    return make_error("implausible-value",
                      fmt::format("value of {} is outside {}..{} {}", name, rule.min_plausible,
                                  rule.max_plausible, rule.unit),
                      pointer + "/value");
  return std::optional<Measurement>(Measurement{name, *v, rule.unit, ""});
}

// The coded value a feature reads: the first coding some feature's `equals` names, else the
// first coding; absent value → nullopt without error.
Result<std::optional<Measurement>> coded_value(const ObservationCatalog::value_type& code,
                                               const std::vector<fhir::Coding>& codes,
                                               bool other_value, const std::string& pointer) {
  const auto& [name, rule] = code;
  if (codes.empty()) {
    if (!other_value) return std::optional<Measurement>();
    return make_error("bad-value", fmt::format("value of {} is not a CodeableConcept", name),
                      pointer);
  }
  const fhir::Coding* pick = &codes.front();
  for (const auto& c : codes)
    if (std::find(rule.answers.begin(), rule.answers.end(), c.system + "|" + c.code) !=
        rule.answers.end()) {
      pick = &c;
      break;
    }
  std::string value = pick->system + "|" + pick->code;
  if (!valid_utf8(value))
    return make_error("invalid-utf8", "text is not valid UTF-8", pointer + "/coding");
  return std::optional<Measurement>(Measurement{name, 0, "", std::move(value)});
}

// One value of an observation or component, as its code's rule wants it.
Result<std::optional<Measurement>> value_of(const ObservationCatalog::value_type& code,
                                            const std::optional<fhir::Quantity>& q,
                                            const std::vector<fhir::Coding>& codes, bool is_concept,
                                            const std::optional<Error>& problem,
                                            const std::string& quantity_pointer,
                                            const std::string& base) {
  if (code.second.coded)
    // A CodeableConcept with only text is no coded value; any other type of value is unusable.
    return coded_value(code, codes, !is_concept && (q.has_value() || problem.has_value()),
                       base + "/valueCodeableConcept");
  if (problem) return *problem;
  return measure(code, q, quantity_pointer);
}

}  // namespace

Result<PatientRecord> map_patient(const fhir::Patient& p, const Pseudonymizer& ps) {
  if (auto e =
          bad_text({{p.meta.version_id, "/meta/versionId"}, {p.gender.value_or(""), "/gender"}}))
    return *e;
  PatientRecord r;
  r.version = {ps.of("Patient", p.id), p.meta.version_id, p.meta.last_updated,
               ps.seal("Patient/" + p.id.value)};
  r.birth_year = p.birth_year;
  // An empty gender says nothing: unknown, as an absent one, for every path that maps a Patient
  // (a feature reading sex then sees it missing, not "another sex").
  if (p.gender && !p.gender->empty()) r.sex = p.gender;
  r.sealed_reference = ps.seal("Patient/" + p.id.value);
  return r;
}

Result<ObservationRecord> map_observation(const fhir::Observation& o, const Pseudonymizer& ps,
                                          const ObservationCatalog& catalog) {
  if (auto e = bad_text({{o.meta.version_id, "/meta/versionId"}})) return *e;
  // What no feature reads is not an error: no value of it is looked at.
  bool read = coded(o.code, catalog) != nullptr;
  for (const auto& c : o.components) read = read || coded(c.code, catalog) != nullptr;
  if (!read) {
    ObservationRecord ignored;
    ignored.read = false;
    if (o.subject) {  // stored without values, so that it retracts an earlier version's
      ignored.version = {ps.of("Observation", o.id), o.meta.version_id, o.meta.last_updated,
                         ps.seal("Observation/" + o.id.value)};
      ignored.patient = ps.of("Patient", *o.subject);
      ignored.status = o.status;
    }
    return ignored;
  }
  if (!o.subject)
    return make_error("missing-subject", "Observation.subject is not a Patient reference",
                      "/subject");
  ObservationRecord r;
  r.version = {ps.of("Observation", o.id), o.meta.version_id, o.meta.last_updated,
               ps.seal("Observation/" + o.id.value)};
  r.patient = ps.of("Patient", *o.subject);
  r.status = o.status;
  if (!observation_counts(o.status)) return r;

  if (const auto* code = coded(o.code, catalog)) {
    auto m = value_of(*code, o.value, o.value_codes, o.value_concept, o.value_problem,
                      "/valueQuantity", "");
    if (!m) return m.error();
    if (*m) r.values.push_back(**m);
  }
  for (const auto& c : o.components) {
    const auto* ccode = coded(c.code, catalog);
    if (ccode == nullptr) continue;
    // One value per code and observation: a repeated component keeps its first value.
    bool seen = false;
    for (const auto& v : r.values) seen = seen || v.code == ccode->first;
    if (seen) continue;
    const std::string base = c.value_pointer.substr(0, c.value_pointer.rfind('/'));
    auto m = value_of(*ccode, c.value, c.value_codes, c.value_concept, c.value_problem,
                      c.value_pointer, base);
    if (!m) return m.error();
    if (*m) r.values.push_back(**m);
  }
  if (!r.values.empty()) {
    if (!o.effective)
      return make_error("missing-effective", "Observation has no effective time",
                        "/effectiveDateTime");
    r.effective = *o.effective;
  }
  return r;
}

Result<EncounterRecord> map_encounter(const fhir::Encounter& e, const Pseudonymizer& ps) {
  if (auto bad = bad_text({{e.meta.version_id, "/meta/versionId"},
                           {e.status, "/status"},
                           {e.class_coding ? e.class_coding->code : std::string(), "/class/code"}}))
    return *bad;
  if (!e.subject)
    return make_error("missing-subject", "Encounter.subject is not a Patient reference",
                      "/subject");
  EncounterRecord r;
  r.version = {ps.of("Encounter", e.id), e.meta.version_id, e.meta.last_updated,
               ps.seal("Encounter/" + e.id.value)};
  r.patient = ps.of("Patient", *e.subject);
  r.status = e.status;
  r.counts = e.status != "cancelled" && e.status != "entered-in-error";
  if (e.class_coding) r.class_code = e.class_coding->code;
  r.start = e.period_start;
  r.end = e.period_end;
  r.emergent =
      (e.priority && e.priority->code == "EM") || (e.admit_source && e.admit_source->code == "emd");
  return r;
}

Result<ConditionRecord> map_condition(const fhir::Condition& c, const Pseudonymizer& ps) {
  if (auto bad = bad_text({{c.meta.version_id, "/meta/versionId"}})) return *bad;
  if (!c.subject)
    return make_error("missing-subject", "Condition.subject is not a Patient reference",
                      "/subject");
  ConditionRecord r;
  r.version = {ps.of("Condition", c.id), c.meta.version_id, c.meta.last_updated,
               ps.seal("Condition/" + c.id.value)};
  r.patient = ps.of("Patient", *c.subject);
  for (const auto& coding : c.code) {
    std::string code = coding.system + "|" + coding.code;
    if (!valid_utf8(code))
      return make_error("invalid-utf8", "text is not valid UTF-8", "/code/coding");
    if (std::find(r.codes.begin(), r.codes.end(), code) == r.codes.end())
      r.codes.push_back(std::move(code));
  }
  const auto& v = c.verification_status;
  const auto& s = c.clinical_status;
  const bool known = s.empty() || s == "active" || s == "recurrence" || s == "relapse" ||
                     s == "inactive" || s == "remission" || s == "resolved";
  r.counts = v != "refuted" && v != "entered-in-error" && known;
  // clinicalStatus is required unless entered-in-error; one that is absent is taken as active
  // until its abatement, if it has one.
  r.active = s == "active" || s == "recurrence" || s == "relapse" || (s.empty() && !c.abatement);
  r.onset = c.onset ? c.onset : c.recorded;
  r.abatement = c.abatement;
  return r;
}

}  // namespace fra::mapping
