// The data behind the pages of `jepa ui`, as JSON, independent of HTTP: each call opens the
// results database read-only (a fresh connection sees what running jobs wrote last), and every
// value from a request reaches SQL only as a bound parameter, through the query room.
#pragma once

#include "ui/engine.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace jepa::store {
class Store;
}

namespace jepa::ui {

// A request the API refuses: `status` is the HTTP status (400 bad request, 404 not found).
struct HttpError : std::runtime_error {
  HttpError(int status, const std::string& message) : std::runtime_error(message), status(status) {}
  int status;
};

// Query parameters as the request gave them (decoded, repeatable).
using Params = std::multimap<std::string, std::string>;

class Api {
 public:
  Api(std::filesystem::path db, Engine engine);
  ~Api();

  // GET /api/runs?where=&sort=&sweep=&status=&limit=&params=&metrics=: the `jepa runs` table with
  // its columns, status and sweep facets (counts over the `where` selection) and stale RUNNING
  // runs (no heartbeat for a minute) marked.
  nlohmann::json runs(const Params& p) const;
  // GET /api/runs/RUN: `jepa show --json` of one run, plus heartbeat age.
  nlohmann::json run(const std::string& run, const Params& p) const;
  // GET /api/runs/RUN/metrics?key=&points=: every (or the named) metric's curve, downsampled.
  nlohmann::json run_metrics(const std::string& run, const Params& p) const;
  // GET /api/curves?runs=&key=&points=: one metric of several runs, for overlaying (a long run
  // is read at every k-th step when it would otherwise read far more points than it shows).
  nlohmann::json curves(const Params& p) const;
  // GET /api/compare?runs=&sweep=&where=&group_by=&metric=&baseline=&any_status=: `jepa compare
  // --json` plus the text table it prints and the parameters a grouping can use.
  nlohmann::json compare(const Params& p) const;
  // GET /api/sweeps: every sweep with its progress.
  nlohmann::json sweeps(const Params& p) const;
  // GET /api/sweeps/SWEEP?metric=&mode=: progress, best so far, each swept parameter against
  // the metric (mean and 95% CI per value), trials and the pruning decisions with reasons.
  nlohmann::json sweep(const std::string& sweep, const Params& p) const;
  // GET /api/masking: the masking strategies the plugins offer, with their parameters.
  nlohmann::json masking(const Params& p);
  // GET /api/masks?strategy=&grid=&batch=&seed=&step=&set=KEY=VALUE: `jepa masks --json` and its
  // PNG (a data: URL).
  nlohmann::json masks(const Params& p);

  const std::filesystem::path& db() const { return db_; }

 private:
  // A read-only connection for one request, back to the pool afterwards: a connection keeps
  // SQLite's page cache warm across requests, and each query still reads the newest commit.
  std::shared_ptr<const store::Store> open() const;

  std::filesystem::path db_;
  mutable std::mutex pool_mutex_;
  mutable std::vector<std::unique_ptr<store::Store>> pool_;
  Engine engine_;
  std::mutex cache_mutex_;
  nlohmann::json masking_;  // null until asked once: plugins do not change while serving
  std::map<std::string, nlohmann::json> masks_cache_;
};

}  // namespace jepa::ui
