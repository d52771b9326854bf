#include "fhir/communication.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "fhir/client.hpp"
#include "fhir/json.hpp"

namespace fra::fhir {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;
using json::key_string;

void reference(Writer& w, const std::string& ref) {
  w.StartObject();
  key_string(w, "reference", ref);
  w.EndObject();
}

}  // namespace

std::string alert_conditional_path(const AlertInput& in) {
  return "Communication?identifier=" +
         url_encode(std::string(kAlertSystem) + "|" + in.identifier_value);
}

std::string build_alert_communication(const AlertInput& in) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  key_string(w, "resourceType", "Communication");
  w.Key("identifier");
  w.StartArray();
  w.StartObject();
  key_string(w, "system", kAlertSystem);
  key_string(w, "value", in.identifier_value);
  w.EndObject();
  w.EndArray();
  key_string(w, "status", "completed");
  w.Key("category");
  w.StartArray();
  w.StartObject();
  w.Key("coding");
  w.StartArray();
  w.StartObject();
  key_string(w, "system", kCommunicationCategorySystem);
  key_string(w, "code", "alert");
  key_string(w, "display", "Alert");
  w.EndObject();
  w.EndArray();
  w.EndObject();
  w.EndArray();
  key_string(w, "priority", "urgent");
  w.Key("subject");
  reference(w, in.patient_reference);
  w.Key("about");
  w.StartArray();
  if (!in.about_reference.empty()) {
    reference(w, in.about_reference);
  } else {
    w.StartObject();
    key_string(w, "type", in.about_type);
    w.Key("identifier");
    w.StartObject();
    key_string(w, "system", in.about_identifier_system);
    key_string(w, "value", in.about_identifier_value);
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  key_string(w, "sent", format_instant(in.sent));
  w.Key("recipient");
  w.StartArray();
  reference(w, in.recipient);
  w.EndArray();
  w.Key("payload");
  w.StartArray();
  w.StartObject();
  key_string(w, "contentString", in.text);
  w.EndObject();
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace fra::fhir
