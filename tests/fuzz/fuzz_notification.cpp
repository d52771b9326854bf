// libFuzzer target: any body POSTed to /notify (a plain R4 history Bundle, a Subscriptions
// Backport notification, or anything else) gives a subset of the known resource types, without
// a crash, a hang or a leak.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "fhir/subscriptions.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The types run.cpp passes.
  static const std::vector<std::string> kKnown{"Patient", "Encounter", "Observation"};
  auto types =
      fra::fhir::notified_types(std::string(reinterpret_cast<const char*>(data), size), kKnown);
  for (const auto& t : types) {
    if (t != kKnown[0] && t != kKnown[1] && t != kKnown[2]) {
      std::fprintf(stderr, "fuzz_notification: a type that is not among the known ones\n");
      std::abort();
    }
  }
  return 0;
}
