#include <doctest/doctest.h>

#include <string>

#include "fhir/subscriptions.hpp"

using fra::fhir::notified_types;

namespace {
const std::vector<std::string> kTypes{"Patient", "Encounter", "Observation"};
}

TEST_CASE("a backport notification wakes the types of its focus references") {
  std::string body = R"({"resourceType":"Bundle","type":"history","entry":[
    {"resource":{"resourceType":"Parameters","parameter":[
      {"name":"subscription","valueReference":{"reference":"http://x/fhir/R4/Subscription/1"}},
      {"name":"notification-event","part":[{"name":"event-number","valueString":"3"},
        {"name":"focus","valueReference":{"reference":"http://x/fhir/R4/Observation/abc"}}]},
      {"name":"notification-event","part":[{"name":"focus","valueReference":{"reference":"Encounter/9"}}]}]}}]})";
  CHECK(notified_types(body, kTypes) == std::set<std::string>{"Encounter", "Observation"});
}

TEST_CASE("a history Bundle wakes the types of its entries; anything else wakes none by name") {
  std::string r4 = R"({"resourceType":"Bundle","type":"history","entry":[
    {"request":{"method":"DELETE","url":"Patient/7"}},
    {"resource":{"resourceType":"Observation","id":"1"},"request":{"method":"POST","url":"Observation"}}]})";
  CHECK(notified_types(r4, kTypes) == std::set<std::string>{"Observation", "Patient"});
  CHECK(notified_types("", kTypes).empty());
  CHECK(notified_types("not json", kTypes).empty());
  CHECK(
      notified_types(R"({"entry":[{"resource":{"resourceType":"Medication"}}]})", kTypes).empty());
  CHECK(notified_types(R"({"entry":"x"})", kTypes).empty());
}

TEST_CASE(
    "a notification nested a million deep wakes none by name and keeps the stack "
    "(fuzz_notification)") {
  CHECK(notified_types(std::string(1000000, '[') + std::string(1000000, ']'), kTypes).empty());
  CHECK(notified_types(R"({"entry":[)" + std::string(1000000, '['), kTypes).empty());
}
