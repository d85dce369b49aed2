// `jepa ui`: the results database in the browser. Runs in the LibTorch-free front end; the masks
// page alone asks jepa-engine (one, started with the server and kept warm: ui/engine.hpp).
#include "cli/commands.hpp"
#include "store/store.hpp"
#include "ui/engine.hpp"
#include "ui/server.hpp"
#include "ui/static_files.hpp"

#include <fmt/format.h>
#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <thread>

namespace jepa::cli {

namespace {

struct UiOptions {
  std::string db = "results/jepa.db";
  std::string host = "127.0.0.1";
  int port = 8765;
};

int run_ui(const GlobalOptions& global, const UiOptions& o) {
  if (!std::filesystem::exists(o.db)) {
    throw UsageError(fmt::format("no results database at {} (run an experiment first, or pass --db PATH)", o.db));
  }
  if (o.port < 0 || o.port > 65535) throw UsageError(fmt::format("--port must be 0-65535, got {}", o.port));
  // Refuse at once what every page would refuse (not a jepa database, an older schema).
  try {
    store::Store check(o.db, store::OpenMode::read_only);
  } catch (const store::StoreError& e) {
    throw UsageError(e.what());
  }
  ui::ServerOptions so;
  so.db = o.db;
  so.host = o.host;
  so.port = o.port;
  so.static_dir = ui::find_static_dir();
  so.chartjs = ui::find_chartjs();
  so.engine = ui::default_engine_path();
  so.plugin_paths = global.plugin_paths;

  // Ctrl-C and SIGTERM stop the server from a thread of their own; every other thread (the
  // server's pool included, started after this) keeps them blocked.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  ui::Server server(so);
  try {
    server.bind();
  } catch (const std::runtime_error& e) {
    throw UsageError(e.what());
  }
  if (!ui::is_loopback(o.host)) {
    fmt::print(stderr,
               "warning: jepa ui listens on {}: anyone who can reach this machine on port {} can read every run "
               "in {} (there is no login); the default, 127.0.0.1, serves this machine only\n",
               o.host, server.port(), o.db);
  }
  fmt::print("jepa ui: {} (read-only) at {}\nOpen it in a browser; Ctrl-C stops.\n", o.db, server.url());
  std::fflush(stdout);
  std::thread([&server, stop_signals] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    server.stop();
  }).detach();
  server.listen();
  return 0;
}

}  // namespace

Command add_ui_command(CLI::App& parent, const GlobalOptions& global) {
  auto o = std::make_shared<UiOptions>();
  auto* sub = parent.add_subcommand(
      "ui", "Browse the results database in a web browser: runs, curves, comparisons, sweeps, masks");
  sub->add_option("--db", o->db, "Results database (opened read-only)")->capture_default_str();
  sub->add_option("--port", o->port, "TCP port; 0 picks a free one")->capture_default_str();
  sub->add_option("--host", o->host,
                  "Address to listen on; anything but a loopback address serves the whole network (a warning "
                  "says so)")
      ->capture_default_str();
  sub->footer(
      "Pages:\n"
      "  /               runs: the `jepa runs` table, --where filters, sorting, status and sweep facets;\n"
      "                  tick runs and press Compare\n"
      "  /runs/ID        one run: status and reason, curves of every metric (live while RUNNING),\n"
      "                  evaluations, artifacts, plugins, environment, resolved config\n"
      "  /compare?runs=  curves overlaid and the `jepa compare` table (groups, n, mean, sd, 95% CI,\n"
      "                  difference and Welch p against the baseline); grouping chosen on the page\n"
      "  /sweeps/NAME    progress, best so far, each parameter against a metric, pruning decisions\n"
      "  /masks          a masking plugin's masks for chosen parameters and grid, as `jepa masks`\n"
      "Every page's data is JSON under /api/ (e.g. /api/runs?where=status%3Dfailed).\n"
      "Safe by default: the database is opened read-only and never written; only GET is answered;\n"
      "filters are compiled to SQL with bound values; running jobs and sweeps are never blocked.\n"
      "Examples:\n"
      "  jepa ui                                 serve results/jepa.db at http://127.0.0.1:8765/\n"
      "  jepa ui --db /shared/jepa.db --port 0   any free port (the address is printed)\n"
      "  ssh -L 8765:127.0.0.1:8765 login-node   then `jepa ui` there, open the page here");
  return {sub, [&global, o] { return run_ui(global, *o); }};
}

}  // namespace jepa::cli
