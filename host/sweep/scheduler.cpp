#include "sweep/scheduler.hpp"

#include "process/spawn.hpp"

#include "config/experiment.hpp"
#include "config/params.hpp"
#include "sweep/spec_json.hpp"

#include <fmt/format.h>
#include <torch/cuda.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <thread>

namespace jepa::sweep {

namespace fs = std::filesystem;
namespace {

std::atomic<int> g_stop{0};
extern "C" void on_stop_signal(int sig) {
  g_stop.store(sig);
}

// Parent-side SIGINT/SIGTERM for the sweep's lifetime: stop starting trials, let the running
// ones checkpoint (they get the signal too, or SIGTERM from us), then record the interruption.
class StopSignals {
 public:
  StopSignals() {
    g_stop.store(0);
    old_int_ = std::signal(SIGINT, on_stop_signal);
    old_term_ = std::signal(SIGTERM, on_stop_signal);
  }
  ~StopSignals() {
    std::signal(SIGINT, old_int_);
    std::signal(SIGTERM, old_term_);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  void (*old_int_)(int);
  void (*old_term_)(int);
};

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

std::string describe_exit(int status) {
  if (WIFEXITED(status)) return fmt::format("exit status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return fmt::format("killed by signal {} ({}){}", sig, strsignal(sig), WCOREDUMP(status) ? ", core dumped" : "");
  }
  return fmt::format("wait status {}", status);
}

// The last lines of a trial's log, on one line, for the failure reason.
std::string log_tail(const fs::path& log, size_t lines = 8, size_t max_chars = 800) {
  std::ifstream in(log);
  std::deque<std::string> tail;
  std::string line;
  while (std::getline(in, line)) {
    // Progress lines are redrawn with carriage returns: keep only their last state.
    const auto cr = line.find_last_of('\r');
    if (cr != std::string::npos) line = line.substr(cr + 1);
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    tail.push_back(line);
    if (tail.size() > lines) tail.pop_front();
  }
  std::string s = join(std::vector<std::string>(tail.begin(), tail.end()), " | ");
  if (s.size() > max_chars) s = "..." + s.substr(s.size() - max_chars);
  return s;
}

bool process_alive(int64_t pid) {
  return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
}

struct Running {
  int64_t index = 0;
  size_t slot = 0;
  fs::path log;
  double started = 0.0;
};

class Runner {
 public:
  Runner(store::Store& store, int64_t sweep_id, const nlohmann::json& spec_json, const SweepRunOptions& options)
      : store_(store), sweep_id_(sweep_id), options_(options) {
    const SweepSpec s = spec_from_json(spec_json);
    name_ = s.name;
    experiment_ = spec_json.value("experiment", std::string());
    pruning_ = s.pruning;
    const int gpus = torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
    slots_ = plan_slots(s, gpus, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
    busy_.assign(slots_.size(), false);
    log_dir_ = (options.db.has_parent_path() ? options.db.parent_path() : fs::path(".")) / "sweeps" /
               std::to_string(sweep_id) / "logs";
    fs::create_directories(log_dir_);
    tty_ = options.progress && ::isatty(STDERR_FILENO);
  }

  // True when the sweep finished; false when it was interrupted (Ctrl-C, SIGTERM).
  bool run() {
    StopSignals signals;
    reconcile();
    std::deque<int64_t> queue;
    for (const auto& t : store_.sweep_trials(sweep_id_)) {
      if (!t.status || *t.status == store::RunStatus::killed) queue.push_back(t.index);
      total_++;
    }
    fmt::print(stderr, "sweep {} (id {}): {} trials, {} to run, {} slot{} ({})\n", name_, sweep_id_, total_,
               queue.size(), slots_.size(), slots_.size() == 1 ? "" : "s", slot_labels());
    summary(true);
    while (!queue.empty() || !running_.empty()) {
      if (g_stop.load() != 0 && !stopping_) {
        stopping_ = true;
        for (const auto& [pid, r] : running_) ::kill(pid, SIGTERM);
        fmt::print(stderr, "\nstopping: the running trials checkpoint and stop; resume with: jepa sweep --resume {}\n",
                   name_);
      }
      while (!stopping_ && !queue.empty()) {
        const auto free = std::find(busy_.begin(), busy_.end(), false);
        if (free == busy_.end()) break;
        launch(queue.front(), static_cast<size_t>(free - busy_.begin()));
        queue.pop_front();
      }
      reap();
      if (stopping_ && running_.empty()) break;
      summary(false);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (tty_) fmt::print(stderr, "\n");
    const bool interrupted = stopping_ || !queue.empty();
    store_.set_sweep_status(sweep_id_, interrupted ? "INTERRUPTED" : "COMPLETED");
    const auto c = counts();
    fmt::print(stderr, "sweep {} (id {}): {} completed, {} pruned, {} failed, {} interrupted of {}{}\n", name_,
               sweep_id_, c.completed, c.pruned, c.failed, c.killed, total_,
               interrupted ? fmt::format("; resume with: jepa sweep --resume {}", name_) : "");
    if (!interrupted) fmt::print(stderr, "compare them: jepa compare --sweep {}\n", name_);
    return !interrupted;
  }

 private:
  struct Counts {
    int completed = 0, pruned = 0, failed = 0, killed = 0, running = 0, pending = 0;
  };

  std::string slot_labels() const {
    std::vector<std::string> l;
    for (const auto& s : slots_) l.push_back(s.label);
    return join(l, ", ");
  }

  // Trials left RUNNING by a sweep host that died: a still-living trial process is waited for
  // (it stops on its own: it got SIGTERM when its parent died), a vanished one is recorded as
  // KILLED so that it continues from its checkpoint.
  void reconcile() {
    store_.mark_stale_runs(60.0);
    for (const auto& t : store_.sweep_trials(sweep_id_)) {
      if (!t.run_id || t.status != store::RunStatus::running) continue;
      if (t.pid && process_alive(*t.pid)) {
        fmt::print(stderr, "waiting for trial {} (pid {}) of the previous sweep host to stop\n", t.index, *t.pid);
        const double deadline = now_seconds() + 120.0;
        while (process_alive(*t.pid) && now_seconds() < deadline) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      }
      const auto run = store_.find_run(*t.run_id);
      if (run && run->status == store::RunStatus::running) {
        store_.finish_run(*t.run_id, store::RunStatus::killed,
                          fmt::format("trial process {} ended without recording an end (sweep host killed?)",
                                      t.pid ? std::to_string(*t.pid) : std::string("?")));
      }
      store_.set_trial_pid(sweep_id_, t.index, std::nullopt);
    }
  }

  void launch(int64_t index, size_t slot) {
    const auto trials = store_.sweep_trials(sweep_id_);
    const auto& t = trials.at(static_cast<size_t>(index));
    const Slot& s = slots_[slot];
    std::vector<std::string> args{options_.engine.string(), "run"};
    if (t.run_id) {
      args.insert(args.end(), {"--resume", std::to_string(*t.run_id), "--trial-resume"});
    } else {
      args.push_back(experiment_);
      for (const auto& o : nlohmann::json::parse(t.overrides_json))
        args.insert(args.end(), {"--set", o.get<std::string>()});
      args.insert(args.end(), {"--set", fmt::format("run.threads={}", s.threads), "--set",
                               fmt::format("run.device={}", s.cuda_visible_devices.empty() ? "cpu" : "cuda"), "--set",
                               fmt::format("run.name={}-t{:03}", name_, index), "--sweep-trial",
                               fmt::format("{}:{}", sweep_id_, index)});
    }
    args.insert(args.end(), {"--db", options_.db.string()});
    if (s.ranks > 1) args.insert(args.end(), {"--nproc", std::to_string(s.ranks)});
    for (const auto& p : options_.plugin_paths) args.insert(args.end(), {"--plugin-path", p});
    const fs::path log = log_dir_ / fmt::format("trial-{:03}.log", index);

    // A trial must not outlive its sweep host: it gets SIGTERM, checkpoints and stops.
    process::ChildSpec child{
        args,
        {"CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS"},
        {"CUDA_VISIBLE_DEVICES=" + s.cuda_visible_devices, fmt::format("OMP_NUM_THREADS={}", s.threads)},
        log};
    pid_t pid = 0;
    try {
      pid = process::spawn_child(child);
    } catch (const std::exception& ex) {
      throw std::runtime_error(fmt::format("cannot start trial {}: {}", index, ex.what()));
    }
    store_.set_trial_pid(sweep_id_, index, pid);
    running_[pid] = Running{index, slot, log, now_seconds()};
    busy_[slot] = true;
    changed_ = true;
  }

  void reap() {
    for (;;) {
      int status = 0;
      const pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid <= 0) return;
      auto it = running_.find(pid);
      if (it == running_.end()) continue;
      const Running r = it->second;
      running_.erase(it);
      busy_[r.slot] = false;
      finished(r, status);
      durations_.push_back(now_seconds() - r.started);
      changed_ = true;
    }
  }

  // A trial process ended: whatever it did not record itself is recorded here, with its exit
  // status or signal and the tail of its log.
  void finished(const Running& r, int status) {
    const auto trials = store_.sweep_trials(sweep_id_);
    const auto& t = trials.at(static_cast<size_t>(r.index));
    const std::string why =
        fmt::format("trial process {}; log {}: {}", describe_exit(status), r.log.string(), log_tail(r.log));
    if (stopping_ && (!t.run_id || t.status == store::RunStatus::running)) {
      // Stopped by us before it could record anything itself: not a failure. It stays pending,
      // or KILLED, and resuming runs it (from step 0 when it had no checkpoint yet).
      if (t.run_id) {
        store_.finish_run(*t.run_id, store::RunStatus::killed,
                          fmt::format("stopped by the sweep host during start-up ({})", describe_exit(status)));
      }
    } else if (!t.run_id) {
      // It died before its run existed (a plugin or config error at start-up): a FAILED row
      // still tells the story.
      std::map<std::string, std::string> params;
      for (const auto& o : nlohmann::json::parse(t.overrides_json))
        params.insert(config::split_assignment(o.get<std::string>()));
      const int64_t seed = params.count("run.seed") ? std::stoll(params.at("run.seed")) : 0;
      const int64_t run =
          store_.create_run(fmt::format("{}-t{:03}", name_, r.index), "{}", experiment_, static_cast<uint64_t>(seed),
                            std::nullopt, store::TrialRef{sweep_id_, r.index});
      store_.set_params(run, params);
      store_.finish_run(run, store::RunStatus::failed, why);
    } else if (t.status == store::RunStatus::running) {
      store_.finish_run(*t.run_id, store::RunStatus::failed, why);
    }
    store_.set_trial_pid(sweep_id_, r.index, std::nullopt);
    const auto after = store_.sweep_trials(sweep_id_).at(static_cast<size_t>(r.index));
    if (tty_) fmt::print(stderr, "\r\033[K");
    fmt::print(stderr, "trial {:3}: {}{}\n", r.index, after.status ? store::status_name(*after.status) : "?",
               after.reason.empty() ? "" : " - " + after.reason.substr(0, 300));
  }

  Counts counts() const {
    Counts c;
    for (const auto& t : store_.sweep_trials(sweep_id_)) {
      if (!t.status) {
        ++c.pending;
        continue;
      }
      switch (*t.status) {
        case store::RunStatus::completed:
          ++c.completed;
          break;
        case store::RunStatus::pruned:
          ++c.pruned;
          break;
        case store::RunStatus::failed:
          ++c.failed;
          break;
        case store::RunStatus::killed:
          ++c.killed;
          break;
        case store::RunStatus::running:
          ++c.running;
          break;
      }
    }
    return c;
  }

  // One line: done / running / failed / pruned, the best so far on the sweep's metric, ETA.
  void summary(bool force) {
    const double now = now_seconds();
    if (!force && !changed_ && (!tty_ || now - last_summary_ < 1.0)) return;
    changed_ = false;
    last_summary_ = now;
    const Counts c = counts();
    std::string best;
    double best_value = 0.0;
    int64_t best_run = 0;
    bool have = false;
    store_.query(
        "SELECT r.id, s.last_value FROM runs r JOIN metric_summary s ON s.run_id = r.id AND s.key = ? "
        "WHERE r.sweep_id = ? AND r.status = 'COMPLETED' AND s.last_value IS NOT NULL",
        {pruning_.metric, sweep_id_}, [&](const store::Row& row) {
          const double v = row.real(1);
          if (!have || (pruning_.maximize ? v > best_value : v < best_value)) {
            best_value = v;
            best_run = row.int64(0);
            have = true;
          }
        });
    if (have) best = fmt::format(" | best {} {:.4g} (run {})", pruning_.metric, best_value, best_run);
    std::string eta;
    const int left = c.pending + c.killed + static_cast<int>(running_.size());
    if (!durations_.empty() && left > 0) {
      double mean = 0.0;
      for (double d : durations_) mean += d;
      mean /= static_cast<double>(durations_.size());
      const double waves = std::ceil(static_cast<double>(left) / static_cast<double>(slots_.size()));
      const auto s = static_cast<int64_t>(mean * waves);
      eta = fmt::format(" | ETA {}m{:02}s", s / 60, s % 60);
    }
    const std::string line = fmt::format("[sweep {}] {}/{} done: {} completed, {} pruned, {} failed | {} running{}{}",
                                         name_, c.completed + c.pruned + c.failed, total_, c.completed, c.pruned,
                                         c.failed, running_.size(), best, eta);
    if (tty_) {
      fmt::print(stderr, "\r\033[K{}", line);
    } else if (line != last_line_) {
      fmt::print(stderr, "{}\n", line);
    }
    last_line_ = line;
  }

  store::Store& store_;
  int64_t sweep_id_;
  SweepRunOptions options_;
  std::string name_;
  std::string experiment_;
  PruningSpec pruning_;
  std::vector<Slot> slots_;
  std::vector<bool> busy_;
  std::map<pid_t, Running> running_;
  std::vector<double> durations_;
  fs::path log_dir_;
  bool tty_ = false;
  bool stopping_ = false;
  bool changed_ = true;
  double last_summary_ = 0.0;
  std::string last_line_;
  int total_ = 0;
};

std::vector<Trial> validated_trials(const SweepSpec& spec, const loader::Registry& registry) {
  auto trials = expand_trials(spec);
  if (trials.empty()) throw SweepError(fmt::format("{}: the sweep expands to no trials", spec.file.string()));
  for (const auto& t : trials) {
    try {
      config::load_experiment(spec.file, t.overrides, registry);
    } catch (const config::ConfigError& e) {
      throw config::ConfigError(fmt::format("trial {} ({}): {}", t.index, join(t.overrides, " "), e.what()));
    }
  }
  return trials;
}

}  // namespace

std::vector<Slot> plan_slots(const SweepSpec& spec, int visible_gpus, int cores) {
  std::vector<Slot> slots;
  std::vector<int> gpus;
  if (spec.devices == "auto") {
    for (int i = 0; i < visible_gpus; ++i) gpus.push_back(i);
  } else if (spec.devices != "cpu") {
    size_t start = 0;
    while (start < spec.devices.size()) {
      const size_t comma = spec.devices.find(',', start);
      const std::string id = spec.devices.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      const int g = std::stoi(id);
      if (g >= visible_gpus) {
        throw SweepError(fmt::format("[sweep] devices: GPU {} is not visible ({} visible)", g, visible_gpus));
      }
      gpus.push_back(g);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  const int threads = static_cast<int>(std::max<int64_t>(1, spec.threads_per_trial));
  if (gpus.empty()) {
    const int n = std::max(1, cores / threads);
    for (int i = 0; i < n; ++i) slots.push_back({"", threads, fmt::format("cpu {}", i)});
  } else {
    const auto per = static_cast<size_t>(std::max<int64_t>(1, spec.gpus_per_trial));
    if (per > gpus.size()) {
      throw SweepError(fmt::format("[sweep] gpus_per_trial = {} but only {} GPUs are available", per, gpus.size()));
    }
    for (size_t g = 0; g + per <= gpus.size(); g += per) {
      std::vector<std::string> ids;
      for (size_t k = g; k < g + per; ++k) ids.push_back(std::to_string(gpus[k]));
      for (int64_t share = 0; share < std::max<int64_t>(1, spec.trials_per_gpu); ++share) {
        slots.push_back({join(ids, ","), threads, "gpu " + join(ids, ","), static_cast<int>(per)});
      }
    }
  }
  if (spec.max_parallel > 0 && static_cast<int64_t>(slots.size()) > spec.max_parallel) {
    slots.resize(static_cast<size_t>(spec.max_parallel));
  }
  return slots;
}

void describe_sweep(const fs::path& file, const loader::Registry& registry) {
  const SweepSpec spec = load_sweep_spec(file);
  const auto trials = validated_trials(spec, registry);
  const int gpus = torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
  const auto slots = plan_slots(spec, gpus, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  fmt::print("sweep {}: {} {} trial{}, pruning {}{}\n", spec.name, trials.size(), spec.method,
             trials.size() == 1 ? "" : "s", spec.pruning.rule,
             spec.pruning.rule == "none"
                 ? ""
                 : fmt::format(" on {} ({})", spec.pruning.metric, spec.pruning.maximize ? "max" : "min"));
  std::vector<std::string> labels;
  for (const auto& s : slots) labels.push_back(s.label);
  fmt::print("slots: {} ({} thread{} per trial)\n", join(labels, ", "), spec.threads_per_trial,
             spec.threads_per_trial == 1 ? "" : "s");
  for (const auto& t : trials) {
    std::vector<std::string> parts;  // in the file's order
    for (const auto& o : t.overrides) {
      if (o.rfind("run.seed=", 0) != 0) parts.push_back(o);
    }
    fmt::print("  trial {:3}  seed {:<3} {}\n", t.index, t.seed, join(parts, "  "));
  }
}

bool start_sweep(const fs::path& file, const loader::Registry& registry, const SweepRunOptions& options) {
  const SweepSpec spec = load_sweep_spec(file);
  const auto trials = validated_trials(spec, registry);
  // Opened only once every trial is valid: a rejected sweep leaves no database behind.
  store::Store store(options.db);
  if (auto existing = store.find_sweep(spec.name)) {
    throw SweepError(fmt::format(
        "a sweep named '{}' exists already (id {}, {}): continue it with `jepa sweep --resume {}`, or give this one "
        "another [sweep] name",
        spec.name, existing->id, existing->status, spec.name));
  }
  nlohmann::json spec_json = spec_to_json(spec);
  const int64_t id = store.create_sweep(spec.name, "{}");
  // Trials run from a copy of the experiment file, so that editing the file never changes a
  // sweep that is being resumed.
  const fs::path dir =
      (options.db.has_parent_path() ? options.db.parent_path() : fs::path(".")) / "sweeps" / std::to_string(id);
  fs::create_directories(dir);
  const fs::path copy = fs::absolute(dir / file.filename());
  fs::copy_file(file, copy, fs::copy_options::overwrite_existing);
  spec_json["experiment"] = copy.string();
  // The spec is stored once the copy's folder (named by the sweep id) exists.
  store.set_sweep_spec(id, spec_json.dump());
  std::vector<std::pair<int64_t, std::string>> rows;
  for (const auto& t : trials) rows.emplace_back(t.index, nlohmann::json(t.overrides).dump());
  store.add_sweep_trials(id, rows);
  return Runner(store, id, spec_json, options).run();
}

bool resume_sweep(const std::string& name, store::Store& store, const SweepRunOptions& options) {
  const auto sweep = store.find_sweep(name);
  if (!sweep) throw SweepError(fmt::format("no sweep '{}' in {}", name, store.path().string()));
  const auto spec_json = nlohmann::json::parse(sweep->spec_json);
  return Runner(store, sweep->id, spec_json, options).run();
}

}  // namespace jepa::sweep
