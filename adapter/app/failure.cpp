#include "adapter/app/failure.hpp"

#include <fmt/format.h>

#include <iostream>

#include "adapter/app/commands.hpp"
#include "adapter/store/session.hpp"
#include "fhir/client.hpp"
#include "fhir/smart.hpp"

namespace fra::app {

Failure classify(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const store::StoreError& x) {
    return {FailureKind::database, x.what()};
  } catch (const fhir::FhirError& x) {
    return {FailureKind::fhir, x.what()};
  } catch (const fhir::SmartError& x) {
    return {FailureKind::auth, x.what()};
  } catch (const std::exception& x) {
    return {FailureKind::bug, x.what()};
  } catch (...) {
    return {FailureKind::bug, "an exception of unknown type"};
  }
}

int exit_code(FailureKind kind) {
  return kind == FailureKind::bug ? kExitSoftware : kExitUnavailable;
}

int report_failure(std::exception_ptr e, const std::string& fhir_base_url) {
  const Failure f = classify(e);
  switch (f.kind) {
    case FailureKind::fhir:
      std::cerr << fmt::format("fhir-risk-adapter: error: FHIR server {}: {}\n", fhir_base_url,
                               f.message);
      break;
    case FailureKind::auth:
    case FailureKind::database:
      std::cerr << "fhir-risk-adapter: error: " << f.message << "\n";
      break;
    case FailureKind::bug:
      std::cerr << "fhir-risk-adapter: internal error: " << f.message << "\n";
      break;
  }
  return exit_code(f.kind);
}

}  // namespace fra::app
