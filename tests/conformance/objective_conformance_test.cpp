// Runs over every objective plugin discovered in the build's plugin folder (plus
// $JEPA_CONFORMANCE_PLUGIN_PATH, colon-separated), through `jepa` as a user would: a tiny run
// logs the objective's parts at every step, resumes exactly (losses, parts and exported weights,
// the objective's own parameters included, bit for bit), and works with a label-free evaluator
// and a stop rule during training.
#include "loader/registry.hpp"
#include "store/store.hpp"

#include <gtest/gtest.h>

#include "../integration/jepa_process.hpp"
#include "../integration/tiny_experiment.hpp"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

namespace {

namespace fs = std::filesystem;
using jepa::loader::Kind;
using jepa_test::run_jepa;

std::vector<fs::path> extra_dirs() {
  std::vector<fs::path> dirs;
  if (const char* env = std::getenv("JEPA_CONFORMANCE_PLUGIN_PATH")) {
    std::stringstream ss(env);
    for (std::string item; std::getline(ss, item, ':');) {
      if (!item.empty()) dirs.emplace_back(item);
    }
  }
  return dirs;
}

std::vector<std::string> objective_ids() {
  std::vector<fs::path> dirs{JEPA_PLUGIN_DIR};
  for (const auto& d : extra_dirs()) dirs.push_back(d);
  const auto reg = jepa::loader::Registry::discover(dirs);
  std::vector<std::string> ids;
  for (const auto* c : reg.components(Kind::objective)) ids.push_back(c->id);
  return ids;
}

std::string q(const fs::path& p) {
  return "'" + p.string() + "'";
}

std::string plugin_paths() {
  std::string out;
  for (const auto& d : extra_dirs()) out += " --plugin-path " + q(d);
  return out;
}

// Every logged value of every train/loss* key of run 1, by key.
std::map<std::string, std::vector<double>> loss_metrics(const fs::path& db) {
  jepa::store::Store store(db);
  std::map<std::string, std::vector<double>> out;
  std::vector<std::string> keys;
  store.query("SELECT DISTINCT key FROM metrics WHERE run_id = 1 AND key LIKE 'train/loss%'", {},
              [&](const jepa::store::Row& row) { keys.push_back(row.text(0)); });
  for (const auto& key : keys) {
    for (const auto& m : store.metrics(1, key)) out[key].push_back(m.value);
  }
  return out;
}

class ObjectiveConformance : public testing::TestWithParam<std::string> {};

TEST_P(ObjectiveConformance, LogsItsPartsAndResumesExactly) {
  const std::string id = GetParam();
  const auto dir = jepa_test::temp_dir("jepa_objective_" + id);
  const auto file = dir / "tiny.toml";
  std::ofstream(file) << jepa_test::tiny_experiment(dir, 1) << "[objective]\nplugin = \"" << id << "\"\n";
  const std::string common = " run " + q(file) + plugin_paths() + " --no-eval";
  const auto a = run_jepa(common + " --set 'checkpoint.dir=" + (dir / "runs_a").string() + "' --db " + q(dir / "a.db"));
  ASSERT_EQ(a.code, 0) << a.err;
  const std::string b_args =
      common + " --set 'checkpoint.dir=" + (dir / "runs_b").string() + "' --db " + q(dir / "b.db");
  ASSERT_EQ(run_jepa(b_args + " --stop-after 5").code, 0);
  const auto resumed = run_jepa(" run --resume 1 --no-eval" + plugin_paths() + " --db " + q(dir / "b.db"));
  ASSERT_EQ(resumed.code, 0) << resumed.err;

  const auto la = loss_metrics(dir / "a.db");
  const auto lb = loss_metrics(dir / "b.db");
  ASSERT_GE(la.size(), 2u) << "train/loss and at least one train/loss/<part>";
  EXPECT_EQ(la, lb) << "a resumed run repeats the uninterrupted one bit for bit";
  for (const auto& [key, values] : la) {
    EXPECT_EQ(values.size(), 16u) << key;
    for (double v : values) EXPECT_TRUE(std::isfinite(v)) << key;
  }
  // The weights agree too, the objective's own (a projector) included.
  const auto exported = run_jepa("export 1 -o " + q(dir / "a.pt") + plugin_paths() + " --db " + q(dir / "a.db"));
  ASSERT_EQ(exported.code, 0) << exported.err;
  // The objective's own state is exported when it has some (sigreg's projector), and an objective
  // without any keeps the layout exports had before objectives were plugins.
  if (id == "sigreg") EXPECT_NE(exported.out.find("'objective'"), std::string::npos) << exported.out;
  if (id == "ijepa") EXPECT_EQ(exported.out.find("'objective'"), std::string::npos) << exported.out;
  ASSERT_EQ(run_jepa("export 1 -o " + q(dir / "b.pt") + plugin_paths() + " --db " + q(dir / "b.db")).code, 0);
  EXPECT_EQ(jepa_test::slurp(dir / "a.pt"), jepa_test::slurp(dir / "b.pt"));
  fs::remove_all(dir);
}

TEST_P(ObjectiveConformance, WorksWithRankMeAndAStopRule) {
  const std::string id = GetParam();
  const auto dir = jepa_test::temp_dir("jepa_objective_rankme_" + id);
  const auto file = dir / "tiny.toml";
  std::ofstream(file) << jepa_test::tiny_experiment(dir, 1) << "[objective]\nplugin = \"" << id
                      << "\"\n[[evaluation]]\nevaluator = \"rankme\"\nevery = 8\nat_end = false\nimages = 64\n"
                         "stop_when = \"effective_rank > 1\"\n";
  const auto r = run_jepa(" run " + q(file) + plugin_paths() + " --no-eval --db " + q(dir / "r.db"));
  ASSERT_EQ(r.code, 0) << r.err;
  jepa::store::Store store(dir / "r.db");
  const auto run = store.find_run(1);
  ASSERT_TRUE(run);
  EXPECT_EQ(run->status, jepa::store::RunStatus::pruned) << run->reason;
  EXPECT_NE(run->reason.find("effective_rank"), std::string::npos) << run->reason;
  bool ranked = false;
  for (const auto& e : store.evaluations(1)) ranked = ranked || (e.evaluator == "rankme" && e.step == 8);
  EXPECT_TRUE(ranked);
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Discovered, ObjectiveConformance, testing::ValuesIn(objective_ids()),
                         [](const testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
