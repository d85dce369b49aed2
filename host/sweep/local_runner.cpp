// launcher = "local": every trial in its own child process (`jepa-engine run`), one per device
// slot, so that a crash, abort or out-of-memory kill loses only that trial.
#include "sweep/local_runner.hpp"

#include "process/spawn.hpp"
#include "sweep/runner_support.hpp"

#include <fmt/format.h>
#include <torch/cuda.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <map>
#include <thread>

namespace jepa::sweep {

namespace fs = std::filesystem;
namespace {

struct Running {
  int64_t index = 0;
  size_t slot = 0;
  fs::path log;
  double started = 0.0;
};

class Runner {
 public:
  Runner(store::Store& store, int64_t sweep_id, const nlohmann::json& spec_json, const SweepRunOptions& options,
         Proposer& proposer)
      : store_(store), sweep_id_(sweep_id), options_(options), proposer_(proposer) {
    const SweepSpec& s = proposer.spec();
    name_ = s.name;
    experiment_ = spec_json.value("experiment", std::string());
    objective_ = effective_objective(s);
    const int gpus = torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
    slots_ = plan_slots(s, gpus, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())),
                        std::getenv("CUDA_VISIBLE_DEVICES"));
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
      if (t.job_id == kExternalJob) continue;  // handed out by `jepa sweep ask`: its caller runs it
      if (!t.status || *t.status == store::RunStatus::killed) queue.push_back(t.index);
    }
    total_ = static_cast<int>(proposer_.total_trials());
    const auto proposed = static_cast<int>(store_.sweep_trials(sweep_id_).size());
    fmt::print(stderr, "sweep {} (id {}): {} trials{}, {} to run, {} slot{} ({})\n", name_, sweep_id_, total_,
               proposer_.sequential() ? fmt::format(" ({} proposed so far)", proposed) : std::string(),
               static_cast<int>(queue.size()) + (total_ - proposed), slots_.size(), slots_.size() == 1 ? "" : "s",
               slot_labels());
    summary(true);
    bool can_ask = proposer_.can_ask();
    while (!queue.empty() || !running_.empty() || (can_ask && !stopping_)) {
      if (stop_requested() != 0 && !stopping_) {
        stopping_ = true;
        for (const auto& [pid, r] : running_) ::kill(pid, SIGTERM);
        fmt::print(stderr, "\nstopping: the running trials checkpoint and stop; resume with: jepa sweep --resume {}\n",
                   name_);
      }
      while (!stopping_) {
        const auto free = std::find(busy_.begin(), busy_.end(), false);
        if (free == busy_.end()) break;
        if (queue.empty() && can_ask) {
          // A sequential sampler decides the next point only now, from every trial that ended.
          for (int64_t index : proposer_.ask()) queue.push_back(index);
          can_ask = proposer_.can_ask();
        }
        if (queue.empty()) break;
        launch(queue.front(), static_cast<size_t>(free - busy_.begin()));
        queue.pop_front();
      }
      reap();
      if (stopping_ && running_.empty()) break;
      summary(false);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (tty_) fmt::print(stderr, "\n");
    const bool interrupted = stopping_ || !queue.empty() || can_ask;
    store_.set_sweep_status(sweep_id_, interrupted ? "INTERRUPTED" : "COMPLETED");
    const auto c = counts();
    fmt::print(stderr, "sweep {} (id {}): {} completed, {} pruned, {} failed, {} interrupted of {}{}\n", name_,
               sweep_id_, c.completed, c.pruned, c.failed, c.killed, total_,
               interrupted ? fmt::format("; resume with: jepa sweep --resume {}", name_) : "");
    if (!interrupted) fmt::print(stderr, "compare them: jepa compare --sweep {}\n", name_);
    return !interrupted;
  }

 private:
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
      if (!t.run_id || t.status != store::RunStatus::running || t.job_id == kExternalJob) continue;
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
      store_.finish_run(create_trial_run(store_, sweep_id_, name_, experiment_, t), store::RunStatus::failed, why);
    } else if (t.status == store::RunStatus::running) {
      store_.finish_run(*t.run_id, store::RunStatus::failed, why);
    }
    store_.set_trial_pid(sweep_id_, r.index, std::nullopt);
    const auto after = store_.sweep_trials(sweep_id_).at(static_cast<size_t>(r.index));
    if (tty_) fmt::print(stderr, "\r\033[K");
    fmt::print(stderr, "trial {:3}: {}{}\n", r.index, after.status ? store::status_name(*after.status) : "?",
               after.reason.empty() ? "" : " - " + after.reason.substr(0, 300));
  }

  Counts counts() const { return count_trials(store_, sweep_id_); }

  // One line: done / running / failed / pruned, the best so far on the sweep's metric, ETA.
  void summary(bool force) {
    const double now = now_seconds();
    if (!force && !changed_ && (!tty_ || now - last_summary_ < 1.0)) return;
    changed_ = false;
    last_summary_ = now;
    const Counts c = counts();
    const std::string best = best_text(store_, sweep_id_, objective_);
    const std::string eta = eta_text(durations_, total_ - (c.completed + c.pruned + c.failed), slots_.size());
    const std::string line = fmt::format("[sweep {}] {}/{} done: {} completed, {} pruned, {} failed | {} running{}{}",
                                         name_, c.completed + c.pruned + c.failed, total_, c.completed, c.pruned,
                                         c.failed, running_.size(), best, eta);
    print_status_line(tty_, line, last_line_);
  }

  store::Store& store_;
  int64_t sweep_id_;
  SweepRunOptions options_;
  Proposer& proposer_;
  std::string name_;
  std::string experiment_;
  ObjectiveSpec objective_;
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

}  // namespace

bool run_local(store::Store& store, int64_t sweep_id, const nlohmann::json& spec_json, const SweepRunOptions& options,
               Proposer& proposer) {
  return Runner(store, sweep_id, spec_json, options, proposer).run();
}

}  // namespace jepa::sweep
