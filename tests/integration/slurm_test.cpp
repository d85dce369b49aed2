// `jepa sweep` with launcher = "slurm" against a real SLURM cluster: each test starts a one-node
// cluster of its own (munged, slurmctld, slurmd on free ports in a scratch folder, stopped by pid
// at the end; tests/support/slurm_cluster.sh) and uses it as a user would. Without SLURM's
// daemons (or without root, which the daemons need here) the tests skip with a message.
#include "jepa_process.hpp"
#include "store/store.hpp"
#include "temp_dir.hpp"
#include "tiny_trial.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <thread>

namespace {

namespace fs = std::filesystem;
using jepa::store::Store;
using jepa_test::contains;
using jepa_test::run_jepa;
using jepa_test::slurp;

const char* const kBase = jepa_test::kTinyTrialExperiment;

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string shell(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

bool have_slurm() {
  return std::system("command -v slurmctld > /dev/null 2>&1 && command -v munged > /dev/null 2>&1") == 0;
}

class Slurm : public ::testing::Test {
 protected:
  Slurm() : dir_("slurm_test"), db_(dir_.path() / "results.db"), cluster_(dir_.path() / "cluster") {}

  void SetUp() override {
    if (!have_slurm()) {
      GTEST_SKIP() << "SLURM is not installed here (slurmctld, munged: apt-get install slurm-wlm munge, which "
                      "scripts/install-deps.sh does): the slurm tests are skipped";
    }
    if (::geteuid() != 0) GTEST_SKIP() << "the test cluster's daemons run as root here: the slurm tests are skipped";
    const std::string script = std::string(JEPA_SOURCE_DIR) + "/tests/support/slurm_cluster.sh";
    const std::string cmd = "'" + script + "' start '" + cluster_.string() + "' " + std::to_string(free_port()) + " " +
                            std::to_string(free_port()) + " 8 2>&1";
    const std::string out = shell(cmd);
    ASSERT_TRUE(contains(out, "SLURM_CONF=")) << out;
    started_ = true;
    ::setenv("SLURM_CONF", (cluster_ / "slurm.conf").c_str(), 1);
  }

  void TearDown() override {
    // A host that a failed assertion left running is ended first (it would poll forever).
    for (const pid_t pid : hosts_) {
      if (::waitpid(pid, nullptr, WNOHANG) == 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
      }
    }
    if (!started_) return;
    shell("'" + std::string(JEPA_SOURCE_DIR) + "/tests/support/slurm_cluster.sh' stop '" + cluster_.string() +
          "' 2>&1");
  }

  fs::path write(const std::string& name, const std::string& text) {
    const fs::path p = dir_.path() / name;
    std::ofstream(p) << kBase << text;
    return p;
  }
  // A folder for a stand-in of one of SLURM's commands (searched before PATH); returns the real
  // command's path, which the stand-in passes requests on to.
  static std::string stand_in_folder(const fs::path& bin, const std::string& command) {
    fs::create_directories(bin);
    return shell("command -v " + command + " | tr -d '\\n'");
  }
  std::string db() const { return "--db '" + db_.string() + "'"; }
  std::string plugins() const { return "--plugin-path '" + std::string(JEPA_FIXTURE_DIR) + "/crash'"; }

  struct TrialRow {
    int64_t run = 0;
    std::string status;
    std::string reason;
    std::string job;
    std::string job_state;
  };
  std::map<int64_t, TrialRow> trials(const std::string& sweep) {
    Store store(db_);
    std::map<int64_t, TrialRow> out;
    store.query(
        "SELECT t.trial_index, t.run_id, r.status, r.reason, t.job_id, t.job_state FROM sweep_trials t "
        "JOIN sweeps s ON s.id = t.sweep_id LEFT JOIN runs r ON r.id = t.run_id WHERE s.name = ?",
        {sweep}, [&](const jepa::store::Row& r) {
          out[r.int64(0)] = {r.is_null(1) ? 0 : r.int64(1), r.text(2), r.text(3), r.text(4), r.text(5)};
        });
    return out;
  }
  // What ended lost attempt `n` of a resubmitted run (empty when there was none).
  std::string lost_attempt(int64_t run, int n) {
    const auto env = Store(db_).environment(run);
    const auto it = env.find("slurm.lost_attempt." + std::to_string(n));
    return it == env.end() ? std::string() : it->second;
  }
  fs::path trial_dir(int64_t sweep_id, int64_t index) const {
    char name[16];
    std::snprintf(name, sizeof name, "%03lld", static_cast<long long>(index));
    return dir_.path() / "sweeps" / std::to_string(sweep_id) / "trials" / name;
  }

  // Until `done()` (checked every 100 ms, at most `seconds`); false when it never was.
  template <typename Done>
  static bool wait_for(Done done, double seconds) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return done();
  }
  // The job of trial `index` once it runs with a checkpoint and more than `points` train/loss
  // points (a job not in `not_these`); "" when that did not happen within 90 s.
  std::string training_job(const std::string& sweep, int64_t index, size_t points = 0,
                           const std::set<std::string>& not_these = {}) {
    std::string job;
    wait_for(
        [&] {
          if (!fs::exists(db_)) return false;
          const auto t = trials(sweep);
          if (t.count(index) == 0) return false;
          const auto& row = t.at(index);
          if (row.job_state != "RUNNING" || row.run == 0 || not_these.count(row.job) != 0) return false;
          Store store(db_);
          if (!store.latest_artifact(row.run, "checkpoint") || store.metrics(row.run, "train/loss").size() <= points)
            return false;
          job = row.job;
          return true;
        },
        90.0);
    return job;
  }
  // The test cluster's one node, as an administrator sets it: "down reason=..." or "resume".
  static int set_node(const std::string& how) {
    return std::system(("scontrol update nodename=\"$(hostname -s)\" state=" + how).c_str());
  }
  // The trial's run has every train/loss point of `steps` steps logged every 20, each once.
  void expect_every_point_once(int64_t run, int64_t steps) {
    const auto loss = Store(db_).metrics(run, "train/loss");
    std::string seen;
    for (const auto& p : loss) seen += " " + std::to_string(p.step);
    ASSERT_EQ(loss.size(), static_cast<size_t>(steps / 20)) << "steps:" << seen;
    for (size_t k = 0; k < loss.size(); ++k) EXPECT_EQ(loss[k].step, static_cast<int64_t>(20 * (k + 1)));
  }

  // spawn_jepa (below), ended at TearDown if still running.
  pid_t spawn_host(const std::vector<std::string>& args, const fs::path& log, const fs::path& path_first = {});

  jepa_test::TempDir dir_;
  fs::path db_;
  fs::path cluster_;
  bool started_ = false;
  std::vector<pid_t> hosts_;
};

// Starts `jepa ARGS` without waiting; returns its pid. `path_first`: a folder searched before
// PATH (a stand-in for one of SLURM's commands).
pid_t spawn_jepa(const std::vector<std::string>& args, const fs::path& log, const fs::path& path_first = {}) {
  const std::string path = path_first.empty() ? std::string() : path_first.string() + ":" + std::getenv("PATH");
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    if (!path.empty()) ::setenv("PATH", path.c_str(), 1);
    std::vector<char*> argv{const_cast<char*>(JEPA_BINARY)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(JEPA_BINARY, argv.data());
    _exit(127);
  }
  return pid;
}

pid_t Slurm::spawn_host(const std::vector<std::string>& args, const fs::path& log, const fs::path& path_first) {
  hosts_.push_back(spawn_jepa(args, log, path_first));
  return hosts_.back();
}

size_t count_of(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

TEST_F(Slurm, FourTrialSweepRunsAsJobsAndCompareReadsIt) {
  const auto file = write("grid.toml", R"(
[sweep]
launcher = "slurm"
seeds = [0, 1]
[sweep.params]
"optimization.lr" = [1e-3, 2e-3]
[sweep.slurm]
cpus_per_task = 1
time_limit = "10"
poll_seconds = 0.3
)");
  const auto dry = run_jepa("sweep '" + file.string() + "' --dry-run " + db());
  ASSERT_EQ(dry.code, 0) << dry.err;
  EXPECT_TRUE(contains(dry.out, "launcher: slurm, one job per trial, 1 rank each")) << dry.out;
  EXPECT_TRUE(contains(dry.out, "--time=10")) << dry.out;

  const auto r = run_jepa("sweep '" + file.string() + "' " + db());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "submitted as SLURM job")) << r.err;
  const auto t = trials("grid");
  ASSERT_EQ(t.size(), 4u);
  Store store(db_);
  std::set<std::string> jobs;
  for (const auto& [i, row] : t) {
    EXPECT_EQ(row.status, "COMPLETED") << "trial " << i << ": " << row.reason;
    EXPECT_EQ(row.job_state, "COMPLETED") << "trial " << i;
    jobs.insert(row.job);
    // Everything the trial recorded on its node reached the database through its journal.
    const auto loss = store.metrics(row.run, "train/loss");
    ASSERT_EQ(loss.size(), 6u) << "trial " << i;
    for (size_t k = 0; k < loss.size(); ++k) EXPECT_EQ(loss[k].step, static_cast<int64_t>(2 * (k + 1)));
    const auto params = store.params(row.run);
    EXPECT_EQ(params.count("encoder.params.depth"), 1u) << "trial " << i;  // resolved config, from the trial
    EXPECT_EQ(params.at("run.seed"), std::to_string(i % 2));
    EXPECT_FALSE(store.environment(row.run).empty());
    EXPECT_FALSE(store.plugins(row.run).empty());
    const auto ckpt = store.latest_artifact(row.run, "checkpoint");
    ASSERT_TRUE(ckpt.has_value());
    EXPECT_TRUE(contains(ckpt->path, "/trials/")) << ckpt->path;  // on the shared folder
    EXPECT_EQ(ckpt->step, 12);
    const auto run = store.find_run(row.run);
    EXPECT_NE(run->config_json, "{}");
    // The trial never opened the database: it was given a journal, not --db.
    const std::string script = slurp(trial_dir(1, i) / "job.sh");
    EXPECT_TRUE(contains(script, "--record-to")) << script;
    EXPECT_FALSE(contains(script, "--db")) << script;
  }
  EXPECT_EQ(jobs.size(), 4u);

  const auto cmp = run_jepa("compare --sweep grid " + db());
  ASSERT_EQ(cmp.code, 0) << cmp.err;
  EXPECT_TRUE(contains(cmp.out, "4 runs in 2 groups")) << cmp.out;
  EXPECT_TRUE(contains(cmp.out, "optimization.lr")) << cmp.out;
  const auto runs = run_jepa("runs --sweep grid " + db());
  ASSERT_EQ(runs.code, 0) << runs.err;
  EXPECT_TRUE(contains(runs.out, "slurm job")) << runs.out;
  EXPECT_TRUE(contains(runs.out, *jobs.begin() + " COMPLETED")) << runs.out;
}

TEST_F(Slurm, MedianRulePrunesAHopelessTrialFromTheHostsSnapshot) {
  // One job at a time: the third trial's pruner sees the first two trials' scores, which reach
  // it only through the host (their journals, then the snapshot the host writes).
  const auto file = write("prune.toml", R"(
[[evaluation]]
evaluator = "fixture_crash"
every = 2
at_end = false
[sweep]
launcher = "slurm"
max_parallel = 1
[sweep.params]
"evaluation.0.score" = [5.0, 6.0, 1.0]
[sweep.pruning]
rule = "median"
metric = "fixture_crash/score"
mode = "max"
min_trials = 2
[sweep.slurm]
poll_seconds = 0.3
)");
  const auto r = run_jepa(plugins() + " sweep '" + file.string() + "' " + db());
  ASSERT_EQ(r.code, 0) << r.err;
  const auto t = trials("prune");
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t.at(0).status, "COMPLETED") << t.at(0).reason;
  EXPECT_EQ(t.at(1).status, "COMPLETED") << t.at(1).reason;
  EXPECT_EQ(t.at(2).status, "PRUNED") << t.at(2).reason;
  EXPECT_TRUE(contains(t.at(2).reason, "median rule on fixture_crash/score")) << t.at(2).reason;
  EXPECT_TRUE(contains(t.at(2).reason, "2 other trials")) << t.at(2).reason;
}

// TPE as SLURM jobs with the ASHA rule: each point proposed when fewer than max_parallel jobs are
// queued, from the trials the host took in; pruned trials end PRUNED and count as observations.
// One job at a time, so that each trial's pruner sees every earlier trial at its rung and which
// trials ASHA prunes does not depend on when the host polled (with two at a time it did).
TEST_F(Slurm, TpeSweepProposesAsJobsEndWithAshaPruning) {
  const auto file = write("tpe.toml", R"(
[[evaluation]]
evaluator = "fixture_crash"
every = 2
at_end = false
[sweep]
name = "tpe"
launcher = "slurm"
method = "tpe"
trials = 6
max_parallel = 1
objective = { metric = "fixture_crash/score", mode = "max" }
tpe = { startup_trials = 3 }
# A good point, then a bad one: at the first rung the second is outside the top half of two.
enqueue = [{ "evaluation.0.score" = 8.0 }, { "evaluation.0.score" = 2.0 }]
[sweep.params]
"evaluation.0.score" = { uniform = [0.0, 10.0], step = 0.5 }
[sweep.pruning]
rule = "asha"
metric = "fixture_crash/score"
mode = "max"
grace_steps = 4
reduction = 2
[sweep.slurm]
poll_seconds = 0.3
)");
  const auto r = run_jepa(plugins() + " sweep '" + file.string() + "' " + db());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "6 trials (0 proposed so far)")) << r.err;
  const auto t = trials("tpe");
  ASSERT_EQ(t.size(), 6u);
  Store store(db_);
  int pruned = 0;
  std::set<std::string> scores;
  for (const auto& [i, row] : t) {
    EXPECT_TRUE(row.status == "COMPLETED" || row.status == "PRUNED") << "trial " << i << ": " << row.reason;
    pruned += row.status == "PRUNED" ? 1 : 0;
    const std::string score = store.params(row.run).at("evaluation.0.score");
    const double v = std::stod(score);
    EXPECT_TRUE(v >= 0 && v <= 10 && std::fmod(v, 0.5) == 0) << score;
    scores.insert(score);
  }
  EXPECT_EQ(t.at(1).status, "PRUNED") << t.at(1).reason;
  EXPECT_TRUE(contains(t.at(1).reason, "asha on fixture_crash/score")) << t.at(1).reason;
  EXPECT_GE(pruned, 1);
  EXPECT_GE(scores.size(), 4u);
}

TEST_F(Slurm, SegfaultTimeLimitAndScancelAreRecordedWithSlurmsState) {
  // Trials 0 and 1 crash at their first evaluation (step 4); 2 and 3 would train for long: one
  // is cancelled from outside with scancel, the other reaches its one-minute time limit.
  const auto file = write("fail.toml", R"(
[[evaluation]]
evaluator = "fixture_crash"
every = 4
at_end = false
[sweep]
launcher = "slurm"
seeds = [0, 1]
[sweep.params]
"evaluation.0.crash" = [2, 0]
"optimization.epochs" = [10000]
"optimization.max_steps" = [1000000]
[sweep.slurm]
time_limit = "1"
signal_grace = 30
poll_seconds = 0.5
)");
  const fs::path log = dir_.path() / "host.log";
  const pid_t host = spawn_jepa(
      {"--plugin-path", std::string(JEPA_FIXTURE_DIR) + "/crash", "sweep", file.string(), "--db", db_.string()}, log);
  // Trial 2 is cancelled once it trains (it has a checkpoint).
  std::string cancelled;
  for (int i = 0; i < 600 && cancelled.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (!fs::exists(db_)) continue;
    const auto t = trials("fail");
    if (t.size() != 4 || t.at(2).job_state != "RUNNING" || t.at(2).run == 0) continue;
    if (Store(db_).latest_artifact(t.at(2).run, "checkpoint")) {
      cancelled = t.at(2).job;
      ASSERT_EQ(std::system(("scancel " + cancelled).c_str()), 0);
    }
  }
  ASSERT_FALSE(cancelled.empty()) << slurp(log);
  int status = 0;
  waitpid(host, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << slurp(log);
  EXPECT_EQ(WEXITSTATUS(status), 0) << slurp(log);

  const auto t = trials("fail");
  for (int i : {0, 1}) {
    EXPECT_EQ(t.at(i).status, "FAILED") << t.at(i).reason;
    EXPECT_EQ(t.at(i).job_state, "FAILED");
    EXPECT_TRUE(contains(t.at(i).reason, "SLURM job " + t.at(i).job + " FAILED")) << t.at(i).reason;
    EXPECT_TRUE(contains(t.at(i).reason, "exit code 139:0")) << t.at(i).reason;  // 128 + SIGSEGV
    EXPECT_TRUE(contains(t.at(i).reason, "slurm.log")) << t.at(i).reason;        // the log's tail
  }
  // Both stopped on SIGTERM with a checkpoint (KILLED: `jepa sweep --resume` continues them).
  EXPECT_EQ(t.at(2).status, "KILLED") << t.at(2).reason;
  EXPECT_EQ(t.at(2).job_state, "CANCELLED");
  EXPECT_TRUE(contains(t.at(2).reason, "SLURM job " + cancelled + " CANCELLED")) << t.at(2).reason;
  EXPECT_EQ(t.at(3).status, "KILLED") << t.at(3).reason;
  EXPECT_EQ(t.at(3).job_state, "TIMEOUT");
  EXPECT_TRUE(contains(t.at(3).reason, "TIMEOUT (reason TimeLimit")) << t.at(3).reason;
  EXPECT_TRUE(contains(t.at(3).reason, "interrupted by signal 15")) << t.at(3).reason;  // --signal's warning
  Store store(db_);
  for (int i : {2, 3}) EXPECT_TRUE(store.latest_artifact(t.at(i).run, "checkpoint").has_value()) << i;
}

TEST_F(Slurm, CtrlCCancelsJobsAndKillNineThenResumeRunsEveryTrialExactlyOnce) {
  const auto file = write("kill.toml", R"(
[sweep]
launcher = "slurm"
seeds = [0, 1, 2]
max_parallel = 2
[sweep.params]
"optimization.epochs" = [80]
"optimization.max_steps" = [2400]
"logging.every" = [20]
"checkpoint.every" = [80]
[sweep.slurm]
signal_grace = 10
poll_seconds = 0.3
)");
  const fs::path log = dir_.path() / "host.log";
  // Until a trial trains past the points it had (`before`, by trial index).
  const auto wait_for_training = [&](const std::map<int64_t, size_t>& before) {
    for (int i = 0; i < 900; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (!fs::exists(db_)) continue;
      Store store(db_);
      for (const auto& [index, row] : trials("kill")) {
        const size_t had = before.count(index) ? before.at(index) : 0;
        if (row.run != 0 && row.status == "RUNNING" && store.metrics(row.run, "train/loss").size() > had) return true;
      }
    }
    return false;
  };
  const auto job_starts = [&](int64_t index) {
    return count_of(slurp(trial_dir(1, index) / "slurm.log"), "jepa sweep: job ");
  };

  // Ctrl-C: the running trials checkpoint and their jobs are cancelled; the host exits 130.
  pid_t host = spawn_jepa({"sweep", file.string(), "--db", db_.string()}, log);
  ASSERT_TRUE(wait_for_training({})) << slurp(log);
  ::kill(host, SIGINT);
  int status = 0;
  waitpid(host, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << slurp(log);
  EXPECT_EQ(WEXITSTATUS(status), 130) << slurp(log);
  EXPECT_EQ(shell("squeue -h -t PENDING,RUNNING -o %i"), "") << "jobs left in the queue";
  int killed = 0;
  for (const auto& [i, row] : trials("kill")) {
    EXPECT_TRUE(row.status.empty() || row.status == "COMPLETED" || row.status == "KILLED") << i << " " << row.reason;
    if (row.status == "KILLED") {
      ++killed;
      EXPECT_TRUE(contains(row.reason, "CANCELLED")) << row.reason;
    }
  }
  EXPECT_GT(killed, 0) << slurp(log);
  std::map<int64_t, size_t> points;
  std::map<int64_t, size_t> starts;  // jobs each trial's log shows so far
  std::map<int64_t, bool> done;
  {
    Store store(db_);
    for (const auto& [i, row] : trials("kill")) {
      points[i] = row.run != 0 ? store.metrics(row.run, "train/loss").size() : 0;
      starts[i] = job_starts(i);
      done[i] = row.status == "COMPLETED";
    }
  }

  // kill -9 of the host while its jobs run: they go on without it, and the resumed host adopts them.
  host = spawn_jepa({"sweep", "--resume", "kill", "--db", db_.string()}, log);
  ASSERT_TRUE(wait_for_training(points)) << slurp(log);
  ::kill(host, SIGKILL);
  waitpid(host, &status, 0);
  // On a loaded machine the host may take in a trial's journal only as the trial ends, so the
  // jobs that were still running at the kill are counted rather than assumed.
  int running_at_kill = 0;
  for (const auto& [i, row] : trials("kill")) running_at_kill += row.status == "RUNNING" ? 1 : 0;
  const auto r = run_jepa("sweep --resume kill " + db());
  ASSERT_EQ(r.code, 0) << r.err << slurp(log);

  const auto t = trials("kill");
  ASSERT_EQ(t.size(), 3u);
  Store store(db_);
  for (const auto& [i, row] : t) {
    EXPECT_EQ(row.status, "COMPLETED") << "trial " << i << ": " << row.reason;
    const auto loss = store.metrics(row.run, "train/loss");
    ASSERT_EQ(loss.size(), 120u) << "trial " << i;  // every point once, after resumes
    for (size_t k = 0; k < loss.size(); ++k) EXPECT_EQ(loss[k].step, static_cast<int64_t>(20 * (k + 1)));
    // One run, created once: the journal starts the run once, however often its job ran.
    EXPECT_EQ(count_of(slurp(trial_dir(1, i) / "journal.jsonl"), "\"op\":\"create_run\""), 1u) << i;
  }
  int64_t sweep_runs = 0;
  store.query("SELECT COUNT(*) FROM runs r JOIN sweeps s ON s.id = r.sweep_id WHERE s.name = 'kill'", {},
              [&](const jepa::store::Row& row) { sweep_runs = row.int64(0); });
  EXPECT_EQ(sweep_runs, 3);
  std::string integrity;
  store.query("PRAGMA integrity_check", {}, [&](const jepa::store::Row& row) { integrity = row.text(0); });
  EXPECT_EQ(integrity, "ok");
  // After Ctrl-C every unfinished trial ran exactly one more job: the jobs that were running
  // when the host was killed were adopted, not submitted again.
  const std::string host_log = slurp(log) + r.err;
  if (running_at_kill > 0) EXPECT_TRUE(contains(r.err, "adopting SLURM job")) << host_log;
  for (const auto& [i, row] : t) EXPECT_EQ(job_starts(i), starts[i] + (done[i] ? 0 : 1)) << "trial " << i << host_log;
}

TEST_F(Slurm, RequeuedJobContinuesFromItsCheckpointUnderTheSameJob) {
  const auto file = write("requeue.toml", R"(
[sweep]
launcher = "slurm"
[sweep.params]
"optimization.epochs" = [40]
"optimization.max_steps" = [800]
"logging.every" = [20]
"checkpoint.every" = [40]
[sweep.slurm]
poll_seconds = 0.3
)");
  const fs::path log = dir_.path() / "host.log";
  const pid_t host = spawn_jepa({"sweep", file.string(), "--db", db_.string()}, log);
  std::string job;
  for (int i = 0; i < 600 && job.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (!fs::exists(db_)) continue;
    const auto t = trials("requeue");
    if (t.size() != 1 || t.at(0).job_state != "RUNNING" || t.at(0).run == 0) continue;
    if (Store(db_).latest_artifact(t.at(0).run, "checkpoint")) {
      job = t.at(0).job;
      // As a preemption with PreemptMode=REQUEUE or an administrator would.
      ASSERT_EQ(std::system(("scontrol requeue " + job).c_str()), 0);
    }
  }
  ASSERT_FALSE(job.empty()) << slurp(log);
  int status = 0;
  waitpid(host, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << slurp(log);
  EXPECT_EQ(WEXITSTATUS(status), 0) << slurp(log);
  const auto t = trials("requeue");
  EXPECT_EQ(t.at(0).status, "COMPLETED") << t.at(0).reason << slurp(log);
  EXPECT_EQ(t.at(0).job, job);  // the same job, started again by SLURM
  const std::string slurm_log = slurp(trial_dir(1, 0) / "slurm.log");
  EXPECT_EQ(count_of(slurm_log, "jepa sweep: job " + job), 2u) << slurm_log;
  EXPECT_TRUE(contains(slurm_log, "restart 1")) << slurm_log;
  EXPECT_TRUE(contains(slurm_log, "resuming run")) << slurm_log;  // from its checkpoint, not from step 0
  const auto loss = Store(db_).metrics(t.at(0).run, "train/loss");
  ASSERT_EQ(loss.size(), 40u);
  for (size_t k = 0; k < loss.size(); ++k) EXPECT_EQ(loss[k].step, static_cast<int64_t>(20 * (k + 1)));
}

TEST_F(Slurm, HostKilledWhileSbatchRunsFindsTheJobByNameOrSubmitsItOnce) {
  // A stand-in sbatch that never returns, as a controller that stops answering would: the host
  // is killed -9 while the trial is "submitting". First it has not passed the job on to SLURM,
  // then (the second host) it has. SLURM's own sbatch answers --version, which the host asks.
  const fs::path bin = dir_.path() / "bin";
  const std::string real = stand_in_folder(bin, "sbatch");
  ASSERT_FALSE(real.empty());
  const fs::path hung = dir_.path() / "sbatch.pid";
  const fs::path submit = dir_.path() / "submit-first";
  {
    std::ofstream out(bin / "sbatch");
    out << "#!/bin/sh\n"
        << "[ \"$1\" = --version ] && exec '" << real << "' \"$@\"\n"
        << "[ -e '" << submit.string() << "' ] && '" << real << "' \"$@\" > /dev/null\n"
        << "echo $$ > '" << hung.string() << "'\n"
        << "exec sleep 600\n";
  }
  fs::permissions(bin / "sbatch", fs::perms::owner_all);
  const auto file = write("submit.toml", R"(
[sweep]
launcher = "slurm"
[sweep.slurm]
poll_seconds = 0.3
)");
  const fs::path log = dir_.path() / "host.log";
  // Kills the host once it waits on the stand-in sbatch, and the stand-in too (by its pid).
  const auto kill_while_submitting = [&](pid_t host) {
    bool seen = false;
    for (int i = 0; i < 600 && !seen; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (!fs::exists(hung) || !fs::exists(db_)) continue;
      const auto t = trials("submit");
      seen = t.count(0) != 0 && t.at(0).job == "submitting";
    }
    ::kill(host, SIGKILL);
    int status = 0;
    waitpid(host, &status, 0);
    if (fs::exists(hung)) {
      const pid_t stand_in = std::stoi(slurp(hung));
      if (stand_in > 0) ::kill(stand_in, SIGKILL);
      fs::remove(hung);
    }
    return seen;
  };

  ASSERT_TRUE(kill_while_submitting(spawn_jepa({"sweep", file.string(), "--db", db_.string()}, log, bin)))
      << slurp(log);
  EXPECT_EQ(shell("squeue -h -t all -o %i"), "");  // SLURM never had the job
  std::ofstream(submit).put('\n');
  ASSERT_TRUE(kill_while_submitting(spawn_jepa({"sweep", "--resume", "submit", "--db", db_.string()}, log, bin)))
      << slurp(log);
  const std::string job = shell("squeue -h -t all -o %i | tr -d '\\n'");
  ASSERT_FALSE(job.empty()) << "the second stand-in passed the job on";

  const auto r = run_jepa("sweep --resume submit " + db());
  ASSERT_EQ(r.code, 0) << r.err << slurp(log);
  const auto t = trials("submit");
  EXPECT_EQ(t.at(0).status, "COMPLETED") << t.at(0).reason << slurp(log) << r.err;
  EXPECT_EQ(t.at(0).job, job);  // found by its name, not submitted again
  EXPECT_EQ(count_of(slurp(trial_dir(1, 0) / "slurm.log"), "jepa sweep: job "), 1u);
  EXPECT_EQ(Store(db_).metrics(t.at(0).run, "train/loss").size(), 6u);
  EXPECT_EQ(shell("squeue -h -t all -o %i | wc -l | tr -d ' \\n'"), "1");
}

TEST_F(Slurm, TwoTaskTrialTrainsDataParallelThroughSrun) {
  const auto file = write("ddp.toml", R"(
[sweep]
launcher = "slurm"
[sweep.slurm]
tasks_per_node = 2
cpus_per_task = 1
poll_seconds = 0.3
)");
  const auto r = run_jepa("sweep '" + file.string() + "' " + db());
  ASSERT_EQ(r.code, 0) << r.err;
  const auto t = trials("ddp");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t.at(0).status, "COMPLETED") << t.at(0).reason << slurp(trial_dir(1, 0) / "slurm.log");
  Store store(db_);
  const auto env = store.environment(t.at(0).run);
  EXPECT_EQ(env.at("world_size"), "2");
  EXPECT_EQ(env.at("launcher"), "slurm");
  EXPECT_EQ(store.params(t.at(0).run).at("distributed.world_size"), "2");
  EXPECT_EQ(store.metrics(t.at(0).run, "train/loss").size(), 6u);
  EXPECT_TRUE(contains(slurp(trial_dir(1, 0) / "job.sh"), "srun --kill-on-bad-exit=1 --nodes=1 --ntasks=2"));
}

// A trial that continues in a new job: short enough for the suite, long enough (about 8 s of
// training here) to be hit while it trains.
constexpr int64_t kResumableSteps = 2400;
const char* const kResumableTrial = R"(
[sweep]
launcher = "slurm"
[sweep.params]
"optimization.epochs" = [80]
"optimization.max_steps" = [2400]
"logging.every" = [20]
"checkpoint.every" = [80]
)";

TEST_F(Slurm, LostNodeEndsTheAttemptKilledAndANewJobContinuesFromItsCheckpoint) {
  // requeue = false: SLURM ends a job whose node goes DOWN as NODE_FAIL (with --requeue, its
  // default here, SLURM requeues it under the same id instead, as in RequeuedJob... above).
  const auto file = write("lost.toml", std::string(kResumableTrial) + R"(
[sweep.slurm]
requeue = false
poll_seconds = 0.3
)");
  const fs::path log = dir_.path() / "host.log";
  const pid_t host = spawn_host({"sweep", file.string(), "--db", db_.string()}, log);
  const std::string first = training_job("lost", 0);
  ASSERT_FALSE(first.empty()) << slurp(log);
  // As an administrator does when a node dies: SLURM kills its jobs (SIGTERM, then SIGKILL after
  // KillWait) and ends them NODE_FAIL, reason NodeDown. The node stays DOWN until resumed
  // (ReturnToService=1), so the trial's new job waits in the queue meanwhile.
  ASSERT_EQ(set_node("down reason=jepa-test-node-lost"), 0);
  std::string second;
  const bool again = wait_for(
      [&] {
        second = trials("lost").at(0).job;
        return second != first && second != "submitting" && !second.empty();
      },
      60.0);
  EXPECT_EQ(shell("squeue -h -j " + second + " -o %T | tr -d '\\n'"), "PENDING");
  ASSERT_EQ(set_node("resume"), 0);
  ASSERT_TRUE(again) << slurp(log);
  int status = 0;
  waitpid(host, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << slurp(log);
  EXPECT_EQ(WEXITSTATUS(status), 0) << slurp(log);

  const std::string host_log = slurp(log);
  // The lost attempt: KILLED with SLURM's state, reason and exit code, and submitted again once.
  EXPECT_TRUE(contains(host_log, "trial   0: KILLED - interrupted by signal 15")) << host_log;
  EXPECT_TRUE(contains(host_log, "SLURM job " + first + " NODE_FAIL (reason NodeDown, exit code")) << host_log;
  EXPECT_EQ(count_of(host_log, "(submitting it again, to continue from its checkpoint)"), 1u) << host_log;
  const auto t = trials("lost");
  EXPECT_EQ(t.at(0).status, "COMPLETED") << t.at(0).reason << host_log;
  EXPECT_EQ(t.at(0).job, second);
  EXPECT_EQ(t.at(0).job_state, "COMPLETED");
  // The completed run keeps what ended its first attempt, in the database, not only in the log.
  const std::string lost = lost_attempt(t.at(0).run, 1);
  EXPECT_TRUE(contains(lost, "SLURM job " + first + " NODE_FAIL (reason NodeDown")) << lost;
  EXPECT_TRUE(lost_attempt(t.at(0).run, 2).empty());
  const std::string slurm_log = slurp(trial_dir(1, 0) / "slurm.log");
  EXPECT_EQ(count_of(slurm_log, "jepa sweep: job "), 2u) << slurm_log;
  EXPECT_TRUE(contains(slurm_log, "DUE TO NODE FAILURE")) << slurm_log;  // slurmstepd's word, in the log
  EXPECT_TRUE(contains(slurm_log, "resuming run")) << slurm_log;         // from its checkpoint
  expect_every_point_once(t.at(0).run, kResumableSteps);
  EXPECT_EQ(count_of(slurp(trial_dir(1, 0) / "journal.jsonl"), "\"op\":\"create_run\""), 1u);
}

TEST_F(Slurm, PreemptedJobWithoutRequeueIsSubmittedAgainAndContinues) {
  // The test cluster preempts as many sites do (PreemptType=preempt/partition_prio,
  // PreemptMode=CANCEL): a job of the higher-tier partition "urgent" cancels the trial's job,
  // which ends PREEMPTED although it asked for --requeue.
  const auto file = write("preempt.toml", std::string(kResumableTrial) + R"(
[sweep.slurm]
poll_seconds = 0.3
)");
  const fs::path log = dir_.path() / "host.log";
  const pid_t host = spawn_host({"sweep", file.string(), "--db", db_.string()}, log);
  const std::string first = training_job("preempt", 0);
  ASSERT_FALSE(first.empty()) << slurp(log);
  const std::string urgent =
      shell("sbatch --parsable -p urgent --exclusive -o /dev/null --wrap 'sleep 2' | tr -d '\\n'");
  ASSERT_FALSE(urgent.empty());
  int status = 0;
  waitpid(host, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << slurp(log);
  EXPECT_EQ(WEXITSTATUS(status), 0) << slurp(log);

  const std::string host_log = slurp(log);
  EXPECT_TRUE(contains(host_log, "SLURM job " + first + " PREEMPTED (reason")) << host_log;
  EXPECT_EQ(count_of(host_log, "(submitting it again, to continue from its checkpoint)"), 1u) << host_log;
  const auto t = trials("preempt");
  EXPECT_EQ(t.at(0).status, "COMPLETED") << t.at(0).reason << host_log;
  EXPECT_NE(t.at(0).job, first);
  EXPECT_TRUE(contains(lost_attempt(t.at(0).run, 1), "SLURM job " + first + " PREEMPTED"))
      << lost_attempt(t.at(0).run, 1);
  const std::string slurm_log = slurp(trial_dir(1, 0) / "slurm.log");
  EXPECT_EQ(count_of(slurm_log, "jepa sweep: job "), 2u) << slurm_log;
  EXPECT_TRUE(contains(slurm_log, "DUE TO PREEMPTION")) << slurm_log;
  EXPECT_TRUE(contains(slurm_log, "resuming run")) << slurm_log;
  expect_every_point_once(t.at(0).run, kResumableSteps);
  EXPECT_EQ(shell("squeue -h -t all -j " + urgent + " -o %T | tr -d '\\n'"), "COMPLETED");
}

TEST_F(Slurm, VanishedJobIsResumedFromItsLastCheckpointByTheHostAndOnResume) {
  // SLURM forgetting a job (purged after MinJobAge while no host watched, or lost with the
  // controller's state) is played by a squeue that answers for the jobs listed in `forgotten`
  // exactly as the real one does for a job id it never had ("Invalid job id specified" when
  // asked about it alone). The forgotten jobs really end: the first is cancelled (its trial
  // checkpoints and records KILLED on SIGTERM), the second's processes get SIGKILL, so that its
  // trial records no end and only its periodic checkpoints and journal are left.
  const fs::path bin = dir_.path() / "bin";
  const std::string real = stand_in_folder(bin, "squeue");
  ASSERT_FALSE(real.empty());
  const fs::path forgotten = dir_.path() / "forgotten";
  std::ofstream(forgotten).flush();
  {
    std::ofstream out(bin / "squeue");
    out << "#!/bin/bash\n"
        << "args=()\nprev=\n"
        << "for a in \"$@\"; do\n"
        << "  b=$a\n"
        << "  if [ \"$prev\" = -j ]; then\n"
        << "    b=$(printf '%s\\n' \"$a\" | tr , '\\n' | grep -vxF -f '" << forgotten.string() << "' | paste -sd, -)\n"
        << "    b=${b:-4000000}\n"  // a job id the test cluster never had
        << "  fi\n"
        << "  args+=(\"$b\")\n  prev=$a\n"
        << "done\n"
        << "'" << real << "' \"${args[@]}\" | grep -v -f <(sed 's/.*/^&|/' '" << forgotten.string() << "')\n"
        << "exit ${PIPESTATUS[0]}\n";
  }
  fs::permissions(bin / "squeue", fs::perms::owner_all);
  const auto forget = [&](const std::string& job, bool sigkill) {
    std::ofstream(forgotten, std::ios::app) << job << "\n";
    if (!sigkill) return std::system(("scancel " + job).c_str());
    const std::string pids =
        shell("scontrol listpids " + job + " | awk 'NR > 1 && $1 ~ /^[0-9]+$/ {printf \"%s \", $1}'");
    return pids.empty() ? -1 : std::system(("kill -9 " + pids).c_str());
  };
  const auto file = write("vanish.toml", std::string(kResumableTrial) + R"(
[sweep.slurm]
poll_seconds = 0.3
)");
  const fs::path log = dir_.path() / "host.log";

  // While the host watches: three polls in a row without the job, and it is submitted again.
  pid_t host = spawn_host({"sweep", file.string(), "--db", db_.string()}, log, bin);
  const std::string first = training_job("vanish", 0);
  ASSERT_FALSE(first.empty()) << slurp(log);
  ASSERT_EQ(forget(first, false), 0);
  // Submitted again (the host took in the first job's journal before), the new job trains past
  // the points the first one had: then the host is killed -9, and that job is lost while no host
  // runs.
  ASSERT_TRUE(wait_for(
      [&] {
        const auto job = trials("vanish").at(0).job;
        return job != first && job != "submitting";
      },
      30.0))
      << slurp(log);
  const size_t had = Store(db_).metrics(trials("vanish").at(0).run, "train/loss").size();
  const std::string second = training_job("vanish", 0, had, {first});
  ASSERT_FALSE(second.empty()) << slurp(log);
  ::kill(host, SIGKILL);
  int status = 0;
  waitpid(host, &status, 0);
  ASSERT_EQ(forget(second, true), 0);
  EXPECT_EQ(shell("'" + (bin / "squeue").string() + "' -h -j " + second + " 2>&1"),
            "slurm_load_jobs error: Invalid job id specified\n");

  // --resume: the host asks SLURM about the job, which no longer knows it: resumed from its
  // last checkpoint in a third job.
  host = spawn_host({"sweep", "--resume", "vanish", "--db", db_.string()}, log, bin);
  waitpid(host, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << slurp(log);
  EXPECT_EQ(WEXITSTATUS(status), 0) << slurp(log);

  const std::string host_log = slurp(log);
  // The cancelled one: the trial's own reason, then SLURM's word; the killed one: SLURM's only.
  EXPECT_TRUE(contains(host_log, "SLURM job " + first + " vanished (SLURM no longer knows it) (submitting it again"))
      << host_log;
  EXPECT_TRUE(
      contains(host_log, "trial   0: KILLED - SLURM job " + second + " vanished (SLURM no longer knows it); log"))
      << host_log;
  EXPECT_EQ(count_of(host_log, "(submitting it again, to continue from its checkpoint)"), 2u) << host_log;
  const auto t = trials("vanish");
  EXPECT_EQ(t.at(0).status, "COMPLETED") << t.at(0).reason << host_log;
  EXPECT_NE(t.at(0).job, first);
  EXPECT_NE(t.at(0).job, second);
  const std::string slurm_log = slurp(trial_dir(1, 0) / "slurm.log");
  EXPECT_EQ(count_of(slurm_log, "jepa sweep: job "), 3u) << slurm_log;
  EXPECT_EQ(count_of(slurm_log, "resuming run"), 2u) << slurm_log;
  expect_every_point_once(t.at(0).run, kResumableSteps);
  EXPECT_EQ(count_of(slurp(trial_dir(1, 0) / "journal.jsonl"), "\"op\":\"create_run\""), 1u);
}

TEST_F(Slurm, TrialLostFourTimesStaysKilledAfterThreeResubmissions) {
  const auto file = write("flaky.toml", R"(
[sweep]
launcher = "slurm"
[sweep.params]
"optimization.epochs" = [10000]
"optimization.max_steps" = [1000000]
[sweep.slurm]
requeue = false
poll_seconds = 0.3
)");
  const fs::path log = dir_.path() / "host.log";
  const pid_t host = spawn_host({"sweep", file.string(), "--db", db_.string()}, log);
  std::set<std::string> jobs;
  std::vector<std::string> in_order;
  std::string last;
  int status = 0;
  bool host_ended = false;
  for (int loss = 0; loss < 4; ++loss) {
    // Each job is lost once it trains (past the points the last one had).
    size_t had = 0;
    if (loss > 0) had = Store(db_).metrics(trials("flaky").at(0).run, "train/loss").size();
    const std::string job = training_job("flaky", 0, had, jobs);
    ASSERT_FALSE(job.empty()) << "loss " << loss << ": " << slurp(log);
    jobs.insert(job);
    in_order.push_back(job);
    last = job;
    ASSERT_EQ(set_node("down reason=jepa-test-flaky-node"), 0);
    // Until the host submitted the trial again, or (the fourth time) gave up on it and ended.
    wait_for(
        [&] {
          if (waitpid(host, &status, WNOHANG) == host) host_ended = true;
          const auto t = trials("flaky");
          return host_ended || (t.at(0).job != job && t.at(0).job != "submitting");
        },
        60.0);
    ASSERT_EQ(set_node("resume"), 0);
    if (host_ended) break;
  }
  if (!host_ended) waitpid(host, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << slurp(log);
  EXPECT_EQ(WEXITSTATUS(status), 0) << slurp(log);

  const std::string host_log = slurp(log);
  EXPECT_EQ(jobs.size(), 4u) << host_log;
  EXPECT_EQ(count_of(host_log, "(submitting it again, to continue from its checkpoint)"), 3u) << host_log;
  const auto t = trials("flaky");
  EXPECT_EQ(t.at(0).status, "KILLED") << t.at(0).reason;
  EXPECT_EQ(t.at(0).job, last);
  EXPECT_EQ(t.at(0).job_state, "NODE_FAIL");
  EXPECT_TRUE(contains(t.at(0).reason, "NODE_FAIL (reason NodeDown")) << t.at(0).reason;
  EXPECT_TRUE(contains(t.at(0).reason, "not submitted again: its job was lost 4 times (3 resubmissions"))
      << t.at(0).reason;
  for (int n = 1; n <= 3; ++n) {
    EXPECT_TRUE(contains(lost_attempt(t.at(0).run, n), "SLURM job " + in_order.at(n - 1) + " NODE_FAIL"))
        << n << ": " << lost_attempt(t.at(0).run, n);
  }
  EXPECT_TRUE(lost_attempt(t.at(0).run, 4).empty()) << "the last loss is the run's own reason";
  EXPECT_TRUE(contains(host_log, "KILLED trials continue with: jepa sweep --resume flaky")) << host_log;
  EXPECT_EQ(count_of(slurp(trial_dir(1, 0) / "slurm.log"), "jepa sweep: job "), 4u);
  EXPECT_EQ(shell("squeue -h -t PENDING,RUNNING -o %i"), "");
}

}  // namespace
