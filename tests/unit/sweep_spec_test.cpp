// Sweep specs: reading [sweep] (defaults, every key, values as `--set` text, every kind of error
// with its file:line prefix) and expanding it into trials (grid order, reproducible random draws
// that stay within their bounds).
#include "sweep/spec.hpp"
#include "sweep/spec_json.hpp"

#include "temp_dir.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>

namespace fs = std::filesystem;
using jepa::sweep::Distribution;
using jepa::sweep::expand_trials;
using jepa::sweep::load_sweep_spec;
using jepa::sweep::SweepError;
using jepa::sweep::SweepSpec;
using jepa::sweep::Trial;

namespace {

// The base experiment the [sweep] table rides along with, on lines 1-6.
const std::string kBase = R"([masking]
strategy = "multiblock"
[encoder]
plugin = "vit"
[predictor]
plugin = "vit_predictor"
)";

class SweepSpecTest : public testing::Test {
 protected:
  SweepSpec load(const std::string& text, const std::string& name = "sweep.toml") {
    file_ = dir_.path() / name;
    std::ofstream(file_) << text;
    return load_sweep_spec(file_);
  }

  std::vector<Trial> expand(const std::string& text) { return expand_trials(load(text)); }

  // The SweepError's message, or "(no error)".
  std::string error_of(const std::string& text) {
    try {
      expand(text);
    } catch (const SweepError& e) {
      return e.what();
    }
    return "(no error)";
  }

  // "<file>:<line>:" as errors start.
  std::string at(int line) const { return file_.string() + ":" + std::to_string(line) + ":"; }

  jepa_test::TempDir dir_{"jepa_sweep_spec_test"};
  // Known before any load: at() may be evaluated before the load it describes.
  fs::path file_ = dir_.path() / "sweep.toml";
};

testing::AssertionResult starts_with(const std::string& text, const std::string& prefix) {
  if (text.compare(0, prefix.size(), prefix) == 0) return testing::AssertionSuccess();
  return testing::AssertionFailure() << "'" << text << "' does not start with '" << prefix << "'";
}

testing::AssertionResult contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return testing::AssertionSuccess();
  return testing::AssertionFailure() << "'" << text << "' does not contain '" << part << "'";
}

// The values one swept key took, in trial order.
std::vector<std::string> values_of(const std::vector<Trial>& trials, const std::string& key) {
  std::vector<std::string> out;
  for (const auto& t : trials) out.push_back(t.point.at(key));
  return out;
}

double number(const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  EXPECT_EQ(end, text.c_str() + text.size()) << "'" << text << "' is not a number";
  return v;
}

// ---------------------------------------------------------------- reading

TEST_F(SweepSpecTest, MinimalSpecTakesEveryDefault) {
  const SweepSpec s = load(kBase + "[sweep]\n[sweep.params]\n\"optimization.lr\" = [1e-3]\n", "lr-sweep.toml");
  EXPECT_EQ(s.file, file_);
  EXPECT_EQ(s.name, "lr-sweep");  // the file's stem
  EXPECT_EQ(s.method, "grid");
  EXPECT_EQ(s.trials, 0);
  EXPECT_EQ(s.sample_seed, 0u);
  EXPECT_EQ(s.seeds, (std::vector<int64_t>{0}));
  EXPECT_EQ(s.devices, "auto");
  EXPECT_EQ(s.gpus_per_trial, 1);
  EXPECT_EQ(s.trials_per_gpu, 1);
  EXPECT_EQ(s.threads_per_trial, 1);
  EXPECT_EQ(s.max_parallel, 0);
  EXPECT_EQ(s.pruning.rule, "none");
  EXPECT_EQ(s.pruning.metric, "train/loss");
  EXPECT_FALSE(s.pruning.maximize);
  EXPECT_EQ(s.pruning.warmup_steps, 0);
  EXPECT_EQ(s.pruning.min_trials, 3);
  EXPECT_EQ(s.pruning.grace_steps, 100);
  EXPECT_EQ(s.pruning.reduction, 3);
  ASSERT_EQ(s.params.size(), 1u);
  EXPECT_EQ(s.params[0].first, "optimization.lr");
  EXPECT_EQ(s.params[0].second.kind, Distribution::Kind::choice);
  EXPECT_EQ(s.params[0].second.choices, (std::vector<std::string>{"0.001"}));
}

TEST_F(SweepSpecTest, FullSpecSetsEveryKey) {
  const SweepSpec s = load(kBase + R"([sweep]
name = "wide"
method = "random"
trials = 8
sample_seed = 42
seeds = [3, 1, 2]
devices = " 0, 2 "
gpus_per_trial = 2
trials_per_gpu = 3
threads_per_trial = 4
max_parallel = 5

[sweep.params]
"optimization.weight_decay" = { uniform = [0.01, 0.1] }
"optimization.start_lr" = { log_uniform = [1e-5, 1e-3] }
"encoder.params.depth" = { int = [2, 6] }
"predictor.params.depth" = { choice = [2, 4, 6] }
"masking.strategy" = ["multiblock", "random"]

[sweep.pruning]
rule = "asha"
metric = "rankme/effective_rank"
mode = "max"
warmup_steps = 10
min_trials = 4
grace_steps = 50
reduction = 4
)");
  EXPECT_EQ(s.name, "wide");
  EXPECT_EQ(s.method, "random");
  EXPECT_EQ(s.trials, 8);
  EXPECT_EQ(s.sample_seed, 42u);
  EXPECT_EQ(s.seeds, (std::vector<int64_t>{3, 1, 2}));
  EXPECT_EQ(s.devices, "0,2");  // without the spaces
  EXPECT_EQ(s.gpus_per_trial, 2);
  EXPECT_EQ(s.trials_per_gpu, 3);
  EXPECT_EQ(s.threads_per_trial, 4);
  EXPECT_EQ(s.max_parallel, 5);
  ASSERT_EQ(s.params.size(), 5u);
  const std::vector<std::string> keys{"optimization.weight_decay", "optimization.start_lr", "encoder.params.depth",
                                      "predictor.params.depth", "masking.strategy"};
  for (size_t i = 0; i < keys.size(); ++i) EXPECT_EQ(s.params[i].first, keys[i]);  // file order
  const Distribution& wd = s.params[0].second;
  EXPECT_EQ(wd.kind, Distribution::Kind::uniform);
  EXPECT_DOUBLE_EQ(wd.low, 0.01);
  EXPECT_DOUBLE_EQ(wd.high, 0.1);
  EXPECT_EQ(s.params[1].second.kind, Distribution::Kind::log_uniform);
  EXPECT_DOUBLE_EQ(s.params[1].second.low, 1e-5);
  EXPECT_EQ(s.params[2].second.kind, Distribution::Kind::int_range);
  EXPECT_EQ(s.params[2].second.low, 2.0);
  EXPECT_EQ(s.params[2].second.high, 6.0);
  EXPECT_EQ(s.params[3].second.kind, Distribution::Kind::choice);
  EXPECT_EQ(s.params[3].second.choices, (std::vector<std::string>{"2", "4", "6"}));
  EXPECT_EQ(s.params[4].second.choices, (std::vector<std::string>{"multiblock", "random"}));
  EXPECT_EQ(s.pruning.rule, "asha");
  EXPECT_EQ(s.pruning.metric, "rankme/effective_rank");
  EXPECT_TRUE(s.pruning.maximize);
  EXPECT_EQ(s.pruning.warmup_steps, 10);
  EXPECT_EQ(s.pruning.min_trials, 4);
  EXPECT_EQ(s.pruning.grace_steps, 50);
  EXPECT_EQ(s.pruning.reduction, 4);

  EXPECT_EQ(expand_trials(s).size(), 24u);  // 8 points x 3 seeds
}

TEST_F(SweepSpecTest, ValuesAsSetText) {
  const SweepSpec s = load(kBase + R"([sweep]
[sweep.params]
"a.int" = [4, -2]
"a.float" = [5e-4, 1e-5, 2.0, 0.1, 1e300]
"a.string" = ["multiblock", "top1 < 20", ""]
"a.bool" = [true, false]
"a.list" = [[0.15, 0.2], [0.1, 0.15], [1, 2], []]
"a.choice" = { choice = [0.5, "x"] }
)");
  ASSERT_EQ(s.params.size(), 6u);
  EXPECT_EQ(s.params[0].second.choices, (std::vector<std::string>{"4", "-2"}));
  EXPECT_EQ(s.params[1].second.choices, (std::vector<std::string>{"0.0005", "1e-05", "2", "0.1", "1e+300"}));
  EXPECT_EQ(s.params[2].second.choices, (std::vector<std::string>{"multiblock", "top1 < 20", ""}));
  EXPECT_EQ(s.params[3].second.choices, (std::vector<std::string>{"true", "false"}));
  EXPECT_EQ(s.params[4].second.choices, (std::vector<std::string>{"[0.15, 0.2]", "[0.1, 0.15]", "[1, 2]", "[]"}));
  EXPECT_EQ(s.params[5].second.kind, Distribution::Kind::choice);
  EXPECT_EQ(s.params[5].second.choices, (std::vector<std::string>{"0.5", "x"}));
}

TEST_F(SweepSpecTest, UnquotedDottedKeysAndSubTablesNameTheFullKey) {
  const SweepSpec s = load(kBase + R"([sweep]
method = "random"
trials = 2
[sweep.params]
optimization.lr = [1e-3, 2e-3]
"masking.params.npred" = { int = [1, 4] }
[sweep.params.encoder.params]
depth = [2, 4]
)");
  ASSERT_EQ(s.params.size(), 3u);
  EXPECT_EQ(s.params[0].first, "optimization.lr");
  EXPECT_EQ(s.params[1].first, "masking.params.npred");
  EXPECT_EQ(s.params[1].second.kind, Distribution::Kind::int_range);
  EXPECT_EQ(s.params[2].first, "encoder.params.depth");
  EXPECT_EQ(s.params[2].second.choices, (std::vector<std::string>{"2", "4"}));
}

// ---------------------------------------------------------------- grid

TEST_F(SweepSpecTest, GridIsTheProductInFileOrderLastKeyFastestThenSeeds) {
  const auto trials = expand(kBase + R"([sweep]
seeds = [7, 3]
[sweep.params]
"optimization.lr" = [5e-4, 1e-3]
"masking.strategy" = ["multiblock", "random", "block"]
)");
  ASSERT_EQ(trials.size(), 12u);  // 2 x 3 values x 2 seeds
  for (size_t i = 0; i < trials.size(); ++i) EXPECT_EQ(trials[i].index, static_cast<int64_t>(i));
  EXPECT_EQ(trials.front().overrides,
            (std::vector<std::string>{"optimization.lr=0.0005", "masking.strategy=multiblock", "run.seed=7"}));
  EXPECT_EQ(trials[1].overrides,
            (std::vector<std::string>{"optimization.lr=0.0005", "masking.strategy=multiblock", "run.seed=3"}));
  EXPECT_EQ(trials[2].overrides,
            (std::vector<std::string>{"optimization.lr=0.0005", "masking.strategy=random", "run.seed=7"}));
  EXPECT_EQ(trials.back().overrides,
            (std::vector<std::string>{"optimization.lr=0.001", "masking.strategy=block", "run.seed=3"}));
  EXPECT_EQ(values_of(trials, "optimization.lr"),
            (std::vector<std::string>{"0.0005", "0.0005", "0.0005", "0.0005", "0.0005", "0.0005", "0.001", "0.001",
                                      "0.001", "0.001", "0.001", "0.001"}));
  EXPECT_EQ(values_of(trials, "masking.strategy"),
            (std::vector<std::string>{"multiblock", "multiblock", "random", "random", "block", "block", "multiblock",
                                      "multiblock", "random", "random", "block", "block"}));
  std::set<std::vector<std::string>> distinct;
  for (const auto& t : trials) {
    EXPECT_EQ(t.seed, t.index % 2 == 0 ? 7 : 3);
    EXPECT_EQ(t.point.size(), 2u);  // the seed is not part of the point
    EXPECT_EQ(t.overrides.back(), fmt::format("run.seed={}", t.seed));
    distinct.insert(t.overrides);
  }
  EXPECT_EQ(distinct.size(), 12u);
}

TEST_F(SweepSpecTest, GridOfListValuedParameters) {
  const auto trials = expand(kBase + R"([sweep]
[sweep.params]
"masking.params.pred_scale" = [[0.15, 0.2], [0.1, 0.15]]
"masking.params.npred" = { choice = [2, 4] }
)");
  ASSERT_EQ(trials.size(), 4u);
  EXPECT_EQ(trials[0].overrides, (std::vector<std::string>{"masking.params.pred_scale=[0.15, 0.2]",
                                                           "masking.params.npred=2", "run.seed=0"}));
  EXPECT_EQ(trials[3].overrides, (std::vector<std::string>{"masking.params.pred_scale=[0.1, 0.15]",
                                                           "masking.params.npred=4", "run.seed=0"}));
  EXPECT_EQ(trials[1].point.at("masking.params.pred_scale"), "[0.15, 0.2]");
}

TEST_F(SweepSpecTest, SeedsOnlySweep) {
  const auto trials = expand(kBase + "[sweep]\nseeds = [0, 1, 2]\n");
  ASSERT_EQ(trials.size(), 3u);
  for (int64_t i = 0; i < 3; ++i) {
    EXPECT_EQ(trials[i].seed, i);
    EXPECT_TRUE(trials[i].point.empty());
    EXPECT_EQ(trials[i].overrides, (std::vector<std::string>{fmt::format("run.seed={}", i)}));
  }
  // An empty [sweep.params] is the same.
  EXPECT_EQ(expand(kBase + "[sweep]\nseeds = [4]\n[sweep.params]\n").size(), 1u);
}

TEST_F(SweepSpecTest, GridWithADistributionBuiltInCodeIsRejected) {
  SweepSpec s;
  Distribution d;
  d.kind = Distribution::Kind::uniform;
  d.low = 0;
  d.high = 1;
  s.params.emplace_back("optimization.lr", d);
  EXPECT_THROW(expand_trials(s), SweepError);
  s.method = "random";
  EXPECT_THROW(expand_trials(s), SweepError);  // without trials
  s.trials = 3;
  EXPECT_EQ(expand_trials(s).size(), 3u);
  s.method = "bayes";
  EXPECT_THROW(expand_trials(s), SweepError);
}

// ---------------------------------------------------------------- random

const std::string kRandom = kBase + R"([sweep]
method = "random"
trials = 20
sample_seed = 5
seeds = [0, 1]
[sweep.params]
"optimization.weight_decay" = { uniform = [0.01, 0.1] }
"optimization.lr" = { log_uniform = [1e-5, 1e-2] }
"encoder.params.depth" = { int = [2, 6] }
"masking.strategy" = ["multiblock", "random", "block"]
)";

std::string with_sample_seed(const std::string& spec, int seed) {
  const std::string from = "sample_seed = 5";
  std::string out = spec;
  out.replace(out.find(from), from.size(), fmt::format("sample_seed = {}", seed));
  return out;
}

TEST_F(SweepSpecTest, RandomIsReproducibleFromTheSampleSeed) {
  const auto a = expand(kRandom);
  const auto b = expand(kRandom);
  const auto c = expand(with_sample_seed(kRandom, 6));
  ASSERT_EQ(a.size(), 40u);  // 20 points x 2 seeds
  ASSERT_EQ(c.size(), 40u);
  size_t same_as_c = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].index, static_cast<int64_t>(i));
    EXPECT_EQ(a[i].overrides, b[i].overrides);
    EXPECT_EQ(a[i].point, b[i].point);
    if (a[i].point == c[i].point) ++same_as_c;
    // Each point runs once per seed, seed fastest.
    EXPECT_EQ(a[i].seed, static_cast<int64_t>(i % 2));
    if (i % 2 == 1) EXPECT_EQ(a[i].point, a[i - 1].point);
    ASSERT_EQ(a[i].overrides.size(), 5u);
    EXPECT_TRUE(starts_with(a[i].overrides[0], "optimization.weight_decay="));
    EXPECT_TRUE(starts_with(a[i].overrides[1], "optimization.lr="));
    EXPECT_TRUE(starts_with(a[i].overrides[2], "encoder.params.depth="));
    EXPECT_TRUE(starts_with(a[i].overrides[3], "masking.strategy="));
    EXPECT_EQ(a[i].overrides[4], fmt::format("run.seed={}", a[i].seed));
  }
  EXPECT_EQ(same_as_c, 0u);
  // Consecutive points differ: the draws move on.
  EXPECT_NE(a[0].point, a[2].point);
}

// The draws use only std::mt19937_64's raw output (fixed by the standard) and their own
// arithmetic, so these values hold on every platform. They were checked against an independent
// MT19937-64 implementation (Python) following the same sampling rules.
TEST_F(SweepSpecTest, RandomDrawsArePinned) {
  const auto trials = expand(kRandom);
  EXPECT_EQ(trials[0].overrides,
            (std::vector<std::string>{"optimization.weight_decay=0.07057584135742852",
                                      "optimization.lr=1.3046194003802122e-05", "encoder.params.depth=2",
                                      "masking.strategy=random", "run.seed=0"}));
  EXPECT_EQ(trials[2].overrides,
            (std::vector<std::string>{"optimization.weight_decay=0.018133020065389256",
                                      "optimization.lr=1.9454823133598768e-05", "encoder.params.depth=3",
                                      "masking.strategy=random", "run.seed=0"}));
}

TEST_F(SweepSpecTest, RandomDrawsStayInTheirRanges) {
  std::string spec = kRandom;
  spec.replace(spec.find("trials = 20"), 11, "trials = 4000");
  spec.replace(spec.find("seeds = [0, 1]"), 14, "seeds = [0]");
  const auto trials = expand(spec);
  ASSERT_EQ(trials.size(), 4000u);

  std::set<std::string> uniform_texts;
  size_t low_half = 0, below_1e4 = 0, below_1e3 = 0;
  std::map<std::string, size_t> depths, strategies;
  for (const auto& t : trials) {
    for (const char* key : {"optimization.weight_decay", "optimization.lr"}) {
      // Shortest text that reads back as the very same double.
      const std::string& text = t.point.at(key);
      EXPECT_EQ(fmt::format("{}", number(text)), text);
    }
    const double wd = number(t.point.at("optimization.weight_decay"));
    EXPECT_GE(wd, 0.01);
    EXPECT_LE(wd, 0.1);
    uniform_texts.insert(t.point.at("optimization.weight_decay"));
    if (wd < 0.055) ++low_half;
    const double lr = number(t.point.at("optimization.lr"));
    EXPECT_GE(lr, 1e-5);
    EXPECT_LE(lr, 1e-2);
    if (lr < 1e-4) ++below_1e4;
    if (lr < 1e-3) ++below_1e3;
    ++depths[t.point.at("encoder.params.depth")];
    ++strategies[t.point.at("masking.strategy")];
  }
  EXPECT_GT(uniform_texts.size(), 3990u);
  EXPECT_NEAR(low_half / 4000.0, 0.5, 0.05);
  // Log-spread: each decade of [1e-5, 1e-2] gets about a third (a linear spread would put
  // about 1% below 1e-4).
  EXPECT_NEAR(below_1e4 / 4000.0, 1.0 / 3, 0.05);
  EXPECT_NEAR(below_1e3 / 4000.0, 2.0 / 3, 0.05);
  // int: inclusive bounds, every value reached, nothing else.
  EXPECT_EQ(depths.size(), 5u);
  for (const char* d : {"2", "3", "4", "5", "6"}) EXPECT_NEAR(depths[d] / 4000.0, 0.2, 0.04) << d;
  EXPECT_EQ(strategies.size(), 3u);
  for (const char* s : {"multiblock", "random", "block"}) EXPECT_NEAR(strategies[s] / 4000.0, 1.0 / 3, 0.05) << s;
}

TEST_F(SweepSpecTest, RandomChoiceOfListValues) {
  const auto trials = expand(kBase + R"([sweep]
method = "random"
trials = 200
[sweep.params]
"masking.params.pred_scale" = [[0.15, 0.2], [0.1, 0.15]]
)");
  std::set<std::string> seen;
  for (const auto& t : trials) seen.insert(t.overrides[0]);
  EXPECT_EQ(seen,
            (std::set<std::string>{"masking.params.pred_scale=[0.15, 0.2]", "masking.params.pred_scale=[0.1, 0.15]"}));
}

// ---------------------------------------------------------------- errors

TEST_F(SweepSpecTest, MissingSweepTable) {
  const std::string err = error_of(kBase);
  EXPECT_TRUE(starts_with(err, at(1) + "1: no [sweep] table"));
  EXPECT_TRUE(starts_with(error_of("sweep = 1\n" + kBase), at(1) + "1: [sweep] must be a table"));
  EXPECT_TRUE(starts_with(error_of(kBase + "[[sweep]]\n"), at(7)));
}

TEST_F(SweepSpecTest, SyntaxErrorAndMissingFile) {
  EXPECT_TRUE(starts_with(error_of(kBase + "[sweep]\nmethod = grid\n"), at(8)));
  EXPECT_TRUE(contains(error_of(kBase + "[sweep]\nmethod = grid\n"), "TOML syntax error"));
  try {
    load_sweep_spec(dir_.path() / "absent.toml");
    ADD_FAILURE() << "no error";
  } catch (const SweepError& e) {
    EXPECT_TRUE(contains(e.what(), "absent.toml: cannot open sweep file"));
  }
}

TEST_F(SweepSpecTest, UnknownKeys) {
  const std::string sweep = error_of(kBase + "[sweep]\nmethod = \"grid\"\nmethd = \"grid\"\n");
  EXPECT_TRUE(starts_with(sweep, at(9) + "1: [sweep] unknown key 'methd'; valid keys: name, method, trials"));
  const std::string pruning = error_of(kBase + "[sweep]\n[sweep.pruning]\nrule = \"median\"\npatience = 3\n");
  EXPECT_TRUE(starts_with(pruning, at(10) + "1: [sweep.pruning] unknown key 'patience'; valid keys: rule, metric"));
  const std::string dist = error_of(kBase +
                                    "[sweep]\nmethod = \"random\"\ntrials = 2\n[sweep.params]\n"
                                    "\"optimization.lr\" = { unifrom = [0.1, 0.2] }\n");
  EXPECT_TRUE(starts_with(dist, at(11) + "1: [sweep.params] optimization.lr: unknown distribution 'unifrom'"));
  EXPECT_TRUE(starts_with(error_of(kBase + "[sweep]\n[sweep.other]\n"), at(8) + "8: [sweep] unknown key 'other'"));
}

TEST_F(SweepSpecTest, BadValuesInSweep) {
  const auto err = [&](const std::string& line) { return error_of(kBase + "[sweep]\n" + line + "\n"); };
  EXPECT_EQ(err("method = \"bayes\""), at(8) + "1: [sweep] method: 'bayes' is not one of grid, random, tpe");
  EXPECT_EQ(err("method = 1"), at(8) + "1: [sweep] method: expects a string");
  EXPECT_EQ(err("trials = 2.5"), at(8) + "1: [sweep] trials: expects an integer");
  EXPECT_EQ(err("trials = -1"), at(8) + "1: [sweep] trials: -1 is outside the allowed range [0, 1000000]");
  EXPECT_EQ(err("sample_seed = -1"), at(8) + "1: [sweep] sample_seed: -1 is outside the allowed range [0, inf]");
  EXPECT_EQ(err("gpus_per_trial = 0"), at(8) + "1: [sweep] gpus_per_trial: 0 is outside the allowed range [1, inf]");
  EXPECT_EQ(err("trials_per_gpu = 0"), at(8) + "1: [sweep] trials_per_gpu: 0 is outside the allowed range [1, inf]");
  EXPECT_EQ(err("threads_per_trial = 0"),
            at(8) + "1: [sweep] threads_per_trial: 0 is outside the allowed range [1, inf]");
  EXPECT_EQ(err("max_parallel = -1"), at(8) + "1: [sweep] max_parallel: -1 is outside the allowed range [0, inf]");
  EXPECT_EQ(err("name = \"\""), at(8) + "1: [sweep] name: expects a non-empty name");
  EXPECT_EQ(err("params = 3"), at(8) + "1: [sweep] params: must be a table: write it as [sweep.params]");
}

TEST_F(SweepSpecTest, BadSeeds) {
  const auto err = [&](const std::string& seeds) { return error_of(kBase + "[sweep]\nseeds = " + seeds + "\n"); };
  EXPECT_EQ(err("[0, 1, 0]"), at(8) + "1: [sweep] seeds: 0 is listed twice");
  EXPECT_EQ(err("[]"), at(8) + "1: [sweep] seeds: expects a non-empty list of integers");
  EXPECT_EQ(err("[1, 2.5]"), at(8) + "1: [sweep] seeds: expects a non-empty list of integers");
  EXPECT_EQ(err("3"), at(8) + "1: [sweep] seeds: expects a non-empty list of integers");
  EXPECT_EQ(err("[-1]"), at(8) + "1: [sweep] seeds: -1 is negative; seeds are >= 0");
}

TEST_F(SweepSpecTest, Devices) {
  const auto devices = [&](const std::string& text) {
    return load(kBase + "[sweep]\ndevices = \"" + text + "\"\n").devices;
  };
  EXPECT_EQ(devices("auto"), "auto");
  EXPECT_EQ(devices("cpu"), "cpu");
  EXPECT_EQ(devices("3"), "3");
  EXPECT_EQ(devices("0,2,10"), "0,2,10");
  for (const char* bad : {"", "gpu", "cuda:0", "0,", ",1", "-1", "1.5", "01", "0;1"}) {
    EXPECT_TRUE(starts_with(error_of(kBase + "[sweep]\ndevices = \"" + bad + "\"\n"),
                            at(8) + "1: [sweep] devices: '" + bad + "' is not auto, cpu or a comma-separated list"))
        << bad;
  }
  EXPECT_EQ(error_of(kBase + "[sweep]\ndevices = \"0,1,0\"\n"),
            at(8) + "1: [sweep] devices: GPU 0 is listed twice in '0,1,0'");
  EXPECT_EQ(error_of(kBase + "[sweep]\ndevices = 0\n"), at(8) + "1: [sweep] devices: expects a string");
}

TEST_F(SweepSpecTest, RandomNeedsTrialsAndParameters) {
  // Without `trials` the error points at the [sweep] table, with trials = 0 at the key.
  EXPECT_EQ(error_of(kBase + "[sweep]\nmethod = \"random\"\n[sweep.params]\n\"optimization.lr\" = [1, 2]\n"),
            at(7) + "1: [sweep] trials: method = \"random\" needs trials >= 1 (how many points to draw)");
  EXPECT_EQ(error_of(kBase + "[sweep]\nmethod = \"random\"\ntrials = 0\n[sweep.params]\n\"a.b\" = [1, 2]\n"),
            at(9) + "1: [sweep] trials: method = \"random\" needs trials >= 1 (how many points to draw)");
  EXPECT_TRUE(starts_with(error_of(kBase + "[sweep]\nmethod = \"random\"\ntrials = 3\n"),
                          at(7) + "1: [sweep.params] random search needs at least one parameter"));
}

TEST_F(SweepSpecTest, BadDistributions) {
  const auto err = [&](const std::string& value) {
    return error_of(kBase + "[sweep]\nmethod = \"random\"\ntrials = 2\n[sweep.params]\n\"optimization.lr\" = " + value +
                    "\n");
  };
  const std::string at11 = at(11) + "1: [sweep.params] optimization.lr: ";
  EXPECT_EQ(err("{ uniform = [0.1, 0.1] }"), at11 + "uniform expects low < high, got [0.1, 0.1]");
  EXPECT_EQ(err("{ uniform = [0.2, 0.1] }"), at11 + "uniform expects low < high, got [0.2, 0.1]");
  EXPECT_EQ(err("{ log_uniform = [0, 0.1] }"), at11 + "log_uniform needs low > 0, got 0");
  EXPECT_EQ(err("{ log_uniform = [-1, 0.1] }"), at11 + "log_uniform needs low > 0, got -1");
  EXPECT_EQ(err("{ int = [1.0, 4] }"), at11 + "int expects two integers [low, high]");
  EXPECT_EQ(err("{ int = [4, 4] }"), at11 + "int expects low < high, got [4, 4]");
  EXPECT_EQ(err("{ uniform = [0.1] }"), at11 + "uniform expects two numbers [low, high]");
  EXPECT_EQ(err("{ uniform = [0.1, \"x\"] }"), at11 + "uniform expects two numbers [low, high]");
  EXPECT_EQ(err("{ uniform = [0.1, inf] }"), at11 + "inf is not a finite number");
  EXPECT_TRUE(starts_with(err("{ uniform = [0.1, 0.2], int = [1, 2] }"), at11 + "expects exactly one distribution"));
  EXPECT_TRUE(starts_with(err("{}"), at11 + "expects exactly one distribution"));
  EXPECT_EQ(err("{ choice = 3 }"), at11 + "choice expects a list of values");
  EXPECT_EQ(err("[]"), at11 + "expects at least one value");
  EXPECT_EQ(err("[1, 1.0]"), at11 + "1 is listed twice");
  EXPECT_EQ(err("[[0.1, \"x\"]]"), at11 + "a list-valued choice holds numbers only, like [0.15, 0.2]");
  EXPECT_EQ(err("[{ a = 1 }]"), at11 + "values are numbers, strings, booleans or lists of numbers");
  EXPECT_TRUE(starts_with(err("0.1"), at11 + "expects a list of values or a distribution"));
}

TEST_F(SweepSpecTest, GridTakesListsOnly) {
  const std::string err = error_of(kBase + R"([sweep]
[sweep.params]
"optimization.lr" = [1e-3, 2e-3]
"optimization.weight_decay" = { uniform = [0.01, 0.1] }
)");
  EXPECT_EQ(err, at(10) +
                     "1: [sweep.params] optimization.weight_decay: a uniform distribution needs method = "
                     "\"random\"; a grid takes a list of values");
}

TEST_F(SweepSpecTest, SeedIsNotAParameter) {
  const std::string err = error_of(kBase + "[sweep]\n[sweep.params]\n\"run.seed\" = [0, 1]\n");
  EXPECT_TRUE(starts_with(err, at(9) + "1: [sweep.params] run.seed: the seed is not a parameter"));
  EXPECT_TRUE(contains(err, "seeds = [...]"));
  // However it is spelled (a dotted key's position is that of its last part).
  EXPECT_TRUE(contains(error_of(kBase + "[sweep]\n[sweep.params]\nrun.seed = [0, 1]\n"),
                       ": [sweep.params] run.seed: the seed is not a parameter"));
  EXPECT_TRUE(starts_with(error_of(kBase + "[sweep]\n[sweep.params]\nrun.seed = [0, 1]\n"), at(9)));
}

TEST_F(SweepSpecTest, BadPruning) {
  const auto err = [&](const std::string& line) {
    return error_of(kBase + "[sweep]\n[sweep.pruning]\n" + line + "\n");
  };
  EXPECT_EQ(err("rule = \"hyperband\""),
            at(9) + "1: [sweep.pruning] rule: 'hyperband' is not one of none, median, asha");
  EXPECT_EQ(err("mode = \"minimize\""), at(9) + "1: [sweep.pruning] mode: 'minimize' is not one of min, max");
  EXPECT_EQ(err("metric = \"\""), at(9) + "1: [sweep.pruning] metric: expects a metric name like \"train/loss\"");
  EXPECT_EQ(err("reduction = 1"), at(9) + "1: [sweep.pruning] reduction: 1 is outside the allowed range [2, inf]");
  EXPECT_EQ(err("grace_steps = 0"), at(9) + "1: [sweep.pruning] grace_steps: 0 is outside the allowed range [1, inf]");
  EXPECT_EQ(err("warmup_steps = -1"),
            at(9) + "1: [sweep.pruning] warmup_steps: -1 is outside the allowed range [0, inf]");
  EXPECT_EQ(err("min_trials = 0"), at(9) + "1: [sweep.pruning] min_trials: 0 is outside the allowed range [1, inf]");
  EXPECT_EQ(err("min_trials = 2.0"), at(9) + "1: [sweep.pruning] min_trials: expects an integer");
  EXPECT_EQ(error_of(kBase + "[sweep]\npruning = \"median\"\n"),
            at(8) + "1: [sweep] pruning: must be a table: write it as [sweep.pruning]");
}

TEST_F(SweepSpecTest, TooManyTrials) {
  std::string lists;
  for (int i = 0; i < 7; ++i) lists += fmt::format("\"k.p{}\" = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n", i);
  EXPECT_TRUE(starts_with(error_of(kBase + "[sweep]\n[sweep.params]\n" + lists),
                          at(7) + "1: [sweep] expands to more than 1000000 trials"));
}

}  // namespace

// ---------------------------------------------------------------- launcher = "slurm"

namespace {

TEST_F(SweepSpecTest, SlurmTableSetsEveryKeyAndDefaultsAreLocal) {
  EXPECT_EQ(load(kBase + "[sweep]\n").launcher, "local");
  const SweepSpec s = load(kBase + R"([sweep]
launcher = "slurm"
max_parallel = 8
[sweep.slurm]
partition = "gpu"
time_limit = "1-12:00:00"
nodes = 2
tasks_per_node = 4
gpus_per_task = 1
cpus_per_task = 8
mem = "64G"
account = "ml"
qos = "high"
signal_grace = 120
requeue = false
sbatch_args = ["--constraint=a100", "--exclusive"]
shared_dir = "/shared/sweeps"
poll_seconds = 5
)");
  EXPECT_EQ(s.launcher, "slurm");
  EXPECT_EQ(s.max_parallel, 8);
  EXPECT_EQ(s.slurm.partition, "gpu");
  EXPECT_EQ(s.slurm.time_limit, "1-12:00:00");
  EXPECT_EQ(s.slurm.nodes, 2);
  EXPECT_EQ(s.slurm.tasks_per_node, 4);
  EXPECT_EQ(s.slurm.ranks(), 8);
  EXPECT_EQ(s.slurm.gpus_per_task, 1);
  EXPECT_EQ(s.slurm.cpus_per_task, 8);
  EXPECT_EQ(s.slurm.mem, "64G");
  EXPECT_EQ(s.slurm.account, "ml");
  EXPECT_EQ(s.slurm.qos, "high");
  EXPECT_EQ(s.slurm.signal_grace, 120);
  EXPECT_FALSE(s.slurm.requeue);
  EXPECT_EQ(s.slurm.sbatch_args, (std::vector<std::string>{"--constraint=a100", "--exclusive"}));
  EXPECT_EQ(s.slurm.shared_dir, "/shared/sweeps");
  EXPECT_DOUBLE_EQ(s.slurm.poll_seconds, 5.0);
}

TEST_F(SweepSpecTest, SlurmErrorsNameFileLineAndKey) {
  // Lines 1-6 are the base experiment.
  EXPECT_TRUE(starts_with(error_of(kBase + "[sweep]\nlauncher = \"pbs\"\n"), at(8) + "1: [sweep] launcher: 'pbs'"));
  EXPECT_TRUE(contains(error_of(kBase + "[sweep]\n[sweep.slurm]\npartition = \"gpu\"\n"),
                       "[sweep.slurm] is read only with launcher = \"slurm\""));
  const std::string head = kBase + "[sweep]\nlauncher = \"slurm\"\n[sweep.slurm]\n";  // keys from line 10
  EXPECT_TRUE(starts_with(error_of(head + "partiton = \"gpu\"\n"), at(10) + "1: [sweep.slurm] unknown key 'partiton'"));
  EXPECT_TRUE(
      starts_with(error_of(head + "time_limit = \"2h\"\n"), at(10) + "1: [sweep.slurm] time_limit: '2h' is not"));
  EXPECT_EQ(error_of(head + "time_limit = \"30\"\n"), "(no error)");
  EXPECT_EQ(error_of(head + "time_limit = \"2-00\"\n"), "(no error)");
  EXPECT_TRUE(starts_with(error_of(head + "nodes = 0\n"), at(10) + "1: [sweep.slurm] nodes: 0 is outside"));
  EXPECT_TRUE(starts_with(error_of(head + "mem = \"lots\"\n"), at(10) + "1: [sweep.slurm] mem: 'lots' is not a size"));
  EXPECT_TRUE(
      starts_with(error_of(head + "requeue = 1\n"), at(10) + "1: [sweep.slurm] requeue: expects true or false"));
  EXPECT_TRUE(
      contains(error_of(head + "sbatch_args = [\"--output=x.log\"]\n"), "'--output=x.log' is set by the launcher"));
  EXPECT_TRUE(contains(error_of(head + "sbatch_args = \"--exclusive\"\n"), "sbatch_args: expects a list of strings"));
  EXPECT_TRUE(contains(error_of(head + "poll_seconds = 0.0\n"), "poll_seconds: expects a number of seconds"));
  EXPECT_TRUE(starts_with(error_of(kBase + "[sweep]\nlauncher = \"slurm\"\nslurm = 3\n"),
                          at(9) + "1: [sweep] slurm: must be a table"));
}

}  // namespace

// ---------------------------------------------------------------- TPE's space and keys

TEST_F(SweepSpecTest, StepsLogIntsAndConditionsAreRead) {
  const SweepSpec s = load(kBase + R"([sweep]
method = "tpe"
trials = 20
objective = { metric = "linear_probe/top1", mode = "max", value = "best" }
tpe = { startup_trials = 4, candidates = 32, multivariate = false, constant_liar = false }
[sweep.params]
"optimization.ema" = { uniform = [0.99, 0.999], step = 0.001 }
"data.batch_size" = { int = [16, 512], log = true }
"encoder.params.depth" = { int = [2, 12], step = 2 }
"objective.plugin" = ["ijepa", "sigreg"]
"objective.params.lambda" = { log_uniform = [0.01, 1], when = { "objective.plugin" = "sigreg" } }
"masking.params.pred_scale" = [[0.15, 0.2], [0.1, 0.15]]
"masking.params.npred" = { int = [1, 4], when = { "masking.params.pred_scale" = [0.15, 0.2] } }
)");
  EXPECT_EQ(s.method, "tpe");
  EXPECT_EQ(s.objective.metric, "linear_probe/top1");
  EXPECT_TRUE(s.objective.maximize);
  EXPECT_EQ(s.objective.value, "best");
  EXPECT_EQ(s.tpe.startup_trials, 4);
  EXPECT_EQ(s.tpe.candidates, 32);
  EXPECT_FALSE(s.tpe.multivariate);
  EXPECT_FALSE(s.tpe.constant_liar);
  ASSERT_EQ(s.params.size(), 7U);
  EXPECT_DOUBLE_EQ(s.params[0].second.step, 0.001);
  EXPECT_TRUE(s.params[1].second.log);
  EXPECT_DOUBLE_EQ(s.params[2].second.step, 2);
  ASSERT_TRUE(s.params[4].second.when.has_value());
  EXPECT_EQ(s.params[4].second.when->parent, "objective.plugin");
  EXPECT_EQ(s.params[4].second.when->values, std::vector<std::string>({"sigreg"}));
  // A list of numbers is one value of a list-valued parent.
  EXPECT_EQ(s.params[6].second.when->values, std::vector<std::string>({"[0.15, 0.2]"}));
  // The stored spec gives the same space back (a resumed sweep rebuilds its sampler from it).
  const SweepSpec back = jepa::sweep::spec_from_json(jepa::sweep::spec_to_json(s));
  ASSERT_EQ(back.params.size(), s.params.size());
  for (size_t i = 0; i < s.params.size(); ++i) {
    EXPECT_EQ(back.params[i].first, s.params[i].first);
    EXPECT_EQ(back.params[i].second.step, s.params[i].second.step);
    EXPECT_EQ(back.params[i].second.log, s.params[i].second.log);
    EXPECT_EQ(back.params[i].second.when.has_value(), s.params[i].second.when.has_value());
  }
  EXPECT_EQ(back.objective.metric, s.objective.metric);
  EXPECT_EQ(back.tpe.candidates, 32);
  // TPE's points are proposed while it runs, never expanded up front.
  EXPECT_THROW(expand_trials(s), SweepError);
}

TEST_F(SweepSpecTest, RandomDrawsRespectStepsLogAndConditions) {
  const auto trials = expand(kBase + R"([sweep]
method = "random"
trials = 300
[sweep.params]
"a" = { uniform = [0.1, 0.5], step = 0.1 }
"n" = { int = [1, 1000], log = true }
"k" = ["x", "y"]
"c" = { int = [2, 12], step = 2, when = { "k" = "y" } }
)");
  std::set<std::string> a_values;
  int small_n = 0;
  for (const auto& t : trials) {
    a_values.insert(t.point.at("a"));
    small_n += std::stoi(t.point.at("n")) <= 31 ? 1 : 0;  // half of the log range
    EXPECT_EQ(t.point.count("c"), t.point.at("k") == "y" ? 1U : 0U);
    if (t.point.count("c")) EXPECT_EQ(std::stoi(t.point.at("c")) % 2, 0);
  }
  EXPECT_EQ(a_values, (std::set<std::string>{"0.1", "0.2", "0.3", "0.4", "0.5"}));
  EXPECT_GT(small_n, 100);  // uniform over [1, 1000] would put 3% there
}

TEST_F(SweepSpecTest, GridSetsAConditionalParameterOnlyWhereItExists) {
  const auto trials = expand(kBase + R"([sweep]
[sweep.params]
"objective.plugin" = ["ijepa", "sigreg"]
"objective.params.lambda" = { choice = [0.02, 0.5], when = { "objective.plugin" = "sigreg" } }
)");
  ASSERT_EQ(trials.size(), 3U);
  EXPECT_EQ(trials[0].overrides, (std::vector<std::string>{"objective.plugin=ijepa", "run.seed=0"}));
  EXPECT_EQ(trials[1].overrides,
            (std::vector<std::string>{"objective.plugin=sigreg", "objective.params.lambda=0.02", "run.seed=0"}));
  EXPECT_EQ(trials[2].point.at("objective.params.lambda"), "0.5");
}

TEST_F(SweepSpecTest, EnqueuedPointsRunFirst) {
  const auto trials = expand(kBase + R"([sweep]
method = "random"
trials = 3
enqueue = [{ "optimization.lr" = 0.002, k = "y" }]
[sweep.params]
"optimization.lr" = { log_uniform = [1e-4, 1e-2] }
k = ["x", "y"]
)");
  ASSERT_EQ(trials.size(), 3U);
  EXPECT_EQ(trials[0].overrides, (std::vector<std::string>{"optimization.lr=0.002", "k=y", "run.seed=0"}));
}

TEST_F(SweepSpecTest, BadSpacesNameFileLineAndKey) {
  const auto err = [&](const std::string& params, const std::string& extra = "") {
    return error_of(kBase + "[sweep]\nmethod = \"tpe\"\ntrials = 4\nobjective = { metric = \"m\" }\n" + extra +
                    "[sweep.params]\n" + params + "\n");
  };
  const std::string at12 = at(12) + "1: [sweep.params] ";
  EXPECT_EQ(err("a = { uniform = [0, 1], step = 0.3 }"), at12 + "a: high - low = 1 is not a multiple of step 0.3");
  EXPECT_EQ(err("a = { uniform = [0, 1], step = 0 }"), at12 + "a: step expects a number > 0, got 0");
  EXPECT_EQ(err("a = { int = [1, 9], step = 1.5 }"), at12 + "a: an int's step is an integer");
  EXPECT_EQ(err("a = { log_uniform = [1, 9], step = 1 }"),
            at12 + "a: step applies to uniform and int; log_uniform has no step");
  EXPECT_EQ(err("a = { uniform = [1, 9], log = true }"),
            at12 + "a: a float on a log scale is { log_uniform = [low, high] }");
  EXPECT_EQ(err("a = { int = [0, 9], log = true }"), at12 + "a: log needs low >= 1, got 0");
  EXPECT_EQ(err("a = { int = [1, 9], step = 2, log = true }"),
            at12 + "a: log and step do not go together (log integers step by 1)");
  EXPECT_TRUE(starts_with(err("a = { uniform = [0, 1], when = { b = \"x\" } }"),
                          at12 + "a: when: b is not a parameter listed before it"));
  EXPECT_TRUE(starts_with(err("b = { uniform = [0, 1] }\na = { uniform = [0, 1], when = { b = 1 } }"),
                          at(13) + "1: [sweep.params] a: when: b is a uniform distribution"));
  EXPECT_EQ(err("b = [\"x\", \"y\"]\na = { uniform = [0, 1], when = { b = \"z\" } }"),
            at(13) + "1: [sweep.params] a: when: 'z' is not one of b's values (x, y)");
  EXPECT_TRUE(starts_with(err("a = { uniform = [0, 1], spread = 2 }"), at12 + "a: unknown distribution 'spread'"));
  // Keys of [sweep] itself.
  EXPECT_EQ(err("a = [1, 2]", "enqueue = [{ a = 3 }]\n"),
            at(11) + "1: [sweep] enqueue: point 1: a: '3' is not one of its values (1, 2)");
  EXPECT_EQ(err("a = [1, 2]\nb = { uniform = [0, 1], when = { a = 2 } }", "enqueue = [{ a = 1, b = 0.5 }]\n"),
            at(11) + "1: [sweep] enqueue: point 1: b does not exist here (a is not 2)");
  EXPECT_EQ(err("a = [1, 2]", "enqueue = [{ a = 1 }, { a = 2 }, { a = 1 }]\n"),
            at(11) + "1: [sweep] enqueue: point 3 repeats an earlier one");
  EXPECT_EQ(err("a = [1, 2]", "enqueue = [{ a = 1 }, { a = 2 }, {}, {}, {}]\n"),
            at(11) + "1: [sweep] enqueue: point 3: a is missing");
  EXPECT_TRUE(starts_with(error_of(kBase + "[sweep]\nobjective = { metric = \"m\", goal = \"max\" }\n"
                                           "[sweep.params]\na = [1, 2]\n"),
                          at(8) + "29: [sweep.objective] unknown key 'goal'"));
  EXPECT_EQ(err("a = [1, 2]", "warm_start = [\"sweep\"]\n"),
            at(11) + "1: [sweep] warm_start: a sweep cannot warm-start from itself");
  EXPECT_TRUE(
      starts_with(err("a = [1, 2]", "tpe = { startup = 3 }\n"), at(11) + "9: [sweep.tpe] unknown key 'startup'"));
  // Rules of the method.
  EXPECT_TRUE(starts_with(error_of(kBase + "[sweep]\nmethod = \"tpe\"\ntrials = 4\n[sweep.params]\na = [1, 2]\n"),
                          at(7) + "1: [sweep] objective: method = \"tpe\" needs the metric it optimises"));
  EXPECT_TRUE(starts_with(
      error_of(kBase + "[sweep]\nmethod = \"tpe\"\nobjective = { metric = \"m\" }\n[sweep.params]\na = [1, 2]\n"),
      at(7) + "1: [sweep] trials: method = \"tpe\" needs trials >= 1"));
  EXPECT_TRUE(starts_with(error_of(kBase + "[sweep]\nmethod = \"tpe\"\ntrials = 2\nobjective = { metric = \"m\" }\n"
                                           "launcher = \"slurm\"\n[sweep.params]\na = [1, 2]\n"),
                          at(7) + "1: [sweep] max_parallel: method = \"tpe\" with launcher = \"slurm\" needs"));
  EXPECT_EQ(error_of(kBase + "[sweep]\nenqueue = [{ a = 1 }]\n[sweep.params]\na = [1, 2]\n"),
            at(8) + "1: [sweep] enqueue: a grid runs every point already; enqueue is for random and tpe");
  EXPECT_EQ(error_of(kBase + "[sweep]\nmethod = \"random\"\ntrials = 1\nenqueue = [{ a = 1 }, { a = 2 }]\n"
                             "[sweep.params]\na = [1, 2]\n"),
            at(10) + "1: [sweep] enqueue: 2 enqueued points but trials = 1: enqueued points count toward trials");
  EXPECT_EQ(
      error_of(kBase + "[sweep]\nmethod = \"random\"\ntrials = 1\nwarm_start = [\"x\"]\n[sweep.params]\na = [1, 2]\n"),
      at(10) + "1: [sweep] warm_start: warm_start seeds a model of the history: it needs method = \"tpe\"");
}
