#pragma once
// FHIR Subscriptions that wake the daemon: registered at start, removed on a clean stop. Two
// shapes: plain R4 (one rest-hook Subscription per resource type, criteria the type) and the
// Subscriptions R5 Backport IG for R4 (one Subscription to a SubscriptionTopic the server
// advertises in its CapabilityStatement). A notification is only ever a wake-up: the daemon
// fetches what changed through its cursors.

#include <set>
#include <string>
#include <vector>

#include "fhir/client.hpp"

namespace fra::fhir {

struct SubscriptionPlan {
  bool backport = false;
  std::string topic;  ///< the SubscriptionTopic canonical URL (backport only)
};

/// `shape` is "r4", "backport" or "auto" (backport when the server's CapabilityStatement
/// instantiates the backport server profile and names a topic). `topic` picks one of the
/// advertised topics; empty for the first. Throws FhirError when backport is asked for
/// and the server offers no such topic.
SubscriptionPlan plan_subscriptions(Client& client, const std::string& shape,
                                    const std::string& topic);

/// Registers the Subscriptions of `plan` with notifications to `endpoint` (plus "/<Type>" for
/// plain R4) carrying `X-Fra-Secret: secret`, and returns their ids. Subscriptions to the same
/// endpoints left by a run that did not stop cleanly are removed first; if a registration fails,
/// those made are removed and the error is thrown.
std::vector<std::string> subscribe(Client& client, const SubscriptionPlan& plan,
                                   const std::string& endpoint, const std::string& secret,
                                   const std::vector<std::string>& types);

/// Deletes the Subscriptions; a failure is logged and the others are still deleted.
void unsubscribe(Client& client, const std::vector<std::string>& ids);

/// The resource types among `known` that a notification body names: the focus references of a
/// backport notification, or the entries of a history Bundle. Empty when it names none (an
/// id-less or empty notification): the caller then wakes every type.
std::set<std::string> notified_types(const std::string& body,
                                     const std::vector<std::string>& known);

}  // namespace fra::fhir
