// TPE, following Optuna's sampler (optuna/samplers/_tpe: sampler.py, parzen_estimator.py,
// probability_distributions.py, _truncnorm.py) as ../shared/SEARCH_REFERENCE.md §2 describes it;
// the numbers (gamma, weights, bandwidths, clip, prior) are Optuna 5's defaults.
#include "sweep/tpe.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace jepa::sweep {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kLogTiny = -745.0;  // log of the smallest positive double: a floor for log(0)

double safe_log(double v) {
  return v > 0 ? std::log(v) : kLogTiny;
}

// Phi(hi) - Phi(lo) without cancellation: in the upper tail through the complementary CDF.
double normal_mass(double lo, double hi) {
  if (lo >= 0) return 0.5 * (std::erfc(lo / std::sqrt(2.0)) - std::erfc(hi / std::sqrt(2.0)));
  return normal_cdf(hi) - normal_cdf(lo);
}

// A draw from the standard normal truncated to [a, b] by inverse CDF; mirrored when the
// interval lies in the upper tail, where Phi rounds to 1.
double truncated_normal(double a, double b, double u) {
  if (a > 0) return -truncated_normal(-b, -a, 1.0 - u);
  const double pa = normal_cdf(a);
  const double pb = normal_cdf(b);
  const double p = pa + u * (pb - pa);
  double x = normal_quantile(std::clamp(p, std::numeric_limits<double>::min(), 1.0 - 1e-16));
  return std::clamp(x, a, b);
}

// One parameter as TPE sees it: categorical (choice index) or numerical on the adapted interval
// [lo, hi] (log space for log kinds; discrete ones widened by half a step on each side).
struct Dim {
  std::string key;
  const Distribution* d = nullptr;
  bool categorical = false;
  bool log = false;
  bool discrete = false;
  double step = 0.0;  // discrete, in value space (log int: 1)
  double lo = 0.0;
  double hi = 0.0;
  int64_t choices = 0;
};

Dim make_dim(const std::string& key, const Distribution& d) {
  Dim m;
  m.key = key;
  m.d = &d;
  switch (d.kind) {
    case Distribution::Kind::choice:
      m.categorical = true;
      m.choices = static_cast<int64_t>(d.choices.size());
      break;
    case Distribution::Kind::uniform:
      m.discrete = d.step > 0;
      m.step = d.step;
      m.lo = d.low - m.step / 2;
      m.hi = d.low + static_cast<double>(value_count(d) - 1) * d.step + m.step / 2;
      if (!m.discrete) {
        m.lo = d.low;
        m.hi = d.high;
      }
      break;
    case Distribution::Kind::log_uniform:
      m.log = true;
      m.lo = std::log(d.low);
      m.hi = std::log(d.high);
      break;
    case Distribution::Kind::int_range:
      m.discrete = true;
      m.step = d.step > 0 ? d.step : 1.0;
      if (d.log) {
        m.log = true;
        m.lo = std::log(d.low - 0.5);
        m.hi = std::log(d.high + 0.5);
      } else {
        m.lo = d.low - m.step / 2;
        m.hi = d.low + static_cast<double>(value_count(d) - 1) * m.step + m.step / 2;
      }
      break;
  }
  return m;
}

// The internal value of a point's text, or NaN when it is not a value of the distribution.
double encode(const Dim& m, const std::string& text) {
  if (!value_problem(*m.d, text).empty()) return std::numeric_limits<double>::quiet_NaN();
  if (m.categorical) return static_cast<double>(*index_of(*m.d, text));
  const double x = std::strtod(text.c_str(), nullptr);
  return m.log ? std::log(x) : x;
}

// A candidate's internal value snapped to the distribution (grid, bounds), with its text.
std::pair<double, std::string> decode(const Dim& m, double v) {
  const Distribution& d = *m.d;
  if (m.categorical) {
    const auto k = static_cast<int64_t>(std::clamp(v, 0.0, static_cast<double>(m.choices - 1)));
    return {static_cast<double>(k), d.choices[static_cast<size_t>(k)]};
  }
  if (d.kind == Distribution::Kind::int_range && d.log) {
    const double x = std::clamp(std::round(std::exp(v)), d.low, d.high);
    return {std::log(x), fmt::format("{}", static_cast<int64_t>(x))};
  }
  if (m.discrete) {
    const auto n = value_count(d);
    const auto k = static_cast<int64_t>(std::clamp(std::round((v - d.low) / m.step), 0.0, static_cast<double>(n - 1)));
    const std::string text = value_at(d, k);
    return {std::strtod(text.c_str(), nullptr), text};
  }
  if (m.log) {
    const double x = std::clamp(std::exp(v), d.low, d.high);
    return {std::log(x), format_double(x)};
  }
  const double x = std::clamp(v, d.low, d.high);
  return {x, format_double(x)};
}

// A mixture over a group's dimensions: kernel k is the product of its per-dimension densities;
// the last kernel is the prior.
struct Mixture {
  std::vector<double> weights;  // normalised
  std::vector<double> log_weights;
  // Numerical dimensions: per kernel centre, bandwidth and log of the truncated mass.
  std::vector<std::vector<double>> mu, sigma, log_mass;
  // Categorical dimensions: per kernel, the probabilities of the choices.
  std::vector<std::vector<std::vector<double>>> probs;
};

Mixture build_mixture(const std::vector<Dim>& dims, const std::vector<std::vector<double>>& rows,
                      const std::vector<double>& row_weights, double prior_weight) {
  Mixture mix;
  const size_t m = rows.size();
  double total = prior_weight;
  for (double w : row_weights) total += w;
  for (double w : row_weights) mix.weights.push_back(w / total);
  mix.weights.push_back(prior_weight / total);
  for (double w : mix.weights) mix.log_weights.push_back(safe_log(w));
  mix.mu.resize(dims.size());
  mix.sigma.resize(dims.size());
  mix.log_mass.resize(dims.size());
  mix.probs.resize(dims.size());
  for (size_t j = 0; j < dims.size(); ++j) {
    const Dim& dim = dims[j];
    std::vector<double> obs(m);
    for (size_t i = 0; i < m; ++i) obs[i] = rows[i][j];
    if (dim.categorical) {
      const auto c = static_cast<size_t>(dim.choices);
      for (size_t i = 0; i < m; ++i) {
        std::vector<double> row(c, prior_weight / static_cast<double>(m + 1));
        row[static_cast<size_t>(obs[i])] += 1.0;
        const double sum = std::accumulate(row.begin(), row.end(), 0.0);
        for (double& p : row) p /= sum;
        mix.probs[j].push_back(std::move(row));
      }
      mix.probs[j].emplace_back(c, 1.0 / static_cast<double>(c));
      continue;
    }
    const ParzenDimension pd = tpe_parzen_dimension(obs, row_weights, dim.lo, dim.hi, true, prior_weight);
    mix.mu[j] = pd.mu;
    mix.sigma[j] = pd.sigma;
    for (size_t k = 0; k < pd.mu.size(); ++k) {
      const double a = (dim.lo - pd.mu[k]) / pd.sigma[k];
      const double b = (dim.hi - pd.mu[k]) / pd.sigma[k];
      mix.log_mass[j].push_back(safe_log(normal_mass(a, b)));
    }
  }
  return mix;
}

std::vector<double> sample(const std::vector<Dim>& dims, const Mixture& mix, std::mt19937_64& rng) {
  // The kernel, by its weight.
  double u = unit(rng);
  size_t k = 0;
  while (k + 1 < mix.weights.size() && u >= mix.weights[k]) u -= mix.weights[k++];
  std::vector<double> x(dims.size());
  for (size_t j = 0; j < dims.size(); ++j) {
    const Dim& dim = dims[j];
    if (dim.categorical) {
      double v = unit(rng);
      const auto& row = mix.probs[j][k];
      size_t c = 0;
      while (c + 1 < row.size() && v >= row[c]) v -= row[c++];
      x[j] = static_cast<double>(c);
    } else {
      const double mu = mix.mu[j][k];
      const double sigma = mix.sigma[j][k];
      const double z = truncated_normal((dim.lo - mu) / sigma, (dim.hi - mu) / sigma, unit(rng));
      x[j] = mu + sigma * z;
    }
  }
  return x;
}

double log_density(const std::vector<Dim>& dims, const Mixture& mix, const std::vector<double>& x) {
  const size_t kernels = mix.weights.size();
  std::vector<double> lp(mix.log_weights);
  for (size_t j = 0; j < dims.size(); ++j) {
    const Dim& dim = dims[j];
    if (dim.categorical) {
      const auto c = static_cast<size_t>(x[j]);
      for (size_t k = 0; k < kernels; ++k) lp[k] += safe_log(mix.probs[j][k][c]);
      continue;
    }
    double lo_edge = 0.0;
    double hi_edge = 0.0;
    if (dim.discrete) {
      if (dim.log) {
        const double v = std::round(std::exp(x[j]));
        lo_edge = std::log(v - 0.5);
        hi_edge = std::log(v + 0.5);
      } else {
        lo_edge = x[j] - dim.step / 2;
        hi_edge = x[j] + dim.step / 2;
      }
    }
    for (size_t k = 0; k < kernels; ++k) {
      const double mu = mix.mu[j][k];
      const double sigma = mix.sigma[j][k];
      if (dim.discrete) {
        lp[k] += safe_log(normal_mass((lo_edge - mu) / sigma, (hi_edge - mu) / sigma)) - mix.log_mass[j][k];
      } else {
        const double z = (x[j] - mu) / sigma;
        lp[k] += -0.5 * z * z - std::log(sigma) - 0.5 * std::log(2 * M_PI) - mix.log_mass[j][k];
      }
    }
  }
  const double top = *std::max_element(lp.begin(), lp.end());
  double sum = 0.0;
  for (double v : lp) sum += std::exp(v - top);
  return top + std::log(sum);
}

}  // namespace

// ---------------------------------------------------------------- exposed pieces

double normal_cdf(double x) {
  return 0.5 * std::erfc(-x / std::sqrt(2.0));
}

double normal_quantile(double p) {
  if (p <= 0) return -kInf;
  if (p >= 1) return kInf;
  // Acklam's rational approximation (relative error 1.15e-9) ...
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,  -2.759285104469687e+02,
                                 1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                                 6.680131188771972e+01, -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                                 -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                                 3.754408661907416e+00};
  constexpr double p_low = 0.02425;
  double x = 0.0;
  if (p < p_low) {
    const double q = std::sqrt(-2 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= 1 - p_low) {
    const double q = p - 0.5;
    const double r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    const double q = std::sqrt(-2 * std::log1p(-p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  // ... and one Halley step on Phi(x) - p.
  const double e = normal_cdf(x) - p;
  const double u = e * std::sqrt(2 * M_PI) * std::exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}

std::vector<double> tpe_default_weights(int64_t n) {
  if (n <= 0) return {};
  std::vector<double> w(static_cast<size_t>(n), 1.0);
  if (n < 25) return w;
  const int64_t ramp = n - 25;
  const double first = 1.0 / static_cast<double>(n);
  for (int64_t i = 0; i < ramp; ++i) {
    // numpy.linspace(1/n, 1, ramp): endpoints included.
    w[static_cast<size_t>(i)] =
        ramp == 1 ? first : first + (1.0 - first) * static_cast<double>(i) / static_cast<double>(ramp - 1);
  }
  return w;
}

ParzenDimension tpe_parzen_dimension(const std::vector<double>& observations, const std::vector<double>& weights,
                                     double lo, double hi, bool magic_clip, double prior_weight) {
  ParzenDimension pd;
  const size_t m = observations.size();
  pd.mu = observations;
  pd.sigma.assign(m, 0.0);
  if (m == 1) {
    pd.sigma[0] = std::max(observations[0] - lo, hi - observations[0]);
  } else if (m > 1) {
    // Each kernel as wide as the larger gap to its neighbours; the outermost ones see only
    // their inner neighbour (Optuna 5: the bounds and the prior's centre are no neighbours).
    std::vector<size_t> order(m);
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return observations[a] < observations[b]; });
    for (size_t r = 0; r < m; ++r) {
      const double here = observations[order[r]];
      const double left = r > 0 ? here - observations[order[r - 1]] : 0.0;
      const double right = r + 1 < m ? observations[order[r + 1]] - here : 0.0;
      pd.sigma[order[r]] = std::max(left, right);
    }
  }
  const double range = hi - lo;
  if (magic_clip) {
    const double floor = range / std::min(100.0, static_cast<double>(m) + 2.0);
    for (double& s : pd.sigma) s = std::clamp(s, floor, range);
  }
  pd.mu.push_back((lo + hi) / 2);
  pd.sigma.push_back(range);
  double total = prior_weight;
  for (double w : weights) total += w;
  for (double w : weights) pd.weights.push_back(w / total);
  pd.weights.push_back(prior_weight / total);
  return pd;
}

// ---------------------------------------------------------------- the proposal

namespace {

// Parameters that exist under the same conditions, in space order: a group's parameters are
// always present together, so one joint density covers them.
std::vector<std::vector<size_t>> condition_groups(const std::vector<Param>& space) {
  // A parameter's full condition: its own and its parent's, up to the root.
  const auto chain = [&](size_t i) {
    std::string s;
    const Distribution* d = &space[i].second;
    while (d->when) {
      s += d->when->parent + "=";
      for (const auto& v : d->when->values) s += v + "|";
      s += ";";
      const auto parent =
          std::find_if(space.begin(), space.end(), [&](const Param& p) { return p.first == d->when->parent; });
      if (parent == space.end()) break;
      d = &parent->second;
    }
    return s;
  };
  std::vector<std::string> keys;
  std::vector<std::vector<size_t>> groups;
  for (size_t i = 0; i < space.size(); ++i) {
    const std::string c = chain(i);
    const auto it = std::find(keys.begin(), keys.end(), c);
    if (it == keys.end()) {
      keys.push_back(c);
      groups.push_back({i});
    } else {
      groups[static_cast<size_t>(it - keys.begin())].push_back(i);
    }
  }
  return groups;
}

// Optuna's _split_trials: the best min(ceil(n / 10), 25) finished observations are "below";
// completed ones first by value, then pruned ones by how far they got and their last value.
// Running ones are "above" (the constant liar). Both lists in trial order.
}  // namespace

void tpe_split(const std::vector<const Observation*>& obs, bool constant_liar, std::vector<size_t>& below,
               std::vector<size_t>& above) {
  std::vector<size_t> complete, pruned;
  for (size_t i = 0; i < obs.size(); ++i) {
    if (obs[i]->state == Observation::State::complete) complete.push_back(i);
    if (obs[i]->state == Observation::State::pruned) pruned.push_back(i);
    if (obs[i]->state == Observation::State::running && constant_liar) above.push_back(i);
  }
  const size_t n = complete.size() + pruned.size();
  const size_t n_below = std::min<size_t>((n + 9) / 10, 25);
  const auto value = [&](size_t i) { return std::isnan(obs[i]->value) ? kInf : obs[i]->value; };
  std::stable_sort(complete.begin(), complete.end(), [&](size_t a, size_t b) { return value(a) < value(b); });
  const auto key = [&](size_t i) {
    return obs[i]->has_value ? std::make_pair(-static_cast<double>(obs[i]->step), value(i)) : std::make_pair(1.0, 0.0);
  };
  std::stable_sort(pruned.begin(), pruned.end(), [&](size_t a, size_t b) { return key(a) < key(b); });
  for (size_t r = 0; r < complete.size(); ++r) (r < n_below ? below : above).push_back(complete[r]);
  const size_t left = n_below - std::min(n_below, complete.size());
  for (size_t r = 0; r < pruned.size(); ++r) (r < left ? below : above).push_back(pruned[r]);
  std::sort(below.begin(), below.end());
  std::sort(above.begin(), above.end());
}

namespace {

// The best of `candidates` draws from l(x) by log l(x) - log g(x), for the dimensions `dims`.
std::vector<double> tpe_choose(const std::vector<Dim>& dims, const std::vector<std::vector<double>>& rows,
                               const std::vector<size_t>& below, const std::vector<size_t>& above, const TpeOptions& o,
                               std::mt19937_64& rng) {
  const auto pick = [&](const std::vector<size_t>& which) {
    std::vector<std::vector<double>> r;
    for (size_t i : which) r.push_back(rows[i]);
    return r;
  };
  const Mixture l =
      build_mixture(dims, pick(below), tpe_default_weights(static_cast<int64_t>(below.size())), o.prior_weight);
  const Mixture g =
      build_mixture(dims, pick(above), tpe_default_weights(static_cast<int64_t>(above.size())), o.prior_weight);
  std::vector<double> best;
  double best_score = -kInf;
  for (int64_t c = 0; c < std::max<int64_t>(1, o.candidates); ++c) {
    std::vector<double> x = sample(dims, l, rng);
    for (size_t j = 0; j < dims.size(); ++j) x[j] = decode(dims[j], x[j]).first;
    const double score = log_density(dims, l, x) - log_density(dims, g, x);
    if (best.empty() || score > best_score) {
      best = x;
      best_score = score;
    }
  }
  return best;
}

}  // namespace

Point propose_tpe(const std::vector<Param>& space, const std::vector<Observation>& history, uint64_t seed,
                  const TpeOptions& o) {
  std::mt19937_64 rng(seed);
  int64_t finished = 0;
  for (const auto& h : history) finished += h.state != Observation::State::running ? 1 : 0;
  if (finished < o.startup_trials) return draw_point(space, rng);

  Point point;
  for (const auto& group : condition_groups(space)) {
    if (!is_active(space[group.front()].second, point)) continue;
    std::vector<Dim> dims;
    for (size_t i : group) dims.push_back(make_dim(space[i].first, space[i].second));
    // The observations that have every parameter of the group, with values the space allows.
    std::vector<const Observation*> obs;
    std::vector<std::vector<double>> rows;
    bool any_finished = false;
    for (const auto& h : history) {
      std::vector<double> row;
      for (const Dim& dim : dims) {
        const auto it = h.point.find(dim.key);
        if (it == h.point.end()) break;
        const double v = encode(dim, it->second);
        if (std::isnan(v)) break;
        row.push_back(v);
      }
      if (row.size() != dims.size()) continue;
      obs.push_back(&h);
      rows.push_back(std::move(row));
      any_finished = any_finished || h.state != Observation::State::running;
    }
    if (!any_finished) {
      for (size_t i : group) point[space[i].first] = draw(space[i].second, rng);
      continue;
    }
    std::vector<size_t> below, above;
    tpe_split(obs, o.constant_liar, below, above);
    if (o.multivariate) {
      const std::vector<double> x = tpe_choose(dims, rows, below, above, o, rng);
      for (size_t j = 0; j < dims.size(); ++j) point[dims[j].key] = decode(dims[j], x[j]).second;
    } else {
      for (size_t j = 0; j < dims.size(); ++j) {
        std::vector<std::vector<double>> one;
        for (const auto& r : rows) one.push_back({r[j]});
        const std::vector<double> x = tpe_choose({dims[j]}, one, below, above, o, rng);
        point[dims[j].key] = decode(dims[j], x[0]).second;
      }
    }
  }
  return point;
}

}  // namespace jepa::sweep
