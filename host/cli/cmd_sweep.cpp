// `jepa sweep`: run a hyper-parameter sweep (an experiment plus [sweep]) across the machine's
// GPUs or CPU slots, each trial in its own process; `--resume` finishes an interrupted sweep.
#include "cli/commands.hpp"
#include "loader/registry.hpp"
#include "store/store.hpp"
#include "sweep/proposer.hpp"
#include "sweep/scheduler.hpp"
#include "sweep/spec_json.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <climits>
#include <cmath>
#include <memory>
#include <optional>

namespace jepa::cli {
namespace {

// The shell's status for "stopped by Ctrl-C": the sweep is recorded and can be resumed.
constexpr int kInterrupted = 130;

struct SweepOptions {
  std::string file;
  std::string db = "results/jepa.db";
  bool dry_run = false;
  bool create = false;
  std::string resume;
};

struct AskTellOptions {
  std::string sweep;
  std::string db = "results/jepa.db";
  int64_t index = -1;
  std::string value;
  bool failed = false;
  bool pruned = false;
  std::optional<int64_t> step;
  std::string reason;
};

// The recorded sweep NAME, and a Proposer over it.
struct RecordedSweep {
  std::unique_ptr<store::Store> store;
  int64_t id = 0;
  nlohmann::json spec_json;
  sweep::SweepSpec spec;
};

RecordedSweep open_recorded(const AskTellOptions& o) {
  if (!std::filesystem::exists(o.db)) {
    throw UsageError(fmt::format("no results database at {} (pass the sweep's --db)", o.db));
  }
  RecordedSweep r;
  r.store = std::make_unique<store::Store>(o.db);
  const auto sweep = r.store->find_sweep(o.sweep);
  if (!sweep) throw UsageError(fmt::format("no sweep '{}' in {}", o.sweep, o.db));
  r.id = sweep->id;
  r.spec_json = nlohmann::json::parse(sweep->spec_json);
  r.spec = sweep::spec_from_json(r.spec_json);
  r.spec.file = r.spec_json.value("experiment", std::string());
  return r;
}

int run_ask(const AskTellOptions& o) {
  try {
    RecordedSweep r = open_recorded(o);
    sweep::Proposer proposer(*r.store, r.id, r.spec);
    const auto h = proposer.ask_external();
    nlohmann::json params = nlohmann::json::object();
    for (const auto& [k, v] : h.trial.point) params[k] = v;
    std::string command = "jepa run " + r.spec.file.string();
    for (const auto& s : h.trial.overrides) command += " --set " + s;
    const nlohmann::json out{{"sweep", r.spec.name},
                             {"index", h.trial.index},
                             {"seed", h.trial.seed},
                             {"params", params},
                             {"set", h.trial.overrides},
                             {"run", h.run_id},
                             {"objective", sweep::effective_objective(r.spec).metric},
                             {"command", command}};
    fmt::print("{}\n", out.dump());
    return 0;
  } catch (const sweep::SweepError& e) {
    throw UsageError(e.what());
  }
}

int run_tell(const AskTellOptions& o) {
  try {
    if (o.failed && o.pruned) throw UsageError("tell: --failed and --pruned exclude each other");
    std::optional<double> value;
    if (!o.value.empty()) {
      char* end = nullptr;
      const double v = std::strtod(o.value.c_str(), &end);
      if (end != o.value.c_str() + o.value.size() || !std::isfinite(v)) {
        throw UsageError(
            fmt::format("tell: VALUE '{}' is not a finite number (a trial without a result: --failed)", o.value));
      }
      value = v;
    } else if (!o.failed) {
      throw UsageError("tell: give the trial's VALUE (or --failed)");
    }
    if (o.pruned && !o.step) throw UsageError("tell: --pruned needs --step (how far the trial got)");
    RecordedSweep r = open_recorded(o);
    sweep::Proposer proposer(*r.store, r.id, r.spec);
    const auto outcome = o.failed   ? sweep::Proposer::Outcome::failed
                         : o.pruned ? sweep::Proposer::Outcome::pruned
                                    : sweep::Proposer::Outcome::completed;
    proposer.tell(o.index, outcome, value, o.step, o.reason);
    fmt::print("sweep {}: trial {} {}\n", r.spec.name, o.index,
               o.failed   ? "FAILED"
               : o.pruned ? "PRUNED"
                          : fmt::format("COMPLETED, {} = {}", sweep::effective_objective(r.spec).metric, o.value));
    return 0;
  } catch (const sweep::SweepError& e) {
    throw UsageError(e.what());
  }
}

std::filesystem::path self_executable() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) throw std::runtime_error("cannot find the running executable (/proc/self/exe)");
  return std::string(buf, static_cast<size_t>(n));
}

int run_sweep(const GlobalOptions& global, const SweepOptions& o) {
  try {
    sweep::SweepRunOptions ro;
    ro.engine = self_executable();
    ro.db = o.db;
    ro.plugin_paths = global.plugin_paths;
    ro.create_only = o.create;
    if (!o.resume.empty()) {
      if (!o.file.empty()) throw UsageError("--resume finishes a recorded sweep: give no FILE");
      if (!std::filesystem::exists(o.db)) {
        throw UsageError(fmt::format("no results database at {} (pass the sweep's --db)", o.db));
      }
      store::Store store(o.db);
      return sweep::resume_sweep(o.resume, store, ro) ? 0 : kInterrupted;
    }
    if (o.file.empty()) throw UsageError("jepa sweep needs a sweep FILE (or --resume SWEEP)");
    const loader::Registry reg = discover_plugins(global);
    if (o.dry_run) {
      sweep::describe_sweep(o.file, reg);
      fmt::print("dry run ok: every trial is valid\n");
      return 0;
    }
    return sweep::start_sweep(o.file, reg, ro) ? 0 : kInterrupted;
  } catch (const sweep::SweepError& e) {
    throw UsageError(e.what());
  }
}

}  // namespace

Command add_sweep_command(CLI::App& parent, const GlobalOptions& global) {
  auto o = std::make_shared<SweepOptions>();
  auto* sub = parent.add_subcommand(
      "sweep", "Run a hyper-parameter sweep: every trial in its own process, on GPUs or CPU slots, resumable");
  sub->add_option("file", o->file, "Sweep file: an experiment with a [sweep] table")->type_name("FILE");
  sub->add_option("--db", o->db, "Results database")->capture_default_str();
  sub->add_flag("--dry-run", o->dry_run, "Expand and validate the trials and print them; run nothing");
  sub->add_flag("--create", o->create,
                "Record the sweep (and a grid's or random search's trials) without running anything: drive it with "
                "`jepa sweep ask/tell`, or run it with --resume");
  sub->add_option("--resume", o->resume, "Finish a recorded sweep (name or id) after an interruption or a crash")
      ->type_name("SWEEP");
  sub->footer(
      "Examples:\n"
      "  jepa sweep experiments/sweep_quickstart.toml --dry-run\n"
      "  jepa sweep experiments/sweep_quickstart.toml\n"
      "  jepa sweep --resume sweep_quickstart      # after Ctrl-C, a crash or kill -9 of the sweep host\n"
      "  jepa compare --sweep sweep_quickstart\n"
      "  jepa sweep experiments/sweep_tpe.toml      # TPE: each point proposed from the finished trials\n"
      "  jepa sweep experiments/sweep_tpe.toml --create && jepa sweep ask sweep_tpe   # trials run elsewhere\n"
      "Trials that crash are recorded FAILED with their exit status or signal and the tail of their log\n"
      "(results/sweeps/<id>/logs/); finished trials are never run again; interrupted ones continue\n"
      "from their last checkpoint. The [sweep] table is documented in host/sweep/spec.hpp.");
  auto ask_o = std::make_shared<AskTellOptions>();
  auto* ask = sub->add_subcommand(
      "ask", "Hand out the next trial of a TPE sweep to run elsewhere (a script, a notebook, another scheduler)");
  ask->add_option("sweep", ask_o->sweep, "The recorded sweep (name or id)")->required()->type_name("SWEEP");
  ask->add_option("--db", ask_o->db, "Results database")->capture_default_str();
  ask->footer(
      "Prints one JSON line: {\"index\", \"seed\", \"params\", \"set\": [\"key=value\", ...], \"run\", \"objective\",\n"
      "\"command\"}. The trial's run is created RUNNING at once, so concurrent askers never get the same\n"
      "trial; report its result with `jepa sweep tell SWEEP INDEX VALUE`. Example:\n"
      "  t=$(jepa sweep ask sweep_tpe); i=$(echo \"$t\" | jq .index)\n"
      "  ... train with the parameters in $t ...\n"
      "  jepa sweep tell sweep_tpe $i 0.83");
  auto tell_o = std::make_shared<AskTellOptions>();
  auto* tell = sub->add_subcommand("tell", "Record the result of a trial handed out by `jepa sweep ask`");
  tell->add_option("sweep", tell_o->sweep, "The recorded sweep (name or id)")->required()->type_name("SWEEP");
  tell->add_option("index", tell_o->index, "The trial's index (from ask)")->required()->type_name("INDEX");
  tell->add_option("value", tell_o->value, "The objective's value (pruned: the pruning metric's)")->type_name("VALUE");
  tell->add_flag("--failed", tell_o->failed, "The trial failed: TPE leaves it out");
  tell->add_flag("--pruned", tell_o->pruned, "The trial was stopped early at --step, VALUE being its last value");
  tell->add_option("--step", tell_o->step, "The step the value belongs to")->type_name("N");
  tell->add_option("--reason", tell_o->reason, "Why it failed or was pruned (stored with the run)");
  tell->add_option("--db", tell_o->db, "Results database")->capture_default_str();
  tell->footer(
      "A trial gets one result: telling it again, telling a trial the sweep runs itself, or a VALUE that is\n"
      "not a finite number is an error that changes nothing.");
  sub->require_subcommand(0, 1);
  ask->callback([] {});
  tell->callback([] {});
  return {sub, [&global, o, ask, ask_o, tell, tell_o] {
            if (ask->parsed()) return run_ask(*ask_o);
            if (tell->parsed()) return run_tell(*tell_o);
            return run_sweep(global, *o);
          }};
}

}  // namespace jepa::cli
