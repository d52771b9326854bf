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

// One model package served: its features and the service over them.
struct Bound {
  std::unique_ptr<score::ModelPackage> model;
  std::unique_ptr<mapping::FeatureComputer> features;
  std::unique_ptr<cds::Service> service;
};

// Everything the service holds, alive as long as the handler.
struct Served {
  const config::Config* cfg = nullptr;
  const mapping::Pseudonymizer* ps = nullptr;
  cds::ServiceOptions options;
  std::unique_ptr<cds::Trust> trust;
  std::mutex bound_mu;
  std::shared_ptr<Bound> bound;  // replaced whole after a reload; calls in flight keep theirs
  int generation = 0;
  std::mutex db_mu;
  std::unique_ptr<store::Store> db;  // the audit's connection, opened again after a failure

  // The package at model.path with the service over it; nullptr when it does not load.
  std::shared_ptr<Bound> load() {
    auto b = std::make_shared<Bound>();
    b->model = load_bound_model(*cfg, [](const std::string& why) { spdlog::error("{}", why); });
    if (!b->model) return nullptr;
    b->features = std::make_unique<mapping::FeatureComputer>(
        sync::bind_model(*b->model, cfg->features.definitions, cfg->features.catalog));
    Bound* raw = b.get();
    b->service = std::make_unique<cds::Service>(
        *b->model, *b->features, cfg->features.catalog, *ps, *trust, options,
        [this, raw](const cds::CardScore& card) { record(*raw, card); },
        [this, raw](const std::string& details) {
          append("cds-feedback", raw->model->manifest.name, details);
        });
    return b;
  }

  // The package to serve: the one the worker serves since its last reload.
  std::shared_ptr<Bound> current(int worker_generation) {
    std::lock_guard lock(bound_mu);
    if (worker_generation != generation) {
      generation = worker_generation;
      if (auto fresh = load()) bound = std::move(fresh);
    }
    return bound;
  }

  void append(const std::string& action, const std::string& object, const std::string& details) {
    std::lock_guard lock(db_mu);
    try {
      if (!db) {
        db = std::make_unique<store::Store>(cfg->database.url, "fhir-risk-adapter cds-hooks");
        db->session.set_actor("fhir-risk-adapter run (cds-hooks)");
      }
      db->audit.append(action, object, details);
    } catch (...) {
      db.reset();
      throw;
    }
  }

  // The score a card carries, as an audit event like a stored score's (with the feature vector
  // itself, which `audit rescore` recomputes); throws when it cannot be recorded.
  void record(const Bound& b, const cds::CardScore& c) {
    const auto& m = b.model->manifest;
    std::string vector = "{";
    const auto& defs = b.features->definitions();
    for (std::size_t i = 0; i < defs.size(); ++i)
      vector += fmt::format("{}\"{}\": {}", i ? ", " : "", defs[i].name,
                            std::isfinite(c.scored.features[i])
                                ? fmt::format("{:.9g}", c.scored.features[i])
                                : std::string("null"));
    vector += "}";
    append("cds-score", "Patient/" + c.patient_key,
           fmt::format(R"({{"card": "{}", "model": "{}", "model_version": "{}", )"
                       R"("model_sha256": "{}", "as_of": "{}", "probability": {:.17g}, )"
                       R"("band": "{}", "features": {}, "contributions": {}}})",
                       c.card, m.name, m.version, m.model_sha256, fhir::format_instant(c.as_of),
                       c.scored.probability, c.scored.band, vector, c.scored.contributions_json));
  }
};

// The trust in the issuers, fetching a `jku` key set over HTTP.
std::unique_ptr<cds::Trust> trust_in(std::vector<cds::Issuer> issuers) {
  return std::make_unique<cds::Trust>(std::move(issuers), [](const std::string& url) {
    fhir::ClientOptions o;
    o.base_url = url;
    o.timeout_seconds = 10;
    o.max_attempts = 2;
    fhir::Client client(o);
    auto r = client.get_with(url, "application/json", {});
    if (r.status != 200) throw std::runtime_error("HTTP " + std::to_string(r.status));
    return r.body;
  });
}

// The HTTP handler over the service: every call counted by status, a refusal by reason (logged
// without its token); a score the audit could not record is answered 503, with no card.
CdsHandler handler_over(std::shared_ptr<Served> served, daemon::Metrics& metrics, Shared& shared,
                        bool score_endpoint) {
  return [served, &metrics, &shared, score_endpoint](const std::string& what, const std::string& id,
                                                     const std::string& authorization,
                                                     const std::string& body) -> daemon::JsonReply {
    auto bound = served->current(shared.model_generation.load());
    auto& service = *bound->service;
    if (what == "discovery") return {200, service.discovery().body};
    if (what == "score" && !score_endpoint) return {404, R"({"error": "not served"})"};
    try {
      const auto now = fhir::now_micros();
      auto r = what == "feedback" ? service.feedback(id, authorization, body, now)
               : what == "score"  ? service.score(id, authorization, body, now)
                                  : service.call(id, authorization, body, now);
      if (r.status == 401) {
        metrics.add("fra_cds_refused_total", 1, r.refusal);
        spdlog::warn("CDS Hooks: refused a {} ({})", what, r.refusal);  // never the token
      }
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

}  // namespace

CdsHandler cds_hooks_handler(const config::Config& cfg, const mapping::Pseudonymizer& ps,
                             daemon::Metrics& metrics, Shared& shared, bool& failed) {
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
  served->cfg = &cfg;
  served->ps = &ps;
  served->trust = trust_in(std::move(issuers).value());
  std::string base = c.base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  served->options.base_url = base;
  served->options.indicators = *ind;
  served->generation = shared.model_generation.load();
  served->bound = served->load();
  if (!served->bound) {
    failed = true;
    return {};
  }
  const std::string name = served->bound->model->manifest.name;
  spdlog::info("CDS Hooks: serving {} at {}/cds-services/{}{}", name, base, name,
               c.score_endpoint ? fmt::format(" and {}/score/{}", base, name) : "");

  return handler_over(served, metrics, shared, c.score_endpoint);
}

}  // namespace fra::app
