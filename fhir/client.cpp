#include "fhir/client.hpp"

#include <curl/curl.h>
#include <fmt/format.h>

#include <cctype>
#include <cstdio>
#include <random>
#include <thread>
#include <utility>

#include "fhir/bundle.hpp"
#include "fhir/retry.hpp"

namespace fra::fhir {
namespace {

size_t on_body(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

// Keeps the response headers the client acts on: Retry-After, Content-Location, X-Progress.
size_t on_header(char* data, size_t size, size_t n, void* user) {
  std::string_view line(data, size * n);
  auto* r = static_cast<Response*>(user);
  auto take = [&](std::string_view name, std::string& into) {
    if (line.size() <= name.size()) return;
    for (size_t i = 0; i < name.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return;
    auto v = line.substr(name.size());
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' '))
      v.remove_suffix(1);
    into = std::string(v);
  };
  take("retry-after:", r->retry_after);
  take("content-location:", r->content_location);
  take("x-progress:", r->progress);
  take("etag:", r->etag);
  take("location:", r->location);
  return size * n;
}

size_t to_file(char* data, size_t size, size_t n, void* user) {
  return std::fwrite(data, size, n, static_cast<std::FILE*>(user)) * size;
}

struct GlobalInit {
  GlobalInit() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

}  // namespace

std::string path_without_query(const std::string& url) { return url.substr(0, url.find('?')); }

Client::Client(ClientOptions options) : options_(std::move(options)) {
  static GlobalInit init;
  while (!options_.base_url.empty() && options_.base_url.back() == '/')
    options_.base_url.pop_back();
  curl_ = curl_easy_init();
  if (curl_ == nullptr) throw FhirError("cannot initialise libcurl", 0);
}

Client::~Client() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

std::string Client::url_for(const std::string& p) const {
  if (p.starts_with("http://") || p.starts_with("https://")) return p;
  if (p.empty()) return options_.base_url;  // system-level interactions (batch)
  return options_.base_url + "/" + p;
}

Response Client::get(const std::string& p) { return request("GET", p, nullptr); }
Response Client::put(const std::string& p, const std::string& b) { return request("PUT", p, &b); }
Response Client::post(const std::string& p, const std::string& b) { return request("POST", p, &b); }
Response Client::post_form(const std::string& u, const std::string& b) {
  return request("POST", u, &b, true);
}

Response Client::request_delete(const std::string& p) { return request("DELETE", p, nullptr); }

Response Client::get_with(const std::string& url, std::string accept,
                          std::vector<std::string> headers) {
  accept_ = "Accept: " + accept;
  extra_headers_ = std::move(headers);
  try {
    Response r = request("GET", url, nullptr);
    accept_.clear();
    extra_headers_.clear();
    return r;
  } catch (...) {
    accept_.clear();
    extra_headers_.clear();
    throw;
  }
}

Response Client::send_with(const char* method, const std::string& p, const std::string& body,
                           std::vector<std::string> headers) {
  extra_headers_ = std::move(headers);
  try {
    Response r = request(method, p, &body);
    extra_headers_.clear();
    return r;
  } catch (...) {
    extra_headers_.clear();
    throw;
  }
}

Response Client::download(const std::string& url, const std::string& path, std::string accept,
                          bool send_token) {
  accept_ = "Accept: " + accept;
  download_to_ = &path;
  no_token_ = !send_token;
  try {
    Response r = request("GET", url, nullptr);
    accept_.clear();
    download_to_ = nullptr;
    no_token_ = false;
    return r;
  } catch (...) {
    accept_.clear();
    download_to_ = nullptr;
    no_token_ = false;
    throw;
  }
}

Response Client::request(const char* method, const std::string& path_or_url,
                         const std::string* body, bool form) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  const std::string url = url_for(path_or_url);
  const std::string where = fmt::format("{} {}", method, path_without_query(url));
  auto* curl = static_cast<CURL*>(curl_);
  std::string last_problem;
  long last_status = 0;
  bool renewed = false;     // a 401 has been answered with a new token already
  bool renew_next = false;  // the next try asks for a new token
  int max_attempts = options_.max_attempts;

  for (int attempt = 1; attempt <= max_attempts; ++attempt) {
    Response r;
    r.attempts = attempt;
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    std::FILE* file = nullptr;
    if (download_to_ != nullptr) {
      file = std::fopen(download_to_->c_str(), "wb");
      if (file == nullptr)
        throw FhirError(fmt::format("{}: cannot write {}", where, *download_to_), 0);
      curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, to_file);
      curl_easy_setopt(curl, CURLOPT_WRITEDATA, file);
      // Bulk Data files may sit behind a redirect to storage; libcurl drops the Authorization
      // header when a redirect leads to another host (CURLOPT_UNRESTRICTED_AUTH stays off).
      curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
      curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 5L);
    } else {
      curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
      curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r.body);
    }
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, options_.timeout_seconds);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, std::min(options_.timeout_seconds, 10L));
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, options_.verify_tls ? 1L : 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, options_.verify_tls ? 2L : 0L);
    if (!options_.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, options_.ca_file.c_str());
    if (!options_.client_cert_file.empty())
      curl_easy_setopt(curl, CURLOPT_SSLCERT, options_.client_cert_file.c_str());
    if (!options_.client_key_file.empty())
      curl_easy_setopt(curl, CURLOPT_SSLKEY, options_.client_key_file.c_str());
    if (!options_.basic_user.empty() && !form) {
      curl_easy_setopt(curl, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
      curl_easy_setopt(curl, CURLOPT_USERNAME, options_.basic_user.c_str());
      curl_easy_setopt(curl, CURLOPT_PASSWORD, options_.basic_password.c_str());
    }
    curl_slist* headers = nullptr;
    headers = curl_slist_append(
        headers, accept_.empty() ? "Accept: application/fhir+json" : accept_.c_str());
    for (const auto& h : extra_headers_) headers = curl_slist_append(headers, h.c_str());
    if (body != nullptr) {
      headers = curl_slist_append(headers, form ? "Content-Type: application/x-www-form-urlencoded"
                                                : "Content-Type: application/fhir+json");
      headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip before a body
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body->data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
    }
    std::string auth;
    const std::string token = no_token_ ? std::string()
                              : options_.token_provider
                                  ? options_.token_provider(std::exchange(renew_next, false))
                                  : options_.bearer_token;
    if (!token.empty()) {
      auth = "Authorization: Bearer " + token;
      headers = curl_slist_append(headers, auth.c_str());
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    CURLcode rc;
    {
      auto slot = options_.gate ? options_.gate->enter() : RateGate::Slot{};
      rc = curl_easy_perform(curl);
    }
    curl_slist_free_all(headers);
    if (file != nullptr) std::fclose(file);

    Action action;
    if (rc != CURLE_OK) {
      action = classify_transport(rc);
      last_status = 0;
      last_problem = curl_easy_strerror(rc);
    } else {
      curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
      if (options_.on_status) options_.on_status(r.status);
      action = classify_status(r.status);
      last_status = r.status;
      std::string outcome = operation_outcome_text(r.body);
      last_problem = outcome.empty() ? fmt::format("HTTP {}", r.status)
                                     : fmt::format("HTTP {}: {}", r.status, outcome);
    }
    // An expired or revoked token: ask for a new one once, then try again at once.
    if (r.status == 401 && options_.token_provider && !renewed) {
      renewed = renew_next = true;
      ++max_attempts;  // the renewal is not a retry of a server fault
      continue;
    }
    if (action == Action::done || (form && r.status >= 400 && r.status < 500)) return r;
    if (action == Action::fail)
      throw FhirError(fmt::format("{}: {}", where, last_problem), last_status);
    if (attempt == max_attempts) break;
    if (options_.no_more_retries != nullptr && options_.no_more_retries->load()) {
      max_attempts = attempt;  // stopping: the error goes up now
      break;
    }
    std::uniform_real_distribution<double> jitter(0.0, 1.0);
    auto retry_after = parse_retry_after(r.retry_after, std::chrono::system_clock::now());
    auto delay =
        backoff(attempt, options_.backoff_base, options_.backoff_cap, jitter(rng), retry_after);
    // The server asked everyone to slow down, not only this request.
    if (options_.gate && retry_after && (r.status == 429 || r.status == 503))
      options_.gate->hold_for(delay);
    if (on_retry_) on_retry_(where, last_problem, delay);
    std::this_thread::sleep_for(delay);
  }
  throw FhirError(
      fmt::format("{}: {} (gave up after {} attempts)", where, last_problem, max_attempts),
      last_status);
}

std::string url_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
      out += static_cast<char>(c);
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

}  // namespace fra::fhir
