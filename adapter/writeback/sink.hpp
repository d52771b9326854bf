#pragma once
// Where scores go. A sink delivers the scores the store marked for it, idempotently (a retry
// never makes a second resource) and durably (what fails stays pending for the next round).

#include <atomic>
#include <string>
#include <string_view>

namespace fra::writeback {

struct WriteReport {
  int created = 0;
  int updated = 0;
  int failed = 0;
  /// Set when the server refused the target itself (403, 405, not supported): the server's
  /// reason. The scores stay pending; the sink writes nothing more this run.
  std::string refused;
};

class Sink {
 public:
  virtual ~Sink() = default;
  /// The sink's name, as configuration and logs call it ("risk-assessment").
  virtual std::string_view name() const = 0;
  /// Delivers every pending score, in score order. When `stop` turns true it finishes the round
  /// in flight and returns. A score that fails stays pending. Throws fhir::FhirError when the
  /// server cannot be reached after every retry, store::StoreError from the store.
  virtual WriteReport deliver(const std::atomic<bool>* stop) = 0;
};

}  // namespace fra::writeback
