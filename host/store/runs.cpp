// Runs: creating, describing (params, environment, plugins), following (heartbeats, stale runs)
// and ending them, and reading them back.
#include "store/sqlite_util.hpp"

namespace jepa::store {

using namespace detail;

const char* status_name(RunStatus s) {
  switch (s) {
    case RunStatus::running:
      return "RUNNING";
    case RunStatus::completed:
      return "COMPLETED";
    case RunStatus::failed:
      return "FAILED";
    case RunStatus::killed:
      return "KILLED";
    case RunStatus::pruned:
      return "PRUNED";
  }
  return "RUNNING";
}

RunStatus status_from_name(const std::string& name) {
  for (RunStatus s :
       {RunStatus::running, RunStatus::completed, RunStatus::failed, RunStatus::killed, RunStatus::pruned}) {
    if (name == status_name(s)) return s;
  }
  throw StoreError(
      fmt::format("unknown run status '{}' (expected RUNNING, COMPLETED, FAILED, KILLED or PRUNED)", name));
}

int64_t Store::create_run(const std::string& name, const std::string& config_json, const std::string& config_path,
                          uint64_t seed, std::optional<int64_t> resumed_from, std::optional<TrialRef> trial) {
  Conn c{db_.get(), &path_};
  return write_transaction(c, [&] {
    if (trial) {
      // A trial gets one run, ever: a second would duplicate its results.
      Statement q(c, "SELECT run_id FROM sweep_trials WHERE sweep_id = ? AND trial_index = ?");
      q.bind(1, trial->sweep).bind(2, trial->index);
      if (!q.step()) {
        throw StoreError(
            fmt::format("results store {}: sweep {} has no trial {}", path_.string(), trial->sweep, trial->index));
      }
      if (!q.is_null(0)) {
        throw StoreError(fmt::format("results store {}: trial {} of sweep {} already has run {}", path_.string(),
                                     trial->index, trial->sweep, q.int64(0)));
      }
    }
    Statement s(c,
                "INSERT INTO runs (name, status, started_at, heartbeat_at, config_json, config_path, seed, "
                "last_step, resumed_from, sweep_id) VALUES (?, 'RUNNING', ?, ?, ?, ?, ?, 0, ?, ?)");
    std::string now = now_iso();
    // SQLite integers are signed; the seed's bits round-trip through the cast unchanged.
    s.bind(1, name).bind(2, now).bind(3, now).bind(4, config_json).bind(5, config_path);
    s.bind(6, static_cast<int64_t>(seed)).bind(7, resumed_from);
    s.bind(8, trial ? std::optional<int64_t>(trial->sweep) : std::nullopt).run();
    const auto id = static_cast<int64_t>(sqlite3_last_insert_rowid(c.db));
    if (trial) {
      Statement u(c, "UPDATE sweep_trials SET run_id = ? WHERE sweep_id = ? AND trial_index = ?");
      u.bind(1, id).bind(2, trial->sweep).bind(3, trial->index).run();
    }
    return id;
  });
}

void Store::set_run_identity(int64_t run, const std::string& name, const std::string& config_json,
                             const std::string& config_path, uint64_t seed) {
  Conn c{db_.get(), &path_};
  write_transaction(c, [&] {
    Statement s(c, "UPDATE runs SET name = ?, config_json = ?, config_path = ?, seed = ? WHERE id = ?");
    s.bind(1, name).bind(2, config_json).bind(3, config_path).bind(4, static_cast<int64_t>(seed)).bind(5, run).run();
    if (sqlite3_changes(c.db) == 0) throw StoreError(fmt::format("results store {}: no run {}", path_.string(), run));
  });
}

void Store::revive_run(int64_t run) {
  Conn c{db_.get(), &path_};
  write_transaction(c, [&] {
    Statement s(c, "UPDATE runs SET status = 'RUNNING', reason = NULL, ended_at = NULL, heartbeat_at = ? WHERE id = ?");
    s.bind(1, now_iso()).bind(2, run).run();
  });
}

fs::path Store::run_folder(int64_t run) const {
  return (path_.has_parent_path() ? path_.parent_path() : fs::path(".")) / "runs" / path_.stem() / std::to_string(run);
}

std::function<std::unique_ptr<Recorder>()> Store::another() const {
  return [path = path_]() -> std::unique_ptr<Recorder> { return std::make_unique<Store>(path); };
}

std::string Store::describe() const {
  return "results in " + path_.string();
}

// A key given again replaces its earlier value; keys not given are kept, so callers may record
// parameters in several calls.
void Store::set_params(int64_t run, const std::map<std::string, std::string>& params) {
  Conn c{db_.get(), &path_};
  write_transaction(c, [&] {
    Statement s(c,
                "INSERT INTO params (run_id, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value");
    for (const auto& [key, value] : params) {
      s.reset();
      s.bind(1, run).bind(2, key).bind(3, value).run();
    }
  });
}

void Store::set_environment(int64_t run, const std::map<std::string, std::string>& env) {
  Conn c{db_.get(), &path_};
  write_transaction(c, [&] {
    Statement s(c,
                "INSERT INTO environment (run_id, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value");
    for (const auto& [key, value] : env) {
      s.reset();
      s.bind(1, run).bind(2, key).bind(3, value).run();
    }
  });
}

void Store::add_plugins(int64_t run, const std::vector<PluginRecord>& plugins) {
  Conn c{db_.get(), &path_};
  write_transaction(c, [&] {
    Statement s(c,
                "INSERT INTO plugins (run_id, role, component_id, component_version, plugin_name, plugin_version, "
                "path, sha256, fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    for (const PluginRecord& p : plugins) {
      s.reset();
      s.bind(1, run).bind(2, p.role).bind(3, p.component_id).bind(4, p.component_version).bind(5, p.plugin_name);
      s.bind(6, p.plugin_version).bind(7, p.path).bind(8, p.sha256).bind(9, p.fingerprint).run();
    }
  });
}

void Store::heartbeat(int64_t run, int64_t step) {
  Conn c{db_.get(), &path_};
  write_transaction(c, [&] {
    Statement s(c, "UPDATE runs SET heartbeat_at = ?, last_step = MAX(last_step, ?) WHERE id = ?");
    s.bind(1, now_iso()).bind(2, step).bind(3, run).run();
    if (sqlite3_changes(c.db) == 0) throw StoreError(fmt::format("results store {}: no run {}", path_.string(), run));
  });
}

void Store::reopen_run(int64_t run, int64_t from_step) {
  Conn c{db_.get(), &path_};
  write_transaction(c, [&] {
    Statement s(c,
                "UPDATE runs SET status = 'RUNNING', reason = NULL, ended_at = NULL, heartbeat_at = ?, last_step = ? "
                "WHERE id = ?");
    s.bind(1, now_iso()).bind(2, from_step).bind(3, run).run();
    if (sqlite3_changes(c.db) == 0) throw StoreError(fmt::format("results store {}: no run {}", path_.string(), run));
    Statement m(c, "DELETE FROM metrics WHERE run_id = ? AND step > ?");
    m.bind(1, run).bind(2, from_step).run();
    Statement e(c, "DELETE FROM evaluations WHERE run_id = ? AND step > ?");
    e.bind(1, run).bind(2, from_step).run();
    rebuild_metric_summary(c, run);
  });
}

void Store::finish_run(int64_t run, RunStatus status, const std::string& reason) {
  if (status == RunStatus::running) {
    throw StoreError(
        fmt::format("results store {}: finish_run({}) needs an end status, not RUNNING", path_.string(), run));
  }
  if (status != RunStatus::completed && reason.empty()) {
    throw StoreError(fmt::format("results store {}: finishing run {} as {} needs a reason", path_.string(), run,
                                 status_name(status)));
  }
  Conn c{db_.get(), &path_};
  write_transaction(c, [&] {
    Statement s(c, "UPDATE runs SET status = ?, reason = ?, ended_at = ? WHERE id = ?");
    s.bind(1, status_name(status)).bind_text_or_null(2, reason).bind(3, now_iso()).bind(4, run).run();
    if (sqlite3_changes(c.db) == 0) throw StoreError(fmt::format("results store {}: no run {}", path_.string(), run));
  });
}

std::vector<int64_t> Store::mark_stale_runs(double stale_seconds) {
  Conn c{db_.get(), &path_};
  auto cutoff =
      Clock::now() - std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(stale_seconds));
  // ISO-8601 UTC text with fixed width compares like the time it names.
  std::string cutoff_iso = iso_utc(cutoff);
  return write_transaction(c, [&] {
    std::vector<std::pair<int64_t, std::string>> stale;
    {
      // A trial handed out by `jepa sweep ask` runs wherever its caller runs it, with no heartbeat:
      // it stays RUNNING until `jepa sweep tell`.
      Statement q(c,
                  "SELECT id, heartbeat_at FROM runs WHERE status = 'RUNNING' AND heartbeat_at < ? AND id NOT IN "
                  "(SELECT run_id FROM sweep_trials WHERE job_id = 'external' AND run_id IS NOT NULL) ORDER BY id");
      q.bind(1, cutoff_iso);
      while (q.step()) stale.emplace_back(q.int64(0), q.text(1));
    }
    // ended_at is the last moment the run was known alive, not the moment we noticed, so that
    // durations stay truthful.
    Statement u(c, "UPDATE runs SET status = 'KILLED', reason = ?, ended_at = ? WHERE id = ? AND status = 'RUNNING'");
    std::vector<int64_t> ids;
    for (const auto& [id, heartbeat_at] : stale) {
      u.reset();
      u.bind(1, "no heartbeat since " + heartbeat_at).bind(2, heartbeat_at).bind(3, id).run();
      ids.push_back(id);
    }
    return ids;
  });
}

std::optional<RunRecord> Store::find_run(int64_t id) const {
  Conn c{db_.get(), &path_};
  return with_retry(c, [&]() -> std::optional<RunRecord> {
    Statement q(c, fmt::format("SELECT {} FROM runs WHERE id = ?", kRunColumns).c_str());
    q.bind(1, id);
    if (!q.step()) return std::nullopt;
    return read_run(q);
  });
}

std::optional<RunRecord> Store::find_run(const std::string& id_or_name) const {
  bool digits = !id_or_name.empty() && id_or_name.size() <= 18 &&
                std::all_of(id_or_name.begin(), id_or_name.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
  if (digits) return find_run(static_cast<int64_t>(std::stoll(id_or_name)));
  Conn c{db_.get(), &path_};
  return with_retry(c, [&]() -> std::optional<RunRecord> {
    Statement q(c, fmt::format("SELECT {} FROM runs WHERE name = ? ORDER BY id DESC LIMIT 1", kRunColumns).c_str());
    q.bind(1, id_or_name);
    if (!q.step()) return std::nullopt;
    return read_run(q);
  });
}

std::vector<RunRecord> Store::list_runs() const {
  Conn c{db_.get(), &path_};
  return with_retry(c, [&] {
    std::vector<RunRecord> out;
    Statement q(c, fmt::format("SELECT {} FROM runs ORDER BY id", kRunColumns).c_str());
    while (q.step()) out.push_back(read_run(q));
    return out;
  });
}

namespace {
std::map<std::string, std::string> key_values(Conn c, const char* sql, int64_t run) {
  return with_retry(c, [&] {
    std::map<std::string, std::string> out;
    Statement q(c, sql);
    q.bind(1, run);
    while (q.step()) out[q.text(0)] = q.text(1);
    return out;
  });
}
}  // namespace

std::map<std::string, std::string> Store::params(int64_t run) const {
  return key_values({db_.get(), &path_}, "SELECT key, value FROM params WHERE run_id = ?", run);
}

std::map<std::string, std::string> Store::environment(int64_t run) const {
  return key_values({db_.get(), &path_}, "SELECT key, value FROM environment WHERE run_id = ?", run);
}

std::vector<PluginRecord> Store::plugins(int64_t run) const {
  Conn c{db_.get(), &path_};
  return with_retry(c, [&] {
    std::vector<PluginRecord> out;
    Statement q(c,
                "SELECT role, component_id, component_version, plugin_name, plugin_version, path, sha256, "
                "fingerprint FROM plugins WHERE run_id = ? ORDER BY rowid");
    q.bind(1, run);
    while (q.step()) {
      PluginRecord p;
      p.role = q.text(0);
      p.component_id = q.text(1);
      p.component_version = q.int64(2);
      p.plugin_name = q.text(3);
      p.plugin_version = q.text(4);
      p.path = q.text(5);
      p.sha256 = q.text(6);
      p.fingerprint = q.text(7);
      out.push_back(std::move(p));
    }
    return out;
  });
}

}  // namespace jepa::store
