#include "query/stats.hpp"

#include <boost/math/distributions/students_t.hpp>

#include <cmath>
#include <limits>

namespace jepa::query {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::vector<double> finite(const std::vector<double>& values) {
  std::vector<double> out;
  for (double v : values) {
    if (std::isfinite(v)) out.push_back(v);
  }
  return out;
}

void mean_var(const std::vector<double>& v, double& mean, double& var) {
  mean = 0.0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  var = 0.0;
  for (double x : v) var += (x - mean) * (x - mean);
  var = v.size() > 1 ? var / static_cast<double>(v.size() - 1) : kNaN;
}

}  // namespace

Summary summarize(const std::vector<double>& values, double confidence) {
  const std::vector<double> v = finite(values);
  Summary s;
  s.n = static_cast<int64_t>(v.size());
  if (v.empty()) {
    s.mean = s.sd = s.ci_low = s.ci_high = kNaN;
    return s;
  }
  double var = 0.0;
  mean_var(v, s.mean, var);
  if (v.size() < 2) {
    s.sd = s.ci_low = s.ci_high = kNaN;
    return s;
  }
  s.sd = std::sqrt(var);
  const boost::math::students_t dist(static_cast<double>(v.size() - 1));
  const double t = boost::math::quantile(boost::math::complement(dist, (1.0 - confidence) / 2.0));
  const double half = t * s.sd / std::sqrt(static_cast<double>(v.size()));
  s.ci_low = s.mean - half;
  s.ci_high = s.mean + half;
  return s;
}

std::optional<WelchTest> welch_t_test(const std::vector<double>& a_in, const std::vector<double>& b_in) {
  const std::vector<double> a = finite(a_in);
  const std::vector<double> b = finite(b_in);
  if (a.size() < 2 || b.size() < 2) return std::nullopt;
  double ma = 0.0, va = 0.0, mb = 0.0, vb = 0.0;
  mean_var(a, ma, va);
  mean_var(b, mb, vb);
  const double sa = va / static_cast<double>(a.size());
  const double sb = vb / static_cast<double>(b.size());
  if (sa + sb <= 0.0) return std::nullopt;
  WelchTest w;
  w.diff = mb - ma;
  w.t = w.diff / std::sqrt(sa + sb);
  w.df = (sa + sb) * (sa + sb) /
         (sa * sa / static_cast<double>(a.size() - 1) + sb * sb / static_cast<double>(b.size() - 1));
  const boost::math::students_t dist(w.df);
  w.p = 2.0 * boost::math::cdf(boost::math::complement(dist, std::fabs(w.t)));
  return w;
}

}  // namespace jepa::query
