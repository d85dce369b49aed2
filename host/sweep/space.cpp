#include "sweep/space.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace jepa::sweep {

namespace {

std::optional<double> parse_number(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<int64_t> parse_integer(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (end != text.c_str() + text.size()) return std::nullopt;
  return static_cast<int64_t>(v);
}

double int_step(const Distribution& d) {
  return d.step > 0 ? d.step : 1.0;
}

}  // namespace

const char* kind_name(Distribution::Kind kind) {
  switch (kind) {
    case Distribution::Kind::choice:
      return "choice";
    case Distribution::Kind::uniform:
      return "uniform";
    case Distribution::Kind::log_uniform:
      return "log_uniform";
    case Distribution::Kind::int_range:
      return "int";
  }
  return "?";
}

std::string format_double(double v) {
  // fmt's "{}" is the shortest text that reads back as the same double.
  return fmt::format("{}", v);
}

bool is_active(const Distribution& d, const Point& so_far) {
  if (!d.when) return true;
  const auto it = so_far.find(d.when->parent);
  if (it == so_far.end()) return false;
  return std::find(d.when->values.begin(), d.when->values.end(), it->second) != d.when->values.end();
}

bool is_discrete(const Distribution& d) {
  return d.kind == Distribution::Kind::choice || d.kind == Distribution::Kind::int_range ||
         (d.kind == Distribution::Kind::uniform && d.step > 0);
}

int64_t value_count(const Distribution& d) {
  switch (d.kind) {
    case Distribution::Kind::choice:
      return static_cast<int64_t>(d.choices.size());
    case Distribution::Kind::uniform:
      return d.step > 0 ? static_cast<int64_t>(std::floor((d.high - d.low) / d.step + 1e-9)) + 1 : 0;
    case Distribution::Kind::int_range:
      return static_cast<int64_t>((d.high - d.low) / int_step(d)) + 1;
    case Distribution::Kind::log_uniform:
      return 0;
  }
  return 0;
}

std::string value_at(const Distribution& d, int64_t k) {
  switch (d.kind) {
    case Distribution::Kind::choice:
      return d.choices.at(static_cast<size_t>(k));
    case Distribution::Kind::int_range:
      return fmt::format("{}", static_cast<int64_t>(d.low) + k * static_cast<int64_t>(int_step(d)));
    case Distribution::Kind::uniform: {
      const double v = std::min(d.low + static_cast<double>(k) * d.step, d.high);
      // low + k*step carries rounding noise (0.1 * 3 = 0.30000000000000004): the shortest text
      // within a billionth of a step is the value the user meant.
      for (int digits = 1; digits <= 17; ++digits) {
        const std::string s = fmt::format("{:.{}g}", v, digits);
        if (std::fabs(std::strtod(s.c_str(), nullptr) - v) <= 1e-9 * d.step) return s;
      }
      return format_double(v);
    }
    case Distribution::Kind::log_uniform:
      break;
  }
  return format_double(d.low);
}

std::optional<int64_t> index_of(const Distribution& d, const std::string& text) {
  if (d.kind == Distribution::Kind::choice) {
    const auto it = std::find(d.choices.begin(), d.choices.end(), text);
    if (it == d.choices.end()) return std::nullopt;
    return static_cast<int64_t>(it - d.choices.begin());
  }
  if (!is_discrete(d)) return std::nullopt;
  const auto x = parse_number(text);
  if (!x) return std::nullopt;
  const double step = d.kind == Distribution::Kind::int_range ? int_step(d) : d.step;
  const double k = std::round((*x - d.low) / step);
  if (k < 0 || k >= static_cast<double>(value_count(d))) return std::nullopt;
  if (std::fabs(*x - (d.low + k * step)) > 1e-9 * step) return std::nullopt;
  if (d.kind == Distribution::Kind::int_range && !parse_integer(text)) return std::nullopt;
  return static_cast<int64_t>(k);
}

std::string value_problem(const Distribution& d, const std::string& text) {
  if (d.kind == Distribution::Kind::choice) {
    if (index_of(d, text)) return {};
    return fmt::format("'{}' is not one of its values ({})", text, fmt::join(d.choices, ", "));
  }
  const auto x =
      d.kind == Distribution::Kind::int_range
          ? (parse_integer(text) ? std::optional<double>(static_cast<double>(*parse_integer(text))) : std::nullopt)
          : parse_number(text);
  if (!x) {
    return fmt::format("'{}' is not {}", text,
                       d.kind == Distribution::Kind::int_range ? "an integer" : "a finite number");
  }
  if (*x < d.low || *x > d.high) {
    return fmt::format("{} is outside [{}, {}]", text, format_double(d.low), format_double(d.high));
  }
  if (is_discrete(d) && !index_of(d, text)) {
    return fmt::format("{} is not low + k * step ({} + k * {})", text, format_double(d.low),
                       format_double(d.kind == Distribution::Kind::int_range ? int_step(d) : d.step));
  }
  return {};
}

std::string point_problem(const std::vector<Param>& space, const Point& p) {
  for (const auto& [key, value] : p) {
    const bool known =
        std::any_of(space.begin(), space.end(), [&, k = std::cref(key)](const Param& q) { return q.first == k.get(); });
    if (!known) return fmt::format("{} is not a parameter of the sweep", key);
  }
  for (const auto& [key, d] : space) {
    const auto it = p.find(key);
    const bool active = is_active(d, p);
    if (active && it == p.end()) return fmt::format("{} is missing", key);
    if (!active && it != p.end()) {
      return fmt::format("{} does not exist here ({} is not {})", key, d.when->parent,
                         fmt::join(d.when->values, " or "));
    }
    if (active) {
      const std::string why = value_problem(d, it->second);
      if (!why.empty()) return fmt::format("{}: {}", key, why);
    }
  }
  return {};
}

// [0, 1) from the top 53 bits: every multiple of 2^-53 equally likely.
double unit(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

// Outputs below 2^64 mod n are rejected, so every residue has the same number of preimages.
uint64_t below(std::mt19937_64& rng, uint64_t n) {
  const uint64_t reject_under = (0 - n) % n;
  while (true) {
    const uint64_t x = rng();
    if (x >= reject_under) return x % n;
  }
}

std::string draw(const Distribution& d, std::mt19937_64& rng) {
  switch (d.kind) {
    case Distribution::Kind::choice:
      return d.choices.at(below(rng, d.choices.size()));
    case Distribution::Kind::uniform: {
      if (d.step > 0) return value_at(d, static_cast<int64_t>(below(rng, static_cast<uint64_t>(value_count(d)))));
      // Rounding could step just outside the bounds; the spec promises values within them.
      const double v = d.low + (d.high - d.low) * unit(rng);
      return format_double(std::clamp(v, d.low, d.high));
    }
    case Distribution::Kind::log_uniform: {
      const double lo = std::log(d.low);
      const double v = std::exp(lo + (std::log(d.high) - lo) * unit(rng));
      return format_double(std::clamp(v, d.low, d.high));
    }
    case Distribution::Kind::int_range: {
      if (d.log) {
        // Uniform in log space over the integers' bins [k - 1/2, k + 1/2], as Optuna draws them.
        const double lo = std::log(d.low - 0.5);
        const double hi = std::log(d.high + 0.5);
        const double v = std::round(std::exp(lo + (hi - lo) * unit(rng)));
        return fmt::format("{}", static_cast<int64_t>(std::clamp(v, d.low, d.high)));
      }
      return value_at(d, static_cast<int64_t>(below(rng, static_cast<uint64_t>(value_count(d)))));
    }
  }
  return {};
}

Point draw_point(const std::vector<Param>& space, std::mt19937_64& rng) {
  Point p;
  for (const auto& [key, d] : space) {
    if (is_active(d, p)) p[key] = draw(d, rng);
  }
  return p;
}

uint64_t derived_seed(uint64_t seed, uint64_t n) {
  const auto mix = [](uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  return mix(mix(seed) ^ n);
}

}  // namespace jepa::sweep
