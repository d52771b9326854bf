#include "fhir/subscriptions.hpp"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "fhir/bundle.hpp"

namespace fra::fhir {
namespace {

constexpr const char* kBackportServer =
    "http://hl7.org/fhir/uv/subscriptions-backport/CapabilityStatement/"
    "backport-subscription-server-r4";
constexpr const char* kBackportProfile =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription";
constexpr const char* kTopicCanonical =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
    "capabilitystatement-subscriptiontopic-canonical";
constexpr const char* kPayloadContent =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content";

using Value = rapidjson::Value;

const Value* member(const Value& v, const char* name) {
  if (!v.IsObject()) return nullptr;
  auto it = v.FindMember(name);
  return it == v.MemberEnd() ? nullptr : &it->value;
}

std::string string_member(const Value& v, const char* name) {
  const Value* m = member(v, name);
  return m != nullptr && m->IsString() ? m->GetString() : "";
}

// The ids of the Subscriptions whose channel goes to `endpoint`.
std::vector<std::string> subscriptions_to(Client& client, const std::string& endpoint) {
  std::vector<std::string> ids;
  Response found;
  try {
    found = client.get("Subscription?url=" + url_encode(endpoint));
  } catch (const FhirError& e) {
    // A server that cannot search Subscriptions by url: nothing to clean up that we can find.
    spdlog::warn("cannot look for earlier Subscriptions to {}: {}", endpoint, e.what());
    return ids;
  }
  rapidjson::Document bundle;
  bundle.Parse<rapidjson::kParseIterativeFlag>(found.body.data(), found.body.size());
  if (found.status != 200 || bundle.HasParseError()) return ids;
  const Value* entries = member(bundle, "entry");
  if (entries == nullptr || !entries->IsArray()) return ids;
  for (const auto& e : entries->GetArray()) {
    const Value* r = member(e, "resource");
    if (r == nullptr) continue;
    const Value* channel = member(*r, "channel");
    if (channel != nullptr && string_member(*channel, "endpoint") == endpoint &&
        !string_member(*r, "id").empty())
      ids.push_back(string_member(*r, "id"));
  }
  return ids;
}

std::string post_subscription(Client& client, const std::string& body, const std::string& what) {
  auto resp = client.post("Subscription", body);
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(resp.body.data(), resp.body.size());
  if (resp.status != 201 || doc.HasParseError() || string_member(doc, "id").empty())
    throw FhirError(fmt::format("POST Subscription ({}): HTTP {} {}", what, resp.status,
                                operation_outcome_text(resp.body)),
                    resp.status);
  return string_member(doc, "id");
}

void channel(rapidjson::Writer<rapidjson::StringBuffer>& w, const std::string& endpoint,
             const std::string& secret, bool backport) {
  w.Key("channel");
  w.StartObject();
  w.Key("type");
  w.String("rest-hook");
  w.Key("endpoint");
  w.String(endpoint.c_str());
  w.Key("header");
  w.StartArray();
  w.String(("X-Fra-Secret: " + secret).c_str());
  w.EndArray();
  if (backport) {
    // id-only: the notification names what changed and carries no clinical data.
    w.Key("payload");
    w.String("application/fhir+json");
    w.Key("_payload");
    w.StartObject();
    w.Key("extension");
    w.StartArray();
    w.StartObject();
    w.Key("url");
    w.String(kPayloadContent);
    w.Key("valueCode");
    w.String("id-only");
    w.EndObject();
    w.EndArray();
    w.EndObject();
  }
  w.EndObject();
}

}  // namespace

SubscriptionPlan plan_subscriptions(Client& client, const std::string& shape,
                                    const std::string& topic) {
  if (shape == "r4") return {};
  std::vector<std::string> topics;
  bool server = false;
  auto resp = client.get("metadata");
  rapidjson::Document cs;
  cs.Parse<rapidjson::kParseIterativeFlag>(resp.body.data(), resp.body.size());
  if (resp.status == 200 && !cs.HasParseError()) {
    if (const Value* inst = member(cs, "instantiates"); inst != nullptr && inst->IsArray())
      for (const auto& i : inst->GetArray())
        server = server || (i.IsString() && std::string(i.GetString()) == kBackportServer);
    if (const Value* rest = member(cs, "rest"); rest != nullptr && rest->IsArray())
      for (const auto& r : rest->GetArray())
        if (const Value* resources = member(r, "resource");
            resources != nullptr && resources->IsArray())
          for (const auto& res : resources->GetArray())
            if (string_member(res, "type") == "Subscription")
              if (const Value* ext = member(res, "extension"); ext != nullptr && ext->IsArray())
                for (const auto& e : ext->GetArray())
                  if (string_member(e, "url") == kTopicCanonical &&
                      !string_member(e, "valueCanonical").empty())
                    topics.push_back(string_member(e, "valueCanonical"));
  }
  const bool offered =
      server && !topics.empty() &&
      (topic.empty() || std::find(topics.begin(), topics.end(), topic) != topics.end());
  if (!offered) {
    if (shape == "backport")
      throw FhirError(topic.empty()
                          ? std::string("the server's CapabilityStatement offers no backport "
                                        "SubscriptionTopic (subscription.shape = \"backport\")")
                          : fmt::format("the server's CapabilityStatement does not offer the "
                                        "SubscriptionTopic {}",
                                        topic),
                      0);
    return {};
  }
  return {true, topic.empty() ? topics.front() : topic};
}

std::vector<std::string> subscribe(Client& client, const SubscriptionPlan& plan,
                                   const std::string& endpoint, const std::string& secret,
                                   const std::vector<std::string>& types) {
  std::vector<std::string> ids;
  try {
    std::vector<std::string> targets;
    if (plan.backport) {
      targets.push_back(endpoint);
    } else {
      for (const auto& t : types) targets.push_back(endpoint + "/" + t);
    }
    for (const auto& target : targets) {
      auto stale = subscriptions_to(client, target);
      if (!stale.empty())
        spdlog::info("removing {} earlier Subscriptions to {}", stale.size(), target);
      unsubscribe(client, stale);
    }
    for (std::size_t i = 0; i < targets.size(); ++i) {
      rapidjson::StringBuffer buf;
      rapidjson::Writer<rapidjson::StringBuffer> w(buf);
      w.StartObject();
      w.Key("resourceType");
      w.String("Subscription");
      if (plan.backport) {
        w.Key("meta");
        w.StartObject();
        w.Key("profile");
        w.StartArray();
        w.String(kBackportProfile);
        w.EndArray();
        w.EndObject();
      }
      w.Key("status");
      w.String("requested");
      w.Key("reason");
      w.String(plan.backport
                   ? "fhir-risk-adapter: wake-up when clinical data change"
                   : fmt::format("fhir-risk-adapter: wake-up when {} resources change", types[i])
                         .c_str());
      w.Key("criteria");
      w.String(plan.backport ? plan.topic.c_str() : types[i].c_str());
      channel(w, targets[i], secret, plan.backport);
      w.EndObject();
      ids.push_back(
          post_subscription(client, buf.GetString(), plan.backport ? plan.topic : types[i]));
    }
  } catch (...) {
    unsubscribe(client, ids);
    throw;
  }
  return ids;
}

void unsubscribe(Client& client, const std::vector<std::string>& ids) {
  for (const auto& id : ids) {
    try {
      client.request_delete("Subscription/" + id);
    } catch (const std::exception& e) {
      spdlog::warn("could not remove Subscription/{}: {}", id, e.what());
    }
  }
}

std::set<std::string> notified_types(const std::string& body,
                                     const std::vector<std::string>& known) {
  std::set<std::string> out;
  rapidjson::Document doc;
  // Iterative: a hostile body's nesting cannot exhaust the stack of the HTTP thread.
  doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (doc.HasParseError()) return out;
  auto add_reference = [&](const std::string& ref) {
    // "Observation/123", or an absolute URL ending in it.
    std::string path = ref.substr(0, ref.find('?'));
    std::string type;
    for (std::size_t at = 0; at <= path.size();) {  // the segment before an id, or the whole
      auto next = std::min(path.find('/', at), path.size());
      std::string segment = path.substr(at, next - at);
      if (std::find(known.begin(), known.end(), segment) != known.end()) type = segment;
      at = next + 1;
    }
    if (!type.empty()) out.insert(type);
  };
  const Value* entries = member(doc, "entry");
  if (entries == nullptr || !entries->IsArray()) return out;
  for (const auto& e : entries->GetArray()) {
    const Value* r = member(e, "resource");
    if (r != nullptr && string_member(*r, "resourceType") == "Parameters") {
      if (const Value* params = member(*r, "parameter"); params != nullptr && params->IsArray())
        for (const auto& p : params->GetArray())
          if (string_member(p, "name") == "notification-event")
            if (const Value* parts = member(p, "part"); parts != nullptr && parts->IsArray())
              for (const auto& part : parts->GetArray())
                if (string_member(part, "name") == "focus")
                  if (const Value* ref = member(part, "valueReference"); ref != nullptr)
                    add_reference(string_member(*ref, "reference"));
      continue;
    }
    if (r != nullptr) {
      std::string type = string_member(*r, "resourceType");
      if (std::find(known.begin(), known.end(), type) != known.end()) out.insert(type);
    }
    if (const Value* req = member(e, "request"); req != nullptr)
      add_reference(string_member(*req, "url"));
  }
  return out;
}

}  // namespace fra::fhir
