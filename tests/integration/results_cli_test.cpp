// `jepa runs`, `show`, `compare`, `export --format` and `plot` on a fixed database, run as a
// user runs them. `jepa compare` output is checked against a golden file
// (tests/golden/compare_lr_grid.txt; JEPA_UPDATE_GOLDEN=1 rewrites it after a deliberate change).
#include "jepa_process.hpp"
#include "lr_grid_db.hpp"
#include "store/store.hpp"
#include "temp_dir.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdlib>
#include <fstream>
#include <limits>

namespace {

namespace fs = std::filesystem;
using jepa::store::RunStatus;
using jepa::store::Store;
using jepa_test::run_jepa;

class ResultsCli : public ::testing::Test {
 protected:
  ResultsCli() : dir_("results_cli"), db_(dir_.path() / "results.db") {
    Store store(db_);
    jepa_test::add_lr_grid_runs(store);
  }

  std::string db() const { return "--db '" + db_.string() + "'"; }

  jepa_test::TempDir dir_;
  fs::path db_;
};

TEST_F(ResultsCli, CompareMatchesGoldenOutput) {
  const auto r = run_jepa("compare --sweep lr-grid " + db());
  ASSERT_EQ(r.code, 0) << r.err;
  const fs::path golden = fs::path(JEPA_SOURCE_DIR) / "tests/golden/compare_lr_grid.txt";
  if (std::getenv("JEPA_UPDATE_GOLDEN")) {
    std::ofstream(golden, std::ios::binary) << r.out;
  }
  EXPECT_EQ(r.out, jepa_test::slurp(golden)) << "jepa compare output changed; if on purpose, rerun with "
                                                "JEPA_UPDATE_GOLDEN=1";
}

TEST_F(ResultsCli, CompareJsonCarriesStatisticsAndTests) {
  const auto r = run_jepa("compare --sweep lr-grid --metric probe/top1 --json " + db());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"p\": 0.0101"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"n\": 3"), std::string::npos) << r.out;
  // --group-by and a baseline that does not exist.
  const auto bad = run_jepa("compare --sweep lr-grid --baseline Q " + db());
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("no group 'Q'"), std::string::npos) << bad.err;
  const auto mixed = run_jepa("compare --sweep lr-grid --group-by masking.strategy " + db());
  ASSERT_EQ(mixed.code, 0) << mixed.err;
  EXPECT_NE(mixed.out.find("note: runs within a group also differ in optimization.lr"), std::string::npos) << mixed.out;
}

TEST_F(ResultsCli, RunsFiltersSortsAndShowsFailureReasons) {
  auto r = run_jepa("runs --sweep lr-grid --sort -probe/top1 --limit 3 " + db());
  ASSERT_EQ(r.code, 0) << r.err;
  const auto first = r.out.find("lr0.002-s3");
  const auto second = r.out.find("lr0.002-s1");
  ASSERT_NE(first, std::string::npos) << r.out;
  ASSERT_NE(second, std::string::npos) << r.out;
  EXPECT_LT(first, second);
  EXPECT_NE(r.out.find("first 3 shown"), std::string::npos) << r.out;

  r = run_jepa("runs --where \"status = failed\" " + db());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("diverged at step 10"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("lr0.001"), std::string::npos) << r.out;

  r = run_jepa("runs --where \"name = 'o''brien; DROP TABLE runs'\" " + db());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("o'brien; DROP TABLE runs"), std::string::npos) << r.out;

  r = run_jepa("runs --where \"probe/top1 >\" " + db());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("expected a value after '>' at column 13"), std::string::npos) << r.err;

  r = run_jepa("runs --db '" + (dir_.path() / "none.db").string() + "'");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("no results database"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_.path() / "none.db"));
}

TEST_F(ResultsCli, RunsMarksARunWhoseHeartbeatStoppedAsKilled) {
  {
    Store store(db_);
    const int64_t alive = store.create_run("alive", "{}", "x.toml", 0);
    const int64_t dead = store.create_run("dead", "{}", "x.toml", 0);
    EXPECT_EQ(alive + 1, dead);
  }
  {
    // The dead run's last heartbeat was long ago (its process and machine went away).
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(db_.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "UPDATE runs SET heartbeat_at = '2020-01-01T00:00:00.000Z' WHERE name = 'dead'", nullptr,
                           nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  const auto r = run_jepa("runs --where \"name = alive or name = dead\" " + db());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("no heartbeat since 2020-01-01T00:00:00.000Z"), std::string::npos) << r.out;
  Store store(db_);
  EXPECT_EQ(store.find_run("dead")->status, RunStatus::killed);
  EXPECT_EQ(store.find_run("alive")->status, RunStatus::running);
}

TEST_F(ResultsCli, ShowPrintsEverythingAboutARun) {
  const auto r = run_jepa("show 8 " + db());
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* part : {"FAILED", "diverged at step 10", "train/loss", "optimization.lr", "environment"}) {
    EXPECT_NE(r.out.find(part), std::string::npos) << part << "\n" << r.out;
  }
  EXPECT_EQ(run_jepa("show 99 " + db()).code, 2);
}

TEST_F(ResultsCli, ExportWritesCsvAndJsonForPandas) {
  const auto csv = dir_.path() / "runs.csv";
  auto r = run_jepa("export --sweep lr-grid -o '" + csv.string() + "' " + db());
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string text = jepa_test::slurp(csv);
  EXPECT_EQ(text.rfind("id,name,status,reason,started_at,ended_at,steps,seed,sweep,", 0), 0u) << text;
  EXPECT_NE(text.find("param:optimization.lr"), std::string::npos);
  EXPECT_NE(text.find("metric:probe/top1"), std::string::npos);
  EXPECT_NE(text.find("diverged at step 10"), std::string::npos);
  size_t lines = 0;
  for (char ch : text) lines += ch == '\n';
  EXPECT_EQ(lines, 9u);  // header + 8 runs of the sweep

  r = run_jepa("export 1 2 --history --metric train/loss --format csv " + db());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("run_id,run_name,key,step,value,time\r\n", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("1,lr0.002-s0,train/loss,20,0.21,"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("probe/top1"), std::string::npos);

  r = run_jepa("export \"o'brien; DROP TABLE runs\" --format json " + db());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"name\": \"o'brien; DROP TABLE runs\""), std::string::npos) << r.out;

  r = run_jepa("export 1 2 " + db());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--format"), std::string::npos) << r.err;
}

TEST_F(ResultsCli, PlotDrawsCurvesAndSweepScatter) {
  const auto png = dir_.path() / "curves.png";
  auto r = run_jepa("plot 1 2 3 --metric train/loss -o '" + png.string() + "' " + db());
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string bytes = jepa_test::slurp(png);
  ASSERT_GT(bytes.size(), 1000u);
  EXPECT_EQ(bytes.substr(1, 3), "PNG");

  const auto svg = dir_.path() / "lr.svg";
  r = run_jepa("plot --sweep lr-grid --param optimization.lr --metric probe/top1 -o '" + svg.string() + "' " + db());
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string text = jepa_test::slurp(svg);
  EXPECT_NE(text.find("<svg"), std::string::npos);
  EXPECT_NE(text.find("optimization.lr"), std::string::npos);

  r = run_jepa("plot 1 --metric nope/metric -o '" + png.string() + "' " + db());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("nope/metric"), std::string::npos) << r.err;
  r = run_jepa("plot 1 -o '" + (dir_.path() / "x.gif").string() + "' " + db());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find(".png or .svg"), std::string::npos) << r.err;
}

}  // namespace
