#pragma once
// `run`'s CDS Hooks service: the model package, the trusted issuers and the audit connection it
// needs, behind the HTTP endpoint's handler.

#include <functional>
#include <string>

#include "adapter/config/config.hpp"
#include "adapter/daemon/http_endpoint.hpp"
#include "adapter/daemon/metrics.hpp"
#include "mapping/pseudonym.hpp"

namespace fra::app {

using CdsHandler =
    std::function<daemon::JsonReply(const std::string& method, const std::string& id, bool feedback,
                                    const std::string& authorization, const std::string& body)>;

/// The handler of /cds-services when cds_hooks.enabled (empty otherwise); `failed` set after
/// printing why it cannot serve (no base_url, an issuers file that cannot be read, a model that
/// does not load): exit 78.
CdsHandler cds_hooks_handler(const config::Config& cfg, const mapping::Pseudonymizer& ps,
                             daemon::Metrics& metrics, bool& failed);

}  // namespace fra::app
