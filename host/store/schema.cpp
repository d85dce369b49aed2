// The results store's schema and its migrations, and opening a database (read-write, migrated
// under an exclusive transaction, or read-only).
#include "store/sqlite_util.hpp"

namespace jepa::store {

using namespace detail;

namespace {

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

}  // namespace

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

}  // namespace jepa::store
