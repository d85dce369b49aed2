// `jepa ui`'s web server: the pages (host/ui/static), Chart.js from its Debian package, and the
// JSON of ui/api.hpp. Read-only by construction: GET only, the database opened read-only.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace jepa::ui {

struct ServerOptions {
  std::filesystem::path db;
  std::string host = "127.0.0.1";
  int port = 8765;  // 0: any free port (see Server::port)
  std::filesystem::path static_dir;
  std::filesystem::path chartjs;
  std::filesystem::path engine;  // jepa-engine, for the masks page
  std::vector<std::string> plugin_paths;
};

// Loopback addresses (127.0.0.0/8, ::1, localhost): the only ones served without a warning, and
// the only ones where the Host header is checked (a web page elsewhere cannot then reach the
// server through DNS rebinding).
bool is_loopback(const std::string& host);

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the socket; throws std::runtime_error when the address or port cannot be had.
  void bind();
  int port() const;
  // Serves until stop() (from any thread).
  void listen();
  void stop();
  std::string url() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace jepa::ui
