// The query room: --where filters (quotes, SQL metacharacters, precedence, types), sorting,
// the metric summary the store keeps, and the seed-grouping statistics against hand-computed
// values (reference p-values from an independent numerical integration of the t density).
#include "query/compare.hpp"
#include "query/filter.hpp"
#include "query/runs.hpp"
#include "query/stats.hpp"
#include "store/store.hpp"
#include "temp_dir.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cmath>
#include <limits>

namespace {

using jepa::query::FilterError;
using jepa::query::RunSelection;
using jepa::query::select_runs;
using jepa::store::MetricPoint;
using jepa::store::RunStatus;
using jepa::store::Store;

std::vector<int64_t> ids(const std::vector<jepa::query::RunRow>& rows) {
  std::vector<int64_t> out;
  for (const auto& r : rows) out.push_back(r.id);
  return out;
}

// Six runs: names with quotes and SQL, two learning rates, metrics with a NaN.
class QueryTest : public ::testing::Test {
 protected:
  QueryTest() : dir_("query_test"), store_(dir_.path() / "r.db") {
    add("plain", "0.001", "multiblock", 70.0, 0.30, RunStatus::completed);                                     // 1
    add("o'brien \"q\"", "1e-3", "multiblock", 72.0, 0.20, RunStatus::completed);                              // 2
    add("x'; DROP TABLE runs; --", "0.002", "random", 60.0, 0.25, RunStatus::failed);                          // 3
    add("100%_done", "0.002", "block", std::numeric_limits<double>::quiet_NaN(), 0.10, RunStatus::completed);  // 4
    add("plain", "0.004", "multiblock", 75.0, 0.40, RunStatus::running);                                       // 5
    add("bare", "[0.15, 0.2]", "multiblock", 65.0, 0.50, RunStatus::completed);                                // 6
  }

  void add(const std::string& name, const std::string& lr, const std::string& mask, double top1, double loss,
           RunStatus status) {
    const int64_t id = store_.create_run(name, "{}", "x.toml", 7);
    store_.set_params(id, {{"optimization.lr", lr}, {"masking.strategy", mask}, {"run.seed", "7"}});
    store_.log_metrics(id,
                       {{"train/loss", 10, loss + 1.0, 0}, {"train/loss", 20, loss, 0}, {"probe/top1", 20, top1, 0}});
    if (status != RunStatus::running) store_.finish_run(id, status, status == RunStatus::completed ? "" : "diverged");
  }

  std::vector<int64_t> where(const std::string& w, const std::string& sort = "id") {
    RunSelection s;
    s.where = w;
    s.sort = sort;
    return ids(select_runs(store_, s));
  }

  jepa_test::TempDir dir_;
  Store store_;
};

TEST_F(QueryTest, QuotedTextWithSqlMetacharactersIsAValueNeverSql) {
  EXPECT_EQ(where("name = \"x'; DROP TABLE runs; --\""), std::vector<int64_t>({3}));
  EXPECT_EQ(where("name = 'x''; DROP TABLE runs; --'"), std::vector<int64_t>({3}));
  EXPECT_EQ(where("name = 'o''brien \"q\"'"), std::vector<int64_t>({2}));
  EXPECT_EQ(where("name = `o'brien \"q\"`"), std::vector<int64_t>({2}));
  EXPECT_TRUE(where("name = '1'' OR ''1''=''1'").empty());
  // Every run is still there.
  EXPECT_EQ(where("").size(), 6u);
}

TEST_F(QueryTest, TrailingSqlIsAParseErrorNamingTheColumn) {
  try {
    where("name = plain; DROP TABLE runs");
    FAIL() << "expected a FilterError";
  } catch (const FilterError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("unexpected character ';' at column 13"), std::string::npos) << m;
    EXPECT_NE(m.find("            ^"), std::string::npos) << m;
  }
  EXPECT_THROW(where("name = 'unterminated"), FilterError);
  EXPECT_THROW(where("probe/top1 >"), FilterError);
  EXPECT_THROW(where("(probe/top1 > 3"), FilterError);
  EXPECT_THROW(where("nosuchcolumn = 3"), FilterError);
  EXPECT_THROW(where("probe/top1 = high"), FilterError);  // metrics compare with numbers
  EXPECT_THROW(where("id = abc"), FilterError);
  EXPECT_EQ(where("").size(), 6u);
}

TEST_F(QueryTest, LikeTreatsPercentAndUnderscoreAsPatternsOnlyInThePattern) {
  EXPECT_EQ(where("name like '100%'"), std::vector<int64_t>({4}));
  EXPECT_EQ(where("name like 'pl%'"), std::vector<int64_t>({1, 5}));
}

TEST_F(QueryTest, ParametersCompareNumericallyWhenTheValueIsANumber) {
  // "0.001" and "1e-3" are the same number; the list value never takes part.
  EXPECT_EQ(where("optimization.lr = 0.001"), std::vector<int64_t>({1, 2}));
  EXPECT_EQ(where("optimization.lr >= 2e-3"), std::vector<int64_t>({3, 4, 5}));
  EXPECT_EQ(where("optimization.lr = '1e-3'"), std::vector<int64_t>({2}));  // quoted: text
  EXPECT_EQ(where("masking.strategy != multiblock"), std::vector<int64_t>({3, 4}));
  EXPECT_EQ(where("param:optimization.lr = '[0.15, 0.2]'"), std::vector<int64_t>({6}));
}

TEST_F(QueryTest, MetricsCompareTheirLatestValue) {
  EXPECT_EQ(where("train/loss < 0.3"), std::vector<int64_t>({2, 3, 4}));  // latest, not the step-10 value
  EXPECT_EQ(where("probe/top1 >= 70"), std::vector<int64_t>({1, 2, 5}));  // NaN matches nothing
}

TEST_F(QueryTest, AndBindsTighterThanOrAndNotAndParenthesesWork) {
  EXPECT_EQ(where("status = completed and probe/top1 > 71 or name = bare"), std::vector<int64_t>({2, 6}));
  EXPECT_EQ(where("status = completed and (probe/top1 > 71 or name = bare)"), std::vector<int64_t>({2, 6}));
  // Run 4's NaN top1 is not > 71, so `not` takes it.
  EXPECT_EQ(where("status = COMPLETED && not (probe/top1 > 71 || name = bare)"), std::vector<int64_t>({1, 4}));
  EXPECT_EQ(where("status = failed"), std::vector<int64_t>({3}));
  EXPECT_EQ(where("id >= 5"), std::vector<int64_t>({5, 6}));
}

TEST_F(QueryTest, SortsByMetricWithMissingValuesLastAndLimits) {
  EXPECT_EQ(where("", "-probe/top1"), std::vector<int64_t>({5, 2, 1, 6, 3, 4}));
  EXPECT_EQ(where("", "probe/top1"), std::vector<int64_t>({3, 6, 1, 2, 5, 4}));
  // Equal numbers ("0.001", "1e-3") fall back to their text, then the id.
  EXPECT_EQ(where("", "-optimization.lr"), std::vector<int64_t>({5, 3, 4, 2, 1, 6}));
  RunSelection s;
  s.sort = "-probe/top1";
  s.limit = 2;
  EXPECT_EQ(ids(select_runs(store_, s)), std::vector<int64_t>({5, 2}));
  s = {};
  EXPECT_EQ(ids(select_runs(store_, s)), std::vector<int64_t>({6, 5, 4, 3, 2, 1}));  // newest first
  s.sort = "bogus";
  EXPECT_THROW(select_runs(store_, s), FilterError);
}

TEST_F(QueryTest, SweepsSelectTheirRunsByNameOrId) {
  const int64_t sw = store_.create_sweep("lr grid", "{}");
  store_.set_run_sweep(2, sw);
  store_.set_run_sweep(4, sw);
  RunSelection s;
  s.sweep = "lr grid";
  s.sort = "id";
  EXPECT_EQ(ids(select_runs(store_, s)), std::vector<int64_t>({2, 4}));
  s.sweep = std::to_string(sw);
  EXPECT_EQ(ids(select_runs(store_, s)), std::vector<int64_t>({2, 4}));
  EXPECT_EQ(where("sweep = 'lr grid'"), std::vector<int64_t>({2, 4}));
  EXPECT_EQ(where("sweep != 'lr grid'"), std::vector<int64_t>({1, 3, 5, 6}));
  s.sweep = "nope";
  EXPECT_THROW(select_runs(store_, s), jepa::store::StoreError);
  EXPECT_THROW(store_.create_sweep("lr grid", "{}"), jepa::store::StoreError);
}

TEST_F(QueryTest, RowsCarryParamsAndLatestMetrics) {
  RunSelection s;
  s.runs = {"2"};
  const auto rows = select_runs(store_, s);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].name, "o'brien \"q\"");
  EXPECT_EQ(rows[0].params.at("optimization.lr"), "1e-3");
  EXPECT_DOUBLE_EQ(rows[0].metrics.at("train/loss"), 0.20);
  EXPECT_EQ(rows[0].steps, 20);
}

TEST(MetricSummary, TracksLatestMinMaxAndCountAndIsRebuiltOnResume) {
  jepa_test::TempDir dir("metric_summary");
  Store store(dir.path() / "r.db");
  const int64_t run = store.create_run("r", "{}", "x.toml", 0);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  store.log_metrics(run, {{"m/a", 5, 3.0, 0}, {"m/a", 2, 9.0, 0}, {"m/a", 7, 1.0, 0}});
  store.log_metrics(run, {{"m/a", 8, nan, 0}});
  auto read = [&] {
    std::vector<double> v;
    store.query("SELECT last_step, last_value, min_value, max_value, count FROM metric_summary WHERE key = 'm/a'", {},
                [&](const jepa::store::Row& r) {
                  for (int i = 0; i < 5; ++i) v.push_back(r.real(i));
                });
    return v;
  };
  auto v = read();
  ASSERT_EQ(v.size(), 5u);
  EXPECT_EQ(v[0], 8);
  EXPECT_TRUE(std::isnan(v[1]));  // the latest value was NaN: shown as such
  EXPECT_EQ(v[2], 1.0);
  EXPECT_EQ(v[3], 9.0);
  EXPECT_EQ(v[4], 4);
  store.reopen_run(run, 5);  // drops steps 7 and 8
  v = read();
  EXPECT_EQ(v, std::vector<double>({5, 3.0, 3.0, 9.0, 2}));
  // Reads refuse to write.
  EXPECT_THROW(store.query("DELETE FROM runs", {}, [](const jepa::store::Row&) {}), jepa::store::StoreError);
}

TEST(MetricSummary, MigrationFromVersionOneBackfillsIt) {
  jepa_test::TempDir dir("metric_migration");
  const auto path = dir.path() / "r.db";
  {
    Store store(path);
    const int64_t run = store.create_run("r", "{}", "x.toml", 0);
    store.log_metrics(run, {{"m/a", 1, 2.0, 0}, {"m/a", 3, 4.0, 0}, {"m/b", 1, 5.0, 0}});
  }
  {
    // Turn the file back into a version-1 database that already holds metrics.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "DROP TRIGGER metrics_to_summary; DROP TABLE metric_summary; DROP INDEX runs_by_sweep; "
                           "DROP TABLE sweep_trials; DROP TABLE sweeps; UPDATE schema_version SET version = 1;",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  Store store(path);
  EXPECT_EQ(store.schema_version(), Store::latest_schema_version());
  RunSelection s;
  const auto rows = select_runs(store, s);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].metrics.at("m/a"), 4.0);
  EXPECT_EQ(rows[0].metrics.at("m/b"), 5.0);
}

TEST(Stats, SummaryMatchesHandComputedValues) {
  const auto s = jepa::query::summarize({1, 2, 3, 4});
  EXPECT_EQ(s.n, 4);
  EXPECT_DOUBLE_EQ(s.mean, 2.5);
  EXPECT_NEAR(s.sd, 1.2909944487, 1e-9);
  // t(0.975, 3) = 3.182446305
  EXPECT_NEAR(s.ci_low, 2.5 - 3.182446305 * 1.2909944487 / 2, 1e-6);
  EXPECT_NEAR(s.ci_high, 2.5 + 3.182446305 * 1.2909944487 / 2, 1e-6);
  const auto t = jepa::query::summarize({75.1, 76.3, 74.8, std::nan("")});
  EXPECT_EQ(t.n, 3);  // the NaN is left out
  EXPECT_NEAR(t.ci_low, 73.42827682, 1e-6);
  EXPECT_NEAR(t.ci_high, 77.37172318, 1e-6);
  const auto one = jepa::query::summarize({5});
  EXPECT_EQ(one.mean, 5);
  EXPECT_TRUE(std::isnan(one.sd));
  EXPECT_TRUE(std::isnan(one.ci_low));
}

TEST(Stats, WelchTestMatchesHandComputedValues) {
  auto w = jepa::query::welch_t_test({1, 2, 3, 4}, {2, 4, 6, 8});
  ASSERT_TRUE(w);
  EXPECT_DOUBLE_EQ(w->diff, 2.5);
  EXPECT_NEAR(w->t, 1.7320508076, 1e-9);
  EXPECT_NEAR(w->df, 4.4117647059, 1e-9);
  EXPECT_NEAR(w->p, 0.1515805048, 1e-6);
  w = jepa::query::welch_t_test({75.1, 76.3, 74.8}, {77.9, 78.4, 76.9, 78.8});
  ASSERT_TRUE(w);
  EXPECT_NEAR(w->t, 4.2270369539, 1e-8);
  EXPECT_NEAR(w->df, 4.5446714685, 1e-8);
  EXPECT_NEAR(w->p, 0.0101899998, 1e-6);
  EXPECT_FALSE(jepa::query::welch_t_test({1}, {2, 3}));
  EXPECT_FALSE(jepa::query::welch_t_test({1, 1}, {2, 2}));  // no variance: undefined
}

TEST(Compare, RunsThatDifferOnlyBySeedFormOneGroup) {
  auto row = [](int64_t id, uint64_t seed, const std::string& lr, double top1) {
    jepa::query::RunRow r;
    r.id = id;
    r.seed = seed;
    r.params = {{"optimization.lr", lr},
                {"run.seed", std::to_string(seed)},
                {"run.name", "n" + std::to_string(id)},
                {"masking.strategy", "multiblock"}};
    r.metrics = {{"probe/top1", top1}, {"probe/test_images", 100}};
    return r;
  };
  const std::vector<jepa::query::RunRow> rows{
      row(1, 0, "0.002", 77.9), row(2, 0, "0.001", 75.1), row(3, 1, "0.002", 78.4), row(4, 1, "0.001", 76.3),
      row(5, 2, "0.001", 74.8), row(6, 2, "0.002", 76.9), row(7, 3, "0.002", 78.8)};
  const auto c = jepa::query::compare_runs(rows, {});
  ASSERT_EQ(c.groups.size(), 2u);
  EXPECT_EQ(c.varying, std::vector<std::string>({"optimization.lr"}));
  EXPECT_EQ(c.metrics, std::vector<std::string>({"probe/top1"}));  // the constant count is left out
  EXPECT_EQ(c.groups[0].values.at("optimization.lr"), "0.001");    // numeric order
  EXPECT_EQ(c.groups[0].runs, std::vector<int64_t>({2, 4, 5}));
  EXPECT_EQ(c.groups[1].runs, std::vector<int64_t>({1, 3, 6, 7}));
  EXPECT_NEAR(c.groups[0].stats.at("probe/top1").mean, 75.4, 1e-9);
  EXPECT_NEAR(c.groups[1].stats.at("probe/top1").mean, 78.0, 1e-9);
  ASSERT_TRUE(c.tests.at("probe/top1")[1]);
  EXPECT_NEAR(c.tests.at("probe/top1")[1]->p, 0.0101899998, 1e-6);

  jepa::query::CompareOptions by_strategy;
  by_strategy.group_by = {"masking.strategy"};
  const auto one = jepa::query::compare_runs(rows, by_strategy);
  EXPECT_EQ(one.groups.size(), 1u);
  EXPECT_EQ(one.mixed, std::vector<std::string>({"optimization.lr"}));  // said, not hidden
  by_strategy.group_by = {"nope"};
  EXPECT_THROW(jepa::query::compare_runs(rows, by_strategy), std::invalid_argument);
}

}  // namespace
