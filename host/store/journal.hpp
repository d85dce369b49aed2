// Records of a run as an append-only journal on a shared folder, for sweep trials that run on
// other machines (launcher = "slurm"). SQLite in WAL mode needs the shared memory of one host, so
// a trial on a compute node never opens the results database: it appends what it records to
// its journal, and the sweep host, the only writer of the database, takes the journal in.
//
// Why files and not a connection to the host: a journal survives the host (kill -9, a reboot,
// a lost login node) and the trial never waits for it; a resumed host continues from the byte
// offset it stored in the same transaction as the records it applied, so nothing is applied
// twice or lost. Clusters always have a shared folder (the trial's checkpoints need one anyway).
//
// The trial's folder (written by the sweep host before it submits the trial):
//   trial.json      {"run_id": N, "pruning": "<sweep folder>/pruning.json", "sweep": "<name>"}
//   journal.jsonl   one JSON object per line, appended by the trial alone, fsync'd per record
//   run/            the trial's checkpoints (when the experiment names no checkpoint folder)
//
// A record: {"op": "<Recorder method>", "t": <unix seconds>, ...its arguments}; NaN is null. A
// line is complete once its newline is written: the host ignores a torn last line and reads it
// again at the next poll.
#pragma once

#include "store/store.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace jepa::store {

// The complete records of a journal from byte `offset`, and the offset after the last one.
struct JournalChunk {
  std::vector<nlohmann::json> records;
  int64_t end = 0;
  size_t unreadable = 0;  // complete lines that were not JSON objects (skipped)
};
JournalChunk read_journal(const std::filesystem::path& journal, int64_t offset = 0);

class JournalRecorder final : public Recorder {
 public:
  // Reads `folder`/trial.json (throws StoreError when it is missing or wrong).
  explicit JournalRecorder(const std::filesystem::path& folder);
  ~JournalRecorder() override;

  int64_t run_id() const { return run_id_; }
  const std::string& sweep_name() const { return sweep_; }
  // The journal's create_run record when the trial ran before (a requeued or resubmitted job):
  // it then continues its run instead of creating one.
  std::optional<nlohmann::json> created() const;

  int64_t create_run(const std::string& name, const std::string& config_json, const std::string& config_path,
                     uint64_t seed, std::optional<int64_t> resumed_from = std::nullopt,
                     std::optional<TrialRef> trial = std::nullopt) override;
  void set_params(int64_t run, const std::map<std::string, std::string>& params) override;
  void set_environment(int64_t run, const std::map<std::string, std::string>& env) override;
  void add_plugins(int64_t run, const std::vector<PluginRecord>& plugins) override;
  void log_metrics(int64_t run, const std::vector<MetricPoint>& points) override;
  void add_evaluation(int64_t run, const EvaluationRecord& e) override;
  void add_artifact(int64_t run, const ArtifactRecord& a) override;
  void heartbeat(int64_t run, int64_t step) override;
  void reopen_run(int64_t run, int64_t from_step) override;
  void finish_run(int64_t run, RunStatus status, const std::string& reason = "") override;

  std::map<std::string, std::string> environment(int64_t run) const override;
  std::optional<ArtifactRecord> latest_artifact(int64_t run, const std::string& kind) const override;
  std::vector<MetricPoint> metrics(int64_t run, const std::string& key) const override;
  std::string sweep_spec_json(int64_t run) const override;
  TrialHistories other_trials(int64_t run, const std::string& metric) const override;
  std::filesystem::path run_folder(int64_t run) const override;
  std::function<std::unique_ptr<Recorder>()> another() const override;
  std::string describe() const override;

 private:
  struct Writer;  // the file, shared with heartbeat threads: one writer per journal
  JournalRecorder(const std::filesystem::path& folder, std::shared_ptr<Writer> writer);
  void append(nlohmann::json record);
  void check_run(int64_t run) const;

  std::filesystem::path folder_;
  int64_t run_id_ = 0;
  std::filesystem::path pruning_;
  std::string sweep_;
  std::shared_ptr<Writer> writer_;
};

// The sweep host's side: applies the records of `journal` past `offset` to `run` in one
// transaction that also calls `save_offset` with the new offset (store it there, so a resumed
// host continues exactly where this one stopped). Returns what was taken in.
struct Intake {
  int64_t offset = 0;
  size_t records = 0;
  bool metrics = false;  // some metric points came in
  bool ended = false;    // a finish_run record came in
};
Intake take_in_journal(Store& store, const std::filesystem::path& journal, int64_t run, int64_t offset,
                       const std::function<void(int64_t)>& save_offset);

// The pruning snapshot the host writes for its trials: the sweep's spec and every trial's values
// of the pruning metric, written to a temporary file and renamed over `path` (a reader sees the
// old file or the new one, never half of one).
void write_pruning_snapshot(const std::filesystem::path& path, const std::string& spec_json,
                            const TrialHistories& histories);

}  // namespace jepa::store
