#pragma once
// A FHIR R4 REST client over libcurl: JSON in and out, bearer auth, retries with backoff.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "fhir/rate_gate.hpp"

namespace fra::fhir {

struct ClientOptions {
  std::string base_url;      ///< e.g. https://ehr.example.org/fhir/R4 (no trailing /)
  std::string bearer_token;  ///< "" for none; never logged
  long timeout_seconds = 30;
  int max_attempts = 5;  ///< first try included
  std::chrono::milliseconds backoff_base{250};
  std::chrono::milliseconds backoff_cap{8000};
  bool verify_tls = true;
  std::string ca_file;  ///< PEM bundle of CAs to trust instead of the system's; "" for those
  std::string client_cert_file;  ///< PEM client certificate for mutual TLS; "" for none
  std::string client_key_file;   ///< its PEM private key
  std::string basic_user;        ///< HTTP basic authentication; "" for none
  std::string basic_password;    ///< never logged
  /// Supplies the bearer token for each request (`renew`: the last one was refused with 401);
  /// empty for none. Wins over bearer_token.
  std::function<std::string(bool renew)> token_provider;
  /// Called with the status of every HTTP response received, retried ones included (metrics).
  std::function<void(long status)> on_status;
  /// When set and true, a failed request is not retried (a daemon that is stopping).
  const std::atomic<bool>* no_more_retries = nullptr;
  /// The process's request budget with this server, shared by every client made from these
  /// options; none: no limit.
  std::shared_ptr<RateGate> gate;
};

struct Response {
  long status = 0;
  std::string body;
  std::string retry_after;       ///< the Retry-After header, "" when absent
  std::string content_location;  ///< Content-Location (a Bulk Data status URL)
  std::string progress;          ///< X-Progress (Bulk Data)
  std::string etag;              ///< ETag (a resource's version, W/"<versionId>")
  std::string location;          ///< Location (a created resource)
  int attempts = 0;              ///< how many tries it took
};

/// Raised when a request cannot be completed: the server unreachable after every retry, or a
/// permanent refusal. The message names the method, the path (no query) and the reason.
class FhirError : public std::runtime_error {
 public:
  FhirError(const std::string& what, long status) : std::runtime_error(what), status_(status) {}
  long status() const { return status_; }  ///< 0 when no response was received

 private:
  long status_;
};

/// `s` percent-encoded for a URL query value (RFC 3986 unreserved characters kept).
std::string url_encode(const std::string& s);

class Client {
 public:
  explicit Client(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// GET a path relative to the base URL ("Patient?_count=10") or an absolute URL (a `next`
  /// link). Returns the final response (2xx, 404, 410 or 412); throws FhirError otherwise.
  Response get(const std::string& path_or_url);
  /// PUT a JSON body; same return and failure rules as get().
  Response put(const std::string& path_or_url, const std::string& body);
  /// POST a JSON body (a batch Bundle: its entries must be idempotent, since a POST is retried
  /// like any request); same return and failure rules as get().
  Response post(const std::string& path_or_url, const std::string& body);
  /// POST an application/x-www-form-urlencoded body (an OAuth token request). Returns any
  /// final response, 4xx included; throws FhirError when no response could be had.
  Response post_form(const std::string& url, const std::string& body);

  const ClientOptions& options() const { return options_; }
  /// A write with extra headers (e.g. `If-Match: W/"3"`); as get().
  Response send_with(const char* method, const std::string& path_or_url, const std::string& body,
                     std::vector<std::string> headers);
  /// DELETE a URL; as get().
  Response request_delete(const std::string& path_or_url);
  /// GET with another Accept and extra headers (e.g. "Prefer: respond-async"); as get().
  Response get_with(const std::string& url, std::string accept, std::vector<std::string> headers);
  /// GET a (large) body straight into a file at `path` rather than memory, following redirects;
  /// as get(), but the returned body is empty. The access token goes only with `send_token`, and
  /// never to another host a redirect leads to (a pre-signed storage URL).
  Response download(const std::string& url, const std::string& path, std::string accept,
                    bool send_token = true);

  /// Called before each retry with the method and path (no query), the problem and the delay.
  void on_retry(
      std::function<void(const std::string&, const std::string&, std::chrono::milliseconds)> f) {
    on_retry_ = std::move(f);
  }
  /// The retry callback, to give a second client of the same server the same one.
  const std::function<void(const std::string&, const std::string&, std::chrono::milliseconds)>&
  on_retry() const {
    return on_retry_;
  }

 private:
  Response request(const char* method, const std::string& path_or_url, const std::string* body,
                   bool form = false);
  std::string url_for(const std::string& path_or_url) const;

  ClientOptions options_;
  void* curl_;  // CURL*, kept for connection reuse
  std::function<void(const std::string&, const std::string&, std::chrono::milliseconds)> on_retry_;
  std::string accept_;                        // overrides the FHIR JSON Accept header when set
  std::vector<std::string> extra_headers_;    // for the next request only
  const std::string* download_to_ = nullptr;  // write the body to this file instead
  bool no_token_ = false;                     // the next request goes without Authorization
};

/// The path of a URL without its query, for messages (queries can hold search values).
std::string path_without_query(const std::string& url);

}  // namespace fra::fhir
