#pragma once
// One search page of FHIR resources → the rows and dead letters the store takes.

#include "adapter/store/store.hpp"
#include "fhir/bundle.hpp"
#include "mapping/features.hpp"
#include "mapping/pseudonym.hpp"

namespace fra::source {

/// Maps one resource of `resource_type` into `out`: its rows, or a dead letter.
void map_resource(const std::string& resource_type, const rapidjson::Value& resource,
                  const mapping::Pseudonymizer& ps, const mapping::ObservationCatalog& catalog,
                  store::Page& out);

/// Maps every resource of a page of `resource_type`. A resource that cannot be mapped becomes
/// a dead letter; one of another type is a dead letter too ("unexpected-type").
store::Page map_page(const std::string& resource_type, const fhir::SearchPage& page,
                     const mapping::Pseudonymizer& ps, const mapping::ObservationCatalog& catalog);

}  // namespace fra::source
