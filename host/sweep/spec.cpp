// Sweep specs: the [sweep] table of an experiment file, and its expansion into trials. The file
// format is described in spec.hpp.
#include "sweep/spec.hpp"

#include "config/toml_file.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <limits>
#include <optional>
#include <random>
#include <regex>
#include <sstream>
#include <string_view>

namespace jepa::sweep {

namespace fs = std::filesystem;

namespace {

// A grid with one list too many (or a huge `trials`) would exhaust memory before anything runs.
constexpr int64_t kMaxTrials = 1'000'000;
// int bounds travel as doubles in Distribution: keep them where every integer is exact.
constexpr int64_t kMaxIntBound = int64_t{1} << 53;

constexpr std::string_view kSweepKeys[] = {"name",           "method",         "trials",
                                           "sample_seed",    "seeds",          "devices",
                                           "gpus_per_trial", "trials_per_gpu", "threads_per_trial",
                                           "max_parallel",   "params",         "pruning",
                                           "launcher",       "slurm"};
constexpr std::string_view kPruningKeys[] = {"rule",       "metric",      "mode",     "warmup_steps",
                                             "min_trials", "grace_steps", "reduction"};
constexpr std::string_view kSlurmKeys[] = {
    "partition", "time_limit", "nodes",        "tasks_per_node", "gpus_per_task", "cpus_per_task", "mem",
    "account",   "qos",        "signal_grace", "requeue",        "sbatch_args",   "shared_dir",    "poll_seconds"};
// Options the launcher sets itself: given again they would break how it follows its jobs.
constexpr std::string_view kOwnSbatchOptions[] = {
    "--output",   "-o",     "--error",  "-e",        "--job-name",   "-J",          "--array", "-a",
    "--parsable", "--wrap", "--signal", "--requeue", "--no-requeue", "--open-mode", "--chdir", "-D"};
constexpr std::string_view kDistributionKeys[] = {"choice", "uniform", "log_uniform", "int"};

template <size_t N>
bool is_one_of(std::string_view name, const std::string_view (&names)[N]) {
  return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

template <size_t N>
std::string joined(const std::string_view (&names)[N]) {
  return fmt::format("{}", fmt::join(names, ", "));
}

// A value that is wrong wherever it stands; the caller knows the position and key to prefix.
struct Problem : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One key of a TOML table, with its position; `name` is the full dotted name in [sweep.params].
struct Entry {
  std::string name;
  const toml::key* key;
  const toml::node* node;
};

// File order, so the first problem reported is the first in the file.
void sort_by_position(std::vector<Entry>& entries) {
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    const auto& pa = a.key->source().begin;
    const auto& pb = b.key->source().begin;
    return pa.line != pb.line ? pa.line < pb.line : pa.column < pb.column;
  });
}

std::vector<Entry> ordered(const toml::table& table) {
  std::vector<Entry> out;
  for (auto&& [k, v] : table) out.push_back({std::string(k.str()), &k, &v});
  sort_by_position(out);
  return out;
}

// An unquoted dotted key (optimization.lr = [...]) or a [sweep.params.optimization] header makes
// nested tables, never inline ones; an inline table ({ uniform = [...] }) is a distribution.
void collect_params(const toml::table& table, const std::string& prefix, std::vector<Entry>& out) {
  for (auto&& [k, v] : table) {
    const std::string name = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    const toml::table* nested = v.as_table();
    if (nested != nullptr && !nested->is_inline()) {
      collect_params(*nested, name, out);
    } else {
      out.push_back({name, &k, &v});
    }
  }
}

// ---------------------------------------------------------------- values as `--set` text

std::string format_double(double v) {
  // fmt's "{}" is the shortest text that reads back as the same double.
  return fmt::format("{}", v);
}

std::string number_text(const toml::node& node) {
  if (const auto* i = node.as_integer()) return fmt::format("{}", i->get());
  const double d = node.as_floating_point()->get();
  if (!std::isfinite(d)) throw Problem(fmt::format("{} is not a finite number", d));
  return format_double(d);
}

std::string value_text(const toml::node& node) {
  if (node.is_number()) return number_text(node);
  if (const auto* s = node.as_string()) return s->get();
  if (const auto* b = node.as_boolean()) return b->get() ? "true" : "false";
  if (const auto* a = node.as_array()) {
    std::vector<std::string> items;
    for (const auto& item : *a) {
      if (!item.is_number()) throw Problem("a list-valued choice holds numbers only, like [0.15, 0.2]");
      items.push_back(number_text(item));
    }
    return fmt::format("[{}]", fmt::join(items, ", "));
  }
  throw Problem("values are numbers, strings, booleans or lists of numbers");
}

std::vector<std::string> choices_of(const toml::array& array) {
  if (array.empty()) throw Problem("expects at least one value");
  std::vector<std::string> out;
  for (const auto& item : array) {
    std::string text = value_text(item);
    // A repeat would run the same trials twice (1 and 1.0 are the same `--set` text).
    if (std::find(out.begin(), out.end(), text) != out.end()) throw Problem(fmt::format("{} is listed twice", text));
    out.push_back(std::move(text));
  }
  return out;
}

Distribution range_of(const toml::node& node, std::string_view kind) {
  const bool integers = kind == "int";
  const auto* array = node.as_array();
  const char* want = integers ? "integers" : "numbers";
  const auto bad_shape = [&] { return Problem(fmt::format("{} expects two {} [low, high]", kind, want)); };
  if (array == nullptr || array->size() != 2) throw bad_shape();
  double bounds[2];
  for (size_t i = 0; i < 2; ++i) {
    const toml::node& item = *array->get(i);
    if (integers) {
      const auto* v = item.as_integer();
      if (v == nullptr) throw bad_shape();
      if (v->get() < -kMaxIntBound || v->get() > kMaxIntBound) {
        throw Problem(fmt::format("int bound {} is outside [-2^53, 2^53]", v->get()));
      }
      bounds[i] = static_cast<double>(v->get());
    } else {
      if (!item.is_number()) throw bad_shape();
      number_text(item);  // throws for inf and nan
      bounds[i] = item.is_integer() ? static_cast<double>(item.as_integer()->get()) : item.as_floating_point()->get();
    }
  }
  if (!(bounds[0] < bounds[1])) {
    throw Problem(
        fmt::format("{} expects low < high, got [{}, {}]", kind, format_double(bounds[0]), format_double(bounds[1])));
  }
  if (kind == "log_uniform" && bounds[0] <= 0) {
    throw Problem(fmt::format("log_uniform needs low > 0, got {}", format_double(bounds[0])));
  }
  Distribution d;
  d.kind = kind == "uniform"       ? Distribution::Kind::uniform
           : kind == "log_uniform" ? Distribution::Kind::log_uniform
                                   : Distribution::Kind::int_range;
  d.low = bounds[0];
  d.high = bounds[1];
  return d;
}

Distribution distribution_of(const toml::node& node) {
  if (const auto* array = node.as_array()) {
    Distribution d;
    d.choices = choices_of(*array);
    return d;
  }
  const auto* table = node.as_table();
  if (table == nullptr) {
    throw Problem(fmt::format("expects a list of values or a distribution like {{ uniform = [0.01, 0.1] }} ({})",
                              joined(kDistributionKeys)));
  }
  for (auto&& [k, v] : *table) {
    if (!is_one_of(k.str(), kDistributionKeys)) {
      throw Problem(fmt::format("unknown distribution '{}'; valid: {}", k.str(), joined(kDistributionKeys)));
    }
  }
  if (table->size() != 1) {
    throw Problem(
        fmt::format("expects exactly one distribution, one of {}; got {}", joined(kDistributionKeys), table->size()));
  }
  // The iterator owns the pair it yields, so keep it alive while the pair is used.
  const auto only = table->begin();
  const toml::key& k = only->first;
  const toml::node& v = only->second;
  if (k.str() == "choice") {
    const auto* array = v.as_array();
    if (array == nullptr) throw Problem("choice expects a list of values");
    Distribution d;
    d.choices = choices_of(*array);
    return d;
  }
  return range_of(v, k.str());
}

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

// "auto", "cpu" or GPU ids such as "0,2" (spaces allowed, returned without them).
std::string normalized_devices(const std::string& text) {
  const auto trim = [](std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) s.remove_suffix(1);
    return std::string(s);
  };
  const std::string whole = trim(text);
  if (whole == "auto" || whole == "cpu") return whole;
  const auto bad = [&] {
    return Problem(fmt::format("'{}' is not auto, cpu or a comma-separated list of GPU ids like \"0,2\"", text));
  };
  std::vector<std::string> ids;
  size_t start = 0;
  while (true) {
    const size_t comma = whole.find(',', start);
    std::string id = trim(std::string_view(whole).substr(start, comma == std::string::npos ? comma : comma - start));
    // Leading zeros would let "0" and "00" name one GPU twice.
    const bool digits = !id.empty() && id.size() <= 9 && std::all_of(id.begin(), id.end(), [](char c) {
      return std::isdigit(static_cast<unsigned char>(c)) != 0;
    });
    if (!digits || (id.size() > 1 && id[0] == '0')) throw bad();
    if (std::find(ids.begin(), ids.end(), id) != ids.end()) {
      throw Problem(fmt::format("GPU {} is listed twice in '{}'", id, text));
    }
    ids.push_back(std::move(id));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return fmt::format("{}", fmt::join(ids, ","));
}

// Trials the spec expands to, or std::nullopt beyond kMaxTrials (counted without overflow).
std::optional<int64_t> trial_count(const SweepSpec& spec) {
  int64_t points = 1;
  if (spec.method == "random") {
    points = spec.trials;
  } else {
    for (const auto& [key, d] : spec.params) {
      const auto n = static_cast<int64_t>(d.choices.size());
      if (n != 0 && points > kMaxTrials / n) return std::nullopt;
      points *= n;
    }
  }
  const auto seeds = static_cast<int64_t>(spec.seeds.size());
  if (seeds != 0 && points > kMaxTrials / seeds) return std::nullopt;
  return points * seeds;
}

// ---------------------------------------------------------------- reading [sweep]

class Reader {
 public:
  Reader(std::string file, const toml::table& root) : file_(std::move(file)), root_(root) {}

  SweepSpec read() {
    const toml::key* key = nullptr;
    const toml::node* node = nullptr;
    for (auto&& [k, v] : root_) {
      if (k.str() == "sweep") {
        key = &k;
        node = &v;
      }
    }
    if (node == nullptr) {
      throw SweepError(fmt::format(
          "{}:1:1: no [sweep] table: a sweep file is an experiment plus a [sweep] table that names what to vary",
          file_));
    }
    const toml::table* sweep = node->as_table();
    if (sweep == nullptr) {
      throw SweepError(fmt::format("{}[sweep] must be a table: write it as [sweep]", at(key->source())));
    }
    const toml::source_region sweep_region = sweep->source();
    SweepSpec spec;
    std::optional<Entry> trials_entry;
    std::optional<Entry> slurm_entry;
    std::vector<Entry> params;
    const toml::table* params_table = nullptr;
    for (const Entry& e : ordered(*sweep)) {
      const std::string& k = e.name;
      if (!is_one_of(k, kSweepKeys)) {
        throw SweepError(fmt::format("{}[sweep] unknown key '{}'; valid keys: {}", at(e), k, joined(kSweepKeys)));
      }
      if (k == "name") {
        spec.name = read_string(e, "[sweep]");
        if (spec.name.empty()) throw error(e, "[sweep]", "expects a non-empty name");
      } else if (k == "method") {
        spec.method = read_one_of(e, "[sweep]", {"grid", "random"});
      } else if (k == "trials") {
        spec.trials = read_int(e, "[sweep]", 0, kMaxTrials);
        trials_entry = e;
      } else if (k == "sample_seed") {
        spec.sample_seed = static_cast<uint64_t>(read_int(e, "[sweep]", 0));
      } else if (k == "seeds") {
        spec.seeds = read_seeds(e);
      } else if (k == "devices") {
        try {
          spec.devices = normalized_devices(read_string(e, "[sweep]"));
        } catch (const Problem& p) {
          throw error(e, "[sweep]", p.what());
        }
      } else if (k == "gpus_per_trial") {
        spec.gpus_per_trial = read_int(e, "[sweep]", 1);
      } else if (k == "trials_per_gpu") {
        spec.trials_per_gpu = read_int(e, "[sweep]", 1);
      } else if (k == "threads_per_trial") {
        spec.threads_per_trial = read_int(e, "[sweep]", 1);
      } else if (k == "max_parallel") {
        spec.max_parallel = read_int(e, "[sweep]", 0);
      } else if (k == "params") {
        params_table = e.node->as_table();
        if (params_table == nullptr) throw error(e, "[sweep]", "must be a table: write it as [sweep.params]");
        collect_params(*params_table, "", params);
        sort_by_position(params);
      } else if (k == "pruning") {
        const toml::table* pruning = e.node->as_table();
        if (pruning == nullptr) throw error(e, "[sweep]", "must be a table: write it as [sweep.pruning]");
        spec.pruning = read_pruning(*pruning);
      } else if (k == "launcher") {
        spec.launcher = read_one_of(e, "[sweep]", {"local", "slurm"});
      } else if (k == "slurm") {
        const toml::table* slurm = e.node->as_table();
        if (slurm == nullptr) throw error(e, "[sweep]", "must be a table: write it as [sweep.slurm]");
        spec.slurm = read_slurm(*slurm);
        slurm_entry = e;
      }
    }
    if (slurm_entry && spec.launcher != "slurm") {
      throw error(*slurm_entry, "[sweep]",
                  "[sweep.slurm] is read only with launcher = \"slurm\" (set it in [sweep], or remove the table)");
    }

    for (const Entry& e : params) {
      if (e.name == "run.seed") {
        throw error(e, "[sweep.params]", "the seed is not a parameter: list the seeds in [sweep] seeds = [...]");
      }
      try {
        spec.params.emplace_back(e.name, distribution_of(*e.node));
      } catch (const Problem& p) {
        throw error(e, "[sweep.params]", p.what());
      }
    }

    // Rules between keys: only now is the method known, wherever it stood.
    if (spec.method == "random" && spec.trials < 1) {
      const std::string where = trials_entry ? at(*trials_entry) : at(sweep_region);
      throw SweepError(
          fmt::format("{}[sweep] trials: method = \"random\" needs trials >= 1 (how many points to draw)", where));
    }
    if (spec.method == "random" && spec.params.empty()) {
      throw SweepError(
          fmt::format("{}[sweep.params] random search needs at least one parameter (a seeds-only sweep is a grid)",
                      at(params_table != nullptr ? params_table->source() : sweep_region)));
    }
    if (spec.method == "grid") {
      for (size_t i = 0; i < params.size(); ++i) {
        const Distribution& d = spec.params[i].second;
        if (d.kind != Distribution::Kind::choice) {
          throw error(params[i], "[sweep.params]",
                      fmt::format("a {} distribution needs method = \"random\"; a grid takes a list of values",
                                  kind_name(d.kind)));
        }
      }
    }
    if (!trial_count(spec)) {
      throw SweepError(fmt::format("{}[sweep] expands to more than {} trials", at(sweep_region), kMaxTrials));
    }
    return spec;
  }

 private:
  std::string at(const toml::source_region& r) const {
    // Line 0 means no position: point at the start of the file.
    return fmt::format("{}:{}:{}: ", file_, std::max<uint32_t>(r.begin.line, 1), std::max<uint32_t>(r.begin.column, 1));
  }
  std::string at(const Entry& e) const { return at(e.key->source()); }

  SweepError error(const Entry& e, const char* section, const std::string& message) const {
    return SweepError(fmt::format("{}{} {}: {}", at(e), section, e.name, message));
  }

  int64_t read_int(const Entry& e, const char* section, int64_t min,
                   int64_t max = std::numeric_limits<int64_t>::max()) const {
    const auto* v = e.node->as_integer();
    if (v == nullptr) throw error(e, section, "expects an integer");
    if (v->get() < min || v->get() > max) {
      const std::string hi = max == std::numeric_limits<int64_t>::max() ? "inf" : std::to_string(max);
      throw error(e, section, fmt::format("{} is outside the allowed range [{}, {}]", v->get(), min, hi));
    }
    return v->get();
  }

  std::string read_string(const Entry& e, const char* section) const {
    const auto* v = e.node->as_string();
    if (v == nullptr) throw error(e, section, "expects a string");
    return v->get();
  }

  std::string read_one_of(const Entry& e, const char* section, std::initializer_list<const char*> options) const {
    std::string v = read_string(e, section);
    if (std::find(options.begin(), options.end(), v) == options.end()) {
      throw error(e, section, fmt::format("'{}' is not one of {}", v, fmt::join(options, ", ")));
    }
    return v;
  }

  std::vector<int64_t> read_seeds(const Entry& e) const {
    const auto* array = e.node->as_array();
    if (array == nullptr || array->empty()) throw error(e, "[sweep]", "expects a non-empty list of integers");
    std::vector<int64_t> seeds;
    for (const auto& item : *array) {
      const auto* v = item.as_integer();
      if (v == nullptr) throw error(e, "[sweep]", "expects a non-empty list of integers");
      if (v->get() < 0) throw error(e, "[sweep]", fmt::format("{} is negative; seeds are >= 0", v->get()));
      if (std::find(seeds.begin(), seeds.end(), v->get()) != seeds.end()) {
        throw error(e, "[sweep]", fmt::format("{} is listed twice", v->get()));
      }
      seeds.push_back(v->get());
    }
    return seeds;
  }

  SlurmSpec read_slurm(const toml::table& table) const {
    SlurmSpec s;
    const char* section = "[sweep.slurm]";
    // sbatch's --time forms; an empty text is the partition's default.
    static const std::regex time_form(R"(^(\d+-\d+(:\d+){0,2}|\d+(:\d+){0,2})$)");
    static const std::regex mem_form(R"(^\d+[KMGT]?$)");
    for (const Entry& e : ordered(table)) {
      const std::string& k = e.name;
      if (!is_one_of(k, kSlurmKeys)) {
        throw SweepError(fmt::format("{}{} unknown key '{}'; valid keys: {}", at(e), section, k, joined(kSlurmKeys)));
      }
      if (k == "partition") {
        s.partition = read_string(e, section);
      } else if (k == "time_limit") {
        s.time_limit = read_string(e, section);
        if (!std::regex_match(s.time_limit, time_form)) {
          throw error(e, section,
                      fmt::format("'{}' is not a SLURM time: minutes, M:S, H:M:S, D-H, D-H:M or D-H:M:S (\"30\", "
                                  "\"2:00:00\", \"1-12:00:00\")",
                                  s.time_limit));
        }
      } else if (k == "nodes") {
        s.nodes = read_int(e, section, 1);
      } else if (k == "tasks_per_node") {
        s.tasks_per_node = read_int(e, section, 1);
      } else if (k == "gpus_per_task") {
        s.gpus_per_task = read_int(e, section, 0);
      } else if (k == "cpus_per_task") {
        s.cpus_per_task = read_int(e, section, 1);
      } else if (k == "mem") {
        s.mem = read_string(e, section);
        if (!std::regex_match(s.mem, mem_form)) {
          throw error(e, section, fmt::format("'{}' is not a size like \"16G\" or \"4000M\"", s.mem));
        }
      } else if (k == "account") {
        s.account = read_string(e, section);
      } else if (k == "qos") {
        s.qos = read_string(e, section);
      } else if (k == "signal_grace") {
        s.signal_grace = read_int(e, section, 1, 65535);
      } else if (k == "requeue") {
        const auto* b = e.node->as_boolean();
        if (b == nullptr) throw error(e, section, "expects true or false");
        s.requeue = b->get();
      } else if (k == "sbatch_args") {
        const auto* array = e.node->as_array();
        if (array == nullptr) throw error(e, section, "expects a list of strings like [\"--constraint=a100\"]");
        for (const auto& item : *array) {
          const auto* v = item.as_string();
          if (v == nullptr) throw error(e, section, "expects a list of strings like [\"--constraint=a100\"]");
          const std::string arg = v->get();
          const std::string name = arg.substr(0, arg.find('='));
          if (is_one_of(name, kOwnSbatchOptions)) {
            throw error(e, section,
                        fmt::format("'{}' is set by the launcher itself (it follows each trial's job by its name, "
                                    "log, signal and requeue); use the [sweep.slurm] keys instead",
                                    arg));
          }
          s.sbatch_args.push_back(arg);
        }
      } else if (k == "shared_dir") {
        s.shared_dir = read_string(e, section);
      } else if (k == "poll_seconds") {
        const auto* f = e.node->as_floating_point();
        const auto* i = e.node->as_integer();
        const double v = f != nullptr ? f->get() : i != nullptr ? static_cast<double>(i->get()) : -1.0;
        if (!(v >= 0.1 && v <= 600.0)) throw error(e, section, "expects a number of seconds in [0.1, 600]");
        s.poll_seconds = v;
      }
    }
    return s;
  }

  PruningSpec read_pruning(const toml::table& table) const {
    PruningSpec p;
    const char* section = "[sweep.pruning]";
    for (const Entry& e : ordered(table)) {
      const std::string& k = e.name;
      if (!is_one_of(k, kPruningKeys)) {
        throw SweepError(fmt::format("{}{} unknown key '{}'; valid keys: {}", at(e), section, k, joined(kPruningKeys)));
      }
      if (k == "rule") {
        p.rule = read_one_of(e, section, {"none", "median", "asha"});
      } else if (k == "metric") {
        p.metric = read_string(e, section);
        if (p.metric.empty()) throw error(e, section, "expects a metric name like \"train/loss\"");
      } else if (k == "mode") {
        p.maximize = read_one_of(e, section, {"min", "max"}) == "max";
      } else if (k == "warmup_steps") {
        p.warmup_steps = read_int(e, section, 0);
      } else if (k == "min_trials") {
        p.min_trials = read_int(e, section, 1);
      } else if (k == "grace_steps") {
        p.grace_steps = read_int(e, section, 1);
      } else if (k == "reduction") {
        p.reduction = read_int(e, section, 2);
      }
    }
    return p;
  }

  std::string file_;
  const toml::table& root_;
};

// ---------------------------------------------------------------- sampling

// The standard distributions' algorithms are implementation-defined; these use only the
// engine's raw output (which the standard fixes), so a sample_seed gives the same trials on
// every platform.

// [0, 1) from the top 53 bits: every multiple of 2^-53 equally likely.
double unit(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

// Uniform over [0, n), n >= 1: outputs below 2^64 mod n are rejected, so every residue has the
// same number of preimages.
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
      const auto lo = static_cast<int64_t>(d.low);
      const auto span = static_cast<uint64_t>(static_cast<int64_t>(d.high) - lo) + 1;
      return fmt::format("{}", lo + static_cast<int64_t>(below(rng, span)));
    }
  }
  return {};
}

}  // namespace

SweepSpec load_sweep_spec(const fs::path& file) {
  const toml::table root = config::read_toml_file<SweepError>(file, "sweep");
  SweepSpec spec = Reader(file.string(), root).read();
  spec.file = file;
  if (spec.name.empty()) spec.name = file.stem().string();
  return spec;
}

std::vector<Trial> expand_trials(const SweepSpec& spec) {
  const std::string where = spec.file.empty() ? std::string("sweep") : spec.file.string();
  if (spec.seeds.empty()) throw SweepError(fmt::format("{}: [sweep] seeds: expects at least one seed", where));
  std::vector<std::vector<std::string>> points;  // values in spec.params order
  if (spec.method == "grid") {
    for (const auto& [key, d] : spec.params) {
      if (d.kind != Distribution::Kind::choice) {
        throw SweepError(fmt::format(
            "{}: [sweep.params] {}: a {} distribution needs method = \"random\"; a grid takes a list of values", where,
            key, kind_name(d.kind)));
      }
      if (d.choices.empty()) throw SweepError(fmt::format("{}: [sweep.params] {}: has no values", where, key));
    }
    if (!trial_count(spec))
      throw SweepError(fmt::format("{}: [sweep] expands to more than {} trials", where, kMaxTrials));
    // An odometer over the lists, the last one turning fastest.
    std::vector<size_t> at(spec.params.size(), 0);
    while (true) {
      std::vector<std::string> point;
      for (size_t i = 0; i < at.size(); ++i) point.push_back(spec.params[i].second.choices[at[i]]);
      points.push_back(std::move(point));
      size_t i = at.size();
      while (i > 0 && ++at[i - 1] == spec.params[i - 1].second.choices.size()) at[--i] = 0;
      if (i == 0) break;
    }
  } else if (spec.method == "random") {
    if (spec.trials < 1)
      throw SweepError(fmt::format("{}: [sweep] trials: method = \"random\" needs trials >= 1", where));
    if (!trial_count(spec))
      throw SweepError(fmt::format("{}: [sweep] expands to more than {} trials", where, kMaxTrials));
    std::mt19937_64 rng(spec.sample_seed);
    for (int64_t t = 0; t < spec.trials; ++t) {
      std::vector<std::string> point;
      for (const auto& [key, d] : spec.params) point.push_back(draw(d, rng));
      points.push_back(std::move(point));
    }
  } else {
    throw SweepError(fmt::format("{}: [sweep] method: '{}' is not one of grid, random", where, spec.method));
  }

  std::vector<Trial> trials;
  trials.reserve(points.size() * spec.seeds.size());
  for (const auto& point : points) {
    for (int64_t seed : spec.seeds) {
      Trial t;
      t.index = static_cast<int64_t>(trials.size());
      t.seed = seed;
      for (size_t i = 0; i < point.size(); ++i) {
        const std::string& key = spec.params[i].first;
        t.point[key] = point[i];
        t.overrides.push_back(key + "=" + point[i]);
      }
      t.overrides.push_back(fmt::format("run.seed={}", seed));
      trials.push_back(std::move(t));
    }
  }
  return trials;
}

}  // namespace jepa::sweep
