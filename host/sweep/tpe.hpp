// The Tree-structured Parzen Estimator (Bergstra et al. 2011) as Optuna 5 runs it by default:
// multivariate, constant liar, Optuna's neighbour bandwidths with the "magic clip", a prior
// kernel of weight 1, gamma(n) = min(ceil(n / 10), 25), Optuna's default weights, 24 candidates
// drawn from l(x) and the one with the largest log l(x) - log g(x) kept, and 10 random start-up
// points counted over finished (complete or pruned) observations.
//
// A proposal is a pure function of the space, the history and a seed: nothing is kept between
// proposals, so a sweep resumed after a crash proposes exactly what it would have without one.
//
// Conditional parameters: the parameters that exist under the same conditions form a group
// (Optuna's `group=True`); each group is sampled in turn, over the observations that have it,
// after the groups that decide whether it exists.
#pragma once

#include "sweep/space.hpp"

#include <cstdint>
#include <vector>

namespace jepa::sweep {

struct Observation {
  enum class State { complete, pruned, running };
  Point point;
  State state = State::complete;
  // Lower is better (a maximised objective is negated). complete: the objective; pruned: the last
  // value of the pruning metric, with `step` its step (no value: has_value false, ranks last).
  double value = 0.0;
  int64_t step = 0;
  bool has_value = true;
};

struct TpeOptions {
  int64_t startup_trials = 10;  // random points until this many observations are complete or pruned
  int64_t candidates = 24;      // drawn from l(x) per proposal
  bool multivariate = true;     // one joint density per group; false: one per parameter (Optuna 4)
  bool constant_liar = true;    // running observations count as bad ones, so parallel slots spread
  double prior_weight = 1.0;
};

// The next point. `history` is in trial order (warm-start observations first); observations of
// points outside `space` (a value no longer allowed) are left out of the densities.
Point propose_tpe(const std::vector<Param>& space, const std::vector<Observation>& history, uint64_t seed,
                  const TpeOptions& options = {});

// ---------------------------------------------------------------- exposed for tests

// Optuna's _split_trials: indices (into `obs`, in trial order) of the good ("below") and the bad
// ("above") observations.
void tpe_split(const std::vector<const Observation*>& obs, bool constant_liar, std::vector<size_t>& below,
               std::vector<size_t>& above);

// Optuna's default_weights(n): all 1 below 25; beyond, the oldest n - 25 ramp from 1/n to 1.
std::vector<double> tpe_default_weights(int64_t n);

// The 1-D Parzen estimator of one numerical dimension on its adapted interval [lo, hi]: the
// kernels' centres and bandwidths for `observations` (internal values: log for log kinds) with
// the prior kernel last; mixture weights normalised with the prior's weight.
struct ParzenDimension {
  std::vector<double> mu;
  std::vector<double> sigma;
  std::vector<double> weights;
};
ParzenDimension tpe_parzen_dimension(const std::vector<double>& observations, const std::vector<double>& weights,
                                     double lo, double hi, bool magic_clip = true, double prior_weight = 1.0);

// The standard normal's CDF and its inverse (Acklam's approximation polished by one Halley step:
// relative error ~1e-15).
double normal_cdf(double x);
double normal_quantile(double p);

}  // namespace jepa::sweep
