#include "adapter/writeback/alert_sink.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "adapter/writeback/wording.hpp"
#include "fhir/bundle.hpp"
#include "fhir/communication.hpp"
#include "fhir/risk_assessment.hpp"

namespace fra::writeback {

std::string alert_identifier(const mapping::Pseudonymizer& ps, const std::string& model_name,
                             const std::string& patient_key, int episode) {
  return ps.derive("alert/" + model_name, fmt::format("{}/{}", patient_key, episode)).hex;
}

AlertSink::AlertSink(fhir::Client& client, store::Alerts& alerts, const mapping::Pseudonymizer& ps,
                     const score::ModelPackage& model,
                     const std::vector<mapping::FeatureDefinition>& definitions,
                     AlertOptions options)
    : client_(client),
      alerts_(alerts),
      ps_(ps),
      model_(model),
      definitions_(definitions),
      options_(std::move(options)) {}

bool AlertSink::send(const store::PendingAlert& a, WriteReport& rep) {
  const auto& m = model_.manifest;
  auto ref = ps_.open(a.sealed_ref);
  if (!ref || !ref.value().starts_with("Patient/")) {
    spdlog::error("alert for patient {}: its sealed reference does not open under this key",
                  a.patient_key.substr(0, 12));
    ++rep.failed;
    return false;
  }
  // The risk and its factors in the words of the RiskAssessment the alert is about.
  store::PendingWrite pw;
  pw.probability = a.probability;
  pw.as_of = a.as_of;
  pw.contributions_json = a.contributions_json;
  const auto words =
      score_in_words(pw, m, definitions_, options_.ra_identifier_system, ref.value());
  fhir::AlertInput in;
  in.identifier_value = alert_identifier(ps_, m.name, a.patient_key, a.episode);
  in.patient_reference = ref.value();
  in.recipient = options_.recipient;
  if (!a.target_type.empty())
    if (auto t = ps_.open(a.target_ref); t && t.value().starts_with(a.target_type + "/"))
      in.about_reference = t.value();
  in.about_type = "RiskAssessment";
  in.about_identifier_system = options_.ra_identifier_system;
  in.about_identifier_value = a.ra_identifier;
  in.sent = fhir::now_micros();
  in.text = fhir::score_note(words);
  // One conditional update in a batch Bundle, as the RiskAssessments go: a server that does
  // conditional updates there does them here.
  auto resp = client_.post("", fhir::batch_bundle({{"PUT", fhir::alert_conditional_path(in),
                                                    fhir::build_alert_communication(in)}}));
  if (resp.status < 200 || resp.status >= 300) {
    spdlog::error("alert for patient {}: HTTP {}; it stays pending", a.patient_key.substr(0, 12),
                  resp.status);
    ++rep.failed;
    return false;
  }
  auto outcomes = fhir::parse_batch_response(resp.body, 1);
  if (!outcomes || outcomes.value()[0].status < 200 || outcomes.value()[0].status >= 300) {
    spdlog::error("alert for patient {}: {}; it stays pending", a.patient_key.substr(0, 12),
                  outcomes ? fmt::format("HTTP {} {}", outcomes.value()[0].status,
                                         outcomes.value()[0].problem)
                           : outcomes.error().message);
    ++rep.failed;
    return false;
  }
  ++(outcomes.value()[0].status == 201 ? rep.created : rep.updated);
  return true;
}

WriteReport AlertSink::deliver(const std::atomic<bool>* stop) {
  WriteReport rep;
  const auto& m = model_.manifest;
  std::int64_t after = 0;
  for (;;) {
    if (stop != nullptr && stop->load()) break;
    auto pending = alerts_.pending(m.name, 100, after);
    if (pending.empty()) break;
    std::vector<store::PendingAlert> sent;
    for (const auto& a : pending) {
      after = std::max(after, a.score_id);
      try {
        if (send(a, rep)) sent.push_back(a);
      } catch (const fhir::FhirError& e) {
        // The server refused this one (400, 403, 422...): it stays pending, the others go on.
        // No answer, or a fault that outlasted the retries: what was sent is recorded, then stop.
        if (e.status() < 400 || e.status() >= 500 || e.status() == 429) {
          alerts_.mark_sent(m.name, sent);
          throw;
        }
        spdlog::error("alert for patient {}: {}; it stays pending", a.patient_key.substr(0, 12),
                      e.what());
        ++rep.failed;
      }
      if (stop != nullptr && stop->load()) break;
    }
    alerts_.mark_sent(m.name, sent);
  }
  return rep;
}

}  // namespace fra::writeback
