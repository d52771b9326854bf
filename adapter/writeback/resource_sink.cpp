#include "adapter/writeback/resource_sink.hpp"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <spdlog/spdlog.h>

#include <cmath>

#include "adapter/writeback/wording.hpp"
#include "fhir/bundle.hpp"
#include "fhir/json.hpp"
#include "fhir/risk_assessment.hpp"

namespace fra::writeback {
namespace {

using fhir::json::member;
using fhir::json::string_member;

bool refusal_status(long status) { return status == 403 || status == 405 || status == 501; }

// The id of a resource body ("" when none).
std::string body_id(const std::string& body) {
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  if (doc.HasParseError()) return "";
  return string_member(doc, "id").value_or("");
}

// The score a written resource carries: an Observation's valueQuantity (percent, or points) or
// a RiskAssessment's first prediction (its probability, or its points extension); -1 when none.
double probability_in(const rapidjson::Value& r) {
  if (const auto* q = member(r, "valueQuantity"))
    if (const auto* v = member(*q, "value"); v != nullptr && v->IsNumber())
      return string_member(*q, "code").value_or("") == fhir::kPointsUnit ? v->GetDouble()
                                                                         : v->GetDouble() / 100;
  if (const auto* p = member(r, "prediction"); p != nullptr && p->IsArray() && !p->Empty()) {
    if (const auto* v = member((*p)[0], "probabilityDecimal"); v != nullptr && v->IsNumber())
      return v->GetDouble();
    if (const auto* ext = member((*p)[0], "extension"); ext != nullptr && ext->IsArray())
      for (const auto& e : ext->GetArray())
        if (string_member(e, "url").value_or("") == fhir::kScorePointsExtension)
          if (const auto* v = member(e, "valueDecimal"); v != nullptr && v->IsNumber())
            return v->GetDouble();
  }
  return -1;
}

}  // namespace

std::string created_id(const fhir::Response& resp) {
  // Location: <base>/<type>/<id>/_history/<vid>, or <type>/<id>
  std::string loc = resp.location;
  if (auto h = loc.find("/_history/"); h != std::string::npos) loc.resize(h);
  if (auto slash = loc.rfind('/'); slash != std::string::npos && slash + 1 < loc.size())
    return loc.substr(slash + 1);
  return body_id(resp.body);
}

std::string response_version(const fhir::Response& resp) {
  std::string e = resp.etag;
  if (e.starts_with("W/")) e.erase(0, 2);
  if (e.size() >= 2 && e.front() == '"' && e.back() == '"') e = e.substr(1, e.size() - 2);
  if (!e.empty()) return e;
  rapidjson::Document doc;
  doc.Parse(resp.body.data(), resp.body.size());
  if (doc.HasParseError()) return "";
  const auto* meta = member(doc, "meta");
  return meta ? string_member(*meta, "versionId").value_or("") : "";
}

bool refuses_target(const fhir::Response& resp) { return refusal_status(resp.status); }

struct ResourceSink::Held {
  std::string id;
  std::string version;
  double value = -1;  // the probability it carries (0..1), -1 when unknown
  bool searched = false;
};

ResourceSink::ResourceSink(fhir::Client& client, store::WritebackState& state,
                           const mapping::Pseudonymizer& ps, const score::ModelPackage& model,
                           const std::vector<mapping::FeatureDefinition>& definitions,
                           ResourceSinkOptions options)
    : client_(client),
      state_(state),
      ps_(ps),
      model_(model),
      definitions_(definitions),
      options_(std::move(options)) {}

std::string ResourceSink::body(const store::PendingWrite& pw, const std::string& patient_ref,
                               const std::string& id) const {
  const auto in = score_in_words(pw, model_.manifest, definitions_, options_.identifier_system,
                                 patient_ref, id);
  return options_.resource_type == "Observation"
             ? fhir::build_score_observation(in, options_.observation_code)
             : fhir::build_risk_assessment(in);
}

// The resource a write before this one may have left: the patient's resources of the type (and
// code), the one carrying this identifier. Epic and Oracle search by patient, not identifier.
ResourceSink::Held ResourceSink::find_existing(const std::string& patient_id,
                                               const std::string& identifier) {
  std::string url = options_.resource_type + "?patient=" + fhir::url_encode(patient_id);
  if (options_.resource_type == "Observation")
    url += "&code=" + fhir::url_encode(options_.observation_code.system + "|" +
                                       options_.observation_code.code);
  Held found;
  found.searched = true;
  while (!url.empty()) {
    auto resp = client_.get(url);
    if (resp.status != 200) return found;
    auto page = fhir::parse_search_page(resp.body);
    if (!page) return found;
    for (const auto* r : page.value().resources) {
      const auto* ids = member(*r, "identifier");
      if (ids == nullptr || !ids->IsArray()) continue;
      for (const auto& i : ids->GetArray())
        if (string_member(i, "system") == options_.identifier_system &&
            string_member(i, "value") == identifier) {
          found.id = string_member(*r, "id").value_or("");
          if (const auto* meta = member(*r, "meta"))
            found.version = string_member(*meta, "versionId").value_or("");
          found.value = probability_in(*r);
          // A later one (a new reading of the row) wins: pages come in any order, keep the last.
        }
    }
    url = page.value().next.value_or("");
  }
  return found;
}

bool ResourceSink::write(store::PendingWrite& pw, WriteReport& rep) {
  const std::string& type = options_.resource_type;
  auto ref = ps_.open(pw.sealed_ref);
  if (!ref || !ref.value().starts_with("Patient/")) {
    spdlog::error("patient {}: its sealed reference does not open under this key",
                  pw.patient_key.substr(0, 12));
    ++rep.failed;
    return true;
  }
  auto record = [&](const std::string& id, const std::string& version) {
    pw.target_type = type;
    pw.target_ref = ps_.seal(type + "/" + id);
    pw.target_version = version;
  };
  auto fail = [&](const std::string& why) {
    spdlog::error("{} for patient {}: {}", type, pw.patient_key.substr(0, 12), why);
    ++rep.failed;
    return true;
  };
  try {
    // The resource recorded for the patient, else the one a run before may have created and not
    // recorded (it stopped in between): found by the patient and the identifier.
    Held held;
    if (pw.target_type == type)
      if (auto t = ps_.open(pw.target_ref); t && t.value().starts_with(type + "/"))
        held = {t.value().substr(type.size() + 1), pw.target_version};
    if (held.id.empty()) held = find_existing(ref.value().substr(8), pw.identifier);
    // Found on a server that cannot update: the same score is taken as written; another one is
    // a new reading (below).
    if (held.searched && !held.id.empty() && !options_.update_in_place &&
        std::abs(held.value - pw.probability) < 1e-9) {
      record(held.id, held.version);
      ++rep.updated;
      return true;
    }
    if (!held.id.empty() && options_.update_in_place) {
      const std::string path = type + "/" + fhir::url_encode(held.id);
      const std::string text = body(pw, ref.value(), held.id);
      for (int attempt = 0;; ++attempt) {
        std::vector<std::string> headers;
        if (!held.version.empty())
          headers.push_back(fmt::format("If-Match: W/\"{}\"", held.version));
        auto resp = client_.send_with("PUT", path, text, headers);
        if (resp.status >= 200 && resp.status < 300) {
          record(held.id, response_version(resp));
          ++rep.updated;
          return true;
        }
        if (resp.status != 412) break;  // 404/410: gone; create it again below
        // Someone else wrote it in between: its version now, and again. Never a second resource.
        if (attempt == 2) return fail("HTTP 412 three times; it stays pending");
        auto now = client_.get(path);
        if (now.status != 200) return fail(fmt::format("HTTP {} reading it again", now.status));
        held.version = response_version(now);
      }
    }
    auto resp = client_.post(type, body(pw, ref.value(), ""));
    if (resp.status < 200 || resp.status >= 300) return fail(fmt::format("HTTP {}", resp.status));
    const std::string id = created_id(resp);
    if (id.empty()) return fail("the server named no id for it");
    record(id, response_version(resp));
    ++rep.created;
    return true;
  } catch (const fhir::FhirError& e) {
    if (refusal_status(e.status())) {
      rep.refused = e.what();
      return false;
    }
    // The server refused this one resource (400, 422...): it stays pending, the others go on.
    // No response at all, or a fault that outlasted the retries: the caller stops.
    if (e.status() < 400 || e.status() >= 500 || e.status() == 429) throw;
    return fail(e.what());
  }
}

WriteReport ResourceSink::deliver(const std::atomic<bool>* stop) {
  WriteReport rep;
  const auto& m = model_.manifest;
  // Another process writing this model's scores now: it writes these too.
  if (!state_.try_lock(m.name)) return rep;
  struct Unlock {
    store::WritebackState& state;
    const std::string& model;
    ~Unlock() {
      try {
        state.unlock(model);
      } catch (...) {  // a lost connection released it already
      }
    }
  } unlock{state_, m.name};
  std::int64_t after = 0;
  for (;;) {
    if (stop != nullptr && stop->load()) break;
    auto pending = state_.pending(m.name, 100, after);
    if (pending.empty()) break;
    std::vector<store::PendingWrite> written;
    bool refused = false;
    for (auto& pw : pending) {
      after = std::max(after, pw.score_id);
      const int before = rep.created + rep.updated;
      if (!write(pw, rep)) {
        refused = true;
        break;
      }
      if (rep.created + rep.updated > before) written.push_back(pw);
      if (stop != nullptr && stop->load()) break;
    }
    state_.mark_written(m.name, written);
    if (refused) {
      spdlog::error("write-back to {} stopped: the server refused it ({}); the scores stay pending",
                    options_.resource_type, rep.refused);
      break;
    }
  }
  return rep;
}

}  // namespace fra::writeback
