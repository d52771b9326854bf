// classify(): whose fault a failure is, for the one-shot commands and the daemon alike.

#include <doctest/doctest.h>

#include <stdexcept>

#include "adapter/app/failure.hpp"
#include "adapter/store/session.hpp"
#include "fhir/client.hpp"
#include "fhir/smart.hpp"

namespace fra::app {
namespace {
template <typename E>
Failure of(E e) {
  return classify(std::make_exception_ptr(std::move(e)));
}
}  // namespace

TEST_CASE("classify: the database, the FHIR server, its token endpoint, and bugs") {
  for (auto kind : {store::StoreErrorKind::unavailable, store::StoreErrorKind::refused,
                    store::StoreErrorKind::in_doubt, store::StoreErrorKind::bad_data}) {
    const auto f = of(store::StoreError(kind, "storing a page: gone"));
    CHECK(f.kind == FailureKind::database);
    CHECK(f.message == "storing a page: gone");
    CHECK(exit_code(f.kind) == 69);
  }
  CHECK(of(fhir::FhirError("HTTP 503", 503)).kind == FailureKind::fhir);
  CHECK(of(fhir::SmartError("token endpoint: HTTP 401")).kind == FailureKind::auth);
  CHECK(exit_code(FailureKind::fhir) == 69);
  CHECK(exit_code(FailureKind::auth) == 69);
  // A bug exits 70: the daemon used to reconnect on it every 5 s, forever.
  const auto bug = of(std::out_of_range("map::at"));
  CHECK(bug.kind == FailureKind::bug);
  CHECK(bug.message == "map::at");
  CHECK(exit_code(bug.kind) == 70);
  CHECK(classify(std::make_exception_ptr(42)).kind == FailureKind::bug);
}

}  // namespace fra::app
