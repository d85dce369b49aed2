// Parameter importance (PED-ANOVA): synthetic sweeps whose objective depends on one parameter and
// not on another, the top set taken from the right end for min and max, a hand-computed Pearson
// divergence on a tiny categorical sweep, constant and conditional parameters, and reading the
// space and objective from a sweep's stored spec.
#include "query/importance.hpp"
#include "store/store.hpp"
#include "temp_dir.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

namespace {

using jepa::query::Importance;
using jepa::query::ParamSpace;
using jepa::query::ped_anova;
using jepa::query::RunRow;
using nlohmann::json;

RunRow run(int64_t id, std::map<std::string, std::string> params, double y, const std::string& metric = "m") {
  RunRow r;
  r.id = id;
  r.params = std::move(params);
  r.metrics[metric] = y;
  return r;
}

ParamSpace uniform(const std::string& key, double low, double high) {
  ParamSpace s;
  s.key = key;
  s.low = low;
  s.high = high;
  return s;
}

ParamSpace choice(const std::string& key, std::vector<std::string> choices) {
  ParamSpace s;
  s.key = key;
  s.categorical = true;
  s.choices = std::move(choices);
  return s;
}

// [0, 1) from the generator's raw output, which the standard fixes (the distributions are not), so
// the sweeps are the same with every standard library.
double unit(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

std::string text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

const jepa::query::ImportanceRow& row_of(const Importance& imp, const std::string& param) {
  for (const auto& r : imp.rows) {
    if (r.param == param) return r;
  }
  throw std::runtime_error("no row for " + param);
}

// y = (x1 - 0.3)^2 + 0 * x2 over 200 pseudo-random points.
std::vector<RunRow> quadratic_sweep(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<RunRow> rows;
  for (int i = 0; i < 200; ++i) {
    const double x1 = unit(rng);
    const double x2 = unit(rng);
    rows.push_back(run(i + 1, {{"x1", text(x1)}, {"x2", text(x2)}}, (x1 - 0.3) * (x1 - 0.3)));
  }
  return rows;
}

TEST(Importance, TheParameterTheObjectiveDependsOnDominates) {
  for (uint64_t seed : {1u, 2u, 3u}) {
    const Importance imp = ped_anova(quadratic_sweep(seed), {uniform("x1", 0, 1), uniform("x2", 0, 1)}, "m", false);
    ASSERT_EQ(imp.rows.size(), 2u);
    EXPECT_EQ(imp.trials, 200);
    EXPECT_EQ(imp.top, 20);
    EXPECT_TRUE(imp.reliable);
    EXPECT_EQ(imp.rows[0].param, "x1") << "seed " << seed;
    EXPECT_GT(row_of(imp, "x1").importance, 10 * row_of(imp, "x2").importance) << "seed " << seed;
    EXPECT_GT(row_of(imp, "x1").share, 0.8) << "seed " << seed;
    EXPECT_NEAR(row_of(imp, "x1").share + row_of(imp, "x2").share, 1.0, 1e-12);
    EXPECT_EQ(row_of(imp, "x1").n, 200);
    EXPECT_EQ(row_of(imp, "x1").top, 20);
  }
}

TEST(Importance, LogParametersAreEstimatedInLogSpace) {
  // The best learning rates sit around 1e-3, the middle of [1e-5, 1e-1] in log space; in linear
  // space every trial below 1e-2 would crowd into the first grid step beside the top ones.
  std::mt19937_64 rng(7);
  std::vector<RunRow> rows;
  for (int i = 0; i < 200; ++i) {
    const double e = -5.0 + 4.0 * unit(rng);
    const double noise = unit(rng);
    rows.push_back(run(i + 1, {{"lr", text(std::pow(10.0, e))}, {"wd", text(noise)}}, (e + 3.0) * (e + 3.0)));
  }
  ParamSpace lr = uniform("lr", 1e-5, 1e-1);
  lr.log = true;
  const Importance imp = ped_anova(rows, {lr, uniform("wd", 0, 1)}, "m", false);
  EXPECT_GT(row_of(imp, "lr").share, 0.8);
  ParamSpace linear = lr;
  linear.log = false;
  const Importance lin = ped_anova(rows, {linear, uniform("wd", 0, 1)}, "m", false);
  EXPECT_GT(row_of(imp, "lr").importance, 2 * row_of(lin, "lr").importance);
}

TEST(Importance, ACategoricalParameterThatMatters) {
  std::mt19937_64 rng(11);
  const std::vector<std::string> masks = {"multiblock", "random", "block"};
  std::vector<RunRow> rows;
  for (int i = 0; i < 150; ++i) {
    const std::string mask = masks[static_cast<size_t>(i) % 3];
    const double lr = unit(rng);
    // Accuracy: multiblock is 10 points better, the learning rate only adds noise-sized wiggles.
    const double acc = (mask == "multiblock" ? 80.0 : 70.0) + 2.0 * unit(rng);
    rows.push_back(run(i + 1, {{"masking.strategy", mask}, {"optimization.lr", text(lr)}}, acc));
  }
  const Importance imp =
      ped_anova(rows, {choice("masking.strategy", masks), uniform("optimization.lr", 0, 1)}, "m", true);
  EXPECT_EQ(imp.rows[0].param, "masking.strategy");
  EXPECT_GT(row_of(imp, "masking.strategy").share, 0.8);
}

// Ten trials y = 0..9, two categories: a in trials 0-6 and 9, b in 7 and 8. The top set is 2
// trials: {0, 1} (both a) when lower is better, {8, 9} (one b, one a) when higher is.
std::vector<RunRow> tiny_categorical() {
  std::vector<RunRow> rows;
  for (int i = 0; i < 10; ++i) rows.push_back(run(i + 1, {{"c", i == 7 || i == 8 ? "b" : "a"}}, i));
  return rows;
}

// Pearson divergence of p_top from p_region, p = (count + 1/2) / (n + 1) per category, times
// (top / all)^2: written out by hand, independently of the implementation.
double by_hand(double top_a, double top_b) {
  const double ra = (8 + 0.5) / 11;
  const double rb = (2 + 0.5) / 11;
  const double ta = (top_a + 0.5) / 3;
  const double tb = (top_b + 0.5) / 3;
  const double divergence = ra * std::pow(ta / ra - 1, 2) + rb * std::pow(tb / rb - 1, 2);
  return (2.0 / 10) * (2.0 / 10) * divergence;
}

TEST(Importance, HandComputedDivergenceOnATinyCategoricalSweep) {
  const Importance low = ped_anova(tiny_categorical(), {choice("c", {"a", "b"})}, "m", false);
  ASSERT_EQ(low.rows.size(), 1u);
  EXPECT_EQ(low.top, 2);
  EXPECT_FALSE(low.reliable);
  EXPECT_NE(low.note.find("unreliable: fewer than 5 top trials"), std::string::npos) << low.note;
  EXPECT_NEAR(low.rows[0].importance, by_hand(2, 0), 1e-15);
  EXPECT_NEAR(low.rows[0].importance, 0.04 * 4.0 / 1089 * (11 / 8.5 + 11 / 2.5), 1e-15);  // 0.000836...
  EXPECT_DOUBLE_EQ(low.rows[0].share, 1.0);

  const Importance high = ped_anova(tiny_categorical(), {choice("c", {"a", "b"})}, "m", true);
  EXPECT_NEAR(high.rows[0].importance, by_hand(1, 1), 1e-15);
  EXPECT_NEAR(high.rows[0].importance, 0.04 * 9.0 / 121 * (11 / 8.5 + 11 / 2.5), 1e-15);  // 0.01694...
}

TEST(Importance, HandComputedParzenEstimateOnATwoPointGrid) {
  // An int in [0, 1]: the grid is {0, 1}. Trials y = i; x = 0 in trials 0, 1 (the top set when
  // lower is better) and alternates 0/1 from trial 2, so the region has six 0s and four 1s.
  std::vector<RunRow> rows;
  for (int i = 0; i < 10; ++i) rows.push_back(run(i + 1, {{"x", i < 2 ? "0" : std::to_string(i % 2)}}, i));
  ParamSpace x = uniform("x", 0, 1);
  x.integer = true;
  const Importance imp = ped_anova(rows, {x}, "m", false);
  ASSERT_EQ(imp.rows.size(), 1u);

  // Top: two equal values, so Scott's width is 0 and the floor of 0.5 / 1.64 grid steps applies.
  const double kt = std::exp(-0.5 / std::pow(0.5 / 1.64, 2));
  const double top0 = (2 * 1 / (1 + kt) + 0.5) / 3;
  const double top1 = (2 * kt / (1 + kt) + 0.5) / 3;
  // Region: sd = sqrt(2.4 / 9) = 0.516 is below IQR / 1.34 = 1 / 1.34, so Scott's width is
  // 1.059 * sd * 10^(-1/5) = 0.345 (above the floor).
  const double h = 1.059 * std::sqrt(2.4 / 9) * std::pow(10.0, -0.2);
  const double kr = std::exp(-0.5 / (h * h));
  const double all0 = (6 * 1 / (1 + kr) + 4 * kr / (1 + kr) + 0.5) / 11;
  const double all1 = (6 * kr / (1 + kr) + 4 * 1 / (1 + kr) + 0.5) / 11;
  const double divergence = all0 * std::pow(top0 / all0 - 1, 2) + all1 * std::pow(top1 / all1 - 1, 2);
  EXPECT_NEAR(imp.rows[0].importance, 0.04 * divergence, 1e-15);
}

TEST(Importance, MinimizeAndMaximizeTakeTheTopSetFromOppositeEnds) {
  // y = i: p is "a" in the 10 lowest trials and alternates elsewhere; q is "a" in the 10 highest.
  std::vector<RunRow> rows;
  for (int i = 0; i < 100; ++i) {
    const std::string alt = i % 2 ? "a" : "b";
    rows.push_back(run(i + 1, {{"p", i < 10 ? "a" : alt}, {"q", i >= 90 ? "a" : alt}}, i));
  }
  const std::vector<ParamSpace> space = {choice("p", {"a", "b"}), choice("q", {"a", "b"})};
  const Importance lower = ped_anova(rows, space, "m", false);
  EXPECT_EQ(lower.top, 10);
  EXPECT_EQ(lower.rows[0].param, "p");
  EXPECT_GT(row_of(lower, "p").share, 0.9);
  const Importance higher = ped_anova(rows, space, "m", true);
  EXPECT_EQ(higher.rows[0].param, "q");
  EXPECT_GT(row_of(higher, "q").share, 0.9);
}

TEST(Importance, AParameterWithOneValueGetsZero) {
  std::vector<RunRow> rows = quadratic_sweep(5);
  for (auto& r : rows) {
    r.params["depth"] = "6";
    r.params["mask"] = "multiblock";
  }
  ParamSpace depth = uniform("depth", 4, 8);
  depth.integer = true;
  const Importance imp =
      ped_anova(rows, {uniform("x1", 0, 1), depth, choice("mask", {"multiblock", "block"})}, "m", false);
  EXPECT_EQ(row_of(imp, "depth").importance, 0.0);
  EXPECT_EQ(row_of(imp, "depth").share, 0.0);
  EXPECT_EQ(row_of(imp, "mask").importance, 0.0);
  EXPECT_EQ(row_of(imp, "depth").n, 200);
  EXPECT_DOUBLE_EQ(row_of(imp, "x1").share, 1.0);
}

TEST(Importance, ConditionalParametersAreMeasuredOverTheTrialsThatHaveThem) {
  // sigreg trials are the good ones and their lambda decides how good; ijepa trials have no lambda.
  std::mt19937_64 rng(3);
  std::vector<RunRow> rows;
  for (int i = 0; i < 200; ++i) {
    const bool sigreg = i % 2 == 0;
    std::map<std::string, std::string> p{{"objective.plugin", sigreg ? "sigreg" : "ijepa"}};
    double y = 1.0 + unit(rng);
    if (sigreg) {
      const double lambda = unit(rng);
      p["objective.params.lambda"] = text(lambda);
      y = std::abs(lambda - 0.5);
    }
    rows.push_back(run(i + 1, p, y));
  }
  const Importance imp = ped_anova(
      rows, {choice("objective.plugin", {"ijepa", "sigreg"}), uniform("objective.params.lambda", 0, 1)}, "m", false);
  EXPECT_EQ(row_of(imp, "objective.params.lambda").n, 100);
  EXPECT_EQ(row_of(imp, "objective.params.lambda").top, 20);
  EXPECT_EQ(row_of(imp, "objective.plugin").n, 200);
  EXPECT_GT(row_of(imp, "objective.params.lambda").importance, 0.0);
  EXPECT_GT(row_of(imp, "objective.plugin").importance, 0.0);
}

TEST(Importance, TooFewTrialsNonFiniteValuesAndTies) {
  std::vector<RunRow> rows = {run(1, {{"c", "a"}}, 1.0), run(2, {{"c", "b"}}, 2.0)};
  Importance imp = ped_anova(rows, {choice("c", {})}, "m", false);
  EXPECT_TRUE(imp.rows.empty());
  EXPECT_EQ(imp.trials, 2);
  EXPECT_NE(imp.note.find("at least 3"), std::string::npos) << imp.note;

  rows.push_back(run(3, {{"c", "a"}}, std::numeric_limits<double>::quiet_NaN()));
  rows.push_back(run(4, {{"c", "a"}}, std::numeric_limits<double>::infinity()));
  rows.push_back(run(5, {{"c", "b"}}, 0.5, "other"));
  EXPECT_EQ(ped_anova(rows, {choice("c", {})}, "m", false).trials, 2);

  // Ties with the last top trial join the top set, whatever their order.
  rows.clear();
  for (int i = 0; i < 20; ++i) rows.push_back(run(i + 1, {{"c", i % 2 ? "a" : "b"}}, i < 4 ? 0.0 : 1.0 + i));
  imp = ped_anova(rows, {choice("c", {})}, "m", false);
  EXPECT_EQ(imp.top, 4);
  EXPECT_EQ(row_of(imp, "c").top, 4);
}

TEST(Importance, NumericChoicesMatchWhateverTheirSpelling) {
  std::vector<RunRow> rows;
  for (int i = 0; i < 30; ++i) rows.push_back(run(i + 1, {{"lr", i < 3 ? "0.0005" : "0.001"}}, i));
  const Importance imp = ped_anova(rows, {choice("lr", {"5e-4", "1e-3"})}, "m", false);
  ASSERT_EQ(imp.rows.size(), 1u);
  EXPECT_EQ(imp.top, 3);
  // Two categories, all three top trials 5e-4: p_top = (3.5, 0.5) / 4, p_all = (3.5, 27.5) / 31.
  const double ta = 3.5 / 4;
  const double tb = 0.5 / 4;
  const double ra = 3.5 / 31;
  const double rb = 27.5 / 31;
  const double expected = 0.01 * (ra * std::pow(ta / ra - 1, 2) + rb * std::pow(tb / rb - 1, 2));
  EXPECT_NEAR(imp.rows[0].importance, expected, 1e-15);
}

TEST(Importance, IntegerGridsAndValuesOutsideTheRange) {
  std::vector<RunRow> rows;
  for (int i = 0; i < 60; ++i) {
    const int depth = 2 + i % 7;  // 2..8, the spec said 4..8
    rows.push_back(run(i + 1, {{"depth", std::to_string(depth)}, {"note", "x"}}, std::abs(depth - 6) + 0.01 * i));
  }
  ParamSpace depth = uniform("depth", 4, 8);
  depth.integer = true;
  const Importance imp = ped_anova(rows, {depth}, "m", false);
  EXPECT_EQ(row_of(imp, "depth").n, 60);
  EXPECT_GT(row_of(imp, "depth").importance, 0.0);
  EXPECT_TRUE(std::isfinite(row_of(imp, "depth").importance));
}

TEST(Importance, SpaceAndObjectiveFromTheSweepSpec) {
  const json spec = json::parse(R"({
    "params": [
      {"key": "optimization.lr", "kind": "log_uniform", "low": 1e-5, "high": 1e-2},
      {"key": "masking.strategy", "kind": "choice", "choices": ["multiblock", "block"]},
      {"key": "encoder.params.depth", "kind": "int", "low": 2, "high": 64, "log": true},
      {"key": "optimization.weight_decay", "kind": "uniform", "low": 0.0, "high": 0.1, "step": 0.01},
      {"key": "optimization.epochs", "kind": "choice"}
    ],
    "objective": {"metric": "linear_probe/top1", "mode": "max", "value": "best"},
    "pruning": {"metric": "train/loss", "mode": "min"}})");
  const auto space = jepa::query::space_from_spec_json(spec);
  ASSERT_EQ(space.size(), 5u);
  EXPECT_EQ(space[0].key, "optimization.lr");
  EXPECT_FALSE(space[0].categorical);
  EXPECT_TRUE(space[0].log);
  EXPECT_DOUBLE_EQ(space[0].low, 1e-5);
  EXPECT_DOUBLE_EQ(space[0].high, 1e-2);
  EXPECT_TRUE(space[1].categorical);
  EXPECT_EQ(space[1].choices, (std::vector<std::string>{"multiblock", "block"}));
  EXPECT_TRUE(space[2].integer);
  EXPECT_TRUE(space[2].log);
  EXPECT_FALSE(space[3].log);
  EXPECT_DOUBLE_EQ(space[3].step, 0.01);
  EXPECT_TRUE(space[4].categorical);
  EXPECT_TRUE(space[4].choices.empty());

  auto o = jepa::query::objective_from_spec_json(spec);
  EXPECT_EQ(o.metric, "linear_probe/top1");
  EXPECT_TRUE(o.maximize);
  EXPECT_TRUE(o.best);
  EXPECT_EQ(o.source, "objective");

  // Older sweeps: no objective, or an empty metric; the pruning metric stands in.
  for (const char* text :
       {R"({"pruning": {"metric": "knn/top1", "mode": "max"}})",
        R"({"objective": {"metric": "", "mode": "min"}, "pruning": {"metric": "knn/top1", "mode": "max"}})"}) {
    o = jepa::query::objective_from_spec_json(json::parse(text));
    EXPECT_EQ(o.metric, "knn/top1");
    EXPECT_TRUE(o.maximize);
    EXPECT_FALSE(o.best);
    EXPECT_EQ(o.source, "pruning");
  }
  EXPECT_EQ(jepa::query::objective_from_spec_json(json::object()).metric, "");
  EXPECT_TRUE(jepa::query::space_from_spec_json(json::parse(R"({"params": []})")).empty());
}

TEST(Importance, HandMadeSweepsInferTheirSpace) {
  std::vector<RunRow> rows = {run(1, {{"lr", "0.001"}, {"mask", "block"}, {"depth", "4"}, {"run.seed", "0"}}, 1),
                              run(2, {{"lr", "0.01"}, {"mask", "block"}, {"depth", "8"}, {"run.seed", "1"}}, 2),
                              run(3, {{"lr", "0.002"}, {"mask", "random"}, {"depth", "4"}, {"run.seed", "2"}}, 3)};
  for (auto& r : rows) r.params["same"] = "1";
  const auto space = jepa::query::infer_space(rows);
  ASSERT_EQ(space.size(), 3u);  // seeds and constants are not swept
  EXPECT_EQ(space[0].key, "depth");
  EXPECT_FALSE(space[0].categorical);
  EXPECT_TRUE(space[0].integer);
  EXPECT_EQ(space[0].low, 4);
  EXPECT_EQ(space[0].high, 8);
  EXPECT_EQ(space[1].key, "lr");
  EXPECT_FALSE(space[1].integer);
  EXPECT_DOUBLE_EQ(space[1].low, 0.001);
  EXPECT_DOUBLE_EQ(space[1].high, 0.01);
  EXPECT_EQ(space[2].key, "mask");
  EXPECT_TRUE(space[2].categorical);
  EXPECT_EQ(space[2].choices, (std::vector<std::string>{"block", "random"}));
}

TEST(Importance, BestValuesComeFromTheStoresSummary) {
  jepa_test::TempDir dir("importance_test");
  jepa::store::Store store(dir.path() / "r.db");
  const int64_t id = store.create_run("a", "{}", "x.toml", 0);
  store.log_metrics(id, {{"m", 1, 0.5, 0}, {"m", 2, 0.2, 0}, {"m", 3, 0.4, 0}});
  std::vector<RunRow> rows = {run(id, {}, 0.4)};
  jepa::query::use_best_values(store, rows, "m", false);
  EXPECT_DOUBLE_EQ(rows[0].metrics["m"], 0.2);
  jepa::query::use_best_values(store, rows, "m", true);
  EXPECT_DOUBLE_EQ(rows[0].metrics["m"], 0.5);
}

TEST(Importance, TableAndJson) {
  const Importance imp = ped_anova(quadratic_sweep(1), {uniform("x1", 0, 1), uniform("x2", 0, 1)}, "m", false);
  const std::string t = jepa::query::format_importance(imp);
  EXPECT_NE(t.find("PED-ANOVA: top 10% = 20 of 200 trials by m (lower is better)"), std::string::npos) << t;
  EXPECT_NE(t.find("param  importance  share"), std::string::npos) << t;
  EXPECT_EQ(t.find("unreliable"), std::string::npos) << t;
  const json j = jepa::query::importance_json(imp);
  EXPECT_EQ(j["method"], "ped-anova");
  EXPECT_EQ(j["top"], 20);
  EXPECT_EQ(j["reliable"], true);
  ASSERT_EQ(j["params"].size(), 2u);
  EXPECT_EQ(j["params"][0]["param"], "x1");
}

}  // namespace
