// `jepa sweep` as a user runs it: trials in their own processes on CPU slots, crashes recorded
// and survived, pruning, two sweeps writing one database at once, and a sweep host killed with
// SIGKILL at random moments and resumed until every trial completed exactly once.
#include "jepa_process.hpp"
#include "store/store.hpp"
#include "temp_dir.hpp"
#include "tiny_trial.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

namespace {

namespace fs = std::filesystem;
using jepa::store::RunStatus;
using jepa::store::Store;
using jepa_test::run_jepa;

const char* const kBase = jepa_test::kTinyTrialExperiment;

class Sweep : public ::testing::Test {
 protected:
  Sweep() : dir_("sweep_test"), db_(dir_.path() / "results.db") {}

  fs::path write(const std::string& name, const std::string& text) {
    const fs::path p = dir_.path() / name;
    std::ofstream(p) << kBase << text;
    return p;
  }
  std::string db() const { return "--db '" + db_.string() + "'"; }
  std::string plugins() const { return "--plugin-path '" + std::string(JEPA_FIXTURE_DIR) + "/crash'"; }

  struct TrialRow {
    int64_t run;
    std::string status;
    std::string reason;
  };
  // trial index -> its run, read straight from SQLite.
  std::map<int64_t, TrialRow> trials(const std::string& sweep) {
    Store store(db_);
    std::map<int64_t, TrialRow> out;
    store.query(
        "SELECT t.trial_index, t.run_id, r.status, r.reason FROM sweep_trials t JOIN sweeps s ON s.id = t.sweep_id "
        "LEFT JOIN runs r ON r.id = t.run_id WHERE s.name = ?",
        {sweep}, [&](const jepa::store::Row& r) {
          out[r.int64(0)] = {r.is_null(1) ? 0 : r.int64(1), r.text(2), r.text(3)};
        });
    return out;
  }

  jepa_test::TempDir dir_;
  fs::path db_;
};

TEST_F(Sweep, DryRunListsValidatedTrialsAndBadSpecsNameFileAndLine) {
  const auto file = write("grid.toml", R"(
[sweep]
seeds = [0, 1]
[sweep.params]
"optimization.lr" = [1e-3, 2e-3]
"predictor.params.depth" = [1, 2]
)");
  auto r = run_jepa("sweep '" + file.string() + "' --dry-run " + db());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("8 grid trials"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("trial   7  seed 1   optimization.lr=0.002  predictor.params.depth=2"), std::string::npos)
      << r.out;
  EXPECT_FALSE(fs::exists(db_));  // a dry run records nothing

  // The shipped example stays valid.
  r = run_jepa("sweep '" + std::string(JEPA_SOURCE_DIR) + "/experiments/sweep_quickstart.toml' --dry-run " + db());
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("8 grid trials, pruning median on knn/top1 (max)"), std::string::npos) << r.out;

  // A value the plugin schema rejects: found before anything runs, naming the trial.
  const auto bad = write("bad.toml", R"(
[sweep]
[sweep.params]
"encoder.params.depth" = [1, -3]
)");
  r = run_jepa("sweep '" + bad.string() + "' " + db());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("trial 1"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("depth"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(db_));
}

TEST_F(Sweep, CrashingTrialsAreRecordedWithSignalAndLogAndTheSweepGoesOn) {
  const auto file = write("crash.toml", R"(
[[evaluation]]
evaluator = "fixture_crash"
[sweep]
[sweep.params]
"evaluation.0.crash" = [0, 1, 2]
)");
  const auto r = run_jepa(plugins() + " sweep '" + file.string() + "' " + db());
  ASSERT_EQ(r.code, 0) << r.err;
  auto t = trials("crash");
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[0].status, "COMPLETED");
  EXPECT_EQ(t[1].status, "FAILED");
  EXPECT_NE(t[1].reason.find("killed by signal 6"), std::string::npos) << t[1].reason;
  EXPECT_NE(t[1].reason.find("evaluating with fixture_crash"), std::string::npos) << t[1].reason;  // log tail
  EXPECT_EQ(t[2].status, "FAILED");
  EXPECT_NE(t[2].reason.find("killed by signal 11"), std::string::npos) << t[2].reason;

  // A trial that dies before its run exists still gets a FAILED row with its reason.
  const auto missing = write("missing.toml", R"(
[sweep]
name = "missing-data"
[sweep.params]
"data.path" = ["/nonexistent/fashion-mnist"]
)");
  const auto m = run_jepa("sweep '" + missing.string() + "' " + db());
  ASSERT_EQ(m.code, 0) << m.err;
  t = trials("missing-data");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].status, "FAILED");
  EXPECT_NE(t[0].reason.find("exit status"), std::string::npos) << t[0].reason;
  EXPECT_NE(t[0].reason.find("/nonexistent/fashion-mnist"), std::string::npos) << t[0].reason;
}

TEST_F(Sweep, MedianRulePrunesAHopelessTrial) {
  const auto file = write("prune.toml", R"(
[[evaluation]]
evaluator = "fixture_crash"
every = 2
at_end = false
[sweep]
max_parallel = 1
[sweep.params]
"evaluation.0.score" = [5.0, 6.0, 1.0]
[sweep.pruning]
rule = "median"
metric = "fixture_crash/score"
mode = "max"
min_trials = 2
)");
  const auto r = run_jepa(plugins() + " sweep '" + file.string() + "' " + db());
  ASSERT_EQ(r.code, 0) << r.err;
  const auto t = trials("prune");
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t.at(0).status, "COMPLETED");
  EXPECT_EQ(t.at(1).status, "COMPLETED");
  EXPECT_EQ(t.at(2).status, "PRUNED");
  EXPECT_NE(t.at(2).reason.find("median"), std::string::npos) << t.at(2).reason;
  EXPECT_NE(t.at(2).reason.find("fixture_crash/score"), std::string::npos) << t.at(2).reason;
}

TEST_F(Sweep, TwoSweepsWriteOneDatabaseAtOnce) {
  const auto a = write("a.toml", "[sweep]\nseeds = [0, 1, 2]\n");
  const auto b = write("b.toml", "[sweep]\nseeds = [3, 4, 5]\n");
  auto other = std::thread([&] { EXPECT_EQ(run_jepa("sweep '" + b.string() + "' " + db()).code, 0); });
  const auto r = run_jepa("sweep '" + a.string() + "' " + db());
  other.join();
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* name : {"a", "b"}) {
    const auto t = trials(name);
    ASSERT_EQ(t.size(), 3u) << name;
    for (const auto& [i, row] : t) EXPECT_EQ(row.status, "COMPLETED") << name << " trial " << i << ": " << row.reason;
  }
}

// Starts `jepa sweep ARGS` without waiting; returns its pid.
pid_t spawn_jepa(const std::vector<std::string>& args, const fs::path& log) {
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> argv{const_cast<char*>(JEPA_BINARY)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(JEPA_BINARY, argv.data());
    _exit(127);
  }
  return pid;
}

TEST_F(Sweep, HostKilledWithSigkillAtRandomMomentsResumesToEveryTrialExactlyOnce) {
  const auto file = write("kill.toml", R"(
[sweep]
seeds = [0, 1]
[sweep.params]
"optimization.lr" = [1e-3, 2e-3, 4e-3]
)");
  const fs::path log = dir_.path() / "host.log";
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> wait_ms(300, 2500);
  bool started = false;
  for (int round = 0; round < 6; ++round) {
    std::vector<std::string> args{"sweep"};
    if (started) {
      args.insert(args.end(), {"--resume", "kill"});
    } else {
      args.push_back(file.string());
    }
    args.insert(args.end(), {"--db", db_.string()});
    const pid_t pid = spawn_jepa(args, log);
    if (!started) {
      // The first kill lands after the sweep is recorded, whatever the machine's load does to
      // start-up time, so that every later round is a resume.
      for (int i = 0; i < 600 && !started; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        if (fs::exists(db_)) started = Store(db_).find_sweep("kill").has_value();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms(rng) / 2));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms(rng)));
    }
    ::kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
  }
  ASSERT_TRUE(started) << jepa_test::slurp(log);
  const auto r = run_jepa("sweep --resume kill " + db());
  ASSERT_EQ(r.code, 0) << r.err << jepa_test::slurp(log);

  const auto t = trials("kill");
  ASSERT_EQ(t.size(), 6u);
  Store store(db_);
  std::set<int64_t> trial_runs;
  for (const auto& [i, row] : t) {
    EXPECT_EQ(row.status, "COMPLETED") << "trial " << i << ": " << row.reason;
    trial_runs.insert(row.run);
    // Every point once, in order: resuming dropped what came after the checkpoint.
    const auto loss = store.metrics(row.run, "train/loss");
    ASSERT_EQ(loss.size(), 6u) << "trial " << i;
    for (size_t k = 0; k < loss.size(); ++k) EXPECT_EQ(loss[k].step, static_cast<int64_t>(2 * (k + 1)));
  }
  // No run of the sweep outside its trials: nothing was started twice.
  int64_t sweep_runs = 0;
  store.query("SELECT COUNT(*) FROM runs r JOIN sweeps s ON s.id = r.sweep_id WHERE s.name = 'kill'", {},
              [&](const jepa::store::Row& row) { sweep_runs = row.int64(0); });
  EXPECT_EQ(sweep_runs, 6);
  EXPECT_EQ(trial_runs.size(), 6u);
  std::string integrity;
  store.query("PRAGMA integrity_check", {}, [&](const jepa::store::Row& row) { integrity = row.text(0); });
  EXPECT_EQ(integrity, "ok");
}

TEST_F(Sweep, CtrlCStopsTrialsWithCheckpointsExitsInterruptedAndResumes) {
  // Long enough trials that the interruption lands while they train.
  const auto file =
      write("stop.toml", "[sweep]\nseeds = [0, 1, 2, 3]\n[sweep.params]\n\"optimization.max_steps\" = [400]\n");
  const fs::path log = dir_.path() / "host.log";
  const pid_t pid = spawn_jepa({"sweep", file.string(), "--db", db_.string()}, log);
  // Wait until a trial has a run, then interrupt the host alone, as a terminal's Ctrl-C would.
  bool running = false;
  for (int i = 0; i < 600 && !running; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (fs::exists(db_)) {
      for (const auto& [index, row] : trials("stop")) running = running || row.run != 0;
    }
  }
  ASSERT_TRUE(running) << jepa_test::slurp(log);
  ::kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << jepa_test::slurp(log);
  const auto t = trials("stop");
  const bool all_done = std::all_of(t.begin(), t.end(), [](const auto& kv) { return kv.second.status == "COMPLETED"; });
  if (!all_done) {
    EXPECT_EQ(WEXITSTATUS(status), 130) << jepa_test::slurp(log);
    EXPECT_NE(jepa_test::slurp(log).find("jepa sweep --resume stop"), std::string::npos);
    for (const auto& [i, row] : t) {
      EXPECT_TRUE(row.status.empty() || row.status == "COMPLETED" || row.status == "KILLED")
          << "trial " << i << ": " << row.status << " " << row.reason;
    }
  }
  const auto r = run_jepa("sweep --resume stop " + db());
  ASSERT_EQ(r.code, 0) << r.err;
  for (const auto& [i, row] : trials("stop")) EXPECT_EQ(row.status, "COMPLETED") << "trial " << i;
  EXPECT_FALSE(all_done) << "the interruption came too late to test anything";
}

}  // namespace

namespace {

// The points a sweep's trials ran, in trial order.
std::vector<std::string> trial_overrides(const fs::path& db, const std::string& sweep) {
  Store store(db);
  std::vector<std::string> out;
  store.query(
      "SELECT t.overrides_json FROM sweep_trials t JOIN sweeps s ON s.id = t.sweep_id WHERE s.name = ? ORDER BY "
      "t.trial_index",
      {sweep}, [&](const jepa::store::Row& r) { out.push_back(r.text(0)); });
  return out;
}

const char* const kTpeSweep = R"(
[sweep]
name = "tpe"
method = "tpe"
trials = 6
sample_seed = 3
max_parallel = 1
objective = { metric = "train/loss", mode = "min" }
tpe = { startup_trials = 3 }
enqueue = [{ "optimization.lr" = 0.002, "predictor.params.depth" = 1 }]
[sweep.params]
"optimization.lr" = { log_uniform = [1e-4, 1e-2] }
"predictor.params.depth" = { int = [1, 2] }
)";

}  // namespace

// A TPE sweep of the tiny model, one slot: proposed one point at a time from the finished
// trials; a host killed with SIGKILL at random moments and resumed proposes exactly the points
// the uninterrupted sweep did (the trials themselves resume bit for bit from checkpoints).
TEST_F(Sweep, TpeSweepKilledAndResumedProposesWhatTheUninterruptedOneDid) {
  const auto file = write("tpe.toml", kTpeSweep);
  const auto dry = run_jepa("sweep '" + file.string() + "' --dry-run " + db());
  ASSERT_EQ(dry.code, 0) << dry.err;
  EXPECT_TRUE(jepa_test::contains(dry.out, "tpe, 6 points x 1 seed = 6 trials, minimise train/loss")) << dry.out;
  EXPECT_TRUE(jepa_test::contains(dry.out, "enqueued optimization.lr=0.002  predictor.params.depth=1")) << dry.out;

  const fs::path whole = dir_.path() / "whole.db";
  const auto r = run_jepa("sweep '" + file.string() + "' --db '" + whole.string() + "'");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto expected = trial_overrides(whole, "tpe");
  ASSERT_EQ(expected.size(), 6U);
  EXPECT_EQ(expected[0], R"(["optimization.lr=0.002","predictor.params.depth=1","run.seed=0"])");
  EXPECT_EQ(std::set<std::string>(expected.begin(), expected.end()).size(), 6U);  // no point twice

  const fs::path log = dir_.path() / "host.log";
  std::mt19937 rng(99);
  std::uniform_int_distribution<int> wait_ms(500, 3000);
  bool started = false;
  for (int round = 0; round < 4; ++round) {
    std::vector<std::string> args{"sweep"};
    if (started) {
      args.insert(args.end(), {"--resume", "tpe"});
    } else {
      args.push_back(file.string());
    }
    args.insert(args.end(), {"--db", db_.string()});
    const pid_t pid = spawn_jepa(args, log);
    for (int i = 0; i < 600 && !started; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (fs::exists(db_)) started = Store(db_).find_sweep("tpe").has_value();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms(rng)));
    ::kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  ASSERT_TRUE(started) << jepa_test::slurp(log);
  const auto resumed = run_jepa("sweep --resume tpe " + db());
  ASSERT_EQ(resumed.code, 0) << resumed.err << jepa_test::slurp(log);
  EXPECT_EQ(trial_overrides(db_, "tpe"), expected);
  for (const auto& [i, row] : trials("tpe")) EXPECT_EQ(row.status, "COMPLETED") << i << ": " << row.reason;
  // Which parameters mattered, over the sweep's objective.
  const auto imp = run_jepa("compare --sweep tpe --importance " + db());
  ASSERT_EQ(imp.code, 0) << imp.err;
  EXPECT_TRUE(jepa_test::contains(imp.out, "PED-ANOVA")) << imp.out;
  EXPECT_TRUE(jepa_test::contains(imp.out, "optimization.lr")) << imp.out;
  EXPECT_TRUE(jepa_test::contains(imp.out, "train/loss")) << imp.out;
}

// Trials run elsewhere: `jepa sweep --create`, then ask (several callers at once) and tell.
TEST_F(Sweep, AskAndTellDriveATpeSweepFromOutsideAndBadTellsChangeNothing) {
  const auto file = write("ext.toml", std::string(kTpeSweep) + "\n");
  const auto created = run_jepa("sweep '" + file.string() + "' --create " + db());
  ASSERT_EQ(created.code, 0) << created.err;
  EXPECT_TRUE(jepa_test::contains(created.err, "jepa sweep ask tpe")) << created.err;
  std::vector<std::thread> askers;
  std::vector<std::string> answers(4);
  for (int a = 0; a < 4; ++a) {
    askers.emplace_back([&, a] { answers[a] = run_jepa("sweep ask tpe " + db()).out; });
  }
  for (auto& t : askers) t.join();
  std::set<int64_t> indices;
  for (const auto& text : answers) {
    const auto j = nlohmann::json::parse(text);
    indices.insert(j.at("index").get<int64_t>());
    EXPECT_EQ(j.at("set").back(), "run.seed=0");
    EXPECT_TRUE(j.at("params").contains("optimization.lr")) << text;
  }
  EXPECT_EQ(indices, (std::set<int64_t>{0, 1, 2, 3}));

  EXPECT_EQ(run_jepa("sweep tell tpe 0 0.5 " + db()).code, 0);
  const auto again = run_jepa("sweep tell tpe 0 0.25 " + db());
  EXPECT_EQ(again.code, 2);
  EXPECT_TRUE(jepa_test::contains(again.err, "already has a result (COMPLETED): nothing was changed")) << again.err;
  const auto bad = run_jepa("sweep tell tpe 1 abc " + db());
  EXPECT_EQ(bad.code, 2);
  EXPECT_TRUE(jepa_test::contains(bad.err, "'abc' is not a finite number")) << bad.err;
  EXPECT_EQ(run_jepa("sweep tell tpe 9 1 " + db()).code, 2);
  EXPECT_EQ(run_jepa("sweep tell tpe 1 --failed --reason 'out of memory' " + db()).code, 0);
  EXPECT_EQ(run_jepa("sweep tell tpe 2 0.7 --pruned --step 4 " + db()).code, 0);
  const auto t = trials("tpe");
  EXPECT_EQ(t.at(0).status, "COMPLETED");
  EXPECT_EQ(t.at(1).status, "FAILED");
  EXPECT_EQ(t.at(1).reason, "out of memory");
  EXPECT_EQ(t.at(2).status, "PRUNED");
  EXPECT_EQ(t.at(3).status, "RUNNING");
  Store store(db_);
  EXPECT_EQ(store.metrics(t.at(0).run, "train/loss").at(0).value, 0.5);
  // The sweep's own runner leaves handed-out trials to their callers and runs the rest.
  const auto rest = run_jepa("sweep --resume tpe " + db());
  ASSERT_EQ(rest.code, 0) << rest.err;
  const auto after = trials("tpe");
  EXPECT_EQ(after.size(), 6U);
  EXPECT_EQ(after.at(3).status, "RUNNING");  // still its caller's
  EXPECT_EQ(after.at(4).status, "COMPLETED") << after.at(4).reason;
  EXPECT_EQ(after.at(5).status, "COMPLETED") << after.at(5).reason;
  const auto spent = run_jepa("sweep ask tpe " + db());
  EXPECT_EQ(spent.code, 2);
  EXPECT_TRUE(jepa_test::contains(spent.err, "has asked all its 6 points")) << spent.err;
}
