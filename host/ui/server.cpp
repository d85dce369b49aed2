#include "ui/server.hpp"

#include "store/store.hpp"
#include "ui/api.hpp"
#include "ui/static_files.hpp"

#include <fmt/format.h>
#include <httplib.h>

#include <time.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>

namespace jepa::ui {

namespace fs = std::filesystem;
using nlohmann::json;

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

namespace {

// Pages run only this server's scripts and styles: nothing injected into a run name can run.
constexpr const char* kContentSecurityPolicy =
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'";

void send_error(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(json{{"error", message}, {"status", status}}.dump(), "application/json");
}

// CPU time of the calling thread: what a request costs, apart from waiting for a busy machine.
double thread_cpu_ms() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// "127.0.0.1:8765" -> "127.0.0.1", "[::1]:80" -> "[::1]".
std::string host_of(const std::string& header) {
  if (!header.empty() && header[0] == '[') {
    const auto close = header.find(']');
    return close == std::string::npos ? header : header.substr(0, close + 1);
  }
  return header.substr(0, header.find(':'));
}

}  // namespace

struct Server::Impl {
  ServerOptions options;
  Api api;
  httplib::Server http;
  int port = 0;

  explicit Impl(ServerOptions o)
      : options(std::move(o)), api(options.db, Engine(options.engine, options.plugin_paths)) {}

  void serve_file(httplib::Response& res, const fs::path& file) {
    res.set_content(read_file(file), content_type(file).c_str());
    res.set_header("Cache-Control", "no-cache");
  }

  // Every page is page.html; common.js loads the page's own script from the address.
  void page(const char* pattern) {
    http.Get(pattern, [this](const httplib::Request&, httplib::Response& res) {
      serve_file(res, options.static_dir / "page.html");
    });
  }

  // A JSON endpoint: errors become a status with a message, and Server-Timing says how long the
  // server took, in wall time and in CPU time (what bench/ui_bench measures).
  void api_get(const char* pattern, std::function<json(const httplib::Request&)> handler) {
    http.Get(pattern, [handler](const httplib::Request& req, httplib::Response& res) {
      const auto t0 = std::chrono::steady_clock::now();
      const double cpu0 = thread_cpu_ms();
      try {
        res.set_content(handler(req).dump(), "application/json");
      } catch (const HttpError& e) {
        send_error(res, e.status, e.what());
      } catch (const store::StoreError& e) {
        send_error(res, 500, e.what());
      } catch (const std::exception& e) {
        send_error(res, 500, e.what());
      }
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      res.set_header("Server-Timing", fmt::format("app;dur={:.2f}, cpu;dur={:.2f}", ms, thread_cpu_ms() - cpu0));
      res.set_header("Cache-Control", "no-store");
    });
  }

  static Params params_of(const httplib::Request& req) { return Params(req.params.begin(), req.params.end()); }

  void routes() {
    const bool loopback = is_loopback(options.host);
    http.set_pre_routing_handler([loopback](const httplib::Request& req, httplib::Response& res) {
      res.set_header("X-Content-Type-Options", "nosniff");
      res.set_header("Content-Security-Policy", kContentSecurityPolicy);
      res.set_header("Referrer-Policy", "no-referrer");
      if (req.method != "GET" && req.method != "HEAD") {
        res.set_header("Allow", "GET, HEAD");
        send_error(res, 405, fmt::format("{} is not allowed: jepa ui is read-only", req.method));
        return httplib::Server::HandlerResponse::Handled;
      }
      if (loopback && !is_loopback(host_of(req.get_header_value("Host")))) {
        send_error(res, 403,
                   "jepa ui on a loopback address answers only requests for localhost or 127.0.0.1 "
                   "(start it with --host to serve other names)");
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });

    for (const char* pattern : {"/", "/runs/[^/]+", "/compare", "/sweeps/[^/]+", "/masks"}) page(pattern);
    http.Get("/static/(.*)", [this](const httplib::Request& req, httplib::Response& res) {
      const std::string rel = req.matches[1];
      if (!valid_static_path(rel)) {
        send_error(res, 400, "bad static path: plain file names only (no '..', hidden files or empty segments)");
        return;
      }
      const auto file = resolve_static(options.static_dir, rel);
      if (!file) {
        send_error(res, 404, "no such file");
        return;
      }
      serve_file(res, *file);
    });
    http.Get("/vendor/chart.min.js",
             [this](const httplib::Request&, httplib::Response& res) { serve_file(res, options.chartjs); });

    api_get("/api/runs", [this](const httplib::Request& req) { return api.runs(params_of(req)); });
    api_get(R"(/api/runs/([^/]+))",
            [this](const httplib::Request& req) { return api.run(req.matches[1], params_of(req)); });
    api_get(R"(/api/runs/([^/]+)/metrics)",
            [this](const httplib::Request& req) { return api.run_metrics(req.matches[1], params_of(req)); });
    api_get("/api/curves", [this](const httplib::Request& req) { return api.curves(params_of(req)); });
    api_get("/api/compare", [this](const httplib::Request& req) { return api.compare(params_of(req)); });
    api_get("/api/sweeps", [this](const httplib::Request& req) { return api.sweeps(params_of(req)); });
    api_get(R"(/api/sweeps/([^/]+))",
            [this](const httplib::Request& req) { return api.sweep(req.matches[1], params_of(req)); });
    api_get("/api/masking", [this](const httplib::Request& req) { return api.masking(params_of(req)); });
    api_get("/api/masks", [this](const httplib::Request& req) { return api.masks(params_of(req)); });

    http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (res.status == 404 && res.body.empty()) send_error(res, 404, fmt::format("nothing at {}", req.path));
      if (res.status == 400 && res.body.empty()) send_error(res, 400, "malformed request");
    });
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        send_error(res, 500, e.what());
      } catch (...) {
        send_error(res, 500, "internal error");
      }
    });
  }
};

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  impl_->routes();
}

Server::~Server() = default;

void Server::bind() {
  const auto& o = impl_->options;
  if (o.port == 0) {
    impl_->port = impl_->http.bind_to_any_port(o.host);
  } else {
    impl_->port = impl_->http.bind_to_port(o.host, o.port) ? o.port : -1;
  }
  if (impl_->port <= 0) {
    throw std::runtime_error(o.port == 0 ? fmt::format("cannot listen on {}", o.host)
                                         : fmt::format("cannot listen on {} port {} (in use? pass --port N, or "
                                                       "--port 0 for any free one)",
                                                       o.host, o.port));
  }
}

int Server::port() const {
  return impl_->port;
}

void Server::listen() {
  impl_->http.listen_after_bind();
}

void Server::stop() {
  impl_->http.stop();
}

std::string Server::url() const {
  const std::string& h = impl_->options.host;
  const std::string shown = h.find(':') != std::string::npos && h[0] != '[' ? "[" + h + "]" : h;
  return fmt::format("http://{}:{}/", shown, impl_->port);
}

}  // namespace jepa::ui
