// Where a run's records go. The trainer writes through this interface only, so one code path
// trains every run whether its records land in SQLite directly (store::Store, a run on the
// machine that holds the database) or in an append-only journal on a shared folder that a sweep
// host takes in (store::JournalRecorder, a SLURM trial on another node: SQLite in WAL mode must
// not be written from several hosts).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace jepa::store {

enum class RunStatus { running, completed, failed, killed, pruned };
const char* status_name(RunStatus s);
RunStatus status_from_name(const std::string& name);  // throws StoreError on unknown text

// A sweep's trial, as `jepa sweep` records it.
struct TrialRef {
  int64_t sweep = 0;
  int64_t index = 0;
};

struct MetricPoint {
  std::string key;  // "train/loss", "train/lr", "linear_probe/top1", ...
  int64_t step = 0;
  double value = 0.0;
  double time = 0.0;  // seconds since the Unix epoch
};

struct EvaluationRecord {
  std::string evaluator;  // component id, e.g. "linear_probe"
  std::string metric;     // e.g. "top1"
  double value = 0.0;
  int64_t step = 0;
  std::string params_json;  // the evaluator's resolved parameters
};

struct ArtifactRecord {
  std::string kind;  // "checkpoint", "export", "plot", ...
  std::string path;
  int64_t step = 0;
  int64_t bytes = 0;
  std::string sha256;  // may be empty
  std::string created_at;
};

struct PluginRecord {
  std::string role;          // "masking", "encoder", "predictor", "evaluator"
  std::string component_id;  // "multiblock"
  int64_t component_version = 0;
  std::string plugin_name;
  std::string plugin_version;
  std::string path;
  std::string sha256;
  std::string fingerprint;  // Fingerprint::describe()
};

// run id -> step -> value (NaN for a NaN), one metric of a sweep's other trials.
using TrialHistories = std::map<int64_t, std::map<int64_t, double>>;

class Recorder {
 public:
  virtual ~Recorder() = default;

  // The writes of a run, as store::Store documents them.
  virtual int64_t create_run(const std::string& name, const std::string& config_json, const std::string& config_path,
                             uint64_t seed, std::optional<int64_t> resumed_from = std::nullopt,
                             std::optional<TrialRef> trial = std::nullopt) = 0;
  virtual void set_params(int64_t run, const std::map<std::string, std::string>& params) = 0;
  virtual void set_environment(int64_t run, const std::map<std::string, std::string>& env) = 0;
  virtual void add_plugins(int64_t run, const std::vector<PluginRecord>& plugins) = 0;
  virtual void log_metrics(int64_t run, const std::vector<MetricPoint>& points) = 0;
  virtual void add_evaluation(int64_t run, const EvaluationRecord& e) = 0;
  virtual void add_artifact(int64_t run, const ArtifactRecord& a) = 0;
  virtual void heartbeat(int64_t run, int64_t step) = 0;
  virtual void reopen_run(int64_t run, int64_t from_step) = 0;
  virtual void finish_run(int64_t run, RunStatus status, const std::string& reason = "") = 0;

  // What resuming a run reads back.
  virtual std::map<std::string, std::string> environment(int64_t run) const = 0;
  virtual std::optional<ArtifactRecord> latest_artifact(int64_t run, const std::string& kind) const = 0;
  virtual std::vector<MetricPoint> metrics(int64_t run, const std::string& key) const = 0;

  // Sweep pruning: the sweep's stored spec (JSON text; empty when the run is no trial) and the
  // other trials' values of one metric, as far as they are known.
  virtual std::string sweep_spec_json(int64_t run) const = 0;
  virtual TrialHistories other_trials(int64_t run, const std::string& metric) const = 0;

  // The folder for a run's files when the experiment names none (checkpoints).
  virtual std::filesystem::path run_folder(int64_t run) const = 0;
  // Opens another writer to the same place, for a thread of its own (heartbeats): a store's
  // connection may be inside a transaction of the trainer's at any moment.
  virtual std::function<std::unique_ptr<Recorder>()> another() const = 0;
  // "results in results/jepa.db" or "records in FOLDER (taken in by the sweep host)".
  virtual std::string describe() const = 0;
};

}  // namespace jepa::store
