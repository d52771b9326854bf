#pragma once
// `run`'s CDS Hooks service: the model package, the trusted issuers and the audit connection it
// needs, behind the HTTP endpoint's handler. After a model reload (SIGHUP) that the worker took,
// the next call loads the same package, so cards and stored scores come from one model.

#include <functional>
#include <string>

#include "adapter/app/daemon.hpp"
#include "adapter/config/config.hpp"
#include "adapter/daemon/http_endpoint.hpp"
#include "adapter/daemon/metrics.hpp"
#include "mapping/pseudonym.hpp"

namespace fra::app {

using CdsHandler =
    std::function<daemon::JsonReply(const std::string& what, const std::string& id,
                                    const std::string& authorization, const std::string& body)>;

/// The handler of /cds-services (and /score) when cds_hooks.enabled (empty otherwise); `failed`
/// set after printing why it cannot serve (no base_url, an issuers file that cannot be read, a
/// model that does not load): exit 78.
CdsHandler cds_hooks_handler(const config::Config& cfg, const mapping::Pseudonymizer& ps,
                             daemon::Metrics& metrics, Shared& shared, bool& failed);

}  // namespace fra::app
