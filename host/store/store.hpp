// The results store: every run, its resolved parameters, metrics, evaluations, artifacts,
// environment and plugins, in one SQLite database that is pleasant to query with `sqlite3`.
// One writer per process; WAL and a busy timeout let many processes share a database.
#pragma once

#include "store/recorder.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace jepa::store {

struct StoreError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// RunStatus (recorder.hpp) is stored as text: 'RUNNING', 'COMPLETED', 'FAILED', 'KILLED', 'PRUNED'.

struct RunRecord {
  int64_t id = 0;
  std::string name;
  RunStatus status = RunStatus::running;
  std::string reason;        // failure/kill/prune reason; empty otherwise
  std::string started_at;    // ISO-8601 UTC, e.g. 2026-11-27T21:03:04.123Z
  std::string ended_at;      // empty while running
  std::string heartbeat_at;  // last heartbeat
  std::string config_json;   // the fully resolved config
  std::string config_path;   // the experiment file it came from
  uint64_t seed = 0;
  int64_t last_step = 0;                // highest step with a metric or checkpoint
  std::optional<int64_t> resumed_from;  // run id this run continues (jepa run --resume)
  std::optional<int64_t> sweep_id;      // the sweep this run is a trial of
};

struct SweepTrialRecord {
  int64_t index = 0;
  std::string overrides_json;  // ["optimization.lr=0.001", "run.seed=0"]
  std::optional<int64_t> run_id;
  std::optional<int64_t> pid;       // the process running it, while the sweep host knows one
  std::optional<RunStatus> status;  // of its run; none before it started
  std::string reason;
  // launcher = "slurm": the trial's latest job ("" before the first submission, "submitting"
  // while sbatch runs), the state SLURM last reported, and how far the host has taken in the
  // trial's journal (bytes).
  std::string job_id;
  std::string job_state;
  int64_t journal_offset = 0;
};

struct SweepRecord {
  int64_t id = 0;
  std::string name;
  std::string status;  // 'RUNNING', 'COMPLETED', ...
  std::string created_at;
  std::string spec_json;
};

// A value bound to a `?` of a read query: NULL, integer, real or text.
using SqlValue = std::variant<std::monostate, int64_t, double, std::string>;

// One result row of Store::query, valid only inside the callback.
class Row {
 public:
  explicit Row(sqlite3_stmt* stmt) : stmt_(stmt) {}
  bool is_null(int col) const;
  int64_t int64(int col) const;
  double real(int col) const;  // NaN for NULL
  std::string text(int col) const;

 private:
  sqlite3_stmt* stmt_;
};

// read_only: for readers that must never change the database (`jepa ui`). The file must exist
// and already have this program's schema; SQLite opens it read-only with query_only set, so even
// a bug cannot write, and under WAL such a reader never blocks a training run or sweep writing.
enum class OpenMode { read_write, read_only };

class Store final : public Recorder {
 public:
  // Opens (creating folders and the file if needed) and migrates to the newest schema. Schema
  // creation and migration happen under an exclusive transaction so that many processes may
  // open a fresh database at once. OpenMode::read_only creates and migrates nothing.
  explicit Store(const std::filesystem::path& path, OpenMode mode = OpenMode::read_write);
  ~Store() override;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  static int latest_schema_version();
  int schema_version() const;
  const std::filesystem::path& path() const { return path_; }

  // A new RUNNING run; returns its id.
  // With `trial`, the run becomes that sweep trial's run in the same transaction (a trial that
  // already has a run is an error, so a trial is never run twice).
  int64_t create_run(const std::string& name, const std::string& config_json, const std::string& config_path,
                     uint64_t seed, std::optional<int64_t> resumed_from = std::nullopt,
                     std::optional<TrialRef> trial = std::nullopt) override;
  // Flattened resolved parameters ("optimization.lr" -> "0.001"), replacing earlier ones.
  void set_params(int64_t run, const std::map<std::string, std::string>& params) override;
  void set_environment(int64_t run, const std::map<std::string, std::string>& env) override;
  void add_plugins(int64_t run, const std::vector<PluginRecord>& plugins) override;
  // All points in one transaction (callers batch; one call per ~second of training is typical).
  void log_metrics(int64_t run, const std::vector<MetricPoint>& points) override;
  void add_evaluation(int64_t run, const EvaluationRecord& e) override;
  void add_artifact(int64_t run, const ArtifactRecord& a) override;
  void heartbeat(int64_t run, int64_t step) override;
  // A stopped, killed or failed run continues (jepa run --resume): RUNNING again, no end time or
  // reason, and the metrics past `from_step` (written after the checkpoint it resumes from) are
  // dropped so that nothing is recorded twice.
  void reopen_run(int64_t run, int64_t from_step) override;
  // Ends a run; `reason` is required for FAILED, KILLED and PRUNED.
  void finish_run(int64_t run, RunStatus status, const std::string& reason = "") override;
  // A RUNNING run whose heartbeat is older than `stale_seconds` becomes KILLED with reason
  // "no heartbeat since <time>"; returns the ids it marked. Trials handed out by `jepa sweep ask`
  // (job id "external") have no heartbeat and are left alone.
  std::vector<int64_t> mark_stale_runs(double stale_seconds);

  std::optional<RunRecord> find_run(int64_t id) const;
  std::optional<RunRecord> find_run(const std::string& id_or_name) const;  // "12" or a run name (newest wins)
  std::vector<RunRecord> list_runs() const;
  std::map<std::string, std::string> params(int64_t run) const;
  std::map<std::string, std::string> environment(int64_t run) const override;
  std::vector<PluginRecord> plugins(int64_t run) const;
  std::vector<MetricPoint> metrics(int64_t run, const std::string& key) const override;  // ordered by step
  std::vector<EvaluationRecord> evaluations(int64_t run) const;
  std::vector<ArtifactRecord> artifacts(int64_t run) const;  // ordered by step
  std::optional<ArtifactRecord> latest_artifact(int64_t run, const std::string& kind) const override;
  std::string sweep_spec_json(int64_t run) const override;
  TrialHistories other_trials(int64_t run, const std::string& metric) const override;
  // <database folder>/runs/<database stem>/<id>: run ids are per database, so two databases in one
  // folder (seed0.db, seed1.db) would otherwise write each other's checkpoints.
  std::filesystem::path run_folder(int64_t run) const override;
  std::function<std::unique_ptr<Recorder>()> another() const override;
  std::string describe() const override;

  // Runs `f` in one write transaction: every Store write inside it joins it (a busy database
  // restarts `f` from the beginning, so `f` must only touch this store).
  void transaction(const std::function<void()>& f);
  // A journal's first record fills in the run that the sweep host created before submitting.
  void set_run_identity(int64_t run, const std::string& name, const std::string& config_json,
                        const std::string& config_path, uint64_t seed);
  // A run marked KILLED for a missing heartbeat that turns out to be alive (a SLURM trial whose
  // host was down): RUNNING again, nothing dropped.
  void revive_run(int64_t run);

  // Sweeps: a named group of runs.
  int64_t create_sweep(const std::string& name, const std::string& spec_json);
  std::optional<SweepRecord> find_sweep(const std::string& id_or_name) const;  // "3" or a sweep name
  void set_run_sweep(int64_t run, int64_t sweep);
  // Trials are added once, when the sweep is created (existing indices are left alone).
  void add_sweep_trials(int64_t sweep, const std::vector<std::pair<int64_t, std::string>>& trials);
  std::vector<SweepTrialRecord> sweep_trials(int64_t sweep) const;
  void set_trial_pid(int64_t sweep, int64_t index, std::optional<int64_t> pid);
  void set_trial_job(int64_t sweep, int64_t index, const std::string& job_id, const std::string& job_state);
  void set_trial_journal_offset(int64_t sweep, int64_t index, int64_t offset);
  void set_sweep_status(int64_t sweep, const std::string& status);
  void set_sweep_spec(int64_t sweep, const std::string& spec_json);

  // A read-only query for the query room (filters, tables, comparisons): the SQL is the
  // caller's fixed text, every user-supplied value goes through `binds` (never into the SQL).
  // Throws StoreError when the statement is not read-only.
  void query(const std::string& sql, const std::vector<SqlValue>& binds,
             const std::function<void(const Row&)>& on_row) const;

 private:
  struct Close {
    void operator()(sqlite3* db) const;
  };
  void open_read_only();
  std::filesystem::path path_;
  std::unique_ptr<sqlite3, Close> db_;
};

// Buffers metric points and writes them in batches (every `max_points` or `max_seconds`), and
// on flush() / destruction. Keeps per-row logging off the training hot path.
class MetricLogger {
 public:
  MetricLogger(Recorder& store, int64_t run, size_t max_points = 512, double max_seconds = 2.0);
  ~MetricLogger();  // flushes; never throws
  void log(const std::string& key, int64_t step, double value);
  void flush();

 private:
  Recorder& store_;
  int64_t run_;
  size_t max_points_;
  double max_seconds_;
  double last_flush_;
  std::vector<MetricPoint> pending_;
};

}  // namespace jepa::store
