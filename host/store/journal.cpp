#include "store/journal.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

namespace jepa::store {

namespace fs = std::filesystem;

namespace {

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// JSON has no NaN: nlohmann writes it as null, and null reads back as NaN.
nlohmann::json number(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}
double number_of(const nlohmann::json& j) {
  return j.is_number() ? j.get<double>() : std::numeric_limits<double>::quiet_NaN();
}

nlohmann::json read_json_file(const fs::path& p) {
  std::ifstream in(p);
  if (!in) return nullptr;
  return nlohmann::json::parse(in, nullptr, false);
}

}  // namespace

JournalChunk read_journal(const fs::path& journal, int64_t offset) {
  JournalChunk out;
  out.end = offset;
  std::ifstream in(journal, std::ios::binary);
  if (!in) return out;
  in.seekg(offset);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t start = 0;
  for (;;) {
    const size_t nl = data.find('\n', start);
    if (nl == std::string::npos) break;  // a torn last line: read again next time
    auto j = nlohmann::json::parse(data.begin() + static_cast<std::ptrdiff_t>(start),
                                   data.begin() + static_cast<std::ptrdiff_t>(nl), nullptr, false);
    if (j.is_object() && j.contains("op")) {
      out.records.push_back(std::move(j));
    } else if (nl > start) {
      ++out.unreadable;
    }
    start = nl + 1;
  }
  out.end = offset + static_cast<int64_t>(start);
  return out;
}

// ------------------------------------------------------------------ the trial's side

struct JournalRecorder::Writer {
  std::mutex mutex;
  int fd = -1;
  fs::path path;
  ~Writer() {
    if (fd >= 0) ::close(fd);
  }
};

JournalRecorder::JournalRecorder(const fs::path& folder) : folder_(folder) {
  const auto trial = read_json_file(folder / "trial.json");
  if (!trial.is_object() || !trial.contains("run_id")) {
    throw StoreError(
        fmt::format("journal {}: no trial.json with a run_id (the sweep host writes it)", folder.string()));
  }
  run_id_ = trial.at("run_id").get<int64_t>();
  pruning_ = trial.value("pruning", std::string());
  sweep_ = trial.value("sweep", std::string());
  writer_ = std::make_shared<Writer>();
  writer_->path = folder / "journal.jsonl";
  // O_APPEND: every record is one write() at the end, whole, even on network file systems that
  // honour it; the trial is the only writer of its journal.
  writer_->fd = ::open(writer_->path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (writer_->fd < 0) {
    throw StoreError(fmt::format("journal {}: cannot open: {}", writer_->path.string(), std::strerror(errno)));
  }
}

JournalRecorder::JournalRecorder(const fs::path& folder, std::shared_ptr<Writer> writer)
    : folder_(folder), writer_(std::move(writer)) {
  const auto trial = read_json_file(folder / "trial.json");
  run_id_ = trial.value("run_id", int64_t{0});
  pruning_ = trial.value("pruning", std::string());
  sweep_ = trial.value("sweep", std::string());
}

JournalRecorder::~JournalRecorder() = default;

void JournalRecorder::check_run(int64_t run) const {
  if (run != run_id_) {
    throw StoreError(fmt::format("journal {}: records run {}, not run {}", folder_.string(), run_id_, run));
  }
}

void JournalRecorder::append(nlohmann::json record) {
  record["t"] = unix_now();
  const std::string line = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::lock_guard<std::mutex> lock(writer_->mutex);
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(writer_->fd, line.data() + done, line.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw StoreError(fmt::format("journal {}: write failed: {}", writer_->path.string(), std::strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
  // Durable per record (a batch of metric points is one record), as a committed transaction is.
  if (::fdatasync(writer_->fd) != 0 && errno != EINVAL) {
    throw StoreError(fmt::format("journal {}: fsync failed: {}", writer_->path.string(), std::strerror(errno)));
  }
}

std::optional<nlohmann::json> JournalRecorder::created() const {
  for (auto& r : read_journal(folder_ / "journal.jsonl").records) {
    if (r.at("op") == "create_run") return r;
  }
  return std::nullopt;
}

int64_t JournalRecorder::create_run(const std::string& name, const std::string& config_json,
                                    const std::string& config_path, uint64_t seed, std::optional<int64_t>,
                                    std::optional<TrialRef>) {
  // The host created the run (and linked it to its trial) before submitting the job; this
  // record fills in what only the trial knows.
  append({{"op", "create_run"},
          {"name", name},
          {"config_json", config_json},
          {"config_path", config_path},
          {"seed", seed}});
  return run_id_;
}

void JournalRecorder::set_params(int64_t run, const std::map<std::string, std::string>& params) {
  check_run(run);
  append({{"op", "set_params"}, {"params", params}});
}

void JournalRecorder::set_environment(int64_t run, const std::map<std::string, std::string>& env) {
  check_run(run);
  append({{"op", "set_environment"}, {"env", env}});
}

void JournalRecorder::add_plugins(int64_t run, const std::vector<PluginRecord>& plugins) {
  check_run(run);
  nlohmann::json list = nlohmann::json::array();
  for (const auto& p : plugins) {
    list.push_back({p.role, p.component_id, p.component_version, p.plugin_name, p.plugin_version, p.path, p.sha256,
                    p.fingerprint});
  }
  append({{"op", "add_plugins"}, {"plugins", list}});
}

void JournalRecorder::log_metrics(int64_t run, const std::vector<MetricPoint>& points) {
  check_run(run);
  if (points.empty()) return;
  nlohmann::json list = nlohmann::json::array();
  for (const auto& p : points) list.push_back({p.key, p.step, number(p.value), p.time});
  append({{"op", "log_metrics"}, {"points", list}});
}

void JournalRecorder::add_evaluation(int64_t run, const EvaluationRecord& e) {
  check_run(run);
  append({{"op", "add_evaluation"},
          {"evaluator", e.evaluator},
          {"metric", e.metric},
          {"value", number(e.value)},
          {"step", e.step},
          {"params_json", e.params_json}});
}

void JournalRecorder::add_artifact(int64_t run, const ArtifactRecord& a) {
  check_run(run);
  append({{"op", "add_artifact"},
          {"kind", a.kind},
          {"path", a.path},
          {"step", a.step},
          {"bytes", a.bytes},
          {"sha256", a.sha256},
          {"created_at", a.created_at}});
}

void JournalRecorder::heartbeat(int64_t run, int64_t step) {
  check_run(run);
  append({{"op", "heartbeat"}, {"step", step}});
}

void JournalRecorder::reopen_run(int64_t run, int64_t from_step) {
  check_run(run);
  append({{"op", "reopen_run"}, {"from_step", from_step}});
}

void JournalRecorder::finish_run(int64_t run, RunStatus status, const std::string& reason) {
  check_run(run);
  if (status == RunStatus::running) throw StoreError("finish_run needs an end status, not RUNNING");
  append({{"op", "finish_run"}, {"status", status_name(status)}, {"reason", reason}});
}

// Reads answer from the journal itself: what the trial recorded is what a resume needs.
std::map<std::string, std::string> JournalRecorder::environment(int64_t run) const {
  check_run(run);
  std::map<std::string, std::string> env;
  for (const auto& r : read_journal(folder_ / "journal.jsonl").records) {
    if (r.at("op") != "set_environment") continue;
    for (const auto& [k, v] : r.at("env").items()) env[k] = v.get<std::string>();
  }
  return env;
}

std::optional<ArtifactRecord> JournalRecorder::latest_artifact(int64_t run, const std::string& kind) const {
  check_run(run);
  std::optional<ArtifactRecord> best;
  for (const auto& r : read_journal(folder_ / "journal.jsonl").records) {
    if (r.at("op") != "add_artifact" || r.at("kind") != kind) continue;
    ArtifactRecord a{kind,
                     r.at("path").get<std::string>(),
                     r.at("step").get<int64_t>(),
                     r.at("bytes").get<int64_t>(),
                     r.value("sha256", std::string()),
                     r.value("created_at", std::string())};
    if (!best || a.step >= best->step) best = a;
  }
  return best;
}

std::vector<MetricPoint> JournalRecorder::metrics(int64_t run, const std::string& key) const {
  check_run(run);
  std::map<int64_t, std::vector<MetricPoint>> by_step;
  for (const auto& r : read_journal(folder_ / "journal.jsonl").records) {
    const auto& op = r.at("op");
    if (op == "reopen_run") {
      // As Store::reopen_run: what came after the checkpoint it resumes from is gone.
      by_step.erase(by_step.upper_bound(r.at("from_step").get<int64_t>()), by_step.end());
    } else if (op == "log_metrics") {
      for (const auto& p : r.at("points")) {
        if (p.at(0) != key) continue;
        const int64_t step = p.at(1).get<int64_t>();
        by_step[step].push_back(MetricPoint{key, step, number_of(p.at(2)), p.at(3).get<double>()});
      }
    }
  }
  std::vector<MetricPoint> out;
  for (auto& [step, points] : by_step) out.insert(out.end(), points.begin(), points.end());
  return out;
}

std::string JournalRecorder::sweep_spec_json(int64_t run) const {
  check_run(run);
  if (pruning_.empty()) return {};
  const auto snap = read_json_file(pruning_);
  return snap.is_object() && snap.contains("spec") ? snap.at("spec").dump() : std::string();
}

TrialHistories JournalRecorder::other_trials(int64_t run, const std::string& metric) const {
  check_run(run);
  TrialHistories out;
  if (pruning_.empty()) return out;
  const auto snap = read_json_file(pruning_);
  if (!snap.is_object() || snap.value("metric", std::string()) != metric || !snap.contains("trials")) return out;
  for (const auto& [id, points] : snap.at("trials").items()) {
    const int64_t other = std::stoll(id);
    if (other == run) continue;
    for (const auto& p : points) out[other][p.at(0).get<int64_t>()] = number_of(p.at(1));
  }
  return out;
}

fs::path JournalRecorder::run_folder(int64_t) const {
  return folder_ / "run";
}

std::function<std::unique_ptr<Recorder>()> JournalRecorder::another() const {
  // The same file and lock: one writer per journal, whichever thread records.
  return [folder = folder_, writer = writer_]() -> std::unique_ptr<Recorder> {
    return std::unique_ptr<Recorder>(new JournalRecorder(folder, writer));
  };
}

std::string JournalRecorder::describe() const {
  return fmt::format("records in {} (the sweep host takes them into its database)", writer_->path.string());
}

// ------------------------------------------------------------------ the host's side

Intake take_in_journal(Store& store, const fs::path& journal, int64_t run, int64_t offset,
                       const std::function<void(int64_t)>& save_offset) {
  JournalChunk chunk = read_journal(journal, offset);
  Intake in;
  in.offset = chunk.end;
  if (chunk.end == offset) return in;
  if (chunk.unreadable > 0) {
    fmt::print(stderr, "warning: {}: {} unreadable line(s) skipped\n", journal.string(), chunk.unreadable);
  }
  // One transaction for the whole chunk and its offset: a host killed half-way applies nothing,
  // and its successor reads the same records again.
  store.transaction([&] {
    in.records = 0;
    in.metrics = false;
    in.ended = false;
    for (const auto& r : chunk.records) {
      const std::string op = r.at("op").get<std::string>();
      try {
        if (op == "create_run") {
          store.set_run_identity(run, r.at("name").get<std::string>(), r.at("config_json").get<std::string>(),
                                 r.at("config_path").get<std::string>(), r.at("seed").get<uint64_t>());
        } else if (op == "set_params") {
          store.set_params(run, r.at("params").get<std::map<std::string, std::string>>());
        } else if (op == "set_environment") {
          store.set_environment(run, r.at("env").get<std::map<std::string, std::string>>());
        } else if (op == "add_plugins") {
          std::vector<PluginRecord> plugins;
          for (const auto& p : r.at("plugins")) {
            plugins.push_back({p.at(0), p.at(1), p.at(2), p.at(3), p.at(4), p.at(5), p.at(6), p.at(7)});
          }
          store.add_plugins(run, plugins);
        } else if (op == "log_metrics") {
          std::vector<MetricPoint> points;
          for (const auto& p : r.at("points")) {
            points.push_back(MetricPoint{p.at(0), p.at(1), number_of(p.at(2)), p.at(3)});
          }
          store.log_metrics(run, points);
          in.metrics = true;
        } else if (op == "add_evaluation") {
          store.add_evaluation(
              run, {r.at("evaluator"), r.at("metric"), number_of(r.at("value")), r.at("step"), r.at("params_json")});
        } else if (op == "add_artifact") {
          store.add_artifact(run, {r.at("kind"), r.at("path"), r.at("step"), r.at("bytes"),
                                   r.value("sha256", std::string()), r.value("created_at", std::string())});
        } else if (op == "heartbeat") {
          store.heartbeat(run, r.at("step").get<int64_t>());
        } else if (op == "reopen_run") {
          store.reopen_run(run, r.at("from_step").get<int64_t>());
        } else if (op == "finish_run") {
          store.finish_run(run, status_from_name(r.at("status").get<std::string>()), r.value("reason", std::string()));
          in.ended = true;
        } else {
          fmt::print(stderr, "warning: {}: unknown record '{}' skipped\n", journal.string(), op);
          continue;
        }
      } catch (const nlohmann::json::exception& e) {
        // A record this version cannot read is reported and skipped, never a stuck sweep.
        fmt::print(stderr, "warning: {}: a '{}' record was skipped: {}\n", journal.string(), op, e.what());
        continue;
      }
      ++in.records;
    }
    save_offset(chunk.end);
  });
  return in;
}

void write_pruning_snapshot(const fs::path& path, const std::string& spec_json, const TrialHistories& histories) {
  const auto spec = nlohmann::json::parse(spec_json, nullptr, false);
  nlohmann::json trials = nlohmann::json::object();
  for (const auto& [run, points] : histories) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& [step, value] : points) list.push_back({step, number(value)});
    trials[std::to_string(run)] = list;
  }
  nlohmann::json snap{{"spec", spec}, {"trials", trials}};
  snap["metric"] = spec.is_object() && spec.contains("pruning") ? spec["pruning"].value("metric", "") : "";
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << snap.dump();
    if (!out) throw StoreError(fmt::format("cannot write {}", tmp.string()));
  }
  fs::rename(tmp, path);
}

}  // namespace jepa::store
