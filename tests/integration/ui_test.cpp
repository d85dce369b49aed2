// `jepa ui` at the HTTP level: every endpoint's content and errors, filters with SQL
// metacharacters, static paths that try to leave their folder, read-only serving, and a
// database written while it is read. The server runs in this process on a free port; the last
// tests start the real `jepa ui`.
#include "jepa_process.hpp"
#include "lr_grid_db.hpp"
#include "store/store.hpp"
#include "temp_dir.hpp"
#include "ui/engine.hpp"
#include "ui/server.hpp"
#include "ui/static_files.hpp"

#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <thread>

namespace {

namespace fs = std::filesystem;
using jepa::store::RunStatus;
using jepa::store::Store;
using nlohmann::json;

constexpr int kLongRunPoints = 10000;

// The database of results_cli_test (so /api/compare can be checked against its golden table;
// its RUNNING run 9 finished here), plus a run with a 10,000-point curve, a pruned sweep with a pending trial, and a
// RUNNING run.
void fill(const fs::path& path) {
  Store store(path);
  jepa_test::add_lr_grid_runs(store);
  store.finish_run(9, RunStatus::completed);

  // 10: a long curve with one spike that downsampling must keep.
  const int64_t long_run = store.create_run("long", "{}", "x.toml", 0);
  std::vector<jepa::store::MetricPoint> points;
  for (int s = 0; s < kLongRunPoints; ++s) {
    points.push_back({"train/loss", s, s == 4321 ? 9.0 : 1.0 / (1.0 + s), 1.8e9 + s});
  }
  store.log_metrics(long_run, points);
  store.add_artifact(long_run, {"checkpoint", "/ckpt/long-9999.pt", 9999, 1234, "ab12", ""});
  store.set_environment(long_run, {{"torch", "1.13.1"}});
  store.finish_run(long_run, RunStatus::completed);

  // A pruned sweep: two trials run (one pruned), one not started.
  const int64_t pruned_sweep = store.create_sweep(
      "prune-grid", R"({"name": "prune-grid", "params": [{"key": "optimization.lr", "kind": "choice"}],
                        "pruning": {"rule": "median", "metric": "train/loss", "mode": "min"}})");
  store.add_sweep_trials(pruned_sweep, {{0, R"(["optimization.lr=0.001", "run.seed=0"])"},
                                        {1, R"(["optimization.lr=0.1", "run.seed=0"])"},
                                        {2, R"(["optimization.lr=0.01", "run.seed=0"])"}});
  const int64_t good =
      store.create_run("prune-0", "{}", "p.toml", 0, std::nullopt, jepa::store::TrialRef{pruned_sweep, 0});
  store.set_params(good, {{"optimization.lr", "0.001"}});
  store.log_metrics(good, {{"train/loss", 10, 0.3, 1.8e9}});
  store.finish_run(good, RunStatus::completed);
  const int64_t bad =
      store.create_run("prune-1", "{}", "p.toml", 0, std::nullopt, jepa::store::TrialRef{pruned_sweep, 1});
  store.set_params(bad, {{"optimization.lr", "0.1"}});
  store.log_metrics(bad, {{"train/loss", 10, 0.9, 1.8e9}});
  store.finish_run(bad, RunStatus::pruned, "train/loss 0.9 at step 10 is worse than the median 0.3 of 1 trial");

  store.create_run("live", "{}", "x.toml", 0);  // 13, RUNNING
}

class Ui : public ::testing::Test {
 protected:
  Ui() : dir_("ui_test"), db_(dir_.path() / "results.db") {
    fill(db_);
    jepa::ui::ServerOptions o;
    o.db = db_;
    o.port = 0;
    o.static_dir = fs::path(JEPA_SOURCE_DIR) / "host/ui/static";
    o.chartjs = jepa::ui::find_chartjs();
    o.engine = JEPA_ENGINE;
    server_ = std::make_unique<jepa::ui::Server>(o);
    server_->bind();
    thread_ = std::thread([this] { server_->listen(); });
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_read_timeout(60, 0);
  }
  ~Ui() override {
    server_->stop();
    thread_.join();
  }

  // GET and parse; fails the test when the status is not `status`.
  json get(const std::string& path, int status = 200) {
    auto res = client_->Get(path.c_str());
    if (!res) {
      ADD_FAILURE() << "no response for " << path;
      return json();
    }
    EXPECT_EQ(res->status, status) << path << "\n" << res->body;
    EXPECT_EQ(res->get_header_value("Content-Type"), "application/json") << path;
    return json::parse(res->body, nullptr, false);
  }

  // The message of an error response.
  std::string error(const std::string& path, int status = 400) {
    const json j = get(path, status);
    return j.is_object() ? j.value("error", std::string()) : std::string();
  }

  static std::string names(const json& runs) {
    std::string out;
    for (const auto& r : runs["runs"]) out += r["name"].get<std::string>() + ";";
    return out;
  }

  jepa_test::TempDir dir_;
  fs::path db_;
  std::unique_ptr<jepa::ui::Server> server_;
  std::thread thread_;
  std::unique_ptr<httplib::Client> client_;
};

std::string encode(const std::string& s) {
  return httplib::detail::encode_query_param(s);
}

TEST_F(Ui, RunsListsTheTableWithColumnsFacetsAndStaleMarks) {
  const json j = get("/api/runs");
  EXPECT_EQ(j["total"], 13);
  ASSERT_EQ(j["runs"].size(), 13u);
  EXPECT_EQ(j["runs"][0]["name"], "live");  // newest first, as `jepa runs`
  EXPECT_EQ(j["runs"][0]["status"], "RUNNING");
  EXPECT_EQ(j["runs"][0]["stale"], false);
  EXPECT_EQ(j["columns"]["params"], json({"masking.strategy", "optimization.lr"}));
  EXPECT_EQ(j["columns"]["metrics"], json({"probe/top1", "train/loss"}));
  EXPECT_EQ(j["facets"]["status"]["COMPLETED"], 10);
  EXPECT_EQ(j["facets"]["status"]["FAILED"], 1);
  EXPECT_EQ(j["facets"]["status"]["PRUNED"], 1);
  EXPECT_EQ(j["facets"]["sweeps"][0]["name"], "lr-grid");
  EXPECT_EQ(j["facets"]["sweeps"][0]["runs"], 8);
  const json& failed = j["runs"][5];
  EXPECT_EQ(failed["name"], "lr0.004-s0");
  EXPECT_EQ(failed["reason"], "diverged at step 10");
  EXPECT_TRUE(failed["metrics"]["train/loss"].is_null());  // NaN
  EXPECT_EQ(failed["sweep"], "lr-grid");
}

TEST_F(Ui, RunsFiltersSortsAndFacetsLikeJepaRuns) {
  json j = get("/api/runs?sweep=lr-grid&sort=-probe/top1&limit=3");
  EXPECT_EQ(names(j), "lr0.002-s3;lr0.002-s1;lr0.002-s0;");
  EXPECT_EQ(j["more"], true);
  j = get("/api/runs?where=" + encode("probe/top1 > 76 and optimization.lr = 0.001"));
  EXPECT_EQ(names(j), "lr0.001-s1;");
  // Facets count over the filter; the status facet then narrows the list.
  j = get("/api/runs?where=" + encode("optimization.lr >= 0.002") + "&status=failed");
  EXPECT_EQ(names(j), "lr0.004-s0;");
  EXPECT_EQ(j["facets"]["status"]["COMPLETED"], 4);
  j = get("/api/runs?status=PRUNED&status=running");
  EXPECT_EQ(names(j), "live;prune-1;");
  j = get("/api/runs?params=optimization.lr&metrics=probe/top1&limit=1&sort=id");
  EXPECT_EQ(j["columns"]["params"], json({"optimization.lr"}));
  EXPECT_EQ(j["runs"][0]["params"], json({{"optimization.lr", "0.002"}}));
  EXPECT_EQ(j["runs"][0]["metrics"], json({{"probe/top1", 77.9}}));
}

TEST_F(Ui, SqlMetacharactersAreValuesNeverSql) {
  const std::string evil = "name = \"x'; drop table runs; --\"";
  json j = get("/api/runs?where=" + encode(evil));
  EXPECT_EQ(j["runs"].size(), 0u);
  j = get("/api/runs?where=" + encode("name = 'o''brien; DROP TABLE runs'"));
  EXPECT_EQ(names(j), "o'brien; DROP TABLE runs;");
  j = get("/api/runs?where=" + encode("optimization.lr = \"0.001' OR '1'='1\""));
  EXPECT_EQ(j["runs"].size(), 0u);
  EXPECT_NE(error("/api/runs?sort=" + encode("id; DROP TABLE runs")).find("--sort"), std::string::npos);
  EXPECT_NE(error("/api/runs?status=" + encode("COMPLETED' OR 1=1 --")).find("unknown run status"), std::string::npos);
  EXPECT_NE(error("/api/runs?where=" + encode("1=1); DROP TABLE runs; --")).find("column"), std::string::npos);
  EXPECT_NE(error("/api/runs/" + encode("1 OR 1=1"), 404).find("no run '1 OR 1=1'"), std::string::npos);
  EXPECT_NE(error("/api/sweeps/" + encode("x' OR '1'='1"), 404).find("no sweep"), std::string::npos);
  EXPECT_NE(error("/api/compare?runs=9&any_status=1&group_by=" + encode("a'); DROP TABLE runs; --"))
                .find("no selected run has a parameter 'a'); DROP TABLE runs; --'"),
            std::string::npos);
  // Every table is still there, every run in it.
  Store store(db_);
  EXPECT_EQ(store.list_runs().size(), 13u);
}

TEST_F(Ui, BadRequestsGet400WithAMessage) {
  EXPECT_NE(error("/api/runs?where=" + encode("probe/top1 >")).find("expected a value after '>' at column 13"),
            std::string::npos);
  EXPECT_NE(error("/api/runs?wher=x").find("unknown parameter 'wher'"), std::string::npos);
  EXPECT_NE(error("/api/runs?limit=ten").find("'limit' must be an integer"), std::string::npos);
  EXPECT_NE(error("/api/runs?limit=1&limit=2").find("more than once"), std::string::npos);
  EXPECT_NE(error("/api/runs/1/metrics?points=3").find("'points' must be an integer from 10"), std::string::npos);
  EXPECT_NE(error("/api/runs/1?x=1").find("takes none"), std::string::npos);
  EXPECT_NE(error("/api/compare").find("compare needs"), std::string::npos);
  EXPECT_NE(error("/api/compare?sweep=lr-grid&baseline=Q").find("no group 'Q'"), std::string::npos);
  EXPECT_NE(error("/api/compare?sweep=lr-grid&any_status=maybe").find("must be 1 or 0"), std::string::npos);
  EXPECT_NE(error("/api/curves?runs=1").find("needs key"), std::string::npos);
  EXPECT_NE(error("/api/curves?key=train/loss").find("needs runs"), std::string::npos);
  EXPECT_NE(error("/api/sweeps/lr-grid?mode=up").find("min or max"), std::string::npos);
  EXPECT_NE(error("/api/masks?strategy=" + encode("../x")).find("not a component id"), std::string::npos);
  EXPECT_NE(error("/api/masks?strategy=multiblock&grid=" + encode("14;rm -rf /")).find("grid must be"),
            std::string::npos);
  EXPECT_NE(error("/api/masks?strategy=multiblock&set=" + encode("--output=/etc/x")).find("KEY=VALUE"),
            std::string::npos);
  EXPECT_NE(error("/api/runs/99", 404).find("no run '99'"), std::string::npos);
  EXPECT_NE(error("/api/sweeps/nope", 404).find("no sweep 'nope'"), std::string::npos);
  EXPECT_NE(error("/api/nothing", 404).find("nothing at /api/nothing"), std::string::npos);
}

TEST_F(Ui, RunIsJepaShowWithHeartbeat) {
  json j = get("/api/runs/long");
  EXPECT_EQ(j["id"], 10);
  EXPECT_EQ(j["status"], "COMPLETED");
  EXPECT_EQ(j["artifacts"][0]["path"], "/ckpt/long-9999.pt");
  EXPECT_EQ(j["environment"]["torch"], "1.13.1");
  EXPECT_EQ(j["metric_summary"][0]["key"], "train/loss");
  EXPECT_EQ(j["metric_summary"][0]["count"], kLongRunPoints);
  EXPECT_EQ(j["metric_summary"][0]["max"], 9.0);
  j = get("/api/runs/1");
  EXPECT_EQ(j["name"], "lr0.002-s0");
  EXPECT_EQ(j["params"]["optimization.lr"], "0.002");
  EXPECT_EQ(j["evaluations"][0]["value"], 77.9);
  EXPECT_EQ(j["config"], json({{"run", json::object()}}));
  j = get("/api/runs/13");
  EXPECT_EQ(j["status"], "RUNNING");
  EXPECT_EQ(j["stale"], false);
  EXPECT_LT(j["heartbeat_age_s"].get<double>(), 60.0);
}

TEST_F(Ui, LongCurvesAreDownsampledKeepingEndsAndSpikes) {
  const json j = get("/api/runs/10/metrics?key=train/loss");
  const json& c = j["metrics"]["train/loss"];
  EXPECT_EQ(c["count"], kLongRunPoints);
  ASSERT_LE(c["steps"].size(), 2002u);
  EXPECT_GE(c["steps"].size(), 1500u);
  EXPECT_EQ(c["steps"].front(), 0);
  EXPECT_EQ(c["steps"].back(), kLongRunPoints - 1);
  EXPECT_NE(std::find(c["values"].begin(), c["values"].end(), json(9.0)), c["values"].end()) << "the spike was lost";
  EXPECT_EQ(c["values"].front(), 1.0);
  // Steps stay in order, values stay paired with their step.
  for (size_t i = 1; i < c["steps"].size(); ++i) ASSERT_LT(c["steps"][i - 1], c["steps"][i]);
  for (size_t i = 0; i < c["steps"].size(); ++i) {
    const int64_t s = c["steps"][i];
    ASSERT_EQ(c["values"][i].get<double>(), s == 4321 ? 9.0 : 1.0 / (1.0 + s));
  }
  const json all = get("/api/runs/10/metrics?points=20000");
  EXPECT_EQ(all["metrics"]["train/loss"]["steps"].size(), static_cast<size_t>(kLongRunPoints));
  // Every metric when none is named; a NaN is null (a gap on the page).
  const json failed = get("/api/runs/8/metrics");
  EXPECT_EQ(failed["status"], "FAILED");
  EXPECT_TRUE(failed["metrics"]["train/loss"]["values"][0].is_null());
}

TEST_F(Ui, CurvesOverlayRunsOfAMetric) {
  const json j = get("/api/curves?runs=1,2&runs=10&key=train/loss&points=100");
  ASSERT_EQ(j["series"].size(), 3u);
  EXPECT_EQ(j["series"][0]["name"], "lr0.002-s0");
  EXPECT_EQ(j["series"][0]["steps"], json({10, 20}));
  EXPECT_EQ(j["series"][1]["values"], json({0.5, 0.25}));
  EXPECT_LE(j["series"][2]["steps"].size(), 102u);
  EXPECT_NE(error("/api/curves?runs=1,77&key=train/loss", 404).find("no run '77'"), std::string::npos);
}

TEST_F(Ui, CompareIsJepaCompare) {
  json j = get("/api/compare?sweep=lr-grid");
  EXPECT_EQ(j["text"], jepa_test::slurp(fs::path(JEPA_SOURCE_DIR) / "tests/golden/compare_lr_grid.txt"));
  EXPECT_EQ(j["varying"], json({"optimization.lr"}));
  ASSERT_EQ(j["groups"].size(), 2u);
  EXPECT_EQ(j["groups"][1]["runs"], json({1, 3, 6, 7}));
  EXPECT_NEAR(j["groups"][1]["metrics"]["probe/top1"]["welch"]["p"].get<double>(), 0.0102, 5e-4);
  EXPECT_EQ(j["groups"][0]["metrics"]["probe/top1"]["n"], 3);
  EXPECT_EQ(j["names"]["7"], "lr0.002-s3");
  EXPECT_EQ(j["params"], json({"optimization.lr"}));
  // Grouping chosen on the page, a baseline, and runs that did not complete.
  j = get("/api/compare?sweep=lr-grid&group_by=masking.strategy&metric=probe/top1");
  EXPECT_EQ(j["groups"].size(), 1u);
  EXPECT_EQ(j["mixed"], json({"optimization.lr"}));
  j = get("/api/compare?runs=1,2,8&baseline=B&any_status=1");
  EXPECT_EQ(j["baseline"], "B");
  EXPECT_EQ(j["runs"], 3);
  j = get("/api/compare?where=" + encode("optimization.lr = 0.001"));
  EXPECT_EQ(j["runs"], 5);  // the three of the sweep, o'brien and prune-0
}

TEST_F(Ui, SweepsShowProgressBestEffectsAndPruning) {
  json j = get("/api/sweeps");
  ASSERT_EQ(j["sweeps"].size(), 2u);
  EXPECT_EQ(j["sweeps"][0]["name"], "prune-grid");  // newest first
  EXPECT_EQ(j["sweeps"][0]["progress"]["trials"], 3);
  EXPECT_EQ(j["sweeps"][0]["progress"]["pending"], 1);
  EXPECT_EQ(j["sweeps"][1]["progress"]["COMPLETED"], 7);
  EXPECT_EQ(j["sweeps"][1]["progress"]["FAILED"], 1);

  j = get("/api/sweeps/lr-grid");
  EXPECT_EQ(j["metric"], "probe/top1");
  EXPECT_EQ(j["mode"], "max");
  EXPECT_EQ(j["best"]["name"], "lr0.002-s3");
  EXPECT_EQ(j["best"]["value"], 78.8);
  EXPECT_EQ(j["best"]["params"], json({{"optimization.lr", "0.002"}}));
  EXPECT_EQ(j["best_so_far"].size(), 7u);
  EXPECT_EQ(j["best_so_far"].back()["best"], 78.8);
  ASSERT_EQ(j["effects"].size(), 1u);
  const json& lr = j["effects"][0];
  EXPECT_EQ(lr["param"], "optimization.lr");
  ASSERT_EQ(lr["values"].size(), 2u);
  EXPECT_EQ(lr["values"][0]["value"], "0.001");
  EXPECT_EQ(lr["values"][0]["n"], 3);
  EXPECT_NEAR(lr["values"][0]["mean"].get<double>(), 75.4, 1e-9);
  EXPECT_NEAR(lr["values"][1]["ci95"][0].get<double>(), 76.69, 0.01);
  EXPECT_EQ(lr["points"].size(), 7u);
  // Importance over the 7 completed runs (space inferred: the sweep's spec is empty): the top 2 by
  // probe/top1 both have lr 0.002, and lr is the only parameter that varies.
  const json& imp = j["importance"];
  EXPECT_EQ(imp["method"], "ped-anova");
  EXPECT_EQ(imp["metric"], "probe/top1");
  EXPECT_EQ(imp["mode"], "max");
  EXPECT_EQ(imp["space"], "inferred");
  EXPECT_EQ(imp["trials"], 7);
  EXPECT_EQ(imp["top"], 2);
  EXPECT_EQ(imp["reliable"], false);
  EXPECT_NE(imp["note"].get<std::string>().find("unreliable"), std::string::npos);
  ASSERT_EQ(imp["params"].size(), 1u);
  EXPECT_EQ(imp["params"][0]["param"], "optimization.lr");
  EXPECT_EQ(imp["params"][0]["n"], 7);
  EXPECT_EQ(imp["params"][0]["share"], 1.0);
  EXPECT_GT(imp["params"][0]["importance"].get<double>(), 0.0);

  j = get("/api/sweeps/lr-grid?metric=train/loss");
  EXPECT_EQ(j["mode"], "min");
  EXPECT_EQ(j["best"]["value"], 0.19);

  j = get("/api/sweeps/prune-grid");
  EXPECT_EQ(j["pruning"]["rule"], "median");
  EXPECT_EQ(j["metric"], "train/loss");
  EXPECT_EQ(j["progress"]["PRUNED"], 1);
  ASSERT_EQ(j["pruned"].size(), 1u);
  EXPECT_EQ(j["pruned"][0]["name"], "prune-1");
  EXPECT_NE(j["pruned"][0]["reason"].get<std::string>().find("worse than the median"), std::string::npos);
  ASSERT_EQ(j["trials"].size(), 3u);
  EXPECT_TRUE(j["trials"][2]["run"].is_null());
  EXPECT_EQ(j["trials"][1]["status"], "PRUNED");
  EXPECT_EQ(j["params"], json({"optimization.lr"}));
  // One completed trial is no top set: nothing ranked, and the note says why.
  EXPECT_EQ(j["importance"]["space"], "spec");
  EXPECT_TRUE(j["importance"]["params"].empty());
  EXPECT_NE(j["importance"]["note"].get<std::string>().find("at least 3"), std::string::npos);
}

TEST_F(Ui, MasksAreDrawnByJepaMasks) {
  json j = get("/api/masking");
  bool multiblock = false;
  for (const auto& s : j["strategies"]) multiblock = multiblock || s["id"] == "multiblock";
  EXPECT_TRUE(multiblock) << j.dump();
  j = get("/api/masks?strategy=multiblock&grid=8&batch=2&seed=3&set=" + encode("npred=2"));
  EXPECT_EQ(j["masks"]["strategy"], "multiblock");
  EXPECT_EQ(j["masks"]["grid"], json({8, 8}));
  EXPECT_EQ(j["masks"]["stats"]["target_blocks"], 2);
  EXPECT_EQ(j["masks"]["context"][0].size(), 2u);  // per block, one list per image
  EXPECT_EQ(j["png"].get<std::string>().rfind("data:image/png;base64,iVBORw0KGgo", 0), 0u);
  EXPECT_FALSE(j["masks"].contains("png"));
  EXPECT_NE(error("/api/masks?strategy=nosuch").find("unknown masking strategy 'nosuch'"), std::string::npos);
  EXPECT_NE(error("/api/masks?strategy=multiblock&set=" + encode("bogus=1")).find("bogus"), std::string::npos);
}

TEST_F(Ui, PagesAndStaticFilesStayInTheirFolder) {
  auto res = client_->Get("/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("/static/common.js"), std::string::npos);
  EXPECT_NE(res->get_header_value("Content-Security-Policy").find("default-src 'self'"), std::string::npos);
  for (const char* page : {"/runs/1", "/compare?runs=1,2", "/sweeps/lr-grid", "/masks"}) {
    res = client_->Get(page);
    ASSERT_TRUE(res) << page;
    EXPECT_EQ(res->status, 200) << page;
    EXPECT_EQ(res->get_header_value("Content-Type"), "text/html; charset=utf-8") << page;
  }
  for (const char* script : {"/static/common.js", "/static/runs.js", "/static/run.js", "/static/compare.js",
                             "/static/sweep.js", "/static/masks.js"}) {
    res = client_->Get(script);
    ASSERT_TRUE(res) << script;
    EXPECT_EQ(res->status, 200) << script;
    EXPECT_EQ(res->get_header_value("Content-Type"), "text/javascript; charset=utf-8") << script;
  }
  res = client_->Get("/static/style.css");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/css; charset=utf-8");
  res = client_->Get("/vendor/chart.min.js");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("Chart.js v"), std::string::npos);

  for (const char* evil :
       {"/static/../../etc/passwd", "/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/static/..%2f..%2f..%2fetc%2fpasswd",
        "/static/%252e%252e/%252e%252e/etc/passwd", "/static//etc/passwd", "/static/.%2e/page.html",
        "/static/page.html%00.css", "/static/..\\..\\etc\\passwd", "/static/.hidden"}) {
    res = client_->Get(evil);
    ASSERT_TRUE(res) << evil;
    EXPECT_EQ(res->status, 400) << evil << "\n" << res->body;
    EXPECT_EQ(res->body.find("root:"), std::string::npos) << evil;
  }
  res = client_->Get("/static/nope.js");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  res = client_->Get("/vendor/../etc/passwd");
  ASSERT_TRUE(res);
  EXPECT_NE(res->status, 200);
  EXPECT_EQ(res->body.find("root:"), std::string::npos);
}

TEST(UiStatic, ASymbolicLinkCannotLeadOutOfTheFolder) {
  jepa_test::TempDir dir("ui_static");
  fs::create_directories(dir.path() / "root/sub");
  std::ofstream(dir.path() / "root/sub/ok.js") << "x";
  std::ofstream(dir.path() / "secret.txt") << "secret";
  fs::create_symlink(dir.path() / "secret.txt", dir.path() / "root/leak.txt");
  fs::create_symlink("sub/ok.js", dir.path() / "root/inside.js");
  EXPECT_TRUE(jepa::ui::resolve_static(dir.path() / "root", "sub/ok.js"));
  EXPECT_TRUE(jepa::ui::resolve_static(dir.path() / "root", "inside.js"));
  EXPECT_FALSE(jepa::ui::resolve_static(dir.path() / "root", "leak.txt"));
  EXPECT_FALSE(jepa::ui::resolve_static(dir.path() / "root", "../secret.txt"));
  EXPECT_FALSE(jepa::ui::resolve_static(dir.path() / "root", "sub"));  // a folder
  EXPECT_FALSE(jepa::ui::valid_static_path("sub//ok.js"));
  EXPECT_FALSE(jepa::ui::valid_static_path("/etc/passwd"));
}

TEST_F(Ui, ReadOnlyNoRequestChangesTheDatabase) {
  const std::string before = jepa_test::slurp(db_);
  for (const char* path : {"/api/runs", "/api/runs/1", "/api/runs/1/metrics", "/api/sweeps", "/api/sweeps/lr-grid",
                           "/api/compare?sweep=lr-grid", "/api/curves?runs=1&key=train/loss"}) {
    get(path);
    auto res = client_->Post(path, "{}", "application/json");
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 405) << path;
    EXPECT_NE(res->body.find("read-only"), std::string::npos);
    res = client_->Delete(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 405) << path;
  }
  EXPECT_EQ(jepa_test::slurp(db_), before);
  EXPECT_FALSE(fs::exists(db_.string() + "-wal") && fs::file_size(db_.string() + "-wal") > 0);
  // The RUNNING run with an old heartbeat is shown stale, never marked KILLED (that is a write).
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(db_.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "UPDATE runs SET heartbeat_at = '2020-01-01T00:00:00.000Z' WHERE name = 'live'", nullptr,
                           nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  EXPECT_EQ(get("/api/runs?where=name%3Dlive")["runs"][0]["stale"], true);
  EXPECT_EQ(get("/api/runs/13")["stale"], true);
  EXPECT_EQ(Store(db_).find_run("live")->status, RunStatus::running);
}

TEST_F(Ui, RequestsForOtherHostNamesAreRefused) {
  // A page on another site that rebinds its name to 127.0.0.1 sends its own name as Host.
  auto res = client_->Get("/api/runs", {{"Host", "evil.example:8765"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 403);
  res = client_->Get("/api/runs", {{"Host", "localhost:8765"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST_F(Ui, ADatabaseBeingWrittenIsReadWithoutBlockingTheWriter) {
  std::atomic<bool> stop{false};
  std::atomic<int64_t> written{0};
  double slowest_write = 0;
  // Like a training run: a RUNNING run logging a batch of points per transaction.
  std::thread writer([&] {
    Store store(db_);
    const int64_t run = 13;
    for (int64_t batch = 0; !stop; ++batch) {
      std::vector<jepa::store::MetricPoint> points;
      for (int i = 0; i < 50; ++i) points.push_back({"train/loss", batch * 50 + i, 1.0 / (batch + 1), 1.8e9});
      const auto t0 = std::chrono::steady_clock::now();
      store.log_metrics(run, points);
      store.heartbeat(run, batch * 50 + 49);
      slowest_write =
          std::max(slowest_write, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      written += 50;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  int64_t last_seen = 0;
  int reads = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (std::chrono::steady_clock::now() < until) {
    const json m = get("/api/runs/13/metrics?key=train/loss&points=100");
    const int64_t count = m["metrics"]["train/loss"]["count"];
    EXPECT_GE(count, last_seen);  // a consistent snapshot, never going back
    EXPECT_EQ(count % 50, 0) << "a transaction was seen half-written";
    last_seen = count;
    get("/api/runs?where=" + encode("status = running"));
    ++reads;
  }
  stop = true;
  writer.join();
  EXPECT_GT(last_seen, 0) << "the reader never saw the writer's points";
  EXPECT_GT(reads, 5);
  EXPECT_LT(slowest_write, 2.0) << "the writer was blocked by the readers";

  // A writer holding its write transaction open does not block the pages either.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "BEGIN IMMEDIATE; UPDATE runs SET last_step = last_step + 1 WHERE id = 13", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  const auto t0 = std::chrono::steady_clock::now();
  get("/api/runs/13");
  get("/api/runs");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 2.0);
  sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(db);
}

// ---- the `jepa ui` command ----------------------------------------------------------------------

// Starts `jepa ui ARGS` with stdout and stderr in files; returns its pid.
pid_t start_jepa_ui(const std::vector<std::string>& args, const fs::path& out, const fs::path& err) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<std::string> a{JEPA_BINARY, "ui"};
    a.insert(a.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : a) argv.push_back(s.data());
    argv.push_back(nullptr);
    std::freopen(out.c_str(), "w", stdout);
    std::freopen(err.c_str(), "w", stderr);
    ::execv(JEPA_BINARY, argv.data());
    ::_exit(127);
  }
  return pid;
}

int stop_and_wait(pid_t pid) {
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(UiCommand, PrintsTheAddressServesAndStopsOnSigterm) {
  jepa_test::TempDir dir("ui_command");
  const fs::path db = dir.path() / "r.db";
  fill(db);
  const pid_t pid = start_jepa_ui({"--db", db.string(), "--port", "0"}, dir.path() / "out", dir.path() / "err");
  const std::string url = jepa_test::printed_url(dir.path() / "out");
  ASSERT_EQ(url.rfind("http://127.0.0.1:", 0), 0u)
      << jepa_test::slurp(dir.path() / "out") << jepa_test::slurp(dir.path() / "err");
  httplib::Client client(url.substr(0, url.size() - 1));
  auto res = client.Get("/api/runs?limit=1");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("\"live\""), std::string::npos);
  EXPECT_EQ(jepa_test::slurp(dir.path() / "err"), "");  // loopback: no warning
  EXPECT_EQ(stop_and_wait(pid), 0);
}

TEST(UiCommand, WarnsWhenServingTheNetworkAndRefusesAMissingDatabase) {
  jepa_test::TempDir dir("ui_command_warn");
  const fs::path db = dir.path() / "r.db";
  fill(db);
  const pid_t pid =
      start_jepa_ui({"--db", db.string(), "--port", "0", "--host", "0.0.0.0"}, dir.path() / "out", dir.path() / "err");
  ASSERT_NE(jepa_test::printed_url(dir.path() / "out"), "");
  EXPECT_NE(jepa_test::slurp(dir.path() / "err").find("warning: jepa ui listens on 0.0.0.0"), std::string::npos);
  EXPECT_EQ(stop_and_wait(pid), 0);

  auto r = jepa_test::run_jepa("ui --db '" + (dir.path() / "none.db").string() + "'");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("no results database"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir.path() / "none.db"));
  r = jepa_test::run_jepa("ui --help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("read-only"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("/sweeps/NAME"), std::string::npos) << r.out;
}

}  // namespace

// The masks page's engine stays warm: every request is answered by the same `jepa-engine
// --serve` (a fresh one costs LibTorch's start-up per picture), answers exactly as `jepa masks`
// does (exit status, errors), serves nothing but the read-only commands, and an engine that dies
// is replaced by the next request.
TEST(UiEngine, OneWarmEngineServesEveryRequestAndADeadOneIsReplaced) {
  const jepa::ui::Engine engine(JEPA_ENGINE, {});
  const pid_t first = engine.worker_pid();
  ASSERT_GT(first, 0);
  const std::vector<std::string> masks{"masks", "--strategy", "multiblock", "--grid", "8", "--batch", "2", "--json"};
  for (int seed = 0; seed < 3; ++seed) {
    auto args = masks;
    args.insert(args.end(), {"--seed", std::to_string(seed)});
    const auto r = engine.run(args, std::chrono::seconds(60), "masks.png");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(json::parse(r.out)["seed"], seed);
    EXPECT_EQ(r.file.rfind("\x89PNG", 0), 0u);
    EXPECT_EQ(engine.worker_pid(), first) << "request " << seed << " was not served by the warm engine";
  }
  auto r = engine.run({"masks", "--strategy", "nosuch"}, std::chrono::seconds(60));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("unknown masking strategy 'nosuch'"), std::string::npos) << r.err;
  r = engine.run({"run", "experiments/quickstart.toml"}, std::chrono::seconds(60));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("only `masks` and `plugins`"), std::string::npos) << r.err;
  EXPECT_EQ(engine.worker_pid(), first);

  ASSERT_EQ(::kill(first, SIGKILL), 0);
  for (int i = 0; i < 200 && engine.worker_pid() == first; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  r = engine.run(masks, std::chrono::seconds(60));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["strategy"], "multiblock");
  const pid_t second = engine.worker_pid();
  EXPECT_GT(second, 0);
  EXPECT_NE(second, first);
}

TEST(UiEngine, AnEngineThatCannotStartIsAnErrorNotAHang) {
  const jepa::ui::Engine engine("/nonexistent/jepa-engine", {});
  const auto r = engine.run({"plugins", "--json"}, std::chrono::seconds(10));
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("/nonexistent/jepa-engine"), std::string::npos) << r.err;
}
