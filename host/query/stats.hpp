// Statistics for comparing groups of runs that differ only by seed.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace jepa::query {

struct Summary {
  int64_t n = 0;        // finite values only; NaN (a diverged or missing metric) is left out
  double mean = 0.0;    // NaN when n == 0
  double sd = 0.0;      // sample standard deviation (n - 1); NaN when n < 2
  double ci_low = 0.0;  // two-sided Student-t confidence interval of the mean; NaN when n < 2
  double ci_high = 0.0;
};

Summary summarize(const std::vector<double>& values, double confidence = 0.95);

struct WelchTest {
  double diff = 0.0;  // mean(b) - mean(a)
  double t = 0.0;
  double df = 0.0;  // Welch-Satterthwaite degrees of freedom
  double p = 1.0;   // two-sided
};

// Welch's unequal-variance t-test of b against a; nullopt when either side has fewer than two
// finite values or both have zero variance (the test is undefined there).
std::optional<WelchTest> welch_t_test(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace jepa::query
