// What each page of `jepa ui` waits for on the server, on the 1,000-run x 10,000-point database
// of bench/query_bench (generate it with that first): every data endpoint of every page, through
// HTTP on loopback, with the server's own time (its Server-Timing header) and the client's.
//
//   ./build/bench/ui_bench [--db build/bench/query_bench.db] [--repeat 20] [--engine build/jepa-engine]
#include "ui/server.hpp"
#include "ui/static_files.hpp"

#include <fmt/format.h>
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Timing {
  double server_median = 0, server_max = 0, cpu_median = 0, client_median = 0;
  size_t bytes = 0;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

Timing measure(httplib::Client& client, const std::string& path, int repeat) {
  std::vector<double> server;
  std::vector<double> cpu;
  std::vector<double> wall;
  Timing t;
  for (int i = 0; i < repeat + 1; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    auto res = client.Get(path.c_str());
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (!res || res->status != 200) {
      fmt::print(stderr, "GET {} failed: {}\n", path, res ? res->body : std::string("no answer"));
      std::exit(1);
    }
    if (i == 0) continue;  // the first read warms SQLite's page cache
    const std::string st = res->get_header_value("Server-Timing");
    server.push_back(std::stod(st.substr(st.find("app;dur=") + 8)));
    cpu.push_back(std::stod(st.substr(st.find("cpu;dur=") + 8)));
    wall.push_back(ms);
    t.bytes = res->body.size();
  }
  t.server_median = median(server);
  t.server_max = *std::max_element(server.begin(), server.end());
  t.cpu_median = median(cpu);
  t.client_median = median(wall);
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  std::string db = "build/bench/query_bench.db";
  int repeat = 20;
  std::string engine = "build/jepa-engine";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--db") db = argv[i + 1];
    if (a == "--repeat") repeat = std::stoi(argv[i + 1]);
    if (a == "--engine") engine = argv[i + 1];
  }
  if (!std::filesystem::exists(db)) {
    fmt::print(stderr, "no {}: run ./build/bench/query_bench first (it generates the database)\n", db);
    return 1;
  }
  jepa::ui::ServerOptions o;
  o.db = db;
  o.port = 0;
  o.static_dir = jepa::ui::find_static_dir();
  o.chartjs = jepa::ui::find_chartjs();
  o.engine = engine;
  jepa::ui::Server server(o);
  server.bind();
  std::thread serving([&] { server.listen(); });
  httplib::Client client("127.0.0.1", server.port());
  client.set_read_timeout(120, 0);

  std::string sweep3;
  for (int i = 301; i <= 400; ++i) sweep3 += (i > 301 ? "," : "") + std::to_string(i);
  const std::string where = httplib::detail::encode_query_param("linear_probe/top1 > 72 and optimization.lr >= 1e-3");
  const struct {
    const char* page;
    std::string path;
  } endpoints[] = {
      {"runs", "/api/runs"},
      {"runs", "/api/runs?where=" + where + "&sort=-linear_probe/top1"},
      {"runs", "/api/runs?sweep=sweep7&sort=-linear_probe/top1"},
      {"run", "/api/runs/500"},
      {"run", "/api/runs/500/metrics"},
      {"compare", "/api/compare?sweep=sweep3"},
      {"compare", "/api/curves?runs=" + sweep3 + "&key=train/loss"},
      {"sweep", "/api/sweeps"},
      {"sweep", "/api/sweeps/sweep3"},
  };
  fmt::print("{} ({} runs of the query_bench database), median of {} requests after one warm-up\n\n", db, 1000, repeat);
  fmt::print(
      "| page | endpoint | server median | server max | server CPU median | client median | bytes |\n"
      "|---|---|---|---|---|---|---|\n");
  for (const auto& e : endpoints) {
    const Timing t = measure(client, e.path, repeat);
    const std::string shown = e.path.size() > 70 ? e.path.substr(0, 67) + "..." : e.path;
    fmt::print("| {} | `{}` | {:.1f} ms | {:.1f} ms | {:.1f} ms | {:.1f} ms | {} |\n", e.page, shown, t.server_median,
               t.server_max, t.cpu_median, t.client_median, t.bytes);
  }
  // The masks page does not read the database: a warm jepa-engine (started with the server)
  // draws each picture. Every request below asks for new masks (another seed), so none is cached.
  if (std::filesystem::exists(o.engine)) {
    const auto server_ms = [](const httplib::Result& res) {
      const std::string st = res->get_header_value("Server-Timing");
      return std::stod(st.substr(st.find("app;dur=") + 8));
    };
    auto res = client.Get("/api/masking");
    if (!res || res->status != 200) {
      fmt::print(stderr, "GET /api/masking failed\n");
      return 1;
    }
    fmt::print("| masks | `/api/masking` | first {:.1f} ms (asks the warm engine), then cached | | | | {} |\n",
               server_ms(res), res->body.size());
    std::vector<double> fresh;
    size_t bytes = 0;
    for (int seed = 0; seed <= repeat; ++seed) {
      const std::string path = "/api/masks?strategy=multiblock&grid=14&batch=8&seed=" + std::to_string(seed);
      res = client.Get(path.c_str());
      if (!res || res->status != 200) {
        fmt::print(stderr, "GET {} failed: {}\n", path, res ? res->body : std::string("no answer"));
        return 1;
      }
      fresh.push_back(server_ms(res));
      bytes = res->body.size();
    }
    const double first = fresh.front();
    fmt::print(
        "| masks | `/api/masks?strategy=multiblock&grid=14&batch=8&seed=S` | first {:.1f} ms, then median {:.1f} ms, "
        "max {:.1f} ms over {} new seeds | | | | {} |\n",
        first, median({fresh.begin() + 1, fresh.end()}), *std::max_element(fresh.begin() + 1, fresh.end()),
        fresh.size() - 1, bytes);
  }
  server.stop();
  serving.join();
  return 0;
}
