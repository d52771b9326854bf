#pragma once
// The CDS Hooks service (CDS Hooks 2.0): one `patient-view` service per model package. A call
// is trusted by its JWT (trust.hpp), its prefetch (or, when a key is missing, the EHR's FHIR
// server with the access token it sent) mapped through the same mapping and feature code as the
// sync, scored as the sync scores, and answered with one card. Nothing of a call is stored in
// the feature store or written to a log; the score a card carries is recorded through `record`
// (an audit event, so that `audit rescore` covers it).

#include <rapidjson/document.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "adapter/cds/trust.hpp"
#include "adapter/score/manifest.hpp"
#include "adapter/store/ingest.hpp"
#include "adapter/store/scores.hpp"
#include "mapping/features.hpp"
#include "mapping/pseudonym.hpp"

namespace fra::cds {

struct ServiceOptions {
  std::string base_url;  ///< the service's public base, e.g. https://fra.example.org
  /// Card indicator by band code (low -> info, moderate -> warning, high -> critical by default).
  std::map<std::string, std::string> indicators{
      {"low", "info"}, {"moderate", "warning"}, {"high", "critical"}, {"certain", "critical"}};
  int top_factors = 3;
  long fetch_timeout_seconds = 10;
};

/// What a card carried, for the audit log.
struct CardScore {
  std::string card;         ///< the card's uuid
  std::string patient_key;  ///< the patient's pseudonym
  fhir::Micros as_of = 0;
  store::Scored scored;
};

struct Reply {
  int status = 200;
  std::string body;     ///< JSON
  std::string refusal;  ///< for a 401: the reason (the metric's label)
};

class Service {
 public:
  /// `record` receives each card's score, `record_feedback` each feedback's JSON details
  /// (`{"card", "outcome", "override_reason", "accepted_suggestions"}`); both throw when they
  /// cannot record it, and the call fails.
  Service(const score::ModelPackage& model, const mapping::FeatureComputer& features,
          const mapping::ObservationCatalog& catalog, const mapping::Pseudonymizer& ps,
          Trust& trust, ServiceOptions options, std::function<void(const CardScore&)> record,
          std::function<void(const std::string&)> record_feedback);

  /// The service's id: the model package's name.
  const std::string& id() const;
  /// GET /cds-services.
  Reply discovery() const;
  /// POST /cds-services/{id}.
  Reply call(const std::string& service_id, const std::string& authorization,
             const std::string& body, fhir::Micros now);
  /// POST /score/{id}: a JSON object of feature values by name (null or absent: missing), scored
  /// with no patient and nothing recorded: probability, band, margin, bias and each feature's
  /// contribution. For data scientists; the same trust rules, the audience `<base>/score/{id}`.
  Reply score(const std::string& service_id, const std::string& authorization,
              const std::string& body, fhir::Micros now);
  /// POST /cds-services/{id}/feedback: each entry (a card accepted or overridden, and why)
  /// recorded; the card's uuid, not the patient, links it to its score's event.
  Reply feedback(const std::string& service_id, const std::string& authorization,
                 const std::string& body, fhir::Micros now);

 private:
  /// 404 for another service, 401 (with the reason) for a caller not trusted at `path` (the
  /// audience is `<base_url><path>`); nullopt for a trusted call.
  /// Maps the request's prefetch (or, key by key, what the EHR's FHIR server answers) into
  /// `page`; the reply when it cannot (412).
  std::optional<Reply> gather(const rapidjson::Document& req, const std::string& patient_id,
                              store::Page& page);
  /// The answer: one card for the score.
  std::string card_json(const store::Scored& s, const std::string& card, fhir::Micros now) const;
  std::optional<Reply> refused(const std::string& service_id, const std::string& authorization,
                               const std::string& path, fhir::Micros now);

  const score::ModelPackage& model_;
  const mapping::FeatureComputer& features_;
  const mapping::ObservationCatalog& catalog_;
  const mapping::Pseudonymizer& ps_;
  Trust& trust_;
  ServiceOptions options_;
  std::function<void(const CardScore&)> record_;
  std::function<void(const std::string&)> record_feedback_;
  // The prefetch templates discovery lists, each a key, its resource type and, when it differs
  // from the template, the query that reads it from the EHR's FHIR server without a prefetch.
  struct Prefetch {
    std::string key, type, templ, fetch;
  };
  std::vector<Prefetch> prefetch_;
};

}  // namespace fra::cds
