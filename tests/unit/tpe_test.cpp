// The TPE sampler: Optuna's Parzen estimator numbers (golden values from Optuna's own tests),
// its weights and split, determinism, the random start-up, the constant liar, conditional
// spaces, values on their grids, and that it finds better points than random search.
#include "sweep/tpe.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

using jepa::sweep::Distribution;
using jepa::sweep::Observation;
using jepa::sweep::Param;
using jepa::sweep::Point;
using jepa::sweep::TpeOptions;

namespace {

Distribution uniform(double lo, double hi, double step = 0.0) {
  Distribution d;
  d.kind = Distribution::Kind::uniform;
  d.low = lo;
  d.high = hi;
  d.step = step;
  return d;
}

Distribution int_range(double lo, double hi, bool log = false, double step = 0.0) {
  Distribution d;
  d.kind = Distribution::Kind::int_range;
  d.low = lo;
  d.high = hi;
  d.log = log;
  d.step = step;
  return d;
}

Distribution choice(std::vector<std::string> values) {
  Distribution d;
  d.choices = std::move(values);
  return d;
}

double num(const Point& p, const std::string& key) {
  return std::strtod(p.at(key).c_str(), nullptr);
}

double branin(double x1, double x2) {
  const double pi = M_PI;
  const double t = x2 - 5.1 * x1 * x1 / (4 * pi * pi) + 5 * x1 / pi - 6;
  return t * t + 10 * (1 - 1 / (8 * pi)) * std::cos(x1) + 10;
}

// Best value after `n` sequential proposals of TPE (or random search) on Branin.
double best_on_branin(bool tpe, uint64_t seed, int n) {
  const std::vector<Param> space{{"x1", uniform(-5, 10)}, {"x2", uniform(0, 15)}};
  std::vector<Observation> history;
  double best = 1e300;
  for (int t = 0; t < n; ++t) {
    const uint64_t s = jepa::sweep::derived_seed(seed, static_cast<uint64_t>(t));
    Point p;
    if (tpe) {
      p = jepa::sweep::propose_tpe(space, history, s);
    } else {
      std::mt19937_64 rng(s);
      p = jepa::sweep::draw_point(space, rng);
    }
    const double v = branin(num(p, "x1"), num(p, "x2"));
    best = std::min(best, v);
    history.push_back({p, Observation::State::complete, v});
  }
  return best;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

// Optuna's tests/samplers_tests/tpe_tests/test_parzen_estimator.py, Float[-1, 1], prior weight 1,
// endpoints off (Optuna's default): the bandwidths of each observation set.
TEST(Tpe, ParzenEstimatorMatchesOptunasGoldenValues) {
  using jepa::sweep::tpe_parzen_dimension;
  {
    const auto pd = tpe_parzen_dimension({}, {}, -1, 1, false);
    EXPECT_EQ(pd.mu, std::vector<double>({0.0}));
    EXPECT_EQ(pd.sigma, std::vector<double>({2.0}));
    EXPECT_EQ(pd.weights, std::vector<double>({1.0}));
  }
  {
    const auto pd = tpe_parzen_dimension({0.4}, {1.0}, -1, 1, false);
    EXPECT_DOUBLE_EQ(pd.sigma[0], 1.4);  // one observation: the bounds count
    EXPECT_DOUBLE_EQ(pd.sigma[1], 2.0);
    EXPECT_DOUBLE_EQ(pd.weights[0], 0.5);
    EXPECT_DOUBLE_EQ(pd.mu[1], 0.0);
  }
  {
    const auto pd = tpe_parzen_dimension({-0.3, 0.3}, {1.0, 1.0}, -1, 1, false);
    EXPECT_NEAR(pd.sigma[0], 0.6, 1e-12);
    EXPECT_NEAR(pd.sigma[1], 0.6, 1e-12);
    EXPECT_NEAR(pd.weights[2], 1.0 / 3, 1e-15);
  }
  {
    // Endpoints off: the outer kernels see only their inner neighbour; the magic clip raises
    // every bandwidth to (high - low) / min(100, m + 2) = 1/3.
    const auto raw = tpe_parzen_dimension({-0.4, 0.4, 0.41, 0.42}, {1, 1, 1, 1}, -1, 1, false);
    EXPECT_NEAR(raw.sigma[0], 0.8, 1e-12);
    EXPECT_NEAR(raw.sigma[1], 0.8, 1e-12);
    EXPECT_NEAR(raw.sigma[2], 0.01, 1e-12);
    EXPECT_NEAR(raw.sigma[3], 0.01, 1e-12);
    const auto clipped = tpe_parzen_dimension({-0.4, 0.4, 0.41, 0.42}, {1, 1, 1, 1}, -1, 1, true);
    EXPECT_NEAR(clipped.sigma[0], 0.8, 1e-12);
    EXPECT_NEAR(clipped.sigma[2], 1.0 / 3, 1e-12);
    EXPECT_NEAR(clipped.sigma[3], 1.0 / 3, 1e-12);
    EXPECT_DOUBLE_EQ(clipped.sigma[4], 2.0);
    for (double w : clipped.weights) EXPECT_DOUBLE_EQ(w, 0.2);
  }
  {
    // Mixed spaces of the same file, one observation at 1: Int[1, 100] (adapted [0.5, 100.5]),
    // Float[1, 100] step 3 (adapted [-0.5, 101.5]), Int[1, 100] log (adapted [ln 0.5, ln 100.5]).
    EXPECT_DOUBLE_EQ(tpe_parzen_dimension({1}, {1}, 0.5, 100.5, false).sigma[0], 99.5);
    EXPECT_DOUBLE_EQ(tpe_parzen_dimension({1}, {1}, -0.5, 101.5, false).sigma[0], 100.5);
    const auto log_int = tpe_parzen_dimension({0.0}, {1}, std::log(0.5), std::log(100.5), false);
    EXPECT_NEAR(log_int.sigma[0], std::log(100.5), 1e-12);
    EXPECT_NEAR(log_int.sigma[1], std::log(100.5) - std::log(0.5), 1e-12);
    EXPECT_NEAR(log_int.mu[1], (std::log(100.5) + std::log(0.5)) / 2, 1e-12);
  }
}

TEST(Tpe, DefaultWeightsRampTheOldestBeyondTwentyFive) {
  using jepa::sweep::tpe_default_weights;
  EXPECT_TRUE(tpe_default_weights(0).empty());
  EXPECT_EQ(tpe_default_weights(24), std::vector<double>(24, 1.0));
  const auto w = tpe_default_weights(30);  // linspace(1/30, 1, 5), then 25 ones
  ASSERT_EQ(w.size(), 30U);
  EXPECT_DOUBLE_EQ(w[0], 1.0 / 30);
  EXPECT_NEAR(w[2], (1.0 / 30 + 1.0) / 2, 1e-15);
  EXPECT_DOUBLE_EQ(w[4], 1.0);
  for (size_t i = 5; i < 30; ++i) EXPECT_EQ(w[i], 1.0);
}

TEST(Tpe, NormalQuantileInvertsTheCdf) {
  for (double p : {1e-12, 1e-6, 0.01, 0.02425, 0.1, 0.5, 0.77, 0.97575, 0.999, 1 - 1e-9}) {
    const double x = jepa::sweep::normal_quantile(p);
    EXPECT_NEAR(jepa::sweep::normal_cdf(x), p, 1e-14 + 1e-12 * p) << p;
  }
  EXPECT_NEAR(jepa::sweep::normal_quantile(0.975), 1.959963984540054, 1e-12);
}

// gamma(20) = 2 good observations: the one complete trial, then the pruned trial that got
// furthest, whatever its value; running ones are bad only with the constant liar.
TEST(Tpe, SplitFillsTheGoodSetWithPrunedTrialsByHowFarTheyGot) {
  std::vector<Observation> h;
  h.push_back({{}, Observation::State::complete, 5.0});
  for (int i = 0; i < 19; ++i) h.push_back({{}, Observation::State::pruned, 1.0 - 0.01 * i, 100});
  h[7].step = 300;  // further than every other pruned trial, with a worse value than most
  h[7].value = 9.0;
  h.push_back({{}, Observation::State::running, 0.0});
  std::vector<const Observation*> obs;
  for (const auto& o : h) obs.push_back(&o);
  std::vector<size_t> below, above;
  jepa::sweep::tpe_split(obs, true, below, above);
  EXPECT_EQ(below, std::vector<size_t>({0, 7}));
  EXPECT_EQ(above.size(), 19U);
  EXPECT_EQ(above.back(), 20U);  // the running one
  below.clear();
  above.clear();
  jepa::sweep::tpe_split(obs, false, below, above);
  EXPECT_EQ(above.size(), 18U);
}

TEST(Tpe, StartupIsRandomSearchAndRunningTrialsDoNotCount) {
  const std::vector<Param> space{{"x", uniform(0, 1)}, {"k", choice({"a", "b", "c"})}};
  std::vector<Observation> h;
  for (int i = 0; i < 9; ++i) h.push_back({{{"x", "0.5"}, {"k", "a"}}, Observation::State::complete, 1.0});
  for (int i = 0; i < 5; ++i) h.push_back({{{"x", "0.5"}, {"k", "a"}}, Observation::State::running, 0.0});
  std::mt19937_64 rng(42);
  EXPECT_EQ(jepa::sweep::propose_tpe(space, h, 42), jepa::sweep::draw_point(space, rng));
  h.push_back({{{"x", "0.5"}, {"k", "a"}}, Observation::State::pruned, 1.0, 10});
  std::mt19937_64 again(42);
  EXPECT_NE(jepa::sweep::propose_tpe(space, h, 42), jepa::sweep::draw_point(space, again));
}

TEST(Tpe, ProposalsAreAFunctionOfSpaceHistoryAndSeed) {
  const std::vector<Param> space{{"x1", uniform(-5, 10)}, {"x2", uniform(0, 15)}};
  std::vector<Observation> h;
  std::mt19937_64 rng(7);
  for (int i = 0; i < 30; ++i) {
    Point p = jepa::sweep::draw_point(space, rng);
    h.push_back({p, Observation::State::complete, branin(num(p, "x1"), num(p, "x2"))});
  }
  const Point a = jepa::sweep::propose_tpe(space, h, 123);
  EXPECT_EQ(jepa::sweep::propose_tpe(space, h, 123), a);
  EXPECT_NE(jepa::sweep::propose_tpe(space, h, 124), a);
  h[3].value += 100;  // the history changed: so may the proposal
  h[5].value -= 100;
  EXPECT_NE(jepa::sweep::propose_tpe(space, h, 123), a);
}

// Two slots asking with the same seed: without the liar the second would get the first's point.
TEST(Tpe, ConstantLiarKeepsParallelProposalsApart) {
  const std::vector<Param> space{{"x1", uniform(-5, 10)}, {"x2", uniform(0, 15)}};
  std::vector<Observation> h;
  std::mt19937_64 rng(3);
  for (int i = 0; i < 20; ++i) {
    Point p = jepa::sweep::draw_point(space, rng);
    h.push_back({p, Observation::State::complete, branin(num(p, "x1"), num(p, "x2"))});
  }
  const Point first = jepa::sweep::propose_tpe(space, h, 99);
  h.push_back({first, Observation::State::running, 0.0});
  EXPECT_NE(jepa::sweep::propose_tpe(space, h, 99), first);
  TpeOptions no_liar;
  no_liar.constant_liar = false;
  EXPECT_EQ(jepa::sweep::propose_tpe(space, h, 99, no_liar), first);
}

TEST(Tpe, ConditionalParametersExistOnlyUnderTheirCondition) {
  Distribution lambda = uniform(0.01, 1.0);
  lambda.when = jepa::sweep::Condition{"objective", {"sigreg"}};
  const std::vector<Param> space{
      {"objective", choice({"ijepa", "sigreg"})}, {"lambda", lambda}, {"lr", uniform(1e-4, 1e-2)}};
  std::vector<Observation> h;
  int with_lambda = 0;
  for (int t = 0; t < 60; ++t) {
    const Point p = jepa::sweep::propose_tpe(space, h, jepa::sweep::derived_seed(5, t));
    ASSERT_EQ(jepa::sweep::point_problem(space, p), "") << t;
    // sigreg is better near lambda 0.3; ijepa is mediocre everywhere.
    const double v =
        p.at("objective") == "sigreg" ? std::fabs(num(p, "lambda") - 0.3) : 0.5 + std::fabs(num(p, "lr") - 0.005);
    with_lambda += p.count("lambda") != 0 ? 1 : 0;
    h.push_back({p, Observation::State::complete, v});
  }
  EXPECT_GT(with_lambda, 30);  // TPE learnt that sigreg is the better branch
  double best = 1e9;
  for (const auto& o : h) best = std::min(best, o.value);
  EXPECT_LT(best, 0.02);
}

TEST(Tpe, DiscreteAndLogValuesStayOnTheirGrids) {
  const std::vector<Param> space{{"a", uniform(0.1, 0.9, 0.1)},
                                 {"n", int_range(1, 1024, true)},
                                 {"d", int_range(2, 12, false, 2)},
                                 {"k", choice({"x", "y"})}};
  std::vector<Observation> h;
  for (int t = 0; t < 40; ++t) {
    const Point p = jepa::sweep::propose_tpe(space, h, jepa::sweep::derived_seed(11, t));
    ASSERT_EQ(jepa::sweep::point_problem(space, p), "") << t;
    EXPECT_LE(p.at("a").size(), 3U) << p.at("a");  // "0.3", never "0.30000000000000004"
    const double v = std::fabs(num(p, "a") - 0.7) + std::fabs(std::log(num(p, "n") / 100)) + num(p, "d") / 12 +
                     (p.at("k") == "y" ? 0 : 1);
    h.push_back({p, Observation::State::complete, v});
  }
  const auto best = std::min_element(h.begin(), h.end(), [](auto& x, auto& y) { return x.value < y.value; });
  EXPECT_EQ(best->point.at("k"), "y");
}

// A value the space no longer allows (a warm start from a wider space) is left out, not an error.
TEST(Tpe, ObservationsOutsideTheSpaceAreLeftOut) {
  const std::vector<Param> space{{"x", uniform(0, 1)}};
  std::vector<Observation> h;
  for (int i = 0; i < 20; ++i) h.push_back({{{"x", "5"}}, Observation::State::complete, -100.0});
  for (int i = 0; i < 10; ++i) {
    h.push_back({{{"x", std::to_string(0.1 * i)}}, Observation::State::complete, std::fabs(0.1 * i - 0.2)});
  }
  const Point p = jepa::sweep::propose_tpe(space, h, 1);
  EXPECT_EQ(jepa::sweep::point_problem(space, p), "");
}

// Over 20 seeds, 60 trials each: TPE's median best on Branin beats random search's (measured
// once: TPE 0.52, random 1.21; optimum 0.398).
TEST(Tpe, FindsBetterPointsThanRandomSearchOnBranin) {
  std::vector<double> tpe, random;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    tpe.push_back(best_on_branin(true, seed, 60));
    random.push_back(best_on_branin(false, seed, 60));
  }
  EXPECT_LT(median(tpe), median(random));
  EXPECT_LT(median(tpe) - 0.397887, 0.6 * (median(random) - 0.397887));
}
