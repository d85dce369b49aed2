// The sampler seam against a real results database, without processes: TPE sweeps ask one point
// at a time from the stored history (enqueued points first, warm-start sweeps' trials included),
// a resumed sweep asks exactly what an uninterrupted one would, concurrent askers never share a
// trial, and `tell` records a handed-out trial's result once and refuses everything else
// without changing anything.
#include "sweep/proposer.hpp"
#include "store/store.hpp"
#include "sweep/spec_json.hpp"
#include "temp_dir.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <set>
#include <thread>

namespace {

namespace fs = std::filesystem;
using jepa::store::RunStatus;
using jepa::store::Store;
using jepa::sweep::Distribution;
using jepa::sweep::Proposer;
using jepa::sweep::SweepError;
using jepa::sweep::SweepSpec;

SweepSpec tpe_spec(const std::string& name, int64_t trials, int64_t startup = 4) {
  SweepSpec s;
  s.name = name;
  s.method = "tpe";
  s.trials = trials;
  s.sample_seed = 7;
  s.objective.metric = "linear_probe/top1";
  s.objective.maximize = true;
  s.tpe.startup_trials = startup;
  Distribution x;
  x.kind = Distribution::Kind::uniform;
  x.low = 0;
  x.high = 1;
  Distribution k;
  k.choices = {"a", "b"};
  s.params = {{"x", x}, {"k", k}};
  return s;
}

// The objective a trial of point (x, k) gets: best at x = 0.7 with k = b.
double score(const nlohmann::json& overrides) {
  double x = 0;
  std::string k;
  for (const auto& o : overrides) {
    const std::string s = o.get<std::string>();
    if (s.rfind("x=", 0) == 0) x = std::stod(s.substr(2));
    if (s.rfind("k=", 0) == 0) k = s.substr(2);
  }
  return 90 - 50 * std::fabs(x - 0.7) - (k == "b" ? 0 : 5);
}

class ProposerTest : public ::testing::Test {
 protected:
  ProposerTest() : dir_("proposer_test"), db_(dir_.path() / "r.db") {}

  int64_t create(Store& store, const SweepSpec& spec) {
    const int64_t id = store.create_sweep(spec.name, "{}");
    store.set_sweep_spec(id, jepa::sweep::spec_to_json(spec).dump());
    return id;
  }

  // What a trial process does: its run, its objective, its end.
  void run_trial(Store& store, int64_t sweep, int64_t index, RunStatus end = RunStatus::completed) {
    const auto t = store.sweep_trials(sweep).at(static_cast<size_t>(index));
    const int64_t run = store.create_run("t", "{}", "x.toml", 0, std::nullopt, jepa::store::TrialRef{sweep, index});
    const auto overrides = nlohmann::json::parse(t.overrides_json);
    if (end != RunStatus::failed) store.log_metrics(run, {{"linear_probe/top1", 100, score(overrides)}});
    store.finish_run(run, end, end == RunStatus::completed ? "" : "why");
  }

  std::vector<std::string> overrides_of(Store& store, int64_t sweep) {
    std::vector<std::string> out;
    for (const auto& t : store.sweep_trials(sweep)) out.push_back(t.overrides_json);
    return out;
  }

  jepa_test::TempDir dir_;
  fs::path db_;
};

TEST_F(ProposerTest, AsksOnePointAtATimeUpToTheBudgetEachPointOncePerSeed) {
  Store store(db_);
  SweepSpec spec = tpe_spec("s", 3);
  spec.seeds = {0, 1};
  const int64_t id = create(store, spec);
  Proposer p(store, id, spec);
  EXPECT_EQ(p.total_trials(), 6);
  EXPECT_EQ(p.ask(), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(p.ask(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(p.ask(), (std::vector<int64_t>{4, 5}));
  EXPECT_FALSE(p.can_ask());
  EXPECT_TRUE(p.ask().empty());
  const auto rows = store.sweep_trials(id);
  ASSERT_EQ(rows.size(), 6U);
  // Seed replicas share their point.
  const auto a = nlohmann::json::parse(rows[0].overrides_json);
  const auto b = nlohmann::json::parse(rows[1].overrides_json);
  EXPECT_EQ(a[0], b[0]);
  EXPECT_EQ(a.back(), "run.seed=0");
  EXPECT_EQ(b.back(), "run.seed=1");
}

// A sweep that stopped anywhere (between asks, or with a trial asked but never run) and was
// resumed asks the same points as one that never stopped: nothing but the database is read.
TEST_F(ProposerTest, AResumedSweepAsksExactlyWhatAnUninterruptedOneWould) {
  const SweepSpec spec = tpe_spec("s", 20);
  Store a(dir_.path() / "a.db");
  const int64_t ida = create(a, spec);
  {
    Proposer p(a, ida, spec);
    for (int i = 0; i < 20; ++i) {
      p.ask();
      run_trial(a, ida, i);
    }
  }
  Store b(dir_.path() / "b.db");
  const int64_t idb = create(b, spec);
  for (int i = 0; i < 20; ++i) {
    // A new host for every point: the one that asked may die before the trial ran; the next one
    // runs the stored point rather than asking again.
    if (static_cast<int64_t>(b.sweep_trials(idb).size()) <= i) Proposer(b, idb, spec).ask();
    run_trial(b, idb, i);
  }
  EXPECT_EQ(overrides_of(a, ida), overrides_of(b, idb));
  // And the sampler learnt: its last points score well above random search's expected 73.
  double late = 0;
  const auto rows = a.sweep_trials(ida);
  for (int i = 14; i < 20; ++i) late += score(nlohmann::json::parse(rows[i].overrides_json)) / 6;
  EXPECT_GT(late, 82.0);
}

TEST_F(ProposerTest, EnqueuedPointsComeFirstAndWarmStartSeedsTheHistory) {
  Store store(db_);
  SweepSpec first = tpe_spec("first", 8);
  const int64_t id1 = create(store, first);
  Proposer p1(store, id1, first);
  for (int i = 0; i < 8; ++i) {
    p1.ask();
    run_trial(store, id1, i);
  }
  SweepSpec second = tpe_spec("second", 3, 8);
  second.enqueue = {{{"x", "0.25"}, {"k", "a"}}};
  second.warm_start = {"first"};
  jepa::sweep::check_warm_start(store, second);
  const int64_t id2 = create(store, second);
  Proposer p2(store, id2, second);
  p2.ask();
  EXPECT_EQ(store.sweep_trials(id2)[0].overrides_json, R"(["x=0.25","k=a","run.seed=0"])");
  // With 8 warm-start observations the start-up (8) is over: the second point is TPE's, not the
  // random draw a cold sweep would make.
  p2.ask();
  SweepSpec cold = second;
  cold.warm_start.clear();
  Store other(dir_.path() / "cold.db");
  const int64_t id3 = create(other, cold);
  Proposer p3(other, id3, cold);
  p3.ask();
  p3.ask();
  EXPECT_NE(store.sweep_trials(id2)[1].overrides_json, other.sweep_trials(id3)[1].overrides_json);
  // A warm start over other parameters is refused.
  SweepSpec wrong = second;
  wrong.params.pop_back();
  EXPECT_THROW(jepa::sweep::check_warm_start(store, wrong), SweepError);
  wrong.warm_start = {"nope"};
  EXPECT_THROW(jepa::sweep::check_warm_start(store, wrong), SweepError);
}

TEST_F(ProposerTest, FailedTrialsAreLeftOutPrunedAndRunningOnesCount) {
  Store store(db_);
  const SweepSpec spec = tpe_spec("s", 6);
  const int64_t id = create(store, spec);
  Proposer p(store, id, spec);
  for (int i = 0; i < 4; ++i) p.ask();
  run_trial(store, id, 0);
  run_trial(store, id, 1, RunStatus::failed);
  run_trial(store, id, 2, RunStatus::pruned);
  const auto h = jepa::sweep::sweep_history(store, id, spec);
  ASSERT_EQ(h.size(), 3U);  // completed, pruned, and the one never started (running)
  EXPECT_EQ(h[0].state, jepa::sweep::Observation::State::complete);
  EXPECT_DOUBLE_EQ(h[0].value, -score(nlohmann::json::parse(store.sweep_trials(id)[0].overrides_json)));
  EXPECT_EQ(h[1].state, jepa::sweep::Observation::State::pruned);
  EXPECT_EQ(h[2].state, jepa::sweep::Observation::State::running);
}

TEST_F(ProposerTest, ConcurrentAskersNeverGetTheSameTrial) {
  {
    Store store(db_);
    create(store, tpe_spec("s", 40));
  }
  std::vector<std::thread> askers;
  std::vector<std::vector<int64_t>> got(4);
  for (int a = 0; a < 4; ++a) {
    askers.emplace_back([&, a] {
      Store store(db_);  // its own connection, as another process would have
      const auto sweep = store.find_sweep("s");
      Proposer p(store, sweep->id, jepa::sweep::spec_from_json(nlohmann::json::parse(sweep->spec_json)));
      for (int i = 0; i < 10; ++i) got[a].push_back(p.ask_external().trial.index);
    });
  }
  for (auto& t : askers) t.join();
  std::set<int64_t> all;
  for (const auto& g : got) all.insert(g.begin(), g.end());
  EXPECT_EQ(all.size(), 40U);
  EXPECT_EQ(*all.rbegin(), 39);
}

TEST_F(ProposerTest, TellRecordsAHandedOutTrialOnceAndRefusesTheRest) {
  Store store(db_);
  SweepSpec spec = tpe_spec("s", 2);
  spec.seeds = {0, 1};
  const int64_t id = create(store, spec);
  Proposer p(store, id, spec);
  const auto h0 = p.ask_external();
  const auto h1 = p.ask_external();
  EXPECT_EQ(h0.trial.index, 0);
  EXPECT_EQ(h1.trial.index, 1);  // the seed replica of the same point
  EXPECT_EQ(h0.trial.point, h1.trial.point);
  EXPECT_EQ(h1.trial.seed, 1);
  // An external trial never goes stale: nobody heartbeats it.
  EXPECT_TRUE(store.mark_stale_runs(-1.0).empty());

  p.tell(0, Proposer::Outcome::completed, 81.5, 300, "");
  EXPECT_EQ(store.find_run(h0.run_id)->status, RunStatus::completed);
  EXPECT_EQ(store.metrics(h0.run_id, "linear_probe/top1").at(0).value, 81.5);
  const auto before = store.sweep_trials(id);
  const auto refused = [&](int64_t index, Proposer::Outcome o, std::optional<double> v, const std::string& what) {
    try {
      p.tell(index, o, v, std::nullopt, "");
      ADD_FAILURE() << "no error for " << what;
    } catch (const SweepError& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  refused(0, Proposer::Outcome::completed, 90.0, "already has a result (COMPLETED)");
  refused(0, Proposer::Outcome::failed, std::nullopt, "already has a result");
  refused(7, Proposer::Outcome::completed, 1.0, "has no trial 7");
  refused(1, Proposer::Outcome::completed, NAN, "must be a finite number");
  refused(1, Proposer::Outcome::completed, std::nullopt, "must be a finite number");
  EXPECT_EQ(store.metrics(h0.run_id, "linear_probe/top1").size(), 1U);
  EXPECT_EQ(store.find_run(h1.run_id)->status, RunStatus::running);
  ASSERT_EQ(store.sweep_trials(id).size(), before.size());
  p.tell(1, Proposer::Outcome::failed, std::nullopt, std::nullopt, "out of memory");
  EXPECT_EQ(store.find_run(h1.run_id)->reason, "out of memory");

  // A trial the sweep runs itself is not the caller's to tell.
  const auto own = p.ask();
  ASSERT_EQ(own.size(), 2U);
  refused(own[0], Proposer::Outcome::completed, 1.0, "run by the sweep itself");
  // The budget is spent.
  EXPECT_THROW(p.ask_external(), SweepError);
}

}  // namespace
