#include "adapter/daemon/http_endpoint.hpp"

#include <httplib.h>

#include <stdexcept>

namespace fra::daemon {

struct HttpEndpoint::Impl {
  httplib::Server server;
};

HttpEndpoint::HttpEndpoint(const std::string& listen, Handlers handlers)
    : impl_(std::make_unique<Impl>()) {
  const auto colon = listen.rfind(':');
  int port = -1;
  if (colon != std::string::npos) {
    try {
      port = std::stoi(listen.substr(colon + 1));
    } catch (const std::exception&) {
      port = -1;
    }
  }
  if (colon == std::string::npos || port < 0 || port > 65535)
    throw std::runtime_error("http.listen: expected host:port, got \"" + listen + "\"");
  std::string host = listen.substr(0, colon);
  if (host.size() > 1 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);

  auto& s = impl_->server;
  s.set_tcp_nodelay(true);  // an answer's headers and body are not held back for an ACK
  // A notification is a wake-up, not data; a CDS Hooks call carries its patient's prefetch.
  s.set_payload_max_length(handlers.cds ? 32 << 20 : 1 << 20);
  s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  s.Get("/readyz", [h = handlers](const httplib::Request&, httplib::Response& res) {
    auto r = h.ready();
    res.status = r.ready ? 200 : 503;
    res.set_content(r.detail, "text/plain");
  });
  s.Get("/metrics", [h = handlers](const httplib::Request&, httplib::Response& res) {
    res.set_content(h.metrics(), "text/plain; version=0.0.4; charset=utf-8");
  });
  s.Post(R"(/notify(?:/([A-Za-z]+))?)",
         [h = handlers](const httplib::Request& req, httplib::Response& res) {
           const std::string type = req.matches.size() > 1 ? std::string(req.matches[1]) : "";
           res.status = h.notify(type, req.get_header_value("X-Fra-Secret"), req.body);
         });
  if (handlers.cds) {
    auto reply = [](httplib::Response& res, const JsonReply& r) {
      res.status = r.status;
      res.set_content(r.body, "application/json");
    };
    s.Get("/cds-services",
          [h = handlers, reply](const httplib::Request& req, httplib::Response& res) {
            reply(res, h.cds("discovery", "", req.get_header_value("Authorization"), ""));
          });
    s.Post(R"(/cds-services/([A-Za-z0-9._-]+)(/feedback)?)",
           [h = handlers, reply](const httplib::Request& req, httplib::Response& res) {
             reply(res, h.cds(req.matches[2].length() > 0 ? "feedback" : "call", req.matches[1],
                              req.get_header_value("Authorization"), req.body));
           });
    s.Post(R"(/score/([A-Za-z0-9._-]+))", [h = handlers, reply](const httplib::Request& req,
                                                                httplib::Response& res) {
      reply(res, h.cds("score", req.matches[1], req.get_header_value("Authorization"), req.body));
    });
  }
  port_ = port == 0 ? s.bind_to_any_port(host) : (s.bind_to_port(host, port) ? port : -1);
  if (port_ < 0) throw std::runtime_error("http.listen: cannot listen on " + listen);
  thread_ = std::thread([this] { impl_->server.listen_after_bind(); });
}

HttpEndpoint::~HttpEndpoint() {
  impl_->server.stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace fra::daemon
