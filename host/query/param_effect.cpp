#include "query/param_effect.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>

namespace jepa::query {

ParamEffect param_effect(const std::vector<RunRow>& rows, const std::string& param, const std::string& metric) {
  std::vector<std::pair<std::string, double>> raw;
  for (const auto& r : rows) {
    auto p = r.params.find(param);
    auto m = r.metrics.find(metric);
    if (p != r.params.end() && m != r.metrics.end() && std::isfinite(m->second)) raw.emplace_back(p->second, m->second);
  }
  ParamEffect e;
  for (const auto& [x, y] : raw) {
    char* end = nullptr;
    std::strtod(x.c_str(), &end);
    e.numeric = e.numeric && !x.empty() && *end == '\0';
  }
  std::map<std::string, std::vector<double>> by_value;
  for (const auto& [x, y] : raw) by_value[x].push_back(y);
  for (auto& [value, ys] : by_value) e.values.push_back({value, 0.0, std::move(ys), {}});
  if (e.numeric) {
    for (auto& v : e.values) v.x = std::stod(v.value);
    std::sort(e.values.begin(), e.values.end(), [](const auto& a, const auto& b) { return a.x < b.x; });
  } else {
    for (size_t i = 0; i < e.values.size(); ++i) e.values[i].x = static_cast<double>(i);
  }
  std::map<std::string, double> x_of;
  for (auto& v : e.values) {
    v.summary = summarize(v.ys);
    x_of[v.value] = v.x;
  }
  for (const auto& [x, y] : raw) e.points.emplace_back(x_of.at(x), y);
  return e;
}

}  // namespace jepa::query
