#pragma once
// The daemon's own HTTP endpoint: GET /healthz, /readyz, /metrics, POST /notify[/<type>] for
// FHIR Subscription notifications, and the CDS Hooks service under /cds-services. Served by
// cpp-httplib on a thread pool of its own.

#include <functional>
#include <memory>
#include <string>
#include <thread>

namespace fra::daemon {

struct Readiness {
  bool ready = false;
  std::string detail;  ///< one line per check: "database ok", "fhir unreachable: ...", ...
};

/// An answer of a handler that serves JSON.
struct JsonReply {
  int status = 200;
  std::string body;
};

struct Handlers {
  std::function<Readiness()> ready;
  std::function<std::string()> metrics;  ///< Prometheus text
  /// A notification for `type` ("" when the path names none) carrying `secret` in X-Fra-Secret
  /// and `body`; returns the HTTP status to answer (200, or 401 for a wrong secret).
  std::function<int(const std::string& type, const std::string& secret, const std::string& body)>
      notify;
  /// CDS Hooks (empty: not served): `what` is "discovery" (GET /cds-services), "call" (POST
  /// /cds-services/{id}), "feedback" (POST /cds-services/{id}/feedback) or "score" (POST
  /// /score/{id}), with the Authorization header and the body.
  std::function<JsonReply(const std::string& what, const std::string& id,
                          const std::string& authorization, const std::string& body)>
      cds;
};

class HttpEndpoint {
 public:
  /// Binds `listen` ("host:port"); throws std::runtime_error naming it when that fails.
  HttpEndpoint(const std::string& listen, Handlers handlers);
  ~HttpEndpoint();
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;
  int port() const { return port_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace fra::daemon
