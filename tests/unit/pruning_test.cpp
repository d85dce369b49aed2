// Pruning rules over hand-built histories whose outcome is known by hand: every case sits next to
// a boundary (a median or a cutoff, warmup, min_trials, a rung) so a slip in the rule flips it.
#include "pruning/rules.hpp"

#include <gtest/gtest.h>

#include <limits>

namespace jepa::pruning {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

PruningSpec median_spec(bool maximize = false) {
  PruningSpec spec;
  spec.rule = "median";
  spec.metric = maximize ? "rankme/effective_rank" : "train/loss";
  spec.maximize = maximize;
  spec.warmup_steps = 0;
  spec.min_trials = 3;
  return spec;
}

PruningSpec asha_spec(bool maximize = false) {
  PruningSpec spec;
  spec.rule = "asha";
  spec.metric = maximize ? "rankme/effective_rank" : "train/loss";
  spec.maximize = maximize;
  spec.grace_steps = 100;
  spec.reduction = 3;
  return spec;
}

// Four losses whose best up to step 200 is 0.30, 0.32, 0.34, 0.36 (median 0.33); at step 300 they
// all improve far beyond that, which a rule looking past `step` would pick up.
std::vector<History> four_loss_trials() {
  return {
      {{100, 0.50}, {200, 0.30}, {300, 0.01}},
      {{100, 0.32}, {200, 0.40}, {300, 0.01}},
      {{100, 0.45}, {200, 0.34}, {300, 0.01}},
      {{100, 0.36}, {200, 0.38}, {300, 0.01}},
  };
}

TEST(PruningNone, NeverPrunes) {
  PruningSpec spec = median_spec();
  spec.rule = "none";
  EXPECT_FALSE(should_prune(spec, {{100, 9.0}, {200, 9.0}}, four_loss_trials(), 200));
  EXPECT_FALSE(should_prune(spec, {{100, 9.0}, {200, kNaN}}, four_loss_trials(), 200));
  spec.rule = "asha";
  EXPECT_TRUE(should_prune(spec, {{100, 0.5}, {200, kNaN}}, four_loss_trials(), 200));  // the same inputs do prune
}

TEST(PruningMedian, PrunesClearlyWorseTrialMin) {
  const auto reason = should_prune(median_spec(), {{100, 0.50}, {200, 0.41}}, four_loss_trials(), 200);
  ASSERT_TRUE(reason);
  EXPECT_EQ(*reason,
            "median rule on train/loss at step 200: best 0.41 is worse than the median 0.33 of 4 other trials");
}

TEST(PruningMedian, KeepsBetterTrialMin) {
  EXPECT_FALSE(should_prune(median_spec(), {{100, 0.50}, {200, 0.32}}, four_loss_trials(), 200));
  // Its best so far counts, not its latest value.
  EXPECT_FALSE(should_prune(median_spec(), {{100, 0.31}, {200, 0.60}}, four_loss_trials(), 200));
  EXPECT_TRUE(should_prune(median_spec(), {{100, 0.34}, {200, 0.60}}, four_loss_trials(), 200));
}

TEST(PruningMedian, MaxMode) {
  // Bests up to step 200: 10, 12, 14, 16 (median 13); the step-300 values must not count.
  const std::vector<History> others = {
      {{100, 10.0}, {200, 9.0}, {300, 99.0}},
      {{100, 5.0}, {200, 12.0}, {300, 99.0}},
      {{100, 14.0}, {200, 13.0}, {300, 99.0}},
      {{100, 16.0}, {200, 1.0}, {300, 99.0}},
  };
  const auto reason = should_prune(median_spec(true), {{100, 11.0}, {200, 12.1}}, others, 200);
  ASSERT_TRUE(reason);
  EXPECT_EQ(*reason,
            "median rule on rankme/effective_rank at step 200: best 12.1 is worse than the median 13 of 4 other "
            "trials");
  EXPECT_FALSE(should_prune(median_spec(true), {{100, 11.0}, {200, 13.5}}, others, 200));
  EXPECT_FALSE(should_prune(median_spec(true), {{100, 14.0}, {200, 2.0}}, others, 200));  // best so far 14
}

TEST(PruningMedian, RespectsWarmup) {
  PruningSpec spec = median_spec();
  spec.warmup_steps = 300;
  const History mine = {{100, 0.9}, {200, 0.9}, {300, 0.9}};
  EXPECT_FALSE(should_prune(spec, mine, four_loss_trials(), 200));
  EXPECT_TRUE(should_prune(spec, mine, four_loss_trials(), 300));  // warmup_steps itself is past warmup
}

TEST(PruningMedian, RespectsMinTrials) {
  PruningSpec spec = median_spec();
  const History mine = {{100, 0.50}, {200, 0.41}};
  spec.min_trials = 5;
  EXPECT_FALSE(should_prune(spec, mine, four_loss_trials(), 200));
  spec.min_trials = 4;
  EXPECT_TRUE(should_prune(spec, mine, four_loss_trials(), 200));
  spec.min_trials = 0;  // still needs one other to have a median
  EXPECT_FALSE(should_prune(spec, mine, {}, 200));
  EXPECT_TRUE(should_prune(spec, mine, {{{100, 0.2}, {200, 0.2}}}, 200));
}

TEST(PruningMedian, IgnoresOthersThatDidNotReachStep) {
  std::vector<History> others = four_loss_trials();
  // Three that stopped at step 100 with poor losses: counted, they would lift the median to 0.36.
  others.push_back({{100, 0.90}});
  others.push_back({{100, 0.95}});
  others.push_back({{100, 0.99}});
  others.push_back({{300, 0.01}});  // reported only after `step`: nothing to compare yet
  const History mine = {{100, 0.50}, {200, 0.35}};
  const auto reason = should_prune(median_spec(), mine, others, 200);
  ASSERT_TRUE(reason);
  EXPECT_NE(reason->find("median 0.33 of 4 other trials"), std::string::npos) << *reason;
}

TEST(PruningMedian, OtherReportingPastStepCountsEvenWithoutExactStep) {
  // Reached step 200 without logging at exactly 200: counts, with its best up to 200 (0.31).
  std::vector<History> others = {
      {{100, 0.31}, {300, 0.01}},
      {{100, 0.50}, {200, 0.33}},
  };
  PruningSpec spec = median_spec();
  spec.min_trials = 2;
  const auto reason = should_prune(spec, {{100, 0.50}, {200, 0.40}}, others, 200);
  ASSERT_TRUE(reason);
  EXPECT_NE(reason->find("median 0.32 of 2 other trials"), std::string::npos) << *reason;
}

TEST(PruningMedian, EqualToMedianContinues) {
  const std::vector<History> min_others = {{{200, 0.30}}, {{200, 0.33}}, {{200, 0.36}}};
  EXPECT_FALSE(should_prune(median_spec(), {{200, 0.33}}, min_others, 200));
  EXPECT_TRUE(should_prune(median_spec(), {{200, 0.3300001}}, min_others, 200));
  const std::vector<History> max_others = {{{200, 10.0}}, {{200, 13.0}}, {{200, 16.0}}};
  EXPECT_FALSE(should_prune(median_spec(true), {{200, 13.0}}, max_others, 200));
  EXPECT_TRUE(should_prune(median_spec(true), {{200, 12.9999}}, max_others, 200));
}

TEST(PruningMedian, NonFiniteLatestValuePrunes) {
  PruningSpec spec = median_spec();
  const auto reason = should_prune(spec, {{100, 0.2}, {200, kNaN}}, {}, 200);  // no others needed
  ASSERT_TRUE(reason);
  EXPECT_EQ(*reason, "median rule on train/loss at step 200: the value nan is non-finite (the trial diverged)");
  EXPECT_TRUE(should_prune(spec, {{100, 0.2}, {200, kInf}}, {}, 200));
  EXPECT_TRUE(should_prune(median_spec(true), {{100, 2.0}, {200, kInf}}, {}, 200));  // inf is no win in max mode
  spec.warmup_steps = 300;
  EXPECT_FALSE(should_prune(spec, {{100, 0.2}, {200, kNaN}}, {}, 200));
  // An earlier NaN that recovered is no reason; its best is over the finite values.
  EXPECT_FALSE(should_prune(median_spec(), {{100, kNaN}, {200, 0.31}}, four_loss_trials(), 200));
}

TEST(PruningMedian, IgnoresNaNValuesOfOthers) {
  const std::vector<History> others = {
      {{100, 0.30}, {200, kNaN}},  // best 0.30 from its finite value
      {{100, 0.32}, {200, 0.32}},
      {{100, kNaN}, {200, kNaN}},  // nothing finite: not counted
      {{100, 0.34}, {200, 0.34}},
  };
  const auto reason = should_prune(median_spec(), {{100, 0.5}, {200, 0.33}}, others, 200);
  ASSERT_TRUE(reason);
  EXPECT_NE(reason->find("median 0.32 of 3 other trials"), std::string::npos) << *reason;
  EXPECT_FALSE(should_prune(median_spec(), {{100, 0.5}, {200, 0.32}}, others, 200));
}

// Six trials logging every 50 steps; the values at rung 100 are 20.5, 25, 12.1, 8, 3, 15 (max mode).
// Their step-150 values reverse the order, so a rule that looked past the rung would differ.
std::vector<History> six_rank_trials() {
  const double at_rung[] = {20.5, 25.0, 12.1, 8.0, 3.0, 15.0};
  std::vector<History> trials;
  for (double v : at_rung) trials.push_back({{50, 1.0}, {100, v}, {150, 100.0 - v}});
  return trials;
}

// Trial i as `mine` with its history up to `step`, the other five (full histories) as others.
std::optional<std::string> asha_as(size_t i, const PruningSpec& spec, int64_t step) {
  std::vector<History> trials = six_rank_trials();
  History mine(trials[i].begin(), trials[i].upper_bound(step));
  trials.erase(trials.begin() + static_cast<std::ptrdiff_t>(i));
  return should_prune(spec, mine, trials, step);
}

TEST(PruningAsha, KeepsTopThirdAtRungMax) {
  const PruningSpec spec = asha_spec(true);
  EXPECT_FALSE(asha_as(0, spec, 100));  // 20.5
  EXPECT_FALSE(asha_as(1, spec, 100));  // 25
  for (size_t i : {2u, 3u, 4u, 5u}) EXPECT_TRUE(asha_as(i, spec, 100)) << i;
  EXPECT_EQ(*asha_as(2, spec, 100),
            "asha on rankme/effective_rank at rung 100 (step 100): 12.1 is outside the top 2 of 6 (cutoff 20.5)");
}

TEST(PruningAsha, KeepsTopThirdAtRungMin) {
  // The same values as losses: now 3 and 8 are the top 2.
  const PruningSpec spec = asha_spec(false);
  EXPECT_FALSE(asha_as(3, spec, 100));
  EXPECT_FALSE(asha_as(4, spec, 100));
  for (size_t i : {0u, 1u, 2u, 5u}) EXPECT_TRUE(asha_as(i, spec, 100)) << i;
  EXPECT_EQ(*asha_as(5, spec, 100),
            "asha on train/loss at rung 100 (step 100): 15 is outside the top 2 of 6 (cutoff 8)");
}

TEST(PruningAsha, RungValueIsTheValueAtTheRungNotTheBestSoFar) {
  // Its best so far (30 at step 50) would lead the six; its value at the rung (12.1) does not.
  const PruningSpec spec = asha_spec(true);
  std::vector<History> others = six_rank_trials();
  others.erase(others.begin() + 2);
  EXPECT_TRUE(should_prune(spec, {{50, 30.0}, {100, 12.1}}, others, 100));
  EXPECT_FALSE(should_prune(spec, {{50, 1.0}, {100, 30.0}}, others, 100));
}

TEST(PruningAsha, NoDecisionBetweenRungs) {
  const PruningSpec spec = asha_spec(true);
  const History mine = {{50, 0.0}, {100, 25.0}, {150, 0.0}, {200, 0.0}, {250, 0.0}};
  const std::vector<History> others(5, History{{50, 30.0}, {100, 30.0}, {150, 30.0}, {200, 30.0}, {250, 30.0}});
  EXPECT_FALSE(should_prune(spec, mine, others, 50));  // before the first rung
  EXPECT_FALSE(should_prune(spec, mine, others, 150));
  EXPECT_FALSE(should_prune(spec, mine, others, 250));
  EXPECT_TRUE(should_prune(spec, mine, others, 100));  // the same trial at its rung
}

TEST(PruningAsha, RungMetAtFirstReportedStepPastIt) {
  // Logging every 40 steps: rung 100 is met at step 120, the value there is the rung value.
  const PruningSpec spec = asha_spec(false);
  const std::vector<History> others = {
      {{40, 1.0}, {80, 0.9}, {120, 0.5}},
      {{40, 1.0}, {80, 0.9}, {120, 0.6}},
  };
  const History mine = {{40, 1.0}, {80, 0.1}, {120, 0.7}};
  EXPECT_FALSE(should_prune(spec, mine, others, 80));
  const auto reason = should_prune(spec, mine, others, 120);
  ASSERT_TRUE(reason);
  EXPECT_EQ(*reason, "asha on train/loss at rung 100 (step 120): 0.7 is outside the top 1 of 3 (cutoff 0.5)");
  EXPECT_FALSE(should_prune(spec, {{40, 1.0}, {80, 0.1}, {120, 0.7}, {160, 0.9}}, others, 160));  // met already
}

TEST(PruningAsha, FewerThanReductionContinues) {
  const PruningSpec spec = asha_spec(false);
  const History mine = {{100, 0.9}};
  EXPECT_FALSE(should_prune(spec, mine, {{{100, 0.1}}}, 100));
  EXPECT_FALSE(should_prune(spec, mine, {{{100, 0.1}}, {{50, 0.1}}}, 100));  // one has not reached the rung
  EXPECT_TRUE(should_prune(spec, mine, {{{100, 0.1}}, {{100, 0.2}}}, 100));  // n = 3 keeps 1
}

TEST(PruningAsha, TieAtCutoffContinues) {
  const PruningSpec spec = asha_spec(false);
  const std::vector<History> others = {{{100, 0.1}}, {{100, 0.2}}, {{100, 0.3}}, {{100, 0.4}}, {{100, 0.5}}};
  EXPECT_FALSE(should_prune(spec, {{100, 0.2}}, others, 100));
  EXPECT_TRUE(should_prune(spec, {{100, 0.2000001}}, others, 100));
}

TEST(PruningAsha, SecondRung) {
  const PruningSpec spec = asha_spec(false);
  // Rung 300: three others reached it (n = 4, top 2 go on); two stopped at rung 100.
  const std::vector<History> others = {
      {{100, 0.50}, {200, 0.40}, {300, 0.20}},
      {{100, 0.50}, {200, 0.40}, {300, 0.30}, {400, 0.01}},
      {{100, 0.50}, {200, 0.40}, {300, 0.40}},
      {{100, 0.90}},
      {{100, 0.95}},
  };
  const History second = {{100, 0.1}, {200, 0.1}, {300, 0.25}};
  const History third = {{100, 0.1}, {200, 0.1}, {300, 0.35}};
  EXPECT_FALSE(should_prune(spec, second, others, 300));
  const auto reason = should_prune(spec, third, others, 300);
  ASSERT_TRUE(reason);
  EXPECT_EQ(*reason, "asha on train/loss at rung 300 (step 300): 0.35 is outside the top 2 of 4 (cutoff 0.3)");
  EXPECT_FALSE(should_prune(spec, third, others, 200));  // between rungs 100 and 300
}

TEST(PruningAsha, SparseLogCrossingTwoRungsChecksBoth) {
  // Steps 0 and 400 cross rungs 100 and 300 at once. Rung 100: seven trials, top 3 go on (0.1,
  // 0.12, 0.15); rung 300: only two others reached it, three trials, top 1 goes on.
  const PruningSpec spec = asha_spec(false);
  std::vector<History> others = {{{0, 1.0}, {400, 0.1}}, {{0, 1.0}, {400, 0.12}}};
  for (int i = 0; i < 4; ++i) others.push_back({{0, 1.0}, {200, 0.5}});
  auto reason = should_prune(spec, {{0, 1.0}, {400, 0.15}}, others, 400);
  ASSERT_TRUE(reason);
  EXPECT_EQ(*reason, "asha on train/loss at rung 300 (step 400): 0.15 is outside the top 1 of 3 (cutoff 0.1)");
  reason = should_prune(spec, {{0, 1.0}, {400, 0.55}}, others, 400);  // fails the lower rung first
  ASSERT_TRUE(reason);
  EXPECT_EQ(*reason, "asha on train/loss at rung 100 (step 400): 0.55 is outside the top 3 of 7 (cutoff 0.5)");
}

TEST(PruningAsha, NonFiniteValues) {
  const PruningSpec spec = asha_spec(false);
  // Its own NaN prunes at once, between rungs too.
  const auto reason = should_prune(spec, {{100, 0.1}, {150, kNaN}}, {}, 150);
  ASSERT_TRUE(reason);
  EXPECT_EQ(*reason, "asha on train/loss at step 150: the value nan is non-finite (the trial diverged)");
  // Others' NaN rung values count among the n trials at the rung and rank last.
  EXPECT_TRUE(should_prune(spec, {{100, 0.5}}, {{{100, 0.4}}, {{100, kNaN}}}, 100));  // n = 3 keeps 1
  EXPECT_FALSE(should_prune(spec, {{100, 0.5}}, {{{100, kNaN}}, {{100, kNaN}}}, 100));
  const std::vector<History> mostly_nan = {{{100, 0.4}}, {{100, kNaN}}, {{100, kNaN}}, {{100, kNaN}}, {{100, kNaN}}};
  EXPECT_FALSE(should_prune(spec, {{100, 0.6}}, mostly_nan, 100));  // second of six finite-first
}

}  // namespace
}  // namespace jepa::pruning
