#include "store/store.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>
#include <random>
#include <thread>
#include <type_traits>
#include <utility>

namespace jepa::store {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;

// Migrations are append-only: a released version's SQL never changes, a schema change is a new
// entry. Each entry runs once, in order, inside the same exclusive transaction that reads and
// writes schema_version, so concurrent openers of a fresh file cannot both apply it.
struct Migration {
  int version;
  const char* sql;
};

const Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE runs (
  id           INTEGER PRIMARY KEY,
  name         TEXT NOT NULL,
  status       TEXT NOT NULL CHECK (status IN ('RUNNING', 'COMPLETED', 'FAILED', 'KILLED', 'PRUNED')),
  reason       TEXT,
  started_at   TEXT NOT NULL,
  ended_at     TEXT,
  heartbeat_at TEXT NOT NULL,
  config_json  TEXT NOT NULL,
  config_path  TEXT NOT NULL,
  seed         INTEGER NOT NULL,
  last_step    INTEGER NOT NULL DEFAULT 0,
  resumed_from INTEGER REFERENCES runs(id),
  sweep_id     INTEGER
);
CREATE INDEX runs_by_name ON runs(name);
CREATE INDEX runs_by_status ON runs(status);

CREATE TABLE params (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  key    TEXT NOT NULL,
  value  TEXT NOT NULL,
  PRIMARY KEY (run_id, key)
);

-- value is NULL where the metric was NaN: SQLite has no NaN and stores it as NULL.
-- time is seconds since the Unix epoch; datetime(time, 'unixepoch') reads it.
CREATE TABLE metrics (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  key    TEXT NOT NULL,
  step   INTEGER NOT NULL,
  value  REAL,
  time   REAL NOT NULL
);
CREATE INDEX metrics_by_run_key_step ON metrics(run_id, key, step);

CREATE TABLE evaluations (
  run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  evaluator   TEXT NOT NULL,
  metric      TEXT NOT NULL,
  value       REAL,
  step        INTEGER NOT NULL,
  params_json TEXT NOT NULL,
  created_at  TEXT NOT NULL
);
CREATE INDEX evaluations_by_run ON evaluations(run_id, evaluator, metric, step);

CREATE TABLE artifacts (
  run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  kind       TEXT NOT NULL,
  path       TEXT NOT NULL,
  step       INTEGER NOT NULL,
  bytes      INTEGER NOT NULL,
  sha256     TEXT,
  created_at TEXT NOT NULL
);
CREATE INDEX artifacts_by_run_kind_step ON artifacts(run_id, kind, step);

CREATE TABLE environment (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  key    TEXT NOT NULL,
  value  TEXT NOT NULL,
  PRIMARY KEY (run_id, key)
);

CREATE TABLE plugins (
  run_id            INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  role              TEXT NOT NULL,
  component_id      TEXT NOT NULL,
  component_version INTEGER NOT NULL,
  plugin_name       TEXT NOT NULL,
  plugin_version    TEXT NOT NULL,
  path              TEXT NOT NULL,
  sha256            TEXT NOT NULL,
  fingerprint       TEXT NOT NULL
);
CREATE INDEX plugins_by_run ON plugins(run_id);
)sql"},
    {2, R"sql(
-- Sweeps group runs (jepa sweep); runs.sweep_id points here.
CREATE TABLE sweeps (
  id         INTEGER PRIMARY KEY,
  name       TEXT NOT NULL UNIQUE,
  status     TEXT NOT NULL DEFAULT 'RUNNING',
  created_at TEXT NOT NULL,
  spec_json  TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX runs_by_sweep ON runs(sweep_id);

-- One row per run and metric key: the value at the highest step and the range, kept current by
-- the trigger below, so listing and comparing runs never scans the metrics table.
CREATE TABLE metric_summary (
  run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  key        TEXT NOT NULL,
  last_step  INTEGER NOT NULL,
  last_value REAL,
  min_value  REAL,
  max_value  REAL,
  count      INTEGER NOT NULL,
  PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE INDEX metric_summary_by_key ON metric_summary(key, last_value);

INSERT INTO metric_summary (run_id, key, last_step, last_value, min_value, max_value, count)
SELECT m.run_id, m.key, MAX(m.step),
       (SELECT l.value FROM metrics l WHERE l.run_id = m.run_id AND l.key = m.key ORDER BY l.step DESC, l.rowid DESC LIMIT 1),
       MIN(m.value), MAX(m.value), COUNT(*)
FROM metrics m GROUP BY m.run_id, m.key;

-- NULL (a NaN) never becomes a minimum or maximum; the latest value wins ties on step.
CREATE TRIGGER metrics_to_summary AFTER INSERT ON metrics BEGIN
  INSERT INTO metric_summary (run_id, key, last_step, last_value, min_value, max_value, count)
  VALUES (NEW.run_id, NEW.key, NEW.step, NEW.value, NEW.value, NEW.value, 1)
  ON CONFLICT (run_id, key) DO UPDATE SET
    last_value = CASE WHEN excluded.last_step >= last_step THEN excluded.last_value ELSE last_value END,
    last_step  = MAX(last_step, excluded.last_step),
    min_value  = CASE WHEN excluded.min_value IS NULL THEN min_value WHEN min_value IS NULL THEN excluded.min_value
                      ELSE MIN(min_value, excluded.min_value) END,
    max_value  = CASE WHEN excluded.max_value IS NULL THEN max_value WHEN max_value IS NULL THEN excluded.max_value
                      ELSE MAX(max_value, excluded.max_value) END,
    count      = count + 1;
END;
)sql"},
    {3, R"sql(
-- The trials of a sweep, fixed when the sweep is created: resuming a sweep reads them from here,
-- never re-expands the spec. run_id is set in the same transaction that creates the trial's run.
CREATE TABLE sweep_trials (
  sweep_id       INTEGER NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,
  trial_index    INTEGER NOT NULL,
  overrides_json TEXT NOT NULL,
  run_id         INTEGER REFERENCES runs(id),
  pid            INTEGER,
  PRIMARY KEY (sweep_id, trial_index)
);
)sql"},
    {4, R"sql(
-- launcher = "slurm": each trial's latest SLURM job, the state SLURM last reported, and how many
-- bytes of the trial's journal (records written on the compute node) the host has taken in.
ALTER TABLE sweep_trials ADD COLUMN job_id TEXT;
ALTER TABLE sweep_trials ADD COLUMN job_state TEXT;
ALTER TABLE sweep_trials ADD COLUMN journal_offset INTEGER NOT NULL DEFAULT 0;
)sql"},
};

// busy_timeout makes SQLite wait for most locks, but some SQLITE_BUSY results bypass the busy
// handler (a read transaction that must upgrade, WAL recovery by another process, switching to
// WAL while another process has the file open). Those are retried from the start of the
// operation, a bounded number of times.
constexpr int kBusyTimeoutMs = 10000;
constexpr int kMaxBusyRetries = 200;

// Thrown for SQLITE_BUSY so that with_retry can tell "try again" from real failures.
struct Busy : StoreError {
  using StoreError::StoreError;
};

struct Conn {
  sqlite3* db;
  const fs::path* path;
};

[[noreturn]] void fail(Conn c, int rc, const std::string& what) {
  std::string msg = fmt::format("results store {}: {}: {} (sqlite code {})", c.path->string(), what,
                                c.db ? sqlite3_errmsg(c.db) : sqlite3_errstr(rc), rc);
  if ((rc & 0xff) == SQLITE_BUSY) throw Busy(msg);
  throw StoreError(msg);
}

struct Finalize {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, Finalize>;

// A prepared statement with 1-based bind() and 0-based column getters.
class Statement {
 public:
  Statement(Conn c, const char* sql) : c_(c) {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(c_.db, sql, -1, &raw, nullptr);
    stmt_.reset(raw);
    if (rc != SQLITE_OK) fail(c_, rc, fmt::format("preparing [{}]", sql));
  }

  Statement& bind(int i, int64_t v) { return check_bind(sqlite3_bind_int64(stmt_.get(), i, v)); }
  Statement& bind(int i, int v) { return bind(i, static_cast<int64_t>(v)); }
  Statement& bind(int i, double v) { return check_bind(sqlite3_bind_double(stmt_.get(), i, v)); }
  Statement& bind(int i, const std::string& v) {
    return check_bind(sqlite3_bind_text(stmt_.get(), i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  Statement& bind(int i, const char* v) { return bind(i, std::string(v)); }
  // Empty text and absent ids are stored as NULL so `IS NULL` works in the shell.
  Statement& bind_text_or_null(int i, const std::string& v) {
    return v.empty() ? check_bind(sqlite3_bind_null(stmt_.get(), i)) : bind(i, v);
  }
  Statement& bind(int i, std::optional<int64_t> v) {
    return v ? bind(i, *v) : check_bind(sqlite3_bind_null(stmt_.get(), i));
  }

  // True while there is a row to read.
  bool step() {
    int rc = sqlite3_step(stmt_.get());
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail(c_, rc, fmt::format("running [{}]", sqlite3_sql(stmt_.get())));
  }
  void run() {
    while (step()) {
    }
  }
  void reset() {
    sqlite3_reset(stmt_.get());
    sqlite3_clear_bindings(stmt_.get());
  }

  sqlite3_stmt* raw() const { return stmt_.get(); }
  bool is_null(int col) const { return sqlite3_column_type(stmt_.get(), col) == SQLITE_NULL; }
  int64_t int64(int col) const { return sqlite3_column_int64(stmt_.get(), col); }
  double real(int col) const {
    return is_null(col) ? std::numeric_limits<double>::quiet_NaN() : sqlite3_column_double(stmt_.get(), col);
  }
  std::string text(int col) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_.get(), col));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_.get(), col))) : std::string();
  }
  std::optional<int64_t> optional_int64(int col) const {
    return is_null(col) ? std::nullopt : std::optional<int64_t>(int64(col));
  }

 private:
  Statement& check_bind(int rc) {
    if (rc != SQLITE_OK) fail(c_, rc, fmt::format("binding a parameter of [{}]", sqlite3_sql(stmt_.get())));
    return *this;
  }
  Conn c_;
  StmtPtr stmt_;
};

// Runs fixed SQL (possibly several statements; never with values in it).
void exec(Conn c, const char* sql) {
  const char* rest = sql;
  while (rest && *rest) {
    sqlite3_stmt* raw = nullptr;
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v2(c.db, rest, -1, &raw, &tail);
    StmtPtr stmt(raw);
    if (rc != SQLITE_OK) fail(c, rc, fmt::format("preparing [{}]", rest));
    if (stmt) {
      while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
      }
      if (rc != SQLITE_DONE) fail(c, rc, fmt::format("running [{}]", sqlite3_sql(stmt.get())));
    }
    rest = tail;
  }
}

void rollback_quietly(Conn c) {
  if (!sqlite3_get_autocommit(c.db)) sqlite3_exec(c.db, "ROLLBACK", nullptr, nullptr, nullptr);
}

template <class F>
auto with_retry(Conn c, F&& f) -> decltype(f()) {
  // Inside Store::transaction: a busy database restarts the whole transaction there, not this
  // part of it here.
  if (!sqlite3_get_autocommit(c.db)) return f();
  thread_local std::minstd_rand jitter(std::random_device{}());
  for (int attempt = 0;; ++attempt) {
    try {
      return f();
    } catch (const Busy& e) {
      rollback_quietly(c);
      if (attempt >= kMaxBusyRetries) {
        throw StoreError(fmt::format("{} (still busy after {} retries)", e.what(), kMaxBusyRetries));
      }
      // Jitter keeps processes that collided from colliding again in lockstep.
      int ms = std::min(2 + attempt * 2, 50) + static_cast<int>(jitter() % 10);
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    }
  }
}

// BEGIN IMMEDIATE takes the write lock up front (and waits for it through the busy handler), so
// the transaction never has to upgrade a read lock, which is the case busy_timeout cannot cover.
template <class F>
auto write_transaction(Conn c, F&& f) -> decltype(f()) {
  // Joins the transaction of Store::transaction.
  if (!sqlite3_get_autocommit(c.db)) return f();
  return with_retry(c, [&]() -> decltype(f()) {
    exec(c, "BEGIN IMMEDIATE");
    try {
      if constexpr (std::is_void_v<decltype(f())>) {
        f();
        exec(c, "COMMIT");
      } else {
        auto result = f();
        exec(c, "COMMIT");
        return result;
      }
    } catch (...) {
      rollback_quietly(c);
      throw;
    }
  });
}

std::string iso_utc(Clock::time_point t) {
  int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
  auto frac = static_cast<int>(ms - secs * 1000);
  auto tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

std::string now_iso() {
  return iso_utc(Clock::now());
}

double now_unix_seconds() {
  return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
}

// The flush interval must not jump with wall-clock changes.
double now_steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// After metrics were deleted (the trigger only sees inserts).
void rebuild_metric_summary(Conn c, int64_t run) {
  Statement d(c, "DELETE FROM metric_summary WHERE run_id = ?");
  d.bind(1, run).run();
  Statement i(c,
              "INSERT INTO metric_summary (run_id, key, last_step, last_value, min_value, max_value, count) "
              "SELECT m.run_id, m.key, MAX(m.step), "
              "(SELECT l.value FROM metrics l WHERE l.run_id = m.run_id AND l.key = m.key "
              "ORDER BY l.step DESC, l.rowid DESC LIMIT 1), MIN(m.value), MAX(m.value), COUNT(*) "
              "FROM metrics m WHERE m.run_id = ? GROUP BY m.run_id, m.key");
  i.bind(1, run).run();
}

const char* kRunColumns =
    "id, name, status, reason, started_at, ended_at, heartbeat_at, config_json, config_path, seed, last_step, "
    "resumed_from, sweep_id";

RunRecord read_run(const Statement& s) {
  RunRecord r;
  r.id = s.int64(0);
  r.name = s.text(1);
  r.status = status_from_name(s.text(2));
  r.reason = s.text(3);
  r.started_at = s.text(4);
  r.ended_at = s.text(5);
  r.heartbeat_at = s.text(6);
  r.config_json = s.text(7);
  r.config_path = s.text(8);
  r.seed = static_cast<uint64_t>(s.int64(9));
  r.last_step = s.int64(10);
  r.resumed_from = s.optional_int64(11);
  r.sweep_id = s.optional_int64(12);
  return r;
}

}  // namespace

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

void Store::Close::operator()(sqlite3* db) const {
  sqlite3_close_v2(db);
}

Store::Store(const fs::path& path, OpenMode mode) : path_(path) {
  if (mode == OpenMode::read_only) {
    open_read_only();
    return;
  }
  if (path_.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(path_.parent_path(), ec);
    if (ec) {
      throw StoreError(fmt::format("results store {}: cannot create folder {}: {}", path_.string(),
                                   path_.parent_path().string(), ec.message()));
    }
  }
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path_.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  db_.reset(raw);  // owns the handle even when opening failed
  Conn c{db_.get(), &path_};
  if (rc != SQLITE_OK) fail(c, rc, "opening");
  sqlite3_extended_result_codes(c.db, 1);
  sqlite3_busy_timeout(c.db, kBusyTimeoutMs);

  // WAL lets readers and one writer proceed together across processes; NORMAL sync is durable
  // against process crashes (the case that matters here) and much faster than FULL.
  with_retry(c, [&] { exec(c, "PRAGMA journal_mode=WAL"); });
  with_retry(c, [&] { exec(c, "PRAGMA synchronous=NORMAL"); });
  // Outside any transaction: inside one this pragma is silently ignored.
  with_retry(c, [&] { exec(c, "PRAGMA foreign_keys=ON"); });

  write_transaction(c, [&] {
    exec(c, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
    int current = 0;
    {
      Statement q(c, "SELECT MAX(version) FROM schema_version");
      if (q.step() && !q.is_null(0)) current = static_cast<int>(q.int64(0));
    }
    if (current > latest_schema_version()) {
      throw StoreError(
          fmt::format("results store {}: database schema version {} is newer than this program supports (version {}); "
                      "use a newer jepa or another database",
                      path_.string(), current, latest_schema_version()));
    }
    if (current == latest_schema_version()) return;
    for (const Migration& m : kMigrations) {
      if (m.version > current) exec(c, m.sql);
    }
    exec(c, "DELETE FROM schema_version");
    Statement ins(c, "INSERT INTO schema_version (version) VALUES (?)");
    ins.bind(1, latest_schema_version()).run();
  });
}

void Store::open_read_only() {
  sqlite3* raw = nullptr;
  // No SQLITE_OPEN_CREATE: a mistyped path is an error, not a new empty database.
  int rc = sqlite3_open_v2(path_.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr);
  db_.reset(raw);
  Conn c{db_.get(), &path_};
  if (rc != SQLITE_OK) fail(c, rc, "opening read-only");
  sqlite3_extended_result_codes(c.db, 1);
  sqlite3_busy_timeout(c.db, kBusyTimeoutMs);
  with_retry(c, [&] { exec(c, "PRAGMA query_only=ON"); });
  // Readers are long-lived and read many runs' curves: a 64 MiB page cache (not 2) keeps them
  // from reading the same pages again.
  with_retry(c, [&] { exec(c, "PRAGMA cache_size=-65536"); });
  const int current = with_retry(c, [&] {
    Statement q(c, "SELECT MAX(version) FROM schema_version");
    return q.step() && !q.is_null(0) ? static_cast<int>(q.int64(0)) : 0;
  });
  if (current != latest_schema_version()) {
    throw StoreError(fmt::format("results store {}: database schema version {}, this program reads version {}{}",
                                 path_.string(), current, latest_schema_version(),
                                 current < latest_schema_version()
                                     ? " (any writing command, e.g. `jepa runs --db PATH`, migrates it)"
                                     : "; use a newer jepa"));
  }
}

Store::~Store() = default;

int Store::latest_schema_version() {
  return std::end(kMigrations)[-1].version;
}

int Store::schema_version() const {
  Conn c{db_.get(), &path_};
  return with_retry(c, [&] {
    Statement q(c, "SELECT MAX(version) FROM schema_version");
    return q.step() && !q.is_null(0) ? static_cast<int>(q.int64(0)) : 0;
  });
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

void Store::add_sweep_trials(int64_t sweep, const std::vector<std::pair<int64_t, std::string>>& trials) {
  Conn c{db_.get(), &path_};
  write_transaction(c, [&] {
    Statement s(c, "INSERT OR IGNORE INTO sweep_trials (sweep_id, trial_index, overrides_json) VALUES (?, ?, ?)");
    for (const auto& [index, overrides] : trials) {
      s.reset();
      s.bind(1, sweep).bind(2, index).bind(3, overrides).run();
    }
  });
}

std::vector<SweepTrialRecord> Store::sweep_trials(int64_t sweep) const {
  Conn c{db_.get(), &path_};
  return with_retry(c, [&] {
    std::vector<SweepTrialRecord> out;
    Statement q(c,
                "SELECT t.trial_index, t.overrides_json, t.run_id, t.pid, r.status, r.reason, t.job_id, t.job_state, "
                "t.journal_offset "
                "FROM sweep_trials t LEFT JOIN runs r ON r.id = t.run_id WHERE t.sweep_id = ? ORDER BY t.trial_index");
    q.bind(1, sweep);
    while (q.step()) {
      SweepTrialRecord t;
      t.index = q.int64(0);
      t.overrides_json = q.text(1);
      t.run_id = q.optional_int64(2);
      t.pid = q.optional_int64(3);
      if (!q.is_null(4)) t.status = status_from_name(q.text(4));
      t.reason = q.text(5);
      t.job_id = q.text(6);
      t.job_state = q.text(7);
      t.journal_offset = q.int64(8);
      out.push_back(std::move(t));
    }
    return out;
  });
}

void Store::set_trial_pid(int64_t sweep, int64_t index, std::optional<int64_t> pid) {
  Conn c{db_.get(), &path_};
  write_transaction(c, [&] {
    Statement s(c, "UPDATE sweep_trials SET pid = ? WHERE sweep_id = ? AND trial_index = ?");
    s.bind(1, pid).bind(2, sweep).bind(3, index).run();
  });
}

void Store::set_trial_job(int64_t sweep, int64_t index, const std::string& job_id, const std::string& job_state) {
  Conn c{db_.get(), &path_};
  write_transaction(c, [&] {
    Statement s(c, "UPDATE sweep_trials SET job_id = ?, job_state = ? WHERE sweep_id = ? AND trial_index = ?");
    s.bind_text_or_null(1, job_id).bind_text_or_null(2, job_state).bind(3, sweep).bind(4, index).run();
  });
}

void Store::set_trial_journal_offset(int64_t sweep, int64_t index, int64_t offset) {
  Conn c{db_.get(), &path_};
  write_transaction(c, [&] {
    Statement s(c, "UPDATE sweep_trials SET journal_offset = ? WHERE sweep_id = ? AND trial_index = ?");
    s.bind(1, offset).bind(2, sweep).bind(3, index).run();
  });
}

void Store::transaction(const std::function<void()>& f) {
  Conn c{db_.get(), &path_};
  write_transaction(c, f);
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

std::string Store::sweep_spec_json(int64_t run) const {
  const auto r = find_run(run);
  if (!r || !r->sweep_id) return {};
  const auto sweep = find_sweep(std::to_string(*r->sweep_id));
  return sweep ? sweep->spec_json : std::string();
}

TrialHistories Store::other_trials(int64_t run, const std::string& metric) const {
  TrialHistories out;
  const auto r = find_run(run);
  if (!r || !r->sweep_id) return out;
  query(
      "SELECT m.run_id, m.step, m.value FROM metrics m WHERE m.key = ? AND m.run_id IN "
      "(SELECT id FROM runs WHERE sweep_id = ? AND id != ?)",
      {metric, *r->sweep_id, run}, [&](const Row& row) { out[row.int64(0)][row.int64(1)] = row.real(2); });
  return out;
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

void Store::set_sweep_spec(int64_t sweep, const std::string& spec_json) {
  Conn c{db_.get(), &path_};
  write_transaction(c, [&] {
    Statement s(c, "UPDATE sweeps SET spec_json = ? WHERE id = ?");
    s.bind(1, spec_json).bind(2, sweep).run();
  });
}

void Store::set_sweep_status(int64_t sweep, const std::string& status) {
  Conn c{db_.get(), &path_};
  write_transaction(c, [&] {
    Statement s(c, "UPDATE sweeps SET status = ? WHERE id = ?");
    s.bind(1, status).bind(2, sweep).run();
  });
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

void Store::log_metrics(int64_t run, const std::vector<MetricPoint>& points) {
  if (points.empty()) return;
  Conn c{db_.get(), &path_};
  write_transaction(c, [&] {
    Statement s(c, "INSERT INTO metrics (run_id, key, step, value, time) VALUES (?, ?, ?, ?, ?)");
    int64_t max_step = points.front().step;
    for (const MetricPoint& p : points) {
      s.reset();
      s.bind(1, run).bind(2, p.key).bind(3, p.step).bind(4, p.value).bind(5, p.time).run();
      max_step = std::max(max_step, p.step);
    }
    Statement u(c, "UPDATE runs SET last_step = MAX(last_step, ?) WHERE id = ?");
    u.bind(1, max_step).bind(2, run).run();
  });
}

void Store::add_evaluation(int64_t run, const EvaluationRecord& e) {
  Conn c{db_.get(), &path_};
  write_transaction(c, [&] {
    Statement s(c,
                "INSERT INTO evaluations (run_id, evaluator, metric, value, step, params_json, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)");
    s.bind(1, run).bind(2, e.evaluator).bind(3, e.metric).bind(4, e.value).bind(5, e.step);
    s.bind(6, e.params_json).bind(7, now_iso()).run();
  });
}

void Store::add_artifact(int64_t run, const ArtifactRecord& a) {
  Conn c{db_.get(), &path_};
  write_transaction(c, [&] {
    Statement s(c,
                "INSERT INTO artifacts (run_id, kind, path, step, bytes, sha256, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)");
    s.bind(1, run).bind(2, a.kind).bind(3, a.path).bind(4, a.step).bind(5, a.bytes);
    s.bind_text_or_null(6, a.sha256).bind(7, a.created_at.empty() ? now_iso() : a.created_at).run();
    // A checkpoint counts as progress too (see RunRecord::last_step).
    Statement u(c, "UPDATE runs SET last_step = MAX(last_step, ?) WHERE id = ?");
    u.bind(1, a.step).bind(2, run).run();
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

std::vector<MetricPoint> Store::metrics(int64_t run, const std::string& key) const {
  Conn c{db_.get(), &path_};
  return with_retry(c, [&] {
    std::vector<MetricPoint> out;
    // rowid breaks ties so that a step logged twice reads back in logging order.
    Statement q(c, "SELECT step, value, time FROM metrics WHERE run_id = ? AND key = ? ORDER BY step, rowid");
    q.bind(1, run).bind(2, key);
    while (q.step()) out.push_back(MetricPoint{key, q.int64(0), q.real(1), q.real(2)});
    return out;
  });
}

std::vector<EvaluationRecord> Store::evaluations(int64_t run) const {
  Conn c{db_.get(), &path_};
  return with_retry(c, [&] {
    std::vector<EvaluationRecord> out;
    Statement q(c,
                "SELECT evaluator, metric, value, step, params_json FROM evaluations WHERE run_id = ? "
                "ORDER BY step, rowid");
    q.bind(1, run);
    while (q.step()) out.push_back(EvaluationRecord{q.text(0), q.text(1), q.real(2), q.int64(3), q.text(4)});
    return out;
  });
}

namespace {
ArtifactRecord read_artifact(const Statement& q) {
  return ArtifactRecord{q.text(0), q.text(1), q.int64(2), q.int64(3), q.text(4), q.text(5)};
}
}  // namespace

std::vector<ArtifactRecord> Store::artifacts(int64_t run) const {
  Conn c{db_.get(), &path_};
  return with_retry(c, [&] {
    std::vector<ArtifactRecord> out;
    Statement q(c,
                "SELECT kind, path, step, bytes, sha256, created_at FROM artifacts WHERE run_id = ? "
                "ORDER BY step, rowid");
    q.bind(1, run);
    while (q.step()) out.push_back(read_artifact(q));
    return out;
  });
}

std::optional<ArtifactRecord> Store::latest_artifact(int64_t run, const std::string& kind) const {
  Conn c{db_.get(), &path_};
  return with_retry(c, [&]() -> std::optional<ArtifactRecord> {
    Statement q(c,
                "SELECT kind, path, step, bytes, sha256, created_at FROM artifacts WHERE run_id = ? AND kind = ? "
                "ORDER BY step DESC, rowid DESC LIMIT 1");
    q.bind(1, run).bind(2, kind);
    if (!q.step()) return std::nullopt;
    return read_artifact(q);
  });
}

bool Row::is_null(int col) const {
  return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}
int64_t Row::int64(int col) const {
  return sqlite3_column_int64(stmt_, col);
}
double Row::real(int col) const {
  return is_null(col) ? std::numeric_limits<double>::quiet_NaN() : sqlite3_column_double(stmt_, col);
}
std::string Row::text(int col) const {
  auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
  return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col))) : std::string();
}

int64_t Store::create_sweep(const std::string& name, const std::string& spec_json) {
  Conn c{db_.get(), &path_};
  return write_transaction(c, [&] {
    {
      Statement q(c, "SELECT id FROM sweeps WHERE name = ?");
      q.bind(1, name);
      if (q.step())
        throw StoreError(fmt::format("results store {}: a sweep named '{}' exists already (id {})", path_.string(),
                                     name, q.int64(0)));
    }
    Statement s(c, "INSERT INTO sweeps (name, status, created_at, spec_json) VALUES (?, 'RUNNING', ?, ?)");
    s.bind(1, name).bind(2, now_iso()).bind(3, spec_json).run();
    return static_cast<int64_t>(sqlite3_last_insert_rowid(c.db));
  });
}

std::optional<SweepRecord> Store::find_sweep(const std::string& id_or_name) const {
  Conn c{db_.get(), &path_};
  return with_retry(c, [&]() -> std::optional<SweepRecord> {
    // A name wins over an id so that a sweep named "3" stays reachable.
    Statement q(c,
                "SELECT id, name, status, created_at, spec_json FROM sweeps WHERE name = ?1 "
                "UNION ALL SELECT id, name, status, created_at, spec_json FROM sweeps "
                "WHERE CAST(id AS TEXT) = ?1 LIMIT 1");
    q.bind(1, id_or_name);
    if (!q.step()) return std::nullopt;
    return SweepRecord{q.int64(0), q.text(1), q.text(2), q.text(3), q.text(4)};
  });
}

void Store::set_run_sweep(int64_t run, int64_t sweep) {
  Conn c{db_.get(), &path_};
  write_transaction(c, [&] {
    Statement s(c, "UPDATE runs SET sweep_id = ? WHERE id = ?");
    s.bind(1, sweep).bind(2, run).run();
    if (sqlite3_changes(c.db) == 0) throw StoreError(fmt::format("results store {}: no run {}", path_.string(), run));
  });
}

void Store::query(const std::string& sql, const std::vector<SqlValue>& binds,
                  const std::function<void(const Row&)>& on_row) const {
  Conn c{db_.get(), &path_};
  with_retry(c, [&] {
    Statement q(c, sql.c_str());
    if (!sqlite3_stmt_readonly(q.raw())) {
      throw StoreError(fmt::format("results store {}: refusing a query that writes: [{}]", path_.string(), sql));
    }
    for (size_t i = 0; i < binds.size(); ++i) {
      const int at = static_cast<int>(i) + 1;
      std::visit(
          [&](const auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::monostate>) {
              q.bind(at, std::optional<int64_t>());
            } else {
              q.bind(at, v);
            }
          },
          binds[i]);
    }
    // A busy retry restarts the query, which is only safe before the caller saw any row.
    bool delivered = false;
    for (;;) {
      bool more = false;
      try {
        more = q.step();
      } catch (const Busy& e) {
        if (delivered) throw StoreError(e.what());
        throw;
      }
      if (!more) break;
      delivered = true;
      on_row(Row(q.raw()));
    }
  });
}

MetricLogger::MetricLogger(Recorder& store, int64_t run, size_t max_points, double max_seconds)
    : store_(store), run_(run), max_points_(max_points), max_seconds_(max_seconds), last_flush_(now_steady_seconds()) {
  pending_.reserve(std::min<size_t>(max_points_, 4096));
}

MetricLogger::~MetricLogger() {
  try {
    flush();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "warning: %zu metric points of run %lld were not saved: %s\n", pending_.size(),
                 static_cast<long long>(run_), e.what());
  } catch (...) {
    std::fprintf(stderr, "warning: %zu metric points of run %lld were not saved\n", pending_.size(),
                 static_cast<long long>(run_));
  }
}

void MetricLogger::log(const std::string& key, int64_t step, double value) {
  pending_.push_back(MetricPoint{key, step, value, now_unix_seconds()});
  if (pending_.size() >= max_points_ || now_steady_seconds() - last_flush_ >= max_seconds_) flush();
}

// On failure the points stay pending, so a later flush (or the destructor) tries again.
void MetricLogger::flush() {
  if (!pending_.empty()) store_.log_metrics(run_, pending_);
  pending_.clear();
  last_flush_ = now_steady_seconds();
}

}  // namespace jepa::store
