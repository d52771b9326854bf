#include "adapter/cds/service.hpp"

#include <fmt/format.h>
#include <openssl/rand.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>

#include "adapter/source/map_page.hpp"
#include "adapter/source/patient_sync.hpp"
#include "adapter/sync/pipeline.hpp"
#include "adapter/writeback/wording.hpp"
#include "fhir/client.hpp"
#include "fhir/json.hpp"
#include "fhir/risk_assessment.hpp"

namespace fra::cds {
namespace {

using fhir::json::member;
using fhir::json::string_member;
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

// A number as its exact double (a float's value whole, as the stored score carries it); null
// when not finite.
void exact_number(Writer& w, double v) {
  if (!std::isfinite(v)) {
    w.Null();
    return;
  }
  const std::string t = fmt::format("{:.17g}", v);
  w.RawValue(t.c_str(), t.size(), rapidjson::kNumberType);
}

Reply error(int status, const std::string& why) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("error");
  w.String(why.c_str());
  w.EndObject();
  return {status, buf.GetString(), ""};
}

std::string uuid_v4() {
  unsigned char b[16];
  RAND_bytes(b, sizeof b);
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  return fmt::format(
      "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}"
      "{:02x}{:02x}{:02x}{:02x}",
      b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
      b[15]);
}

// The resources of a prefetch entry: a resource, the entries of a Bundle, none for null. An
// OperationOutcome is the EHR's error.
Result<std::vector<const rapidjson::Value*>> resources_of(const rapidjson::Value& v) {
  std::vector<const rapidjson::Value*> out;
  if (v.IsNull()) return out;
  const auto type = string_member(v, "resourceType").value_or("");
  if (type == "OperationOutcome")
    return make_error("prefetch-error", "the EHR's prefetch holds an OperationOutcome");
  if (type != "Bundle") {
    out.push_back(&v);
    return out;
  }
  if (const auto* entries = member(v, "entry"); entries != nullptr && entries->IsArray())
    for (const auto& e : entries->GetArray())
      if (const auto* r = member(e, "resource")) out.push_back(r);
  return out;
}

// What the sync's store would hand the feature code for this patient.
mapping::PatientInputs inputs_of(const store::Page& page, const mapping::Pseudonym& patient) {
  mapping::PatientInputs in;
  for (const auto& p : page.patients)
    if (p.version.key == patient) {
      in.birth_year = p.birth_year;
      in.sex = p.sex;
    }
  for (const auto& o : page.observations)
    if (o.patient == patient)
      for (const auto& v : o.values)
        in.measurements.push_back({v.code, v.value, o.effective, v.value_code});
  for (const auto& e : page.encounters)
    if (e.patient == patient && e.counts)
      in.stays.push_back({e.class_code, e.start, e.end, e.emergent});
  for (const auto& c : page.conditions)
    if (c.patient == patient && c.counts)
      for (const auto& code : c.codes)
        in.conditions.push_back({c.version.key.hex, code, c.active, c.onset, c.abatement});
  return in;
}

}  // namespace

Service::Service(const score::ModelPackage& model, const mapping::FeatureComputer& features,
                 const mapping::ObservationCatalog& catalog, const mapping::Pseudonymizer& ps,
                 Trust& trust, ServiceOptions options, std::function<void(const CardScore&)> record,
                 std::function<void(const std::string&)> record_feedback)
    : model_(model),
      features_(features),
      catalog_(catalog),
      ps_(ps),
      trust_(trust),
      options_(std::move(options)),
      record_(std::move(record)),
      record_feedback_(std::move(record_feedback)) {
  std::string codes;
  for (const auto& c : source::observation_search_codes(catalog))
    codes += (codes.empty() ? "" : ",") + c;
  // A prefetch is one Bundle: a page large enough for a patient's record. Read without a
  // prefetch, the Patient is searched by _id, so that its id rides in the query, not the path.
  prefetch_ = {
      {"patient", "Patient", "Patient/{{context.patientId}}", "Patient?_id={{context.patientId}}"},
      {"observations", "Observation",
       "Observation?patient={{context.patientId}}&code=" + codes + "&_count=1000", ""},
      {"encounters", "Encounter", "Encounter?patient={{context.patientId}}&_count=1000", ""}};
  // Conditions only when a feature reads them: every status, as the sync stores them.
  if (catalog.conditions)
    prefetch_.push_back(
        {"conditions", "Condition", "Condition?patient={{context.patientId}}&_count=1000", ""});
}

const std::string& Service::id() const { return model_.manifest.name; }

std::optional<Reply> Service::refused(const std::string& service_id,
                                      const std::string& authorization, const std::string& path,
                                      fhir::Micros now) {
  if (service_id != id()) return error(404, "no such service");
  auto trusted = trust_.check(authorization, options_.base_url + path, now);
  if (auto* refusal = std::get_if<Refusal>(&trusted)) {
    Reply r = error(401, "unauthorized");
    r.refusal = refusal->reason;
    return r;
  }
  return std::nullopt;
}

Reply Service::discovery() const {
  const auto& m = model_.manifest;
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("services");
  w.StartArray();
  w.StartObject();
  w.Key("hook");
  w.String("patient-view");
  w.Key("id");
  w.String(m.name.c_str());
  w.Key("title");
  const std::string title = fmt::format("{} risk ({} {})", m.outcome_display, m.name, m.version);
  w.String(title.c_str());
  w.Key("description");
  const std::string description =
      m.description.empty()
          ? fmt::format("The patient's {} risk, and the main factors.", m.outcome_display)
          : m.description;
  w.String(description.c_str());
  w.Key("prefetch");
  w.StartObject();
  for (const auto& p : prefetch_) {
    w.Key(p.key.c_str());
    w.String(p.templ.c_str());
  }
  w.EndObject();
  w.EndObject();
  w.EndArray();
  w.EndObject();
  return {200, buf.GetString(), ""};
}

Reply Service::call(const std::string& service_id, const std::string& authorization,
                    const std::string& body, fhir::Micros now) {
  if (auto no = refused(service_id, authorization, "/cds-services/" + service_id, now)) return *no;
  rapidjson::Document req;
  req.Parse(body.data(), body.size());
  if (req.HasParseError() || !req.IsObject()) return error(400, "the request is not JSON");
  if (string_member(req, "hook") != "patient-view")
    return error(400, "this service answers the patient-view hook");
  const auto* context = member(req, "context");
  const auto patient_id = context ? string_member(*context, "patientId") : std::nullopt;
  if (!patient_id || patient_id->empty()) return error(400, "context.patientId is missing");

  store::Page page;
  if (auto no = gather(req, *patient_id, page)) return *no;
  const auto patient = ps_.of("Patient", fhir::FhirId{*patient_id});
  const auto scored =
      sync::score_all(features_, model_, {inputs_of(page, patient)}, now, options_.top_factors);
  const std::string card = uuid_v4();
  record_({card, patient.hex, now, scored.at(0)});
  return {200, card_json(scored.at(0), card, now), ""};
}

std::optional<Reply> Service::gather(const rapidjson::Document& req, const std::string& patient_id,
                                     store::Page& page) {
  const auto* prefetch = member(req, "prefetch");
  std::unique_ptr<fhir::Client> client;  // the EHR's FHIR server, opened for a missing key
  for (const auto& p : prefetch_) {
    if (const auto* given = prefetch ? member(*prefetch, p.key.c_str()) : nullptr) {
      auto resources = resources_of(*given);
      if (!resources) return error(412, resources.error().message);
      for (const auto* r : resources.value()) source::map_resource(p.type, *r, ps_, catalog_, page);
      continue;
    }
    const auto server = string_member(req, "fhirServer");
    if (!server) return error(412, fmt::format("no prefetch '{}' and no fhirServer", p.key));
    if (!client) {
      fhir::ClientOptions o;
      o.base_url = *server;
      o.timeout_seconds = options_.fetch_timeout_seconds;
      o.max_attempts = 2;
      if (const auto* auth = member(req, "fhirAuthorization"))
        o.bearer_token = string_member(*auth, "access_token").value_or("");
      client = std::make_unique<fhir::Client>(o);
    }
    std::string url = p.fetch.empty() ? p.templ : p.fetch;
    url.replace(url.find("{{context.patientId}}"), 21, fhir::url_encode(patient_id));
    while (!url.empty()) {
      fhir::Response resp;
      try {
        resp = client->get(url);
      } catch (const fhir::FhirError& e) {  // refused, or not answering: the EHR's to mend
        return error(412, fmt::format("the EHR's FHIR server could not be read for '{}' (HTTP {})",
                                      p.key, e.status()));
      }
      if (resp.status != 200)
        return error(412,
                     fmt::format("the EHR's FHIR server answered {} for '{}'", resp.status, p.key));
      auto sp = fhir::parse_search_page(resp.body);
      if (!sp)
        return error(412, fmt::format("the EHR's FHIR server sent no Bundle for '{}'", p.key));
      for (const auto* r : sp->resources) source::map_resource(p.type, *r, ps_, catalog_, page);
      url = sp->next.value_or("");
    }
  }
  return std::nullopt;
}

std::string Service::card_json(const store::Scored& s, const std::string& card,
                               fhir::Micros now) const {
  const auto& m = model_.manifest;
  store::PendingWrite pw;  // what the RiskAssessment sink words: the same sentence
  pw.probability = s.probability;
  pw.as_of = now;
  pw.contributions_json = s.contributions_json;
  const auto words = writeback::score_in_words(pw, m, features_.definitions(), "", "");
  const score::Band& band = m.band_for(s.probability);
  const auto indicator = options_.indicators.count(band.code) ? options_.indicators.at(band.code)
                                                              : std::string("info");
  std::string summary =
      fmt::format("{} risk {} ({})", m.outcome_display, fhir::score_text(words), band.display);
  if (summary.size() > 139) {  // under 140 characters, cut between UTF-8 sequences
    std::size_t n = 139;
    while (n > 0 && (static_cast<unsigned char>(summary[n]) & 0xC0) == 0x80) --n;
    summary.resize(n);
  }
  const std::string detail =
      fhir::score_note(words) +
      fmt::format(
          "\n\n*{} {} (sha256 {}), as of {}. A statistical estimate to support, not "
          "replace, clinical judgement.*",
          m.name, m.version, m.model_sha256.substr(0, 12), fhir::format_instant(now));
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("cards");
  w.StartArray();
  w.StartObject();
  w.Key("uuid");
  w.String(card.c_str());
  w.Key("summary");
  w.String(summary.c_str());
  w.Key("indicator");
  w.String(indicator.c_str());
  w.Key("detail");
  w.String(detail.c_str());
  w.Key("source");
  w.StartObject();
  w.Key("label");
  const std::string label = m.name + " " + m.version;
  w.String(label.c_str());
  w.EndObject();
  w.Key("extension");
  w.StartObject();
  w.Key(m.points ? "urn:fhir-risk-adapter:points" : "urn:fhir-risk-adapter:probability");
  exact_number(w, s.probability);
  w.Key("urn:fhir-risk-adapter:band");
  w.String(band.code.c_str());
  w.Key("urn:fhir-risk-adapter:model-sha256");
  w.String(m.model_sha256.c_str());
  w.Key("urn:fhir-risk-adapter:as-of");
  w.String(fhir::format_instant(now).c_str());
  w.EndObject();
  w.EndObject();
  w.EndArray();
  w.EndObject();
  return buf.GetString();
}

Reply Service::score(const std::string& service_id, const std::string& authorization,
                     const std::string& body, fhir::Micros now) {
  if (auto no = refused(service_id, authorization, "/score/" + service_id, now)) return *no;
  rapidjson::Document req;
  req.Parse(body.data(), body.size());
  if (req.HasParseError() || !req.IsObject())
    return error(400, "expected a JSON object of feature values by name");
  const auto& m = model_.manifest;
  const auto names = m.feature_names();
  std::vector<float> row(names.size(), std::nanf(""));
  for (const auto& kv : req.GetObject()) {
    const std::string name(kv.name.GetString(), kv.name.GetStringLength());
    const auto at = std::find(names.begin(), names.end(), name);
    if (at == names.end()) return error(400, "the model has no feature '" + name + "'");
    if (kv.value.IsNull()) continue;
    if (!kv.value.IsNumber()) return error(400, "feature '" + name + "' is not a number");
    row[static_cast<std::size_t>(at - names.begin())] = static_cast<float>(kv.value.GetDouble());
  }
  const auto& model = model_.model;
  float margin = 0;
  model.margins(row.data(), &margin);
  const float probability = model.predict(row.data());
  std::vector<float> contributions(names.size() + 1);
  model.contributions(row.data(), contributions.data());
  rapidjson::StringBuffer buf;
  Writer w(buf);
  auto number = [&](double v) { exact_number(w, v); };
  w.StartObject();
  w.Key("model");
  w.String(m.name.c_str());
  w.Key("version");
  w.String(m.version.c_str());
  w.Key("model_sha256");
  w.String(m.model_sha256.c_str());
  w.Key(m.points ? "points" : "probability");
  number(probability);
  w.Key("band");
  w.String(m.band_for(probability).code.c_str());
  w.Key("margin");
  number(margin);
  w.Key("bias");
  number(contributions.back());
  w.Key("contributions");
  w.StartObject();
  for (std::size_t i = 0; i < names.size(); ++i) {
    w.Key(names[i].c_str());
    number(contributions[i]);
  }
  w.EndObject();
  w.EndObject();
  return {200, buf.GetString(), ""};
}

Reply Service::feedback(const std::string& service_id, const std::string& authorization,
                        const std::string& body, fhir::Micros now) {
  if (auto no =
          refused(service_id, authorization, "/cds-services/" + service_id + "/feedback", now))
    return *no;
  rapidjson::Document req;
  req.Parse(body.data(), body.size());
  const auto* list = req.HasParseError() ? nullptr : member(req, "feedback");
  if (list == nullptr || !list->IsArray()) return error(400, "expected {\"feedback\": [...]}");
  for (const auto& f : list->GetArray()) {
    const auto card = string_member(f, "card");
    const auto outcome = string_member(f, "outcome");
    if (!card || (outcome != "accepted" && outcome != "overridden"))
      return error(400, "each feedback needs card and outcome accepted or overridden");
    // What is recorded: the card, the outcome, the reason's code; nothing a clinician typed.
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    w.Key("card");
    w.String(card->c_str());
    w.Key("outcome");
    w.String(outcome->c_str());
    if (const auto* reason = member(f, "overrideReason")) {
      const auto* coding = member(*reason, "reason");
      w.Key("override_reason");
      if (coding != nullptr) {
        w.StartObject();
        w.Key("system");
        w.String(string_member(*coding, "system").value_or("").c_str());
        w.Key("code");
        w.String(string_member(*coding, "code").value_or("").c_str());
        w.EndObject();
      } else {
        w.Null();
      }
    }
    if (const auto* taken = member(f, "acceptedSuggestions");
        taken != nullptr && taken->IsArray()) {
      w.Key("accepted_suggestions");
      w.Int(static_cast<int>(taken->Size()));
    }
    if (auto at = string_member(f, "outcomeTimestamp")) {
      w.Key("outcome_timestamp");
      w.String(at->c_str());
    }
    w.EndObject();
    record_feedback_(buf.GetString());
  }
  return {200, "{}", ""};
}

}  // namespace fra::cds
