// launcher = "slurm": every trial one sbatch job; the host follows the jobs and takes in the
// trials' journals.
#include "sweep/slurm_runner.hpp"

#include "store/journal.hpp"
#include "sweep/runner_support.hpp"
#include "sweep/slurm.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <fstream>
#include <map>
#include <set>
#include <thread>

namespace jepa::sweep {

namespace fs = std::filesystem;
namespace {

// launcher = "slurm": every trial is one sbatch job (not a job array, so that each trial's
// submission, adoption after a host crash, resubmission and cancellation stay independent).
// The host stays the only writer of the database: trials record to journals on the shared
// folder (store/journal.hpp), which the host takes in at every poll, in one transaction each
// with the journal's offset; it writes the pruning snapshot the trials' pruners read; and it
// follows the jobs with squeue / scontrol, turning a job's end into the trial's end.
class SlurmRunner {
 public:
  SlurmRunner(store::Store& store, int64_t sweep_id, const nlohmann::json& spec_json, const SweepRunOptions& options,
              Proposer& proposer)
      : store_(store), sweep_id_(sweep_id), options_(options), spec_json_(spec_json), proposer_(proposer) {
    const SweepSpec& s = proposer.spec();
    name_ = s.name;
    pruning_ = s.pruning;
    objective_ = effective_objective(s);
    slurm_ = s.slurm;
    max_parallel_ = s.max_parallel;
    experiment_ = spec_json.value("experiment", std::string());
    shared_ = slurm_.shared_dir;
    fs::create_directories(shared_ / "trials");
    // A token of this sweep's folder in every job name: two databases may both have a sweep 1.
    // FNV-1a, so that every build of jepa that resumes the sweep computes the same name.
    uint32_t h = 2166136261u;
    for (const char c : fs::absolute(shared_).string()) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
    token_ = fmt::format("{:08x}", h);
    tty_ = options.progress && ::isatty(STDERR_FILENO);
  }

  bool run() {
    StopSignals signals;
    reconcile();
    write_snapshot();  // before any trial starts: its pruner reads the rule from it
    std::deque<int64_t> queue;
    for (const auto& t : store_.sweep_trials(sweep_id_)) {
      if (active_.count(t.index) != 0 || t.job_id == kExternalJob) continue;
      // A RUNNING run without a job: the host died while sbatch ran, and SLURM had not taken the
      // job (reconcile() found none under its name) or did not answer ("submitting": submit()
      // asks again before it submits).
      const bool never_submitted =
          t.status == store::RunStatus::running && (t.job_id.empty() || t.job_id == "submitting");
      if (!t.status || *t.status == store::RunStatus::killed || never_submitted) queue.push_back(t.index);
    }
    total_ = static_cast<int>(proposer_.total_trials());
    const auto proposed = static_cast<int>(store_.sweep_trials(sweep_id_).size());
    fmt::print(stderr, "sweep {} (id {}): {} trials{}, {} to run, {} already in SLURM; shared folder {}\n", name_,
               sweep_id_, total_,
               proposer_.sequential() ? fmt::format(" ({} proposed so far)", proposed) : std::string(),
               static_cast<int>(queue.size()) + (total_ - proposed), active_.size(), shared_.string());
    summary(true);
    double last_poll = 0.0;
    double stop_deadline = 0.0;
    bool cancelled = false;
    bool can_ask = proposer_.can_ask();
    while (!queue.empty() || !active_.empty() || (can_ask && !stopping_)) {
      if (stop_requested() != 0 && !stopping_) {
        stopping_ = true;
        stop_deadline = now_seconds() + static_cast<double>(slurm_.signal_grace) + 15.0;
        stop_jobs();
        fmt::print(stderr,
                   "\nstopping: the running trials checkpoint and their jobs are cancelled; resume with: jepa sweep "
                   "--resume {}\n",
                   name_);
      }
      while (!stopping_ && (max_parallel_ <= 0 || static_cast<int64_t>(active_.size()) < max_parallel_)) {
        if (now_seconds() < retry_after_) break;
        if (queue.empty() && can_ask) {
          // A sequential sampler decides the next point only now, from every trial that ended.
          for (int64_t index : proposer_.ask()) queue.push_back(index);
          can_ask = proposer_.can_ask();
        }
        if (queue.empty()) break;
        const int64_t index = queue.front();
        queue.pop_front();
        if (!submit(index)) {
          // SLURM did not answer: the trial waits for the controller, it has not failed.
          queue.push_front(index);
          retry_after_ = now_seconds() + std::max(5.0, slurm_.poll_seconds);
        }
      }
      if (now_seconds() - last_poll >= slurm_.poll_seconds) {
        last_poll = now_seconds();
        for (int64_t again : poll()) {
          if (!stopping_) queue.push_back(again);
        }
      }
      if (stopping_) {
        if (!cancelled && (all_recorded_ended() || now_seconds() > stop_deadline)) {
          cancelled = true;
          stop_deadline = now_seconds() + 60.0;
          for (const auto& [index, a] : active_) cancel(a.job);
        } else if (cancelled && now_seconds() > stop_deadline) {
          // SLURM did not report an end in time: leave the trials to `--resume`, which asks again.
          fmt::print(stderr, "jobs still not ended: {}\n", job_list());
          break;
        }
        if (queue.empty() && active_.empty()) break;
        if (active_.empty()) break;
      }
      summary(false);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (tty_) fmt::print(stderr, "\n");
    const bool interrupted = stopping_ || !queue.empty() || !active_.empty() || can_ask;
    store_.set_sweep_status(sweep_id_, interrupted ? "INTERRUPTED" : "COMPLETED");
    const Counts c = count_trials(store_, sweep_id_);
    fmt::print(stderr, "sweep {} (id {}): {} completed, {} pruned, {} failed, {} interrupted of {}{}\n", name_,
               sweep_id_, c.completed, c.pruned, c.failed, c.killed, total_,
               interrupted    ? fmt::format("; resume with: jepa sweep --resume {}", name_)
               : c.killed > 0 ? fmt::format("; KILLED trials continue with: jepa sweep --resume {}", name_)
                              : std::string());
    if (!interrupted) fmt::print(stderr, "compare them: jepa compare --sweep {}\n", name_);
    return !interrupted;
  }

 private:
  struct Active {
    std::string job;
    std::string state;
    double since = 0.0;
    double last_heartbeat = 0.0;
    int missing = 0;           // polls in a row that SLURM did not list the job
    double ended_since = 0.0;  // when SLURM first reported an end that the journal does not show yet
  };

  // A cancelled, timed-out or preempted job's processes get SIGTERM and KillWait seconds before
  // SIGKILL, and so do those of a job whose node an administrator set DOWN (NODE_FAIL): the
  // trial may still be writing its checkpoint and its end when SLURM already reports the job's
  // state. Its journal gets this long to show the end, so that a job submitted again never
  // starts beside the one still stopping (a node that really died just costs this wait).
  static constexpr double kEndGrace = 20.0;
  // How often one host submits a trial again whose job was lost (node failure, preemption
  // without requeue, a job SLURM forgot).
  static constexpr int kMaxResubmissions = 3;
  static bool signalled_end(const std::string& state) {
    return state == "CANCELLED" || state == "TIMEOUT" || state == "PREEMPTED" || state == "DEADLINE" ||
           state == "NODE_FAIL";
  }

  fs::path trial_dir(int64_t index) const { return shared_ / "trials" / fmt::format("{:03}", index); }
  fs::path log_of(int64_t index) const { return trial_dir(index) / "slurm.log"; }
  std::string job_name(int64_t index) const { return fmt::format("jepa-{}-t{:03}-{}", sweep_id_, index, token_); }

  store::SweepTrialRecord trial(int64_t index) const {
    return store_.sweep_trials(sweep_id_).at(static_cast<size_t>(index));
  }

  std::string job_list() const {
    std::vector<std::string> jobs;
    for (const auto& [index, a] : active_) jobs.push_back(a.job);
    return join(jobs, ",");
  }

  void say(const std::string& line) {
    if (tty_) fmt::print(stderr, "\r\033[K");
    fmt::print(stderr, "{}\n", line);
    changed_ = true;
  }

  // Takes in the trial's new journal records; true when metric points came in.
  bool intake(int64_t index) {
    const auto t = trial(index);
    if (!t.run_id) return false;
    const auto in =
        store::take_in_journal(store_, trial_dir(index) / "journal.jsonl", *t.run_id, t.journal_offset,
                               [&](int64_t offset) { store_.set_trial_journal_offset(sweep_id_, index, offset); });
    if (in.records > 0) changed_ = true;
    return in.metrics;
  }

  // Every trial's values of the pruning metric, for the trials' pruners (they never open the
  // database): rewritten whenever new points came in.
  void write_snapshot() {
    store::TrialHistories h;
    if (pruning_.rule != "none") {
      store_.query(
          "SELECT m.run_id, m.step, m.value FROM metrics m WHERE m.key = ? AND m.run_id IN "
          "(SELECT id FROM runs WHERE sweep_id = ?)",
          {pruning_.metric, sweep_id_}, [&](const store::Row& r) { h[r.int64(0)][r.int64(1)] = r.real(2); });
    }
    store::write_pruning_snapshot(shared_ / "pruning.json", spec_json_.dump(), h);
  }

  std::optional<slurm::JobInfo> job_details(const std::string& job) const {
    const auto r = slurm::run_command({"scontrol", "show", "job", "-o", job}, 30.0);
    if (r.status != 0) return std::nullopt;
    for (auto& j : slurm::parse_scontrol(r.out)) {
      if (j.id == job) return j;
    }
    return std::nullopt;
  }

  std::map<std::string, slurm::JobInfo> job_states(const std::vector<std::string>& jobs, bool* ok) const {
    std::map<std::string, slurm::JobInfo> out;
    *ok = true;
    if (jobs.empty()) return out;
    const auto r =
        slurm::run_command({"squeue", "-h", "-t", "all", "-j", join(jobs, ","), "-o", "%i|%T|%r|%j|%N"}, 30.0);
    if (r.status != 0 && r.err.find("Invalid job id") != std::string::npos) {
      // Asked about one job that SLURM no longer knows (purged after MinJobAge, or lost with the
      // controller's state), squeue fails ("Invalid job id specified") rather than listing
      // nothing; asked about several, it lists the known ones. So all of this user's jobs are
      // listed, and those asked about kept: the others vanished.
      const auto all = slurm::run_command({"squeue", "-h", "--me", "-t", "all", "-o", "%i|%T|%r|%j|%N"}, 30.0);
      if (all.status == 0) {
        const std::set<std::string> wanted(jobs.begin(), jobs.end());
        for (auto& j : slurm::parse_squeue(all.out)) {
          if (wanted.count(j.id) != 0) out[j.id] = j;
        }
        return out;
      }
    }
    if (r.status != 0) {
      // A controller that does not answer is not an answer about the jobs: ask again later.
      *ok = false;
      fmt::print(stderr, "warning: squeue failed ({}): {}\n", r.status, log_line(r.err));
      return out;
    }
    for (auto& j : slurm::parse_squeue(r.out)) out[j.id] = j;
    return out;
  }

  static std::string log_line(const std::string& s) {
    std::string t = s;
    std::replace(t.begin(), t.end(), '\n', ' ');
    return t.substr(0, 300);
  }

  // After a host that died: every trial with a job is asked about. Running and pending jobs are
  // adopted (never submitted again), ended ones taken in, and vanished ones resumed from their
  // last checkpoint.
  void reconcile() {
    std::vector<std::string> jobs;
    for (const auto& t : store_.sweep_trials(sweep_id_)) {
      if (t.run_id && t.job_id != kExternalJob) intake(t.index);
      if (t.job_id == "submitting") {
        // The host died while sbatch ran: the job may exist under its name.
        const auto r =
            slurm::run_command({"squeue", "-h", "-t", "all", "-n", job_name(t.index), "-o", "%i|%T|%r|%j|%N"}, 30.0);
        // No answer is not "no job": the trial stays "submitting", and submit() asks again.
        if (r.status != 0) continue;
        const auto found = slurm::parse_squeue(r.out);
        // None under its name: SLURM never took the job, and run() submits the trial again.
        store_.set_trial_job(sweep_id_, t.index, found.empty() ? "" : found.front().id,
                             found.empty() ? "" : found.front().state);
      }
    }
    for (const auto& t : store_.sweep_trials(sweep_id_)) {
      if (!t.job_id.empty() && t.job_id != "submitting" && t.job_id != kExternalJob && !is_final(t)) {
        jobs.push_back(t.job_id);
      }
    }
    bool ok = false;
    const auto states = job_states(jobs, &ok);
    if (!ok) throw SweepError("cannot ask SLURM about the sweep's jobs (squeue failed); try again when it answers");
    for (const auto& t : store_.sweep_trials(sweep_id_)) {
      if (t.job_id.empty() || t.job_id == "submitting" || t.job_id == kExternalJob || is_final(t)) continue;
      const auto it = states.find(t.job_id);
      if (it != states.end() && !slurm::is_terminal(it->second.state)) {
        fmt::print(stderr, "trial {}: adopting SLURM job {} ({})\n", t.index, t.job_id, it->second.state);
        if (t.run_id && t.status == store::RunStatus::killed && t.reason.rfind("no heartbeat since", 0) == 0) {
          store_.revive_run(*t.run_id);  // marked dead while no host took its heartbeats in
        }
        active_[t.index] = Active{t.job_id, it->second.state, now_seconds(), 0.0, 0};
        store_.set_trial_job(sweep_id_, t.index, t.job_id, it->second.state);
        continue;
      }
      active_[t.index] = Active{t.job_id, "", now_seconds(), 0.0, 0};
      const auto again = ended(t.index, it != states.end() ? std::optional<slurm::JobInfo>(it->second) : std::nullopt);
      (void)again;  // queued by run() from its status
    }
  }

  // A trial whose run ended and whose job SLURM reported ended.
  static bool is_final(const store::SweepTrialRecord& t) {
    return t.status && *t.status != store::RunStatus::running && slurm::is_terminal(t.job_state);
  }

  // False when SLURM's controller did not answer (try again later); a refused job fails its trial.
  bool submit(int64_t index) {
    auto t = trial(index);
    if (t.job_id == "submitting") {
      // An earlier sbatch got no answer: it may have submitted the job all the same.
      const auto r =
          slurm::run_command({"squeue", "-h", "-t", "all", "-n", job_name(index), "-o", "%i|%T|%r|%j|%N"}, 30.0);
      if (r.status != 0) return false;
      const auto found = slurm::parse_squeue(r.out);
      if (!found.empty()) {
        store_.set_trial_job(sweep_id_, index, found.front().id, found.front().state);
        active_[index] = Active{found.front().id, found.front().state, now_seconds(), now_seconds(), 0};
        say(fmt::format("trial {:3}: SLURM job {} was submitted after all", index, found.front().id));
        return true;
      }
    }
    const fs::path dir = trial_dir(index);
    fs::create_directories(dir);
    if (!t.run_id) {
      // The run exists before its job, linked to its trial in the same transaction, so a trial
      // never gets two runs; the trial's journal fills it in.
      create_trial_run(store_, sweep_id_, name_, experiment_, t);
      t = trial(index);
    } else if (t.status != store::RunStatus::running) {
      // Resubmitted (killed, timed out, lost its node): RUNNING again until its job says more;
      // the trial itself reopens the run from its checkpoint.
      store_.revive_run(*t.run_id);
    }
    {
      std::ofstream out(dir / "trial.json", std::ios::trunc);
      out << nlohmann::json{{"run_id", *t.run_id}, {"pruning", (shared_ / "pruning.json").string()}, {"sweep", name_}}
                 .dump()
          << "\n";
    }
    std::vector<std::string> command{options_.engine.string(), "run", experiment_};
    for (const auto& o : nlohmann::json::parse(t.overrides_json))
      command.insert(command.end(), {"--set", o.get<std::string>()});
    command.insert(command.end(), {"--set", fmt::format("run.threads={}", slurm_.cpus_per_task), "--set",
                                   fmt::format("run.device={}", slurm_.gpus_per_task > 0 ? "cuda" : "cpu"), "--set",
                                   fmt::format("run.name={}-t{:03}", name_, index), "--record-to", dir.string()});
    for (const auto& p : options_.plugin_paths) command.insert(command.end(), {"--plugin-path", p});
    const fs::path script = dir / "job.sh";
    {
      std::ofstream out(script, std::ios::trunc);
      out << slurm::batch_script(command, slurm_);
    }
    fs::permissions(script, fs::perms::owner_all | fs::perms::group_read | fs::perms::others_read);
    // "submitting" first: a host killed while sbatch runs finds the job by its name on resume.
    store_.set_trial_job(sweep_id_, index, "submitting", "");
    const auto r = slurm::run_command(slurm::sbatch_command(slurm_, job_name(index), log_of(index), script), 120.0);
    const auto job = r.status == 0 ? slurm::parse_sbatch(r.out) : std::nullopt;
    const std::string said = r.err.empty() ? r.out : r.err;
    if (!job && (r.status == -1 || said.find("Unable to contact") != std::string::npos ||
                 said.find("timed out") != std::string::npos || said.find("try again") != std::string::npos)) {
      say(fmt::format("trial {:3}: sbatch did not get through ({}); trying again", index, log_line(said)));
      return false;
    }
    if (!job) {
      store_.set_trial_job(sweep_id_, index, "", "");
      store_.finish_run(*t.run_id, store::RunStatus::failed,
                        fmt::format("sbatch refused the trial's job (exit status {}): {}", r.status,
                                    log_line(r.err.empty() ? r.out : r.err)));
      say(fmt::format("trial {:3}: FAILED - sbatch: {}", index, log_line(said)));
      return true;
    }
    store_.set_trial_job(sweep_id_, index, *job, "PENDING");
    active_[index] = Active{*job, "PENDING", now_seconds(), now_seconds(), 0};
    say(fmt::format("trial {:3}: submitted as SLURM job {}", index, *job));
    return true;
  }

  // One round: journals in, states from SLURM, ends recorded. Returns trials to submit again.
  std::vector<int64_t> poll() {
    bool new_metrics = false;
    for (const auto& [index, a] : active_) new_metrics = intake(index) || new_metrics;
    if (new_metrics && pruning_.rule != "none") write_snapshot();
    std::vector<std::string> jobs;
    for (const auto& [index, a] : active_) jobs.push_back(a.job);
    bool ok = false;
    const auto states = job_states(jobs, &ok);
    std::vector<int64_t> again;
    if (!ok) return again;
    std::vector<std::pair<int64_t, std::optional<slurm::JobInfo>>> done;
    for (auto& [index, a] : active_) {
      const auto it = states.find(a.job);
      if (it == states.end()) {
        // squeue may miss a job for a moment (a requeue, a controller fail-over): it vanished
        // only when several polls in a row agree.
        if (++a.missing >= 3) done.emplace_back(index, std::nullopt);
        continue;
      }
      a.missing = 0;
      const auto& info = it->second;
      if (info.state != a.state) {
        a.state = info.state;
        store_.set_trial_job(sweep_id_, index, a.job, info.state);
        if (!slurm::is_terminal(info.state)) {
          say(fmt::format("trial {:3}: job {} {}{}", index, a.job, info.state,
                          info.state == "RUNNING" && !info.nodes.empty()  ? " on " + info.nodes
                          : info.reason != "None" && !info.reason.empty() ? " (" + info.reason + ")"
                                                                          : ""));
        }
      }
      if (slurm::is_terminal(info.state)) {
        const auto t = trial(index);
        const bool recorded = !t.status || *t.status != store::RunStatus::running;
        if (!recorded && signalled_end(info.state.substr(0, info.state.find(' ')))) {
          if (a.ended_since == 0.0) a.ended_since = now_seconds();
          if (now_seconds() - a.ended_since < kEndGrace) continue;
        }
        done.emplace_back(index, info);
      } else if (info.state != "RUNNING" && now_seconds() - a.last_heartbeat > 10.0) {
        // A job waiting in the queue is alive: its run must not look dead to `jepa runs`.
        const auto t = trial(index);
        if (t.run_id && t.status == store::RunStatus::running) store_.heartbeat(*t.run_id, 0);
        a.last_heartbeat = now_seconds();
      }
    }
    for (const auto& [index, info] : done) {
      if (ended(index, info)) again.push_back(index);
    }
    return again;
  }

  // The trial's job ended (or vanished: no info): its last records are taken in, and what the
  // trial did not record itself is recorded with SLURM's state, reason, exit code and the tail
  // of its log. Returns true when the trial should be submitted again (its node was lost, it
  // was preempted without requeue, or its job vanished), to continue from its checkpoint.
  bool ended(int64_t index, std::optional<slurm::JobInfo> info) {
    const Active a = active_.at(index);
    active_.erase(index);
    if (info) {
      if (const auto details = job_details(a.job)) {
        info->exit_code = details->exit_code;
        if (!details->reason.empty()) info->reason = details->reason;
        if (!details->state.empty()) info->state = details->state;
      }
    }
    if (intake(index) && pruning_.rule != "none") write_snapshot();
    durations_.push_back(now_seconds() - a.since);
    const std::string state = info ? info->state.substr(0, info->state.find(' ')) : std::string("VANISHED");
    store_.set_trial_job(sweep_id_, index, a.job, state);
    const auto t = trial(index);
    const std::string slurm_says = info ? fmt::format("SLURM job {} {} (reason {}, exit code {})", a.job, state,
                                                      info->reason, info->exit_code.empty() ? "?" : info->exit_code)
                                        : fmt::format("SLURM job {} vanished (SLURM no longer knows it)", a.job);
    const std::string why = fmt::format("{}; log {}: {}", slurm_says, log_of(index).string(), log_tail(log_of(index)));
    if (!t.run_id) return false;
    // Lost rather than ended: the node died, the job was preempted without requeue, or SLURM
    // forgot it. The trial continues from its checkpoint in a new job, at most
    // kMaxResubmissions times; then it stays KILLED, with the reason saying so.
    const bool lost = !info || state == "NODE_FAIL" || state == "PREEMPTED" || state == "BOOT_FAIL";
    const bool may_resubmit = lost && !stopping_ && resubmitted_[index] < kMaxResubmissions;
    const std::string limit =
        lost && !stopping_ && !may_resubmit
            ? fmt::format(
                  " | not submitted again: its job was lost {} times ({} resubmissions, the most one host "
                  "makes; `jepa sweep --resume {}` tries again)",
                  kMaxResubmissions + 1, kMaxResubmissions, name_)
            : std::string();
    bool resubmit = false;
    if (t.status == store::RunStatus::running) {
      // The trial did not record its end: SLURM's word is all there is.
      const bool killed = lost || state == "TIMEOUT" || state == "CANCELLED" || state == "DEADLINE" || stopping_;
      store_.finish_run(
          *t.run_id, killed ? store::RunStatus::killed : store::RunStatus::failed,
          (state == "COMPLETED" ? "the trial's job ended without recording the run's end; " + why : why) + limit);
      resubmit = may_resubmit;
    } else if (t.status == store::RunStatus::killed || t.status == store::RunStatus::failed) {
      // The trial recorded why it stopped (a SIGTERM before the time limit, a scancel, an
      // error); SLURM's state says who stopped it.
      const bool killed = t.status == store::RunStatus::killed;
      store_.finish_run(*t.run_id, *t.status, t.reason + " | " + slurm_says + (killed ? limit : std::string()));
      resubmit = killed && may_resubmit;
    }
    const auto after = trial(index);
    if (resubmit) {
      ++resubmitted_[index];
      // The new job clears the run's reason when it continues the run; what ended this attempt
      // stays in the run's environment, which `jepa show` and the ui's run page list.
      store_.set_environment(*t.run_id, {{fmt::format("slurm.lost_attempt.{}", resubmitted_[index]), after.reason}});
    }
    say(fmt::format("trial {:3}: {}{}{}", index, after.status ? store::status_name(*after.status) : "?",
                    after.reason.empty() ? "" : " - " + after.reason.substr(0, 300),
                    resubmit ? " (submitting it again, to continue from its checkpoint)" : ""));
    return resubmit;
  }

  // Ctrl-C / SIGTERM of the host: running trials get SIGTERM (their batch shell passes it on) and
  // checkpoint; pending jobs are cancelled at once.
  void stop_jobs() {
    for (auto& [index, a] : active_) {
      if (a.state == "RUNNING" || a.state == "COMPLETING") {
        slurm::run_command({"scancel", "--batch", "--signal=TERM", a.job}, 30.0);
      } else {
        cancel(a.job);
      }
    }
  }

  void cancel(const std::string& job) {
    const auto r = slurm::run_command({"scancel", job}, 30.0);
    if (r.status != 0) fmt::print(stderr, "warning: scancel {} failed: {}\n", job, log_line(r.err));
  }

  // Every running trial recorded its end (its journal was taken in at the last poll).
  bool all_recorded_ended() const {
    for (const auto& [index, a] : active_) {
      const auto t = trial(index);
      if (a.state == "RUNNING" && (!t.status || *t.status == store::RunStatus::running)) return false;
    }
    return true;
  }

  void summary(bool force) {
    const double now = now_seconds();
    if (!force && !changed_ && (!tty_ || now - last_summary_ < 1.0)) return;
    changed_ = false;
    last_summary_ = now;
    const Counts c = count_trials(store_, sweep_id_);
    int running = 0;
    std::vector<std::string> jobs;
    for (const auto& [index, a] : active_) {
      running += a.state == "RUNNING" ? 1 : 0;
      jobs.push_back(fmt::format("t{}:{}", index, a.job));
    }
    const int left = total_ - (c.completed + c.pruned + c.failed);
    const size_t parallel = max_parallel_ > 0 ? static_cast<size_t>(max_parallel_) : static_cast<size_t>(total_);
    const std::string line =
        fmt::format("[sweep {}] {}/{} done: {} completed, {} pruned, {} failed | {} running, {} queued in SLURM{}{}{}",
                    name_, c.completed + c.pruned + c.failed, total_, c.completed, c.pruned, c.failed, running,
                    static_cast<int>(active_.size()) - running, jobs.empty() ? "" : " (jobs " + join(jobs, " ") + ")",
                    best_text(store_, sweep_id_, objective_), eta_text(durations_, left, parallel));
    print_status_line(tty_, line, last_line_);
  }

  store::Store& store_;
  int64_t sweep_id_;
  SweepRunOptions options_;
  nlohmann::json spec_json_;
  Proposer& proposer_;
  std::string name_;
  ObjectiveSpec objective_;
  std::string experiment_;
  PruningSpec pruning_;
  SlurmSpec slurm_;
  int64_t max_parallel_ = 0;
  fs::path shared_;
  std::string token_;
  std::map<int64_t, Active> active_;
  std::map<int64_t, int> resubmitted_;
  double retry_after_ = 0.0;
  std::vector<double> durations_;
  bool tty_ = false;
  bool stopping_ = false;
  bool changed_ = true;
  double last_summary_ = 0.0;
  std::string last_line_;
  int total_ = 0;
};

}  // namespace

bool run_slurm(store::Store& store, int64_t sweep_id, const nlohmann::json& spec_json, const SweepRunOptions& options,
               Proposer& proposer) {
  return SlurmRunner(store, sweep_id, spec_json, options, proposer).run();
}

}  // namespace jepa::sweep
