#include "fhir/resources.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "fhir/json.hpp"

namespace fra::fhir {
namespace {

using json::member;
using json::string_member;

Result<Meta> read_meta(const rapidjson::Value& json) {
  Meta meta;
  const auto* m = member(json, "meta");
  if (m == nullptr) return meta;
  meta.version_id = string_member(*m, "versionId").value_or("");
  if (auto lu = string_member(*m, "lastUpdated")) {
    auto t = parse_datetime(*lu);
    if (!t)
      return make_error("bad-date", "meta.lastUpdated is not a FHIR instant", "/meta/lastUpdated");
    meta.last_updated = *t;
  }
  return meta;
}

Result<FhirId> read_id(const rapidjson::Value& json) {
  auto id = string_member(json, "id");
  if (!id || id->empty()) return make_error("missing-id", "resource has no id", "/id");
  return FhirId{*id};
}

std::vector<Coding> read_codings(const rapidjson::Value& cc) {
  std::vector<Coding> out;
  const auto* codings = member(cc, "coding");
  if (codings == nullptr || !codings->IsArray()) return out;
  for (const auto& c : codings->GetArray()) {
    auto code = string_member(c, "code");
    if (!code) continue;
    out.push_back({string_member(c, "system").value_or(""), *code});
  }
  return out;
}

// A reference "Patient/<id>" (relative, or absolute ending so) names the patient.
std::optional<FhirId> patient_reference(const rapidjson::Value& json) {
  const auto* subject = member(json, "subject");
  if (subject == nullptr) return std::nullopt;
  auto ref = string_member(*subject, "reference");
  if (!ref) return std::nullopt;
  auto pos = ref->rfind("Patient/");
  if (pos == std::string::npos || (pos != 0 && (*ref)[pos - 1] != '/')) return std::nullopt;
  std::string id = ref->substr(pos + 8);
  if (auto hist = id.find("/_history"); hist != std::string::npos) id.resize(hist);
  if (id.empty() || id.find('/') != std::string::npos) return std::nullopt;
  return FhirId{id};
}

// value[x]: absent is fine (dataAbsentReason), a Quantity is read, any other type is refused
// (a CodeableConcept's codings are read into `codes` first, for the features that read codes).
Result<std::optional<Quantity>> read_value(const rapidjson::Value& json, const std::string& base,
                                           std::vector<Coding>& codes, bool& is_concept) {
  if (const auto* cc = member(json, "valueCodeableConcept"); cc != nullptr && cc->IsObject()) {
    codes = read_codings(*cc);
    is_concept = true;
  }
  if (const auto* q = member(json, "valueQuantity")) {
    if (!q->IsObject())
      return make_error("bad-value", "valueQuantity is not an object", base + "/valueQuantity");
    Quantity out;
    if (const auto* v = member(*q, "value")) {
      if (!v->IsNumber())
        return make_error("bad-value", "valueQuantity.value is not a number",
                          base + "/valueQuantity/value");
      out.value = v->GetDouble();
    }
    out.system = string_member(*q, "system").value_or("");
    out.code = string_member(*q, "code").value_or("");
    out.unit = string_member(*q, "unit").value_or("");
    return std::optional<Quantity>(out);
  }
  if (!json.IsObject()) return std::optional<Quantity>();
  for (auto it = json.MemberBegin(); it != json.MemberEnd(); ++it) {
    std::string_view name(it->name.GetString(), it->name.GetStringLength());
    if (!name.starts_with("value") || name.size() <= 5) continue;
    // The name goes into a dead letter, which PostgreSQL refuses unless it is UTF-8 without NUL:
    // a FHIR element name is ASCII letters and digits, anything else is not echoed.
    const bool element = std::all_of(name.begin(), name.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    });
    const std::string shown = element ? std::string(name) : "value[x]";
    return make_error("bad-value", fmt::format("{} is not a Quantity", shown), base + "/" + shown);
  }
  return std::optional<Quantity>();
}

}  // namespace

std::string resource_type_of(const rapidjson::Value& json) {
  return string_member(json, "resourceType").value_or("");
}

std::string resource_id_of(const rapidjson::Value& json) {
  return string_member(json, "id").value_or("");
}

Result<Patient> read_patient(const rapidjson::Value& json) {
  auto id = read_id(json);
  if (!id) return id.error();
  auto meta = read_meta(json);
  if (!meta) return meta.error();
  Patient p{std::move(id).value(), *meta, string_member(json, "gender"), std::nullopt};
  if (auto bd = string_member(json, "birthDate")) {
    auto t = parse_datetime(*bd);
    if (!t || bd->size() > 10)
      return make_error("bad-date", "birthDate is not a FHIR date", "/birthDate");
    p.birth_year = year_of(*t);
  }
  return p;
}

Result<Observation> read_observation(const rapidjson::Value& json) {
  auto id = read_id(json);
  if (!id) return id.error();
  auto meta = read_meta(json);
  if (!meta) return meta.error();
  Observation o;
  o.id = std::move(id).value();
  o.meta = *meta;
  o.status = string_member(json, "status").value_or("");
  if (const auto* code = member(json, "code")) o.code = read_codings(*code);
  o.subject = patient_reference(json);
  if (auto eff = string_member(json, "effectiveDateTime")) {
    o.effective = parse_datetime(*eff);
    if (!o.effective)
      return make_error("bad-date", "effectiveDateTime is not a FHIR dateTime",
                        "/effectiveDateTime");
  } else if (const auto* period = member(json, "effectivePeriod")) {
    if (auto start = string_member(*period, "start")) {
      o.effective = parse_datetime(*start);
      if (!o.effective)
        return make_error("bad-date", "effectivePeriod.start is not a FHIR dateTime",
                          "/effectivePeriod/start");
    }
  } else if (auto instant = string_member(json, "effectiveInstant")) {
    o.effective = parse_datetime(*instant);
    if (!o.effective)
      return make_error("bad-date", "effectiveInstant is not a FHIR instant", "/effectiveInstant");
  }
  // A value that is not a Quantity is kept as a problem, not a failure: whether it matters
  // depends on whether a feature reads the code.
  if (auto value = read_value(json, "", o.value_codes, o.value_concept))
    o.value = *value;
  else
    o.value_problem = value.error();
  if (const auto* comps = member(json, "component"); comps != nullptr && comps->IsArray()) {
    for (rapidjson::SizeType i = 0; i < comps->Size(); ++i) {
      const auto& c = (*comps)[i];
      std::string base = fmt::format("/component/{}", i);
      ObservationComponent oc;
      if (const auto* code = member(c, "code")) oc.code = read_codings(*code);
      if (auto cv = read_value(c, base, oc.value_codes, oc.value_concept))
        oc.value = *cv;
      else
        oc.value_problem = cv.error();
      oc.value_pointer = base + "/valueQuantity";
      o.components.push_back(std::move(oc));
    }
  }
  return o;
}

Result<Encounter> read_encounter(const rapidjson::Value& json) {
  auto id = read_id(json);
  if (!id) return id.error();
  auto meta = read_meta(json);
  if (!meta) return meta.error();
  Encounter e;
  e.id = std::move(id).value();
  e.meta = *meta;
  e.status = string_member(json, "status").value_or("");
  if (const auto* cls = member(json, "class"); cls != nullptr && cls->IsObject()) {
    if (auto code = string_member(*cls, "code"))
      e.class_coding = Coding{string_member(*cls, "system").value_or(""), *code};
  }
  e.subject = patient_reference(json);
  if (const auto* pr = member(json, "priority"); pr != nullptr && pr->IsObject())
    if (auto codes = read_codings(*pr); !codes.empty()) e.priority = codes.front();
  if (const auto* h = member(json, "hospitalization"); h != nullptr && h->IsObject())
    if (const auto* src = member(*h, "admitSource"); src != nullptr && src->IsObject())
      if (auto codes = read_codings(*src); !codes.empty()) e.admit_source = codes.front();
  if (const auto* period = member(json, "period")) {
    if (auto start = string_member(*period, "start")) {
      e.period_start = parse_datetime(*start);
      if (!e.period_start)
        return make_error("bad-date", "period.start is not a FHIR dateTime", "/period/start");
    }
    if (auto end = string_member(*period, "end")) {
      e.period_end = parse_datetime(*end);
      if (!e.period_end)
        return make_error("bad-date", "period.end is not a FHIR dateTime", "/period/end");
    }
  }
  return e;
}

Result<Condition> read_condition(const rapidjson::Value& json) {
  auto id = read_id(json);
  if (!id) return id.error();
  auto meta = read_meta(json);
  if (!meta) return meta.error();
  Condition c;
  c.id = std::move(id).value();
  c.meta = *meta;
  if (const auto* code = member(json, "code"); code != nullptr && code->IsObject())
    c.code = read_codings(*code);
  c.subject = patient_reference(json);
  auto status = [&](const char* name) {
    const auto* s = member(json, name);
    if (s == nullptr || !s->IsObject()) return std::string();
    auto codes = read_codings(*s);
    return codes.empty() ? std::string() : codes.front().code;
  };
  c.clinical_status = status("clinicalStatus");
  c.verification_status = status("verificationStatus");
  // A time of [x] given as a dateTime, or the `period_part` of a Period; nullopt when absent.
  auto when = [&](const std::string& element, const char* period_part,
                  std::optional<Micros>& out) -> std::optional<Error> {
    const std::string date_time = element + "DateTime", period = element + "Period";
    if (auto text = string_member(json, date_time.c_str())) {
      out = parse_datetime(*text);
      if (!out)
        return make_error("bad-date", element + "DateTime is not a FHIR dateTime",
                          "/" + element + "DateTime");
    } else if (const auto* p = member(json, period.c_str()); p != nullptr && p->IsObject()) {
      if (auto part = string_member(*p, period_part)) {
        out = parse_datetime(*part);
        if (!out)
          return make_error("bad-date",
                            fmt::format("{}Period.{} is not a FHIR dateTime", element, period_part),
                            fmt::format("/{}Period/{}", element, period_part));
      }
    }
    return std::nullopt;
  };
  if (auto e = when("onset", "start", c.onset)) return *e;
  if (auto e = when("abatement", "end", c.abatement)) return *e;
  if (auto t = string_member(json, "recordedDate")) {
    c.recorded = parse_datetime(*t);
    if (!c.recorded)
      return make_error("bad-date", "recordedDate is not a FHIR dateTime", "/recordedDate");
  }
  return c;
}

}  // namespace fra::fhir
