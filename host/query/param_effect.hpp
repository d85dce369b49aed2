// A parameter against a metric across runs: every run a point, each value's mean with a 95% CI.
// Behind `jepa plot --param` and the `jepa ui` sweep page.
#pragma once

#include "query/runs.hpp"
#include "query/stats.hpp"

#include <string>
#include <vector>

namespace jepa::query {

struct ParamValueEffect {
  std::string value;  // the parameter's text
  double x = 0.0;     // the value as a number, or its index among the categories
  std::vector<double> ys;
  Summary summary;
};

struct ParamEffect {
  bool numeric = true;                            // every value reads as a number: x is that number; else x is an index
  std::vector<std::pair<double, double>> points;  // (x, y) per run with both
  std::vector<ParamValueEffect> values;           // ascending x
};

// Runs lacking the parameter, or whose latest metric value is not finite, are left out.
ParamEffect param_effect(const std::vector<RunRow>& rows, const std::string& param, const std::string& metric);

}  // namespace jepa::query
