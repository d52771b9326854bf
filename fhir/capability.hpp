#pragma once
// What a server's CapabilityStatement (`GET metadata`) says it does, as far as the adapter's
// choices go: which searches to use and how to write back.

#include <map>
#include <set>
#include <string>

#include "fhir/client.hpp"
#include "fhir/result.hpp"

namespace fra::fhir {

struct Capability {
  struct Resource {
    std::set<std::string> interactions;   ///< "read", "search-type", "create", "update", ...
    std::set<std::string> search_params;  ///< names declared in `searchParam`
    bool conditional_update = false;
  };
  std::map<std::string, Resource> resources;   ///< by type, of rest[mode=server]
  std::set<std::string> server_search_params;  ///< rest.searchParam: for every type (_sort, _count)

  bool declares(const std::string& type) const { return resources.contains(type); }
  bool can(const std::string& type, const std::string& interaction) const;
  /// The type declares the parameter, or the server declares it for every type.
  bool searches_by(const std::string& type, const std::string& param) const;
  bool updates_conditionally(const std::string& type) const;
};

/// Reads a CapabilityStatement's JSON.
Result<Capability> parse_capability(const std::string& json);
/// GET metadata and parse it. Throws FhirError when it cannot be read.
Capability read_capability(Client& client);

}  // namespace fra::fhir
