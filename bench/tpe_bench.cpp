// Our TPE (sweep/tpe.hpp) against our random search on standard test functions: independent
// sequential optimisations, one CSV line per trial, so that bench/tpe_summary.py can put them
// beside Optuna's TPESampler (bench/tpe_optuna.py runs the same functions and budgets).
// bench/tpe.sh runs all three; bench/RESULTS.md has the figures.
//
//   tpe_bench [--seeds 30] [--trials 100] [--functions branin,...] [--methods tpe,random]
//             [--out FILE]
//   tpe_bench --timing [--history 1000] [--repeats 20] [--out FILE]
//
// CSV: function,method,seed,trial,value,best_so_far,propose_ms (trial numbered from 0 as Optuna's
// trial.number; propose_ms is the proposal alone, not the objective). Methods: tpe (the default
// options: multivariate), tpe_uni (multivariate = false, like Optuna 3's default), random.
// Optimisation s proposes trial t from derived_seed(s, t), as a sweep with seed s would, so tpe
// and random share their 10 start-up points.
//
// --timing: the time of one proposal with `history` finished observations of random points of
// the Hartmann-6 space, as lines timing,method,history,proposals,median_ms,p90_ms.
#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "sweep/space.hpp"
#include "sweep/tpe.hpp"

using namespace jepa::sweep;

namespace {

struct Problem {
  std::string name;
  std::vector<Param> space;
  std::function<double(const Point&)> f;
};

double value_of(const Point& p, const std::string& key) {
  return std::stod(p.at(key));
}

Distribution numeric(Distribution::Kind kind, double low, double high) {
  Distribution d;
  d.kind = kind;
  d.low = low;
  d.high = high;
  return d;
}

Distribution uniform(double low, double high) {
  return numeric(Distribution::Kind::uniform, low, high);
}

double branin(double x1, double x2) {
  const double pi = 3.14159265358979323846;
  const double b = 5.1 / (4 * pi * pi);
  const double c = 5 / pi;
  const double t = 1 / (8 * pi);
  const double u = x2 - b * x1 * x1 + c * x1 - 6;
  return u * u + 10 * (1 - t) * std::cos(x1) + 10;
}

// The standard Hartmann-6 (e.g. scikit-optimize's hart6); minimum -3.32237.
double hartmann6(const std::array<double, 6>& x) {
  static const double alpha[4] = {1.0, 1.2, 3.0, 3.2};
  static const double a[4][6] = {
      {10, 3, 17, 3.5, 1.7, 8}, {0.05, 10, 17, 0.1, 8, 14}, {3, 3.5, 1.7, 10, 17, 8}, {17, 8, 0.05, 10, 0.1, 14}};
  static const double p[4][6] = {{1312, 1696, 5569, 124, 8283, 5886},
                                 {2329, 4135, 8307, 3736, 1004, 9991},
                                 {2348, 1451, 3522, 2883, 3047, 6650},
                                 {4047, 8828, 8732, 5743, 1091, 381}};
  double sum = 0;
  for (int i = 0; i < 4; ++i) {
    double inner = 0;
    for (int j = 0; j < 6; ++j) {
      const double d = x[j] - 1e-4 * p[i][j];
      inner += a[i][j] * d * d;
    }
    sum += alpha[i] * std::exp(-inner);
  }
  return -sum;
}

// Keep in step with FUNCTIONS in bench/tpe_optuna.py and OPTIMA in bench/tpe_summary.py.
std::vector<Problem> problems() {
  std::vector<Problem> out;
  out.push_back({"branin", {{"x1", uniform(-5, 10)}, {"x2", uniform(0, 15)}}, [](const Point& p) {
                   return branin(value_of(p, "x1"), value_of(p, "x2"));
                 }});
  std::vector<Param> h6;
  for (int i = 1; i <= 6; ++i) h6.push_back({"x" + std::to_string(i), uniform(0, 1)});
  out.push_back({"hartmann6", h6, [](const Point& p) {
                   std::array<double, 6> x{};
                   for (int i = 0; i < 6; ++i) x[i] = value_of(p, "x" + std::to_string(i + 1));
                   return hartmann6(x);
                 }});
  // Branin with x2 = 5 * (log10(u) + 3) for a log-uniform u in [1e-3, 1]: the same function to a
  // sampler that works in log space, a much harder one to a sampler that does not.
  const Distribution log_u = numeric(Distribution::Kind::log_uniform, 1e-3, 1.0);
  out.push_back({"branin_log", {{"x1", uniform(-5, 10)}, {"u", log_u}}, [](const Point& p) {
                   return branin(value_of(p, "x1"), 5 * (std::log10(value_of(p, "u")) + 3));
                 }});
  // Hartmann-6 with x1 = k / 20 for an integer k in [0, 20] and x2 a categorical of 6 values: the
  // discrete kinds' code paths. Its own minimum (-3.294163 at k = 4, x2 = 0.2) is above the
  // continuous one.
  const Distribution k_range = numeric(Distribution::Kind::int_range, 0, 20);
  Distribution x2_choice;  // a choice by default
  x2_choice.choices = {"0", "0.2", "0.4", "0.6", "0.8", "1"};
  std::vector<Param> mixed = {{"k1", k_range}, {"x2", x2_choice}};
  for (int i = 3; i <= 6; ++i) mixed.push_back({"x" + std::to_string(i), uniform(0, 1)});
  out.push_back({"hartmann6_mixed", mixed, [](const Point& p) {
                   std::array<double, 6> x{};
                   x[0] = value_of(p, "k1") / 20;
                   x[1] = value_of(p, "x2");
                   for (int i = 2; i < 6; ++i) x[i] = value_of(p, "x" + std::to_string(i + 1));
                   return hartmann6(x);
                 }});
  return out;
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(item);
  return out;
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

Point propose(const std::string& method, const Problem& problem, const std::vector<Observation>& history,
              uint64_t seed) {
  if (method == "random") {
    std::mt19937_64 rng(seed);
    return draw_point(problem.space, rng);
  }
  TpeOptions options;
  if (method == "tpe_uni") {
    options.multivariate = false;
  } else if (method != "tpe") {
    throw std::runtime_error("unknown method " + method + " (tpe, tpe_uni, random)");
  }
  return propose_tpe(problem.space, history, seed, options);
}

void optimise(const Problem& problem, const std::string& method, uint64_t seed, int64_t trials, FILE* out) {
  std::vector<Observation> history;
  double best = std::numeric_limits<double>::infinity();
  for (int64_t t = 0; t < trials; ++t) {
    const auto t0 = std::chrono::steady_clock::now();
    Point p = propose(method, problem, history, derived_seed(seed, static_cast<uint64_t>(t)));
    const double propose_ms = ms_since(t0);
    const double value = problem.f(p);
    best = std::min(best, value);
    fmt::print(out, "{},{},{},{},{:.17g},{:.17g},{:.6f}\n", problem.name, method, seed, t, value, best, propose_ms);
    history.push_back(Observation{std::move(p), Observation::State::complete, value});
  }
}

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto i = static_cast<size_t>(pos);
  if (i + 1 >= v.size()) return v.back();
  return v[i] + (pos - static_cast<double>(i)) * (v[i + 1] - v[i]);
}

// A fixed history of random Hartmann-6 points (the same for every method), then `repeats`
// proposals from it with different seeds: a proposal keeps nothing, so each one does the whole
// work a sweep's next trial would.
void timing(int64_t history_size, int64_t repeats, const std::vector<std::string>& methods, FILE* out) {
  const Problem h6 = problems()[1];
  std::vector<Observation> history;
  for (int64_t i = 0; i < history_size; ++i) {
    std::mt19937_64 rng(derived_seed(12345, static_cast<uint64_t>(i)));
    Point p = draw_point(h6.space, rng);
    const double value = h6.f(p);
    history.push_back(Observation{std::move(p), Observation::State::complete, value});
  }
  for (const auto& method : methods) {
    std::vector<double> ms;
    for (int64_t r = 0; r < repeats; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      const Point p = propose(method, h6, history, derived_seed(777, static_cast<uint64_t>(r)));
      ms.push_back(ms_since(t0));
    }
    fmt::print(out, "timing,{},{},{},{:.4f},{:.4f}\n", method, history_size, repeats, quantile(ms, 0.5),
               quantile(ms, 0.9));
  }
}

}  // namespace

int main(int argc, char** argv) {
  int64_t seeds = 30;
  int64_t trials = 100;
  int64_t history = 1000;
  int64_t repeats = 20;
  bool timing_mode = false;
  std::string out_path;
  std::vector<std::string> functions;
  std::vector<std::string> methods = {"tpe", "random"};
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      auto next = [&]() -> std::string {
        if (i + 1 >= argc) throw std::runtime_error(arg + " needs a value");
        return argv[++i];
      };
      if (arg == "--seeds") {
        seeds = std::stoll(next());
      } else if (arg == "--trials") {
        trials = std::stoll(next());
      } else if (arg == "--functions") {
        functions = split(next());
      } else if (arg == "--methods") {
        methods = split(next());
      } else if (arg == "--out") {
        out_path = next();
      } else if (arg == "--timing") {
        timing_mode = true;
      } else if (arg == "--history") {
        history = std::stoll(next());
      } else if (arg == "--repeats") {
        repeats = std::stoll(next());
      } else {
        throw std::runtime_error("unknown argument " + arg);
      }
    }
    FILE* out = stdout;
    if (!out_path.empty()) {
      out = std::fopen(out_path.c_str(), "w");
      if (!out) throw std::runtime_error("cannot write " + out_path);
    }
    for (const auto& name : functions) {
      const auto all = problems();
      if (std::none_of(all.begin(), all.end(), [&](const Problem& p) { return p.name == name; })) {
        throw std::runtime_error("unknown function " + name + " (branin, hartmann6, branin_log, hartmann6_mixed)");
      }
    }
    if (timing_mode) {
      timing(history, repeats, methods, out);
    } else {
      fmt::print(out, "function,method,seed,trial,value,best_so_far,propose_ms\n");
      for (const auto& problem : problems()) {
        if (!functions.empty() && std::find(functions.begin(), functions.end(), problem.name) == functions.end()) {
          continue;
        }
        for (const auto& method : methods) {
          for (int64_t s = 0; s < seeds; ++s) optimise(problem, method, static_cast<uint64_t>(s), trials, out);
        }
      }
    }
    if (out != stdout) std::fclose(out);
  } catch (const std::exception& e) {
    fmt::print(stderr, "tpe_bench: {}\n", e.what());
    return 1;
  }
  return 0;
}
