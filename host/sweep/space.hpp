// The search space of a sweep: its parameters, their distributions and conditions, and what every
// sampler (grid, random, TPE) shares: whether a parameter exists at a point, whether a value
// belongs to a distribution, random draws that are the same on every platform, and the value
// text that becomes `jepa run --set key=value`.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace jepa::sweep {

// A parameter that exists only when an earlier `choice` parameter takes one of `values`
// (`when = { "objective.plugin" = "sigreg" }`): where it does not exist, it is not set at all, so
// the experiment's own value applies.
struct Condition {
  std::string parent;
  std::vector<std::string> values;  // `--set` texts, each one of the parent's choices
};

struct Distribution {
  enum class Kind { choice, uniform, log_uniform, int_range };
  Kind kind = Kind::choice;
  std::vector<std::string> choices;  // choice: values as `--set` text ("0.001", "multiblock", "[0.15, 0.2]")
  double low = 0.0;                  // uniform, log_uniform, int_range (inclusive)
  double high = 0.0;
  double step = 0.0;  // uniform: 0 = continuous, else values low + k*step; int_range: 0 means 1
  bool log = false;   // int_range: drawn uniformly in log space (low >= 1, step 1)
  std::optional<Condition> when;
};

using Param = std::pair<std::string, Distribution>;
using Point = std::map<std::string, std::string>;  // key -> `--set` text, only the parameters that exist

const char* kind_name(Distribution::Kind kind);

// The shortest text that reads back as the same double ("0.0005", "1e-05").
std::string format_double(double v);

// Whether the parameter exists given the values decided so far (its parent's value).
bool is_active(const Distribution& d, const Point& so_far);

// Discrete distributions: how many values and the k-th of them (0-based); values of a stepped
// uniform are the shortest text within 1e-9 steps of low + k*step, so 0.1 * 3 reads "0.3".
bool is_discrete(const Distribution& d);
int64_t value_count(const Distribution& d);
std::string value_at(const Distribution& d, int64_t k);
// The index of a discrete distribution's value, or nullopt when `text` is none of its values.
std::optional<int64_t> index_of(const Distribution& d, const std::string& text);

// "" when `text` is a value of `d`, else why not ("0.7 is above the high bound 0.5").
std::string value_problem(const Distribution& d, const std::string& text);
// "" when `p` sets exactly the parameters that exist at `p`, each to one of its values.
std::string point_problem(const std::vector<Param>& space, const Point& p);

// Draws that use only std::mt19937_64's raw output (which the standard fixes), so a seed gives
// the same values on every platform.
double unit(std::mt19937_64& rng);                 // [0, 1), 53 bits
uint64_t below(std::mt19937_64& rng, uint64_t n);  // [0, n), unbiased
std::string draw(const Distribution& d, std::mt19937_64& rng);
// Every parameter that exists, drawn in space order (a condition's parent comes first).
Point draw_point(const std::vector<Param>& space, std::mt19937_64& rng);

// A seed for one decision from the sweep's seed and the decision's number (SplitMix64 of both),
// so that no decision depends on how many draws came before it (a resumed sweep asks again
// exactly as an uninterrupted one would).
uint64_t derived_seed(uint64_t seed, uint64_t n);

}  // namespace jepa::sweep
