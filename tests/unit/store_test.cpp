#include "store/store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using namespace jepa::store;

namespace {

// A fresh folder per test, removed afterwards.
class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("jepa_store_test_" + std::to_string(::getpid()) + "_" +
                                        std::to_string(counter++) + "_" + std::to_string(rd()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  // Nested and missing on purpose: the store must create the folders.
  fs::path db_path() const { return dir_ / "nested" / "results" / "runs.db"; }

  fs::path dir_;
};

// Talks to the database file directly, as the `sqlite3` shell would, to check what the store wrote
// or to tamper with it.
class RawDb {
 public:
  explicit RawDb(const fs::path& path) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) throw std::runtime_error("cannot open " + path.string());
    sqlite3_busy_timeout(db_, 10000);
  }
  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "?";
      sqlite3_free(err);
      throw std::runtime_error(sql + ": " + msg);
    }
  }
  // First column of the first row as text ("" when there is none).
  std::string scalar(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
    }
    std::string out;
    if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0)) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

bool is_iso_utc_ms(const std::string& s) {
  // 2026-11-27T21:03:04.123Z
  if (s.size() != 24) return false;
  const std::string pattern = "dddd-dd-ddTdd:dd:dd.dddZ";
  for (size_t i = 0; i < s.size(); ++i) {
    if (pattern[i] == 'd' ? !std::isdigit(static_cast<unsigned char>(s[i])) : s[i] != pattern[i]) return false;
  }
  return true;
}

std::vector<MetricPoint> batch(const std::string& key, int64_t first_step, int n) {
  std::vector<MetricPoint> points;
  for (int i = 0; i < n; ++i) points.push_back({key, first_step + i, 0.5 * static_cast<double>(first_step + i), 1.0});
  return points;
}

// Waits for a forked child and returns its exit code (-1 if it did not exit normally).
int wait_child(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST_F(StoreTest, CreatesFoldersAndMigratesToLatest) {
  {
    Store store(db_path());
    EXPECT_TRUE(fs::exists(db_path()));
    EXPECT_GE(Store::latest_schema_version(), 1);
    EXPECT_EQ(store.schema_version(), Store::latest_schema_version());
    store.create_run("kept", "{}", "exp.toml", 1);
  }
  RawDb raw(db_path());
  EXPECT_EQ(raw.scalar("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.scalar("SELECT COUNT(*) FROM schema_version"), "1");
  const std::string objects = raw.scalar("SELECT COUNT(*) FROM sqlite_master");

  // Reopening must not apply the migrations again (they would fail on existing tables or wipe rows).
  Store again(db_path());
  EXPECT_EQ(again.schema_version(), Store::latest_schema_version());
  EXPECT_EQ(raw.scalar("SELECT COUNT(*) FROM schema_version"), "1");
  EXPECT_EQ(raw.scalar("SELECT COUNT(*) FROM sqlite_master"), objects);
  ASSERT_EQ(again.list_runs().size(), 1u);
  EXPECT_EQ(again.list_runs()[0].name, "kept");
}

TEST_F(StoreTest, RefusesNewerSchema) {
  { Store store(db_path()); }
  const int newer = Store::latest_schema_version() + 7;
  {
    RawDb raw(db_path());
    raw.exec("UPDATE schema_version SET version = " + std::to_string(newer));
  }
  try {
    Store store(db_path());
    FAIL() << "a database newer than the code was opened";
  } catch (const StoreError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(std::to_string(newer)), std::string::npos) << msg;
    EXPECT_NE(msg.find("version " + std::to_string(Store::latest_schema_version())), std::string::npos) << msg;
    EXPECT_NE(msg.find(db_path().string()), std::string::npos) << msg;
  }
  // Refusing must leave the database as it was.
  RawDb raw(db_path());
  EXPECT_EQ(raw.scalar("SELECT version FROM schema_version"), std::to_string(newer));
}

TEST_F(StoreTest, RecordsEverythingAboutARun) {
  Store store(db_path());
  const int64_t first = store.create_run("baseline", R"({"lr":0.001})", "experiments/a.toml", 42);
  const int64_t run =
      store.create_run("baseline", R"({"lr":0.002})", "experiments/a.toml", 0xFFFFFFFFFFFFFFF0ull, first);
  EXPECT_NE(first, run);

  store.set_params(run, {{"optimization.lr", "0.002"}, {"mask.npred", "4"}});
  store.set_params(run, {{"optimization.lr", "0.003"}});
  EXPECT_EQ(store.params(run), (std::map<std::string, std::string>{{"mask.npred", "4"}, {"optimization.lr", "0.003"}}));
  EXPECT_TRUE(store.params(first).empty());

  store.set_environment(run, {{"host", "box"}, {"torch", "1.13.0"}});
  EXPECT_EQ(store.environment(run), (std::map<std::string, std::string>{{"host", "box"}, {"torch", "1.13.0"}}));

  PluginRecord plugin{"masking", "multiblock", 3, "masking_multiblock", "1.2.0", "/p/m.so", "abcd", "torch 1.13"};
  store.add_plugins(run, {plugin, PluginRecord{"encoder", "vit", 1, "enc", "0.1", "/p/e.so", "ef", "fp"}});
  auto plugins = store.plugins(run);
  ASSERT_EQ(plugins.size(), 2u);
  EXPECT_EQ(plugins[0].role, "masking");
  EXPECT_EQ(plugins[0].component_id, "multiblock");
  EXPECT_EQ(plugins[0].component_version, 3);
  EXPECT_EQ(plugins[0].plugin_name, "masking_multiblock");
  EXPECT_EQ(plugins[0].plugin_version, "1.2.0");
  EXPECT_EQ(plugins[0].path, "/p/m.so");
  EXPECT_EQ(plugins[0].sha256, "abcd");
  EXPECT_EQ(plugins[0].fingerprint, "torch 1.13");
  EXPECT_EQ(plugins[1].component_id, "vit");

  // Logged out of order, read back by step; NaN survives as NaN.
  store.log_metrics(run, {{"train/loss", 30, 0.3, 103.0},
                          {"train/loss", 10, 1.0, 101.0},
                          {"train/lr", 10, 0.1, 101.0},
                          {"train/loss", 20, std::nan(""), 102.0}});
  auto loss = store.metrics(run, "train/loss");
  ASSERT_EQ(loss.size(), 3u);
  EXPECT_EQ(loss[0].step, 10);
  EXPECT_DOUBLE_EQ(loss[0].value, 1.0);
  EXPECT_DOUBLE_EQ(loss[0].time, 101.0);
  EXPECT_EQ(loss[0].key, "train/loss");
  EXPECT_EQ(loss[1].step, 20);
  EXPECT_TRUE(std::isnan(loss[1].value));
  EXPECT_EQ(loss[2].step, 30);
  EXPECT_DOUBLE_EQ(loss[2].value, 0.3);
  ASSERT_EQ(store.metrics(run, "train/lr").size(), 1u);
  EXPECT_TRUE(store.metrics(first, "train/loss").empty());
  EXPECT_EQ(store.find_run(run)->last_step, 30);

  store.add_evaluation(run, {"linear_probe", "top1", 0.71, 30, R"({"epochs":10})"});
  auto evals = store.evaluations(run);
  ASSERT_EQ(evals.size(), 1u);
  EXPECT_EQ(evals[0].evaluator, "linear_probe");
  EXPECT_EQ(evals[0].metric, "top1");
  EXPECT_DOUBLE_EQ(evals[0].value, 0.71);
  EXPECT_EQ(evals[0].step, 30);
  EXPECT_EQ(evals[0].params_json, R"({"epochs":10})");

  store.add_artifact(run, {"checkpoint", "/ck/40.pt", 40, 1000, "aa", ""});
  store.add_artifact(run, {"checkpoint", "/ck/20.pt", 20, 900, "", ""});
  store.add_artifact(run, {"plot", "/loss.png", 50, 10, "", "2026-01-02T03:04:05.678Z"});
  auto artifacts = store.artifacts(run);
  ASSERT_EQ(artifacts.size(), 3u);
  EXPECT_EQ(artifacts[0].path, "/ck/20.pt");
  EXPECT_EQ(artifacts[1].path, "/ck/40.pt");
  EXPECT_EQ(artifacts[1].bytes, 1000);
  EXPECT_EQ(artifacts[1].sha256, "aa");
  EXPECT_TRUE(is_iso_utc_ms(artifacts[1].created_at)) << artifacts[1].created_at;
  EXPECT_EQ(artifacts[2].created_at, "2026-01-02T03:04:05.678Z");
  auto latest = store.latest_artifact(run, "checkpoint");
  ASSERT_TRUE(latest);
  EXPECT_EQ(latest->path, "/ck/40.pt");
  EXPECT_EQ(latest->step, 40);
  EXPECT_FALSE(store.latest_artifact(run, "export"));
  EXPECT_FALSE(store.latest_artifact(first, "checkpoint"));

  auto before = store.find_run(run);
  ASSERT_TRUE(before);
  EXPECT_EQ(before->status, RunStatus::running);
  EXPECT_TRUE(before->ended_at.empty());
  EXPECT_TRUE(is_iso_utc_ms(before->started_at)) << before->started_at;
  EXPECT_EQ(before->heartbeat_at, before->started_at);
  EXPECT_EQ(before->config_json, R"({"lr":0.002})");
  EXPECT_EQ(before->config_path, "experiments/a.toml");
  EXPECT_EQ(before->seed, 0xFFFFFFFFFFFFFFF0ull);
  EXPECT_EQ(before->resumed_from, first);
  EXPECT_EQ(before->last_step, 50);  // the plot artifact at step 50

  store.finish_run(run, RunStatus::failed, "loss diverged");
  store.finish_run(first, RunStatus::completed);
  auto after = store.find_run(run);
  EXPECT_EQ(after->status, RunStatus::failed);
  EXPECT_EQ(after->reason, "loss diverged");
  EXPECT_TRUE(is_iso_utc_ms(after->ended_at)) << after->ended_at;
  EXPECT_GE(after->ended_at, after->started_at);
  EXPECT_EQ(store.find_run(first)->status, RunStatus::completed);
  EXPECT_TRUE(store.find_run(first)->reason.empty());
  EXPECT_FALSE(store.find_run(first)->resumed_from);

  auto runs = store.list_runs();
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].id, first);
  EXPECT_EQ(runs[1].id, run);

  // By id, by name (the newest of that name), and misses.
  EXPECT_EQ(store.find_run(std::to_string(first))->id, first);
  EXPECT_EQ(store.find_run("baseline")->id, run);
  EXPECT_FALSE(store.find_run("nope"));
  EXPECT_FALSE(store.find_run("999"));
  EXPECT_FALSE(store.find_run(int64_t{999}));
  EXPECT_FALSE(store.find_run(""));

  // What a researcher types into the sqlite3 shell.
  RawDb raw(db_path());
  EXPECT_EQ(raw.scalar("SELECT status FROM runs WHERE id = " + std::to_string(run)), "FAILED");
  EXPECT_EQ(raw.scalar("SELECT COUNT(*) FROM metrics WHERE key = 'train/loss' AND value IS NULL"), "1");
}

TEST_F(StoreTest, ErrorsNameTheDatabaseAndSqliteReason) {
  Store store(db_path());
  try {
    store.log_metrics(12345, batch("train/loss", 0, 3));  // no such run: foreign keys are on
    FAIL() << "metrics for a missing run were accepted";
  } catch (const StoreError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("FOREIGN KEY"), std::string::npos) << msg;
    EXPECT_NE(msg.find(db_path().string()), std::string::npos) << msg;
  }
  RawDb raw(db_path());
  EXPECT_EQ(raw.scalar("SELECT COUNT(*) FROM metrics"), "0");  // the batch was rolled back as a whole
  EXPECT_THROW(store.heartbeat(12345, 1), StoreError);
  EXPECT_THROW(store.finish_run(12345, RunStatus::completed), StoreError);
}

TEST_F(StoreTest, FinishRequiresReasonAndStatusNamesAreChecked) {
  Store store(db_path());
  const int64_t run = store.create_run("r", "{}", "", 0);
  EXPECT_THROW(store.finish_run(run, RunStatus::failed), StoreError);
  EXPECT_THROW(store.finish_run(run, RunStatus::killed, ""), StoreError);
  EXPECT_THROW(store.finish_run(run, RunStatus::pruned), StoreError);
  EXPECT_THROW(store.finish_run(run, RunStatus::running, "why"), StoreError);
  EXPECT_EQ(store.find_run(run)->status, RunStatus::running);
  store.finish_run(run, RunStatus::pruned, "below median at step 100");
  EXPECT_EQ(store.find_run(run)->status, RunStatus::pruned);

  for (RunStatus s :
       {RunStatus::running, RunStatus::completed, RunStatus::failed, RunStatus::killed, RunStatus::pruned}) {
    EXPECT_EQ(status_from_name(status_name(s)), s);
  }
  EXPECT_STREQ(status_name(RunStatus::completed), "COMPLETED");
  EXPECT_THROW(status_from_name("junk"), StoreError);
  EXPECT_THROW(status_from_name("running"), StoreError);
  EXPECT_THROW(status_from_name(""), StoreError);
}

TEST_F(StoreTest, UnfinishedRunOutlivesItsConnectionAndIsMarkedStale) {
  int64_t crashed = 0;
  int64_t alive = 0;
  {
    Store store(db_path());
    crashed = store.create_run("crashed", "{}", "", 1);
    alive = store.create_run("alive", "{}", "", 2);
    store.log_metrics(crashed, batch("train/loss", 1, 5));
  }  // gone without finish_run, as after a crash

  Store later(db_path());
  auto run = later.find_run(crashed);
  ASSERT_TRUE(run);
  EXPECT_EQ(run->status, RunStatus::running);
  EXPECT_EQ(run->last_step, 5);
  EXPECT_EQ(later.metrics(crashed, "train/loss").size(), 5u);

  EXPECT_TRUE(later.mark_stale_runs(3600).empty());  // both are recent

  {
    RawDb raw(db_path());
    raw.exec("UPDATE runs SET heartbeat_at = '2001-02-03T04:05:06.789Z' WHERE id = " + std::to_string(crashed));
  }
  later.heartbeat(alive, 17);
  EXPECT_EQ(later.mark_stale_runs(60), std::vector<int64_t>{crashed});

  auto killed = later.find_run(crashed);
  EXPECT_EQ(killed->status, RunStatus::killed);
  EXPECT_EQ(killed->reason, "no heartbeat since 2001-02-03T04:05:06.789Z");
  EXPECT_FALSE(killed->ended_at.empty());
  auto kept = later.find_run(alive);
  EXPECT_EQ(kept->status, RunStatus::running);
  EXPECT_EQ(kept->last_step, 17);
  EXPECT_TRUE(kept->ended_at.empty());

  // Marking again finds nothing new: KILLED runs are not RUNNING.
  EXPECT_TRUE(later.mark_stale_runs(60).empty());
}

TEST_F(StoreTest, HeartbeatTimesAreRealAndKeepARunAlive) {
  Store store(db_path());
  const int64_t quiet = store.create_run("quiet", "{}", "", 0);
  const int64_t beating = store.create_run("beating", "{}", "", 0);
  const std::string first_beat = store.find_run(beating)->heartbeat_at;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  store.heartbeat(beating, 3);
  EXPECT_GT(store.find_run(beating)->heartbeat_at, first_beat);
  EXPECT_EQ(store.mark_stale_runs(0.2), std::vector<int64_t>{quiet});
  EXPECT_EQ(store.find_run(beating)->status, RunStatus::running);
  EXPECT_EQ(store.find_run(quiet)->status, RunStatus::killed);
}

TEST_F(StoreTest, ChildThatExitsWithoutFinishingLeavesRunningRowAndMetrics) {
  std::fflush(nullptr);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    try {
      Store store(db_path());
      const int64_t run = store.create_run("child", "{}", "", 9);
      store.log_metrics(run, batch("train/loss", 0, 250));
      store.heartbeat(run, 249);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child: %s\n", e.what());
      _exit(1);
    }
    _exit(0);  // no destructors, no finish_run: a crash as far as the store can tell
  }
  ASSERT_EQ(wait_child(pid), 0);

  Store store(db_path());
  auto run = store.find_run("child");
  ASSERT_TRUE(run);
  EXPECT_EQ(run->status, RunStatus::running);
  EXPECT_EQ(run->last_step, 249);
  auto loss = store.metrics(run->id, "train/loss");
  ASSERT_EQ(loss.size(), 250u);
  EXPECT_EQ(loss.back().step, 249);
  EXPECT_DOUBLE_EQ(loss.back().value, 0.5 * 249);
}

TEST_F(StoreTest, ManyProcessesShareAFreshDatabase) {
  constexpr int kChildren = 4;
  constexpr int kPoints = 2000;
  constexpr int kBatch = 100;
  ASSERT_FALSE(fs::exists(db_path()));

  // The children block on the pipe until the parent closes it, so they open the new file together.
  int gate[2];
  ASSERT_EQ(pipe(gate), 0);
  std::fflush(nullptr);
  std::vector<pid_t> children;
  for (int i = 0; i < kChildren; ++i) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(gate[1]);
      char c;
      while (read(gate[0], &c, 1) > 0) {
      }
      try {
        Store store(db_path());
        const int64_t run = store.create_run("worker" + std::to_string(i), "{}", "", static_cast<uint64_t>(i));
        for (int step = 0; step < kPoints; step += kBatch) {
          store.log_metrics(run, batch("train/loss", step, kBatch));
          store.heartbeat(run, step + kBatch - 1);
        }
        store.finish_run(run, RunStatus::completed);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "child %d: %s\n", i, e.what());
        _exit(1);
      }
      _exit(0);
    }
    children.push_back(pid);
  }
  close(gate[0]);
  close(gate[1]);
  for (pid_t pid : children) EXPECT_EQ(wait_child(pid), 0) << "a child failed (see its message above)";

  Store store(db_path());
  EXPECT_EQ(store.schema_version(), Store::latest_schema_version());
  auto runs = store.list_runs();
  ASSERT_EQ(runs.size(), static_cast<size_t>(kChildren));
  for (const RunRecord& r : runs) {
    EXPECT_EQ(r.status, RunStatus::completed) << r.name;
    EXPECT_EQ(r.last_step, kPoints - 1) << r.name;
    EXPECT_EQ(store.metrics(r.id, "train/loss").size(), static_cast<size_t>(kPoints)) << r.name;
  }
  RawDb raw(db_path());
  EXPECT_EQ(raw.scalar("SELECT COUNT(*) FROM metrics"), std::to_string(kChildren * kPoints));
  EXPECT_EQ(raw.scalar("SELECT COUNT(*) FROM schema_version"), "1");
  EXPECT_EQ(raw.scalar("PRAGMA integrity_check"), "ok");
}

TEST_F(StoreTest, MetricLoggerFlushesByCountTimeAndOnDestruction) {
  Store store(db_path());
  const int64_t run = store.create_run("logged", "{}", "", 0);
  {
    MetricLogger logger(store, run, 3, 3600.0);
    logger.log("a", 1, 1.0);
    logger.log("a", 2, 2.0);
    EXPECT_TRUE(store.metrics(run, "a").empty());  // still buffered
    logger.log("a", 3, 3.0);
    EXPECT_EQ(store.metrics(run, "a").size(), 3u);  // the third point filled the batch
    logger.log("a", 4, 4.0);
    logger.log("b", 4, 40.0);
    EXPECT_EQ(store.metrics(run, "a").size(), 3u);
  }
  EXPECT_EQ(store.metrics(run, "a").size(), 4u);
  ASSERT_EQ(store.metrics(run, "b").size(), 1u);
  EXPECT_DOUBLE_EQ(store.metrics(run, "b")[0].value, 40.0);
  EXPECT_GT(store.metrics(run, "b")[0].time, 1.6e9);  // wall-clock seconds
  EXPECT_EQ(store.find_run(run)->last_step, 4);

  MetricLogger timed(store, run, 1000, 0.05);
  timed.log("c", 1, 1.0);
  EXPECT_TRUE(store.metrics(run, "c").empty());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  timed.log("c", 2, 2.0);
  EXPECT_EQ(store.metrics(run, "c").size(), 2u);
  timed.log("c", 3, 3.0);
  timed.flush();
  EXPECT_EQ(store.metrics(run, "c").size(), 3u);
}

TEST_F(StoreTest, MetricLoggerDestructorDoesNotThrow) {
  Store store(db_path());
  {
    MetricLogger logger(store, 4242, 1000, 3600.0);  // no such run: the flush will fail
    logger.log("a", 1, 1.0);
  }  // must only warn
  SUCCEED();
}

TEST(StoreReopen, ResumedRunDropsMetricsPastItsCheckpoint) {
  const auto dir = std::filesystem::temp_directory_path() / ("jepa_store_reopen_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  {
    jepa::store::Store store(dir / "r.db");
    const int64_t run = store.create_run("r", "{}", "r.toml", 1);
    std::vector<jepa::store::MetricPoint> points;
    for (int64_t step = 1; step <= 10; ++step) points.push_back({"train/loss", step, 1.0 / step, 0.0});
    store.log_metrics(run, points);
    store.add_evaluation(run, {"probe", "top1", 50.0, 10, "{}"});
    store.finish_run(run, jepa::store::RunStatus::killed, "killed at step 10");
    store.reopen_run(run, 6);
    const auto r = store.find_run(run);
    EXPECT_EQ(r->status, jepa::store::RunStatus::running);
    EXPECT_TRUE(r->reason.empty());
    EXPECT_TRUE(r->ended_at.empty());
    EXPECT_EQ(r->last_step, 6);
    const auto m = store.metrics(run, "train/loss");
    ASSERT_EQ(m.size(), 6u);
    EXPECT_EQ(m.back().step, 6);
    EXPECT_TRUE(store.evaluations(run).empty());
    EXPECT_THROW(store.reopen_run(run + 1, 0), jepa::store::StoreError);
  }
  std::filesystem::remove_all(dir);
}

// jepa ui's reader: never creates, migrates or writes, even when asked to.
TEST_F(StoreTest, ReadOnlyOpenReadsButNeverWrites) {
  EXPECT_THROW(Store(db_path(), OpenMode::read_only), StoreError);
  EXPECT_FALSE(fs::exists(db_path()));
  {
    Store writer(db_path());
    const int64_t run = writer.create_run("r", "{}", "x.toml", 1);
    writer.log_metrics(run, {{"train/loss", 1, 0.5, 1.8e9}});
  }
  Store reader(db_path(), OpenMode::read_only);
  EXPECT_EQ(reader.find_run("r")->seed, 1u);
  EXPECT_EQ(reader.metrics(1, "train/loss").size(), 1u);
  EXPECT_THROW(reader.create_run("s", "{}", "x.toml", 1), StoreError);
  EXPECT_THROW(reader.log_metrics(1, {{"train/loss", 2, 0.4, 1.8e9}}), StoreError);
  EXPECT_THROW(reader.mark_stale_runs(0.0), StoreError);
  // Meanwhile a writer keeps writing, and the reader sees it.
  Store writer(db_path());
  writer.log_metrics(1, {{"train/loss", 2, 0.4, 1.8e9}});
  EXPECT_EQ(reader.metrics(1, "train/loss").size(), 2u);
  // Not a results database: refused with the reason.
  const fs::path other = dir_ / "other.db";
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(other.c_str(), &raw), SQLITE_OK);
  sqlite3_exec(raw, "CREATE TABLE t (x)", nullptr, nullptr, nullptr);
  sqlite3_close(raw);
  EXPECT_THROW(Store(other, OpenMode::read_only), StoreError);
}
