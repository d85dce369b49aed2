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
#include <set>
#include <sstream>
#include <string_view>

namespace jepa::sweep {

namespace fs = std::filesystem;

namespace {

// A grid with one list too many (or a huge `trials`) would exhaust memory before anything runs.
constexpr int64_t kMaxTrials = 1'000'000;
// int bounds travel as doubles in Distribution: keep them where every integer is exact.
constexpr int64_t kMaxIntBound = int64_t{1} << 53;

constexpr std::string_view kSweepKeys[] = {"name",
                                           "method",
                                           "trials",
                                           "sample_seed",
                                           "seeds",
                                           "devices",
                                           "gpus_per_trial",
                                           "trials_per_gpu",
                                           "threads_per_trial",
                                           "max_parallel",
                                           "params",
                                           "pruning",
                                           "launcher",
                                           "slurm",
                                           "objective",
                                           "tpe",
                                           "enqueue",
                                           "warm_start"};
constexpr std::string_view kObjectiveKeys[] = {"metric", "mode", "value"};
constexpr std::string_view kTpeKeys[] = {"startup_trials", "candidates", "multivariate", "constant_liar"};
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
constexpr std::string_view kModifierKeys[] = {"step", "log", "when"};

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

// `step`, `log` and `when` beside a distribution.
// `when_as_one`: a condition's list of numbers read as one value (resolve_condition decides).
void apply_modifiers(Distribution& d, const toml::table& table, std::string& when_as_one) {
  if (const toml::node* step = table.get("step")) {
    if (d.kind != Distribution::Kind::uniform && d.kind != Distribution::Kind::int_range) {
      throw Problem(fmt::format("step applies to uniform and int; {} has no step", kind_name(d.kind)));
    }
    if (d.kind == Distribution::Kind::int_range && !step->is_integer()) throw Problem("an int's step is an integer");
    if (!step->is_number()) throw Problem("step expects a number > 0");
    const double v =
        step->is_integer() ? static_cast<double>(step->as_integer()->get()) : step->as_floating_point()->get();
    if (!(v > 0) || !std::isfinite(v)) throw Problem(fmt::format("step expects a number > 0, got {}", v));
    const double k = (d.high - d.low) / v;
    // Optuna silently lowers `high` to the last point of the grid; a sweep says so instead.
    if (std::fabs(k - std::round(k)) > 1e-9 * std::max(1.0, k)) {
      throw Problem(
          fmt::format("high - low = {} is not a multiple of step {}", format_double(d.high - d.low), format_double(v)));
    }
    d.step = v;
  }
  if (const toml::node* log = table.get("log")) {
    const auto* b = log->as_boolean();
    if (b == nullptr) throw Problem("log expects true or false");
    if (b->get()) {
      if (d.kind == Distribution::Kind::uniform)
        throw Problem("a float on a log scale is { log_uniform = [low, high] }");
      if (d.kind != Distribution::Kind::int_range) throw Problem(fmt::format("{} takes no log", kind_name(d.kind)));
      if (d.low < 1) throw Problem(fmt::format("log needs low >= 1, got {}", format_double(d.low)));
      if (d.step > 1) throw Problem("log and step do not go together (log integers step by 1)");
      d.log = true;
    }
  }
  if (const toml::node* when = table.get("when")) {
    const auto* w = when->as_table();
    if (w == nullptr || w->size() != 1) {
      throw Problem("when expects one parameter and its value(s), like when = { \"objective.plugin\" = \"sigreg\" }");
    }
    Condition c;
    c.parent = std::string(w->begin()->first.str());
    const toml::node& values = w->begin()->second;
    if (const auto* nested = values.as_table()) {
      (void)nested;
      throw Problem("when: quote a dotted parameter name, like when = { \"objective.plugin\" = \"sigreg\" }");
    }
    if (const auto* list = values.as_array()) {
      if (list->empty()) throw Problem("when expects a value or a non-empty list of values");
      // [2, 4] is two values of `depth`, or one value of a list-valued parameter: the parent's
      // choices decide (resolve_condition).
      for (const auto& item : *list) c.values.push_back(value_text(item));
      if (list->get(0)->is_number()) when_as_one = value_text(values);
    } else {
      c.values.push_back(value_text(values));
    }
    d.when = std::move(c);
  }
}

Distribution distribution_of(const toml::node& node, std::string& when_as_one) {
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
  const toml::key* kind = nullptr;
  const toml::node* body = nullptr;
  int kinds = 0;
  for (auto&& [k, v] : *table) {
    if (is_one_of(k.str(), kModifierKeys)) continue;
    if (!is_one_of(k.str(), kDistributionKeys)) {
      throw Problem(fmt::format("unknown distribution '{}'; valid: {} (with {})", k.str(), joined(kDistributionKeys),
                                joined(kModifierKeys)));
    }
    kind = &k;
    body = &v;
    ++kinds;
  }
  if (kinds != 1) {
    throw Problem(fmt::format("expects exactly one distribution, one of {}; got {}", joined(kDistributionKeys), kinds));
  }
  Distribution d;
  if (kind->str() == "choice") {
    const auto* array = body->as_array();
    if (array == nullptr) throw Problem("choice expects a list of values");
    d.choices = choices_of(*array);
  } else {
    d = range_of(*body, kind->str());
  }
  apply_modifiers(d, *table, when_as_one);
  return d;
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
  if (spec.method == "random" || spec.method == "tpe") {
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
  Reader(std::string file, const toml::table& root, std::string default_name)
      : file_(std::move(file)), root_(root), default_name_(std::move(default_name)) {}

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
    std::optional<Entry> enqueue_entry;
    std::optional<Entry> warm_entry;
    std::optional<Entry> max_parallel_entry;
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
        spec.method = read_one_of(e, "[sweep]", {"grid", "random", "tpe"});
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
        max_parallel_entry = e;
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
      } else if (k == "objective") {
        const toml::table* objective = e.node->as_table();
        if (objective == nullptr) {
          throw error(e, "[sweep]", "expects a table like { metric = \"linear_probe/top1\", mode = \"max\" }");
        }
        spec.objective = read_objective(*objective, e);
      } else if (k == "tpe") {
        const toml::table* tpe = e.node->as_table();
        if (tpe == nullptr) throw error(e, "[sweep]", "expects a table like { startup_trials = 10 }");
        spec.tpe = read_tpe(*tpe);
      } else if (k == "enqueue") {
        enqueue_entry = e;
      } else if (k == "warm_start") {
        const auto* array = e.node->as_array();
        const auto bad = [&] { return error(e, "[sweep]", "expects a list of earlier sweeps' names"); };
        if (array == nullptr) throw bad();
        for (const auto& item : *array) {
          const auto* v = item.as_string();
          if (v == nullptr || v->get().empty()) throw bad();
          spec.warm_start.push_back(v->get());
        }
        warm_entry = e;
      }
    }
    if (spec.name.empty()) spec.name = default_name_;
    if (slurm_entry && spec.launcher != "slurm") {
      throw error(*slurm_entry, "[sweep]",
                  "[sweep.slurm] is read only with launcher = \"slurm\" (set it in [sweep], or remove the table)");
    }

    for (const Entry& e : params) {
      if (e.name == "run.seed") {
        throw error(e, "[sweep.params]", "the seed is not a parameter: list the seeds in [sweep] seeds = [...]");
      }
      try {
        std::string when_as_one;
        spec.params.emplace_back(e.name, distribution_of(*e.node, when_as_one));
        resolve_condition(spec.params, when_as_one);
      } catch (const Problem& p) {
        throw error(e, "[sweep.params]", p.what());
      }
    }
    if (enqueue_entry) spec.enqueue = read_enqueue(*enqueue_entry, spec.params);

    // Rules between keys: only now is the method known, wherever it stood.
    if (spec.method == "random" && spec.trials < 1) {
      const std::string where = trials_entry ? at(*trials_entry) : at(sweep_region);
      throw SweepError(
          fmt::format("{}[sweep] trials: method = \"random\" needs trials >= 1 (how many points to draw)", where));
    }
    if (spec.method == "tpe" && spec.trials < 1) {
      const std::string where = trials_entry ? at(*trials_entry) : at(sweep_region);
      throw SweepError(fmt::format(
          "{}[sweep] trials: method = \"tpe\" needs trials >= 1 (how many points to propose, the budget)", where));
    }
    if (spec.method != "grid" && spec.params.empty()) {
      throw SweepError(
          fmt::format("{}[sweep.params] {} search needs at least one parameter (a seeds-only sweep is a grid)",
                      at(params_table != nullptr ? params_table->source() : sweep_region), spec.method));
    }
    if (spec.method == "tpe" && spec.objective.metric.empty()) {
      throw SweepError(fmt::format(
          "{}[sweep] objective: method = \"tpe\" needs the metric it optimises, like objective = {{ metric = "
          "\"linear_probe/top1\", mode = \"max\" }}",
          at(sweep_region)));
    }
    if (spec.method == "tpe" && spec.launcher == "slurm" && spec.max_parallel < 1) {
      throw SweepError(fmt::format(
          "{}[sweep] max_parallel: method = \"tpe\" with launcher = \"slurm\" needs max_parallel >= 1 (how many "
          "trials run at once; each new point is proposed from the finished ones)",
          max_parallel_entry ? at(*max_parallel_entry) : at(sweep_region)));
    }
    if (enqueue_entry && spec.method == "grid") {
      throw error(*enqueue_entry, "[sweep]", "a grid runs every point already; enqueue is for random and tpe");
    }
    if (enqueue_entry && static_cast<int64_t>(spec.enqueue.size()) > spec.trials) {
      throw error(*enqueue_entry, "[sweep]",
                  fmt::format("{} enqueued points but trials = {}: enqueued points count toward trials",
                              spec.enqueue.size(), spec.trials));
    }
    if (warm_entry && spec.method != "tpe") {
      throw error(*warm_entry, "[sweep]", "warm_start seeds a model of the history: it needs method = \"tpe\"");
    }
    if (warm_entry && std::find(spec.warm_start.begin(), spec.warm_start.end(), spec.name) != spec.warm_start.end()) {
      throw error(*warm_entry, "[sweep]", "a sweep cannot warm-start from itself");
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

  // A condition names an earlier choice parameter and some of its values.
  static void resolve_condition(std::vector<Param>& params, const std::string& when_as_one) {
    Distribution& d = params.back().second;
    if (!d.when) return;
    Condition& c = *d.when;
    const auto parent =
        std::find_if(params.begin(), params.end() - 1, [&](const Param& p) { return p.first == c.parent; });
    if (parent == params.end() - 1) {
      const bool later = c.parent == params.back().first;
      throw Problem(fmt::format("when: {} is {}; a condition names a choice parameter listed before this one", c.parent,
                                later ? "this parameter itself" : "not a parameter listed before it"));
    }
    const Distribution& pd = parent->second;
    if (pd.kind != Distribution::Kind::choice) {
      throw Problem(fmt::format("when: {} is a {} distribution; a condition names a choice parameter", c.parent,
                                kind_name(pd.kind)));
    }
    const auto is_choice = [&](const std::string& v) {
      return std::find(pd.choices.begin(), pd.choices.end(), v) != pd.choices.end();
    };
    if (!when_as_one.empty() && is_choice(when_as_one)) c.values = {when_as_one};
    for (const auto& v : c.values) {
      if (!is_choice(v)) {
        throw Problem(
            fmt::format("when: '{}' is not one of {}'s values ({})", v, c.parent, fmt::join(pd.choices, ", ")));
      }
    }
  }

  ObjectiveSpec read_objective(const toml::table& table, const Entry& where) const {
    ObjectiveSpec o;
    const char* section = "[sweep.objective]";
    for (const Entry& e : ordered(table)) {
      if (!is_one_of(e.name, kObjectiveKeys)) {
        throw SweepError(
            fmt::format("{}{} unknown key '{}'; valid keys: {}", at(e), section, e.name, joined(kObjectiveKeys)));
      }
      if (e.name == "metric") {
        o.metric = read_string(e, section);
        if (o.metric.empty()) throw error(e, section, "expects a metric name like \"linear_probe/top1\"");
      } else if (e.name == "mode") {
        o.maximize = read_one_of(e, section, {"min", "max"}) == "max";
      } else if (e.name == "value") {
        o.value = read_one_of(e, section, {"last", "best"});
      }
    }
    if (o.metric.empty()) throw error(where, "[sweep]", "objective needs metric = \"...\" (a metric the trials log)");
    return o;
  }

  TpeSpec read_tpe(const toml::table& table) const {
    TpeSpec t;
    const char* section = "[sweep.tpe]";
    for (const Entry& e : ordered(table)) {
      if (!is_one_of(e.name, kTpeKeys)) {
        throw SweepError(
            fmt::format("{}{} unknown key '{}'; valid keys: {}", at(e), section, e.name, joined(kTpeKeys)));
      }
      if (e.name == "startup_trials") {
        t.startup_trials = read_int(e, section, 0, kMaxTrials);
      } else if (e.name == "candidates") {
        t.candidates = read_int(e, section, 1, 100000);
      } else {
        const auto* b = e.node->as_boolean();
        if (b == nullptr) throw error(e, section, "expects true or false");
        (e.name == "multivariate" ? t.multivariate : t.constant_liar) = b->get();
      }
    }
    return t;
  }

  std::vector<Point> read_enqueue(const Entry& e, const std::vector<Param>& space) const {
    const auto* array = e.node->as_array();
    const auto shape = [&] {
      return error(e, "[sweep]", "expects a list of points like [{ \"optimization.lr\" = 1e-3 }, ...]");
    };
    if (array == nullptr) throw shape();
    std::vector<Point> points;
    for (size_t i = 0; i < array->size(); ++i) {
      const auto* table = array->get(i)->as_table();
      if (table == nullptr) throw shape();
      std::vector<Entry> keys;
      collect_params(*table, "", keys);
      Point p;
      try {
        for (const Entry& k : keys) p[k.name] = value_text(*k.node);
      } catch (const Problem& problem) {
        throw error(e, "[sweep]", fmt::format("point {}: {}", i + 1, problem.what()));
      }
      const std::string why = point_problem(space, p);
      if (!why.empty()) throw error(e, "[sweep]", fmt::format("point {}: {}", i + 1, why));
      if (std::find(points.begin(), points.end(), p) != points.end()) {
        throw error(e, "[sweep]", fmt::format("point {} repeats an earlier one", i + 1));
      }
      points.push_back(std::move(p));
    }
    return points;
  }

  std::string file_;
  const toml::table& root_;
  std::string default_name_;
};

}  // namespace

SweepSpec load_sweep_spec(const fs::path& file) {
  const toml::table root = config::read_toml_file<SweepError>(file, "sweep");
  SweepSpec spec = Reader(file.string(), root, file.stem().string()).read();
  spec.file = file;
  return spec;
}

ObjectiveSpec effective_objective(const SweepSpec& spec) {
  if (!spec.objective.metric.empty()) return spec.objective;
  ObjectiveSpec o;
  o.metric = spec.pruning.metric;
  o.maximize = spec.pruning.maximize;
  return o;
}

std::vector<Trial> expand_trials(const SweepSpec& spec) {
  const std::string where = spec.file.empty() ? std::string("sweep") : spec.file.string();
  if (spec.seeds.empty()) throw SweepError(fmt::format("{}: [sweep] seeds: expects at least one seed", where));
  std::vector<Point> points;
  if (spec.method == "grid") {
    for (const auto& [key, d] : spec.params) {
      if (d.kind != Distribution::Kind::choice) {
        throw SweepError(fmt::format(
            "{}: [sweep.params] {}: a {} distribution needs method = \"random\" or \"tpe\"; a grid takes a list of "
            "values",
            where, key, kind_name(d.kind)));
      }
      if (d.choices.empty()) throw SweepError(fmt::format("{}: [sweep.params] {}: has no values", where, key));
    }
    if (!trial_count(spec))
      throw SweepError(fmt::format("{}: [sweep] expands to more than {} trials", where, kMaxTrials));
    // An odometer over the lists, the last one turning fastest; a conditional parameter is set
    // only where it exists, so the combinations that differ only in it collapse into one.
    const bool conditional =
        std::any_of(spec.params.begin(), spec.params.end(), [](const Param& p) { return p.second.when.has_value(); });
    std::set<Point> seen;
    std::vector<size_t> at(spec.params.size(), 0);
    while (true) {
      Point point;
      for (size_t i = 0; i < at.size(); ++i) {
        const auto& [key, d] = spec.params[i];
        if (is_active(d, point)) point[key] = d.choices[at[i]];
      }
      if (!conditional || seen.insert(point).second) points.push_back(std::move(point));
      size_t i = at.size();
      while (i > 0 && ++at[i - 1] == spec.params[i - 1].second.choices.size()) at[--i] = 0;
      if (i == 0) break;
    }
  } else if (spec.method == "random") {
    if (spec.trials < 1)
      throw SweepError(fmt::format("{}: [sweep] trials: method = \"random\" needs trials >= 1", where));
    if (!trial_count(spec))
      throw SweepError(fmt::format("{}: [sweep] expands to more than {} trials", where, kMaxTrials));
    points = spec.enqueue;
    std::mt19937_64 rng(spec.sample_seed);
    while (static_cast<int64_t>(points.size()) < spec.trials) points.push_back(draw_point(spec.params, rng));
  } else if (spec.method == "tpe") {
    throw SweepError(fmt::format("{}: [sweep] method = \"tpe\" proposes its points while it runs", where));
  } else {
    throw SweepError(fmt::format("{}: [sweep] method: '{}' is not one of grid, random, tpe", where, spec.method));
  }

  std::vector<Trial> trials;
  trials.reserve(points.size() * spec.seeds.size());
  for (const auto& point : points) {
    for (const Trial& t : trials_of_point(spec, point, static_cast<int64_t>(trials.size()))) trials.push_back(t);
  }
  return trials;
}

std::vector<Trial> trials_of_point(const SweepSpec& spec, const Point& point, int64_t first_index) {
  std::vector<Trial> trials;
  for (int64_t seed : spec.seeds) {
    Trial t;
    t.index = first_index + static_cast<int64_t>(trials.size());
    t.seed = seed;
    t.point = point;
    // In the file's order, so that the run names and `--dry-run` read like the file.
    for (const auto& [key, d] : spec.params) {
      const auto it = point.find(key);
      if (it != point.end()) t.overrides.push_back(key + "=" + it->second);
    }
    t.overrides.push_back(fmt::format("run.seed={}", seed));
    trials.push_back(std::move(t));
  }
  return trials;
}

}  // namespace jepa::sweep
