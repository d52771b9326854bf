#include "adapter/app/cds_hooks.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <mutex>

#include "adapter/app/daemon.hpp"
#include "adapter/app/setup.hpp"
#include "adapter/cds/service.hpp"
#include "adapter/store/store.hpp"
#include "adapter/sync/pipeline.hpp"
#include "fhir/client.hpp"
#include "fhir/json.hpp"

namespace fra::app {
namespace {

// "low=info,moderate=warning" -> map; nullopt when malformed.
std::optional<std::map<std::string, std::string>> indicators(const std::string& text) {
  std::map<std::string, std::string> out;
  std::size_t at = 0;
  while (at < text.size()) {
    auto end = text.find(',', at);
    if (end == std::string::npos) end = text.size();
    const std::string part = text.substr(at, end - at);
    const auto eq = part.find('=');
    if (eq == std::string::npos) return std::nullopt;
    const std::string v = part.substr(eq + 1);
    if (v != "info" && v != "warning" && v != "critical") return std::nullopt;
    out[part.substr(0, eq)] = v;
    at = end + 1;
  }
  return out;
}

// Everything the service holds, alive as long as the handler.
struct Served {
  std::unique_ptr<score::ModelPackage> model;
  std::unique_ptr<mapping::FeatureComputer> features;
  std::unique_ptr<cds::Trust> trust;
  std::unique_ptr<cds::Service> service;
  std::string database_url;
  std::mutex db_mu;
  std::unique_ptr<store::Store> db;  // the audit's connection, opened again after a failure

  // The score a card carries, as an audit event like a stored score's (with the feature vector
  // itself, which `audit rescore` recomputes); throws when it cannot be recorded.
  void record(const cds::CardScore& c) {
    const auto& m = model->manifest;
    std::string vector = "{";
    const auto& defs = features->definitions();
    for (std::size_t i = 0; i < defs.size(); ++i)
      vector += fmt::format("{}\"{}\": {}", i ? ", " : "", defs[i].name,
                            std::isfinite(c.scored.features[i])
                                ? fmt::format("{:.9g}", c.scored.features[i])
                                : std::string("null"));
    vector += "}";
    const std::string details = fmt::format(
        R"({{"card": "{}", "model": "{}", "model_version": "{}", "model_sha256": "{}", "as_of": "{}", )"
        R"("probability": {:.17g}, "band": "{}", "features": {}, "contributions": {}}})",
        c.card, m.name, m.version, m.model_sha256, fhir::format_instant(c.as_of),
        c.scored.probability, c.scored.band, vector, c.scored.contributions_json);
    std::lock_guard lock(db_mu);
    try {
      if (!db) {
        db = std::make_unique<store::Store>(database_url, "fhir-risk-adapter cds-hooks");
        db->session.set_actor("fhir-risk-adapter run (cds-hooks)");
      }
      db->audit.append("cds-score", "Patient/" + c.patient_key, details);
    } catch (...) {
      db.reset();
      throw;
    }
  }

  void record_feedback(const std::string& details) {
    std::lock_guard lock(db_mu);
    try {
      if (!db) {
        db = std::make_unique<store::Store>(database_url, "fhir-risk-adapter cds-hooks");
        db->session.set_actor("fhir-risk-adapter run (cds-hooks)");
      }
      db->audit.append("cds-feedback", model->manifest.name, details);
    } catch (...) {
      db.reset();
      throw;
    }
  }
};

}  // namespace

CdsHandler cds_hooks_handler(const config::Config& cfg, const mapping::Pseudonymizer& ps,
                             daemon::Metrics& metrics, bool& failed) {
  failed = false;
  const auto& c = cfg.cds_hooks;
  if (!c.enabled) return {};
  auto fail = [&](const std::string& why) {
    error_line(fmt::format("{}: {}", cfg.file, why));
    failed = true;
    return CdsHandler{};
  };
  if (c.base_url.empty()) return fail("cds_hooks.enabled needs cds_hooks.base_url");
  if (c.issuers_file.empty()) return fail("cds_hooks.enabled needs cds_hooks.issuers_file");
  if (cfg.http.listen.empty()) return fail("cds_hooks.enabled needs http.listen");
  auto ind = indicators(c.indicators);
  if (!ind) return fail("cds_hooks.indicators: expected band=info|warning|critical, ...");
  std::filesystem::path issuers_path(c.issuers_file);
  if (issuers_path.is_relative())
    issuers_path = std::filesystem::path(cfg.file).parent_path() / issuers_path;
  auto text = read_text(issuers_path.string());
  if (!text) return fail("cds_hooks.issuers_file: cannot read " + issuers_path.string());
  auto issuers = cds::parse_issuers(*text, issuers_path.parent_path().string());
  if (!issuers) return fail(issuers.error().message);

  auto served = std::make_shared<Served>();
  served->model = load_bound_model(cfg, error_line);
  if (!served->model) {
    failed = true;
    return {};
  }
  served->features = std::make_unique<mapping::FeatureComputer>(
      sync::bind_model(*served->model, cfg.features.definitions, cfg.features.catalog));
  served->trust =
      std::make_unique<cds::Trust>(std::move(issuers).value(), [](const std::string& url) {
        fhir::ClientOptions o;
        o.base_url = url;
        o.timeout_seconds = 10;
        o.max_attempts = 2;
        fhir::Client client(o);
        auto r = client.get_with(url, "application/json", {});
        if (r.status != 200) throw std::runtime_error("HTTP " + std::to_string(r.status));
        return r.body;
      });
  std::string base = c.base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  cds::ServiceOptions so;
  so.base_url = base;
  so.indicators = *ind;
  served->database_url = cfg.database.url;
  Served* raw = served.get();
  served->service = std::make_unique<cds::Service>(
      *served->model, *served->features, cfg.features.catalog, ps, *served->trust, so,
      [raw](const cds::CardScore& card) { raw->record(card); },
      [raw](const std::string& details) { raw->record_feedback(details); });
  spdlog::info("CDS Hooks: serving {} at {}/cds-services/{}", served->model->manifest.name, base,
               served->model->manifest.name);

  return [served, &metrics](const std::string& method, const std::string& id, bool feedback,
                            const std::string& authorization,
                            const std::string& body) -> daemon::JsonReply {
    if (method == "GET") return {200, served->service->discovery().body};
    try {
      auto r = feedback ? served->service->feedback(id, authorization, body, fhir::now_micros())
                        : served->service->call(id, authorization, body, fhir::now_micros());
      if (r.status == 401) metrics.add("fra_cds_refused_total", 1, r.refusal);
      metrics.add("fra_cds_calls_total", 1, std::to_string(r.status));
      return {r.status, r.body};
    } catch (const std::exception& e) {
      // The audit could not record the score: no card without its record.
      spdlog::error("CDS Hooks: {}; the call is answered 503", e.what());
      metrics.add("fra_cds_calls_total", 1, "503");
      return {503, R"({"error": "the score could not be recorded"})"};
    }
  };
}

}  // namespace fra::app
