// `jepa run`, `jepa export`: train an experiment, continue a run, export a run's weights.
#include "cli/commands.hpp"
#include "config/experiment.hpp"
#include "distributed/env.hpp"
#include "distributed/group.hpp"
#include "distributed/launcher.hpp"
#include "loader/registry.hpp"
#include "store/journal.hpp"
#include "store/store.hpp"
#include "train/trainer.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <memory>
#include <optional>

namespace jepa::cli {

namespace {

struct RunOptions {
  std::string file;
  std::vector<std::string> set;
  std::string db = "results/jepa.db";
  bool dry_run = false;
  std::string resume;
  int64_t stop_after = 0;
  bool no_eval = false;
  std::string sweep_trial;  // "SWEEP:INDEX", set by `jepa sweep` for the trials it starts
  bool trial_resume = false;
  int nproc = 1;
  std::string record_to;  // a SLURM trial's folder: records go to its journal, never to --db
  bool profile = false;
  std::string profile_steps;  // "FROM:TO"; implies --profile
};

// --profile-steps FROM:TO: steps FROM to TO (exclusive), 0-based from this process's first step.
std::optional<train::ProfileWindow> profile_window(const RunOptions& o) {
  if (!o.profile && o.profile_steps.empty()) return std::nullopt;
  train::ProfileWindow w;
  if (o.profile_steps.empty()) return w;
  const auto colon = o.profile_steps.find(':');
  try {
    if (colon == std::string::npos) throw std::invalid_argument(o.profile_steps);
    size_t used = 0;
    const auto from = std::stoll(o.profile_steps.substr(0, colon), &used);
    if (used != colon) throw std::invalid_argument(o.profile_steps);
    const auto to_text = o.profile_steps.substr(colon + 1);
    const auto to = std::stoll(to_text, &used);
    if (used != to_text.size() || from < 0 || to <= from) throw std::invalid_argument(o.profile_steps);
    w.skip = from;
    w.steps = to - from;
  } catch (const std::exception&) {
    throw UsageError(
        fmt::format("--profile-steps expects FROM:TO with 0 <= FROM < TO, e.g. 5:10, not '{}'", o.profile_steps));
  }
  return w;
}

std::optional<store::TrialRef> parse_trial(const std::string& text) {
  if (text.empty()) return std::nullopt;
  const auto colon = text.find(':');
  try {
    if (colon == std::string::npos) throw std::invalid_argument(text);
    return store::TrialRef{std::stoll(text.substr(0, colon)), std::stoll(text.substr(colon + 1))};
  } catch (const std::exception&) {
    throw UsageError(fmt::format("--sweep-trial expects SWEEP:INDEX, not '{}'", text));
  }
}

int64_t resolve_run(store::Store& store, const std::string& id_or_name) {
  const auto run = store.find_run(id_or_name);
  if (!run) throw UsageError(fmt::format("no run '{}' in {}", id_or_name, store.path().string()));
  return run->id;
}

// The experiment of `jepa run`: from FILE and --set, or a stored run's config for --resume
// (which must exist and not be COMPLETED).
config::Experiment experiment_of(const RunOptions& o, const loader::Registry& reg, int64_t* resume_id) {
  if (!o.resume.empty()) {
    if (!o.file.empty()) throw UsageError("--resume continues a stored run with its stored config: give no FILE");
    if (!o.set.empty()) throw UsageError("--resume takes no --set: a resumed run keeps its stored config");
    store::Store store(o.db);
    const int64_t id = resolve_run(store, o.resume);
    const auto run = store.find_run(id);
    if (run->status == store::RunStatus::completed) {
      throw UsageError(fmt::format("run {} ({}) is already COMPLETED", id, run->name));
    }
    if (resume_id != nullptr) *resume_id = id;
    return config::experiment_from_json(nlohmann::json::parse(run->config_json), reg);
  }
  if (o.file.empty()) throw UsageError("jepa run needs an experiment FILE (or --resume RUN)");
  return config::load_experiment(o.file, o.set, reg);
}

train::TrainOptions train_options(const RunOptions& o, std::optional<int64_t> resume_id) {
  train::TrainOptions t;
  t.resume_run = resume_id;
  t.restart_without_checkpoint = o.trial_resume;
  t.stop_after = o.stop_after;
  t.skip_evaluation = o.no_eval;
  t.profile = profile_window(o);
  if (!resume_id) t.trial = parse_trial(o.sweep_trial);
  return t;
}

int report(const RunOptions& o, const std::string& name, const train::TrainOutcome& out) {
  if (!o.record_to.empty()) {
    fmt::print("run {} ({}): {}{}\n", out.run_id, name, store::status_name(out.status),
               out.reason.empty() ? "" : " - " + out.reason);
  } else if (o.resume.empty()) {
    fmt::print("run {} ({}): {}{}\n", out.run_id, name, store::status_name(out.status),
               out.reason.empty() ? "" : " - " + out.reason);
    fmt::print("results in {}: sqlite3 {} \"select * from runs where id = {}\"\n", o.db, o.db, out.run_id);
  } else {
    fmt::print("run {}: {}{}\n", out.run_id, store::status_name(out.status),
               out.reason.empty() ? "" : " - " + out.reason);
  }
  return out.status == store::RunStatus::failed ? 1 : 0;
}

// --record-to: a SLURM trial of `jepa sweep`. Its run exists in the host's database already (the
// host created it before submitting the job); a journal that recorded the run's start means this
// job ran before (requeued, preempted, or resubmitted after a lost node): it continues the run
// from its last checkpoint instead of starting another.
struct RecordedTrial {
  std::unique_ptr<store::JournalRecorder> recorder;
  std::optional<config::Experiment> experiment;
  train::TrainOptions options;
};

RecordedTrial recorded_trial(const RunOptions& o, const loader::Registry& reg) {
  if (!o.resume.empty()) throw UsageError("--record-to starts or continues a sweep trial: give no --resume");
  RecordedTrial r;
  r.recorder = std::make_unique<store::JournalRecorder>(o.record_to);
  r.options.stop_after = o.stop_after;
  r.options.skip_evaluation = o.no_eval;
  // The sweep host continues a stopped trial, never `jepa run` (the run's records are its).
  if (!r.recorder->sweep_name().empty()) {
    r.options.resume_hint = fmt::format("jepa sweep --resume {}", r.recorder->sweep_name());
  }
  if (const auto created = r.recorder->created()) {
    r.experiment.emplace(
        config::experiment_from_json(nlohmann::json::parse(created->at("config_json").get<std::string>()), reg));
    r.options.resume_run = r.recorder->run_id();
    r.options.restart_without_checkpoint = true;
  } else {
    if (o.file.empty()) throw UsageError("jepa run --record-to needs the experiment FILE");
    r.experiment.emplace(config::load_experiment(o.file, o.set, reg));
  }
  return r;
}

// `--nproc N`: the same command line for each rank, without --nproc.
std::vector<std::string> rank_command_line(const std::vector<std::string>& argv) {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  std::vector<std::string> out{ec ? argv.at(0) : self.string()};
  for (size_t i = 1; i < argv.size(); ++i) {
    if (argv[i] == "--nproc") {
      ++i;
      continue;
    }
    if (argv[i].rfind("--nproc=", 0) == 0) continue;
    out.push_back(argv[i]);
  }
  return out;
}

int launch_ranks(const GlobalOptions& global, const RunOptions& o, const loader::Registry& reg) {
  // Checked once here, before any rank starts: a bad experiment is one error, not N.
  const auto experiment = experiment_of(o, reg, nullptr);
  if (o.dry_run) {
    train::describe_experiment(experiment);
    fmt::print("dry run ok: the experiment is valid and its models build ({} ranks of batch {})\n", o.nproc,
               experiment.batch_size);
    return 0;
  }
  dist::LaunchOptions l;
  l.nproc = o.nproc;
  l.rank_args = rank_command_line(global.argv);
  l.db = o.db;
  l.grace = std::chrono::milliseconds(static_cast<int64_t>((experiment.dist_timeout + 30.0) * 1000.0));
  l.threads_per_rank = experiment.threads;
  return dist::launch_local(l);
}

// One rank of a torchrun, SLURM or `--nproc` job. Rank 0 reads the experiment and the database
// and sends the resolved config to the others, so every rank trains exactly the same thing.
int run_as_rank(const RunOptions& o, const loader::Registry& reg, const dist::DistEnv& env) {
  if (o.dry_run) {
    if (env.rank != 0) return 0;
    train::describe_experiment(experiment_of(o, reg, nullptr));
    fmt::print("dry run ok: the experiment is valid and its models build (rank 0 of {})\n", env.world_size);
    return 0;
  }
  dist::Group group(env, dist::GroupOptions{});
  train::TrainOptions t;
  std::unique_ptr<store::Recorder> store;
  std::optional<config::Experiment> experiment;
  if (group.leader()) {
    try {
      if (!o.record_to.empty()) {
        auto trial = recorded_trial(o, reg);
        experiment = std::move(trial.experiment);
        t = trial.options;
        store = std::move(trial.recorder);
      } else {
        int64_t resume_id = 0;
        experiment.emplace(experiment_of(o, reg, &resume_id));
        t = train_options(o, o.resume.empty() ? std::nullopt : std::optional<int64_t>(resume_id));
        store = std::make_unique<store::Store>(o.db);
      }
      group.publish("setup", nlohmann::json{{"config", experiment->resolved}}.dump());
    } catch (const std::exception& ex) {
      group.publish("setup", nlohmann::json{{"error", ex.what()}}.dump());
      throw;
    }
  } else {
    const auto setup = nlohmann::json::parse(group.fetch("setup", group.options().timeout));
    if (setup.contains("error")) {
      fmt::print(stderr, "rank {}: rank 0 could not set up the run\n", env.rank);
      return 1;
    }
    experiment.emplace(config::experiment_from_json(setup["config"], reg));
    t = train_options(o, std::nullopt);
    t.progress = false;
  }
  t.group = &group;
  const auto out = train::run_experiment(*experiment, store.get(), t);
  if (!group.leader()) {
    if (out.status == store::RunStatus::failed) fmt::print(stderr, "rank {}: {}\n", env.rank, out.reason);
    return out.status == store::RunStatus::failed ? 1 : 0;
  }
  return report(o, experiment->name, out);
}

int run_run(const GlobalOptions& global, const RunOptions& o) {
  const loader::Registry reg = discover_plugins(global);
  std::optional<dist::DistEnv> env;
  try {
    env = dist::read_env();
  } catch (const dist::EnvError& ex) {
    throw UsageError(fmt::format("the distributed launch environment is incomplete: {}", ex.what()));
  }
  if (o.nproc > 1) {
    if (env) {
      throw UsageError(
          fmt::format("--nproc starts its own ranks, but this process is already rank {} of {} (set "
                      "by {}): leave --nproc out",
                      env->rank, env->world_size, env->launcher));
    }
    return launch_ranks(global, o, reg);
  }
  if (env) return run_as_rank(o, reg, *env);
  if (!o.record_to.empty()) {
    if (o.dry_run) throw UsageError("--dry-run checks an experiment FILE, not a sweep trial");
    auto trial = recorded_trial(o, reg);
    return report(o, trial.experiment->name,
                  train::run_experiment(*trial.experiment, trial.recorder.get(), trial.options));
  }

  int64_t resume_id = 0;
  const auto experiment = experiment_of(o, reg, &resume_id);
  if (o.dry_run) {
    if (!o.resume.empty()) throw UsageError("--dry-run checks an experiment FILE, not a stored run");
    train::describe_experiment(experiment);
    fmt::print("dry run ok: the experiment is valid and its models build\n");
    return 0;
  }
  store::Store store(o.db);
  const auto t = train_options(o, o.resume.empty() ? std::nullopt : std::optional<int64_t>(resume_id));
  return report(o, experiment.name, train::run_experiment(experiment, &store, t));
}

struct ExportOptions {
  std::vector<std::string> runs;
  std::string output;
  std::string db = "results/jepa.db";
  bool no_prefix = false;
  std::string format;
  std::optional<std::string> sweep;
  std::string where;
  bool history = false;
  std::vector<std::string> metrics;
};

std::string export_format(const ExportOptions& o) {
  if (!o.format.empty()) return o.format;
  const std::string ext = std::filesystem::path(o.output).extension().string();
  if (ext == ".csv") return "csv";
  if (ext == ".json") return "json";
  if (ext == ".pt" || ext == ".pth") return "pt";
  if (o.sweep || !o.where.empty() || o.history || o.runs.size() != 1) {
    throw UsageError("say which export: --format csv or json (runs and metrics), or pt (one run's weights)");
  }
  return "pt";
}

int run_export(const GlobalOptions& global, const ExportOptions& o) {
  const std::string format = export_format(o);
  if (format != "pt") {
    return run_export_table(ExportTableOptions{o.runs, o.sweep, o.where, format, o.history, o.metrics, o.output, o.db});
  }
  if (o.runs.size() != 1) throw UsageError("--format pt exports the weights of exactly one run");
  if (o.output.empty() || o.output == "-") throw UsageError("--format pt needs an output file: -o FILE.pt");
  if (o.sweep || !o.where.empty() || o.history) {
    throw UsageError("--sweep, --where and --history select runs for --format csv or json, not for weights");
  }
  const loader::Registry reg = discover_plugins(global);
  store::Store store(o.db);
  const int64_t id = resolve_run(store, o.runs[0]);
  std::vector<std::string> keys;
  for (const auto& key : train::export_run(id, o.output, !o.no_prefix, reg, store)) keys.push_back("'" + key + "'");
  fmt::print("wrote {}: torch.load() gives {{{}}}\n", o.output, fmt::join(keys, ", "));
  return 0;
}

struct EvalOptions {
  std::string run;
  std::string evaluator;
  std::vector<std::string> set;
  bool baselines = false;
  std::string db = "results/jepa.db";
};

int run_eval(const GlobalOptions& global, const EvalOptions& o) {
  const loader::Registry reg = discover_plugins(global);
  const loader::ComponentInfo* comp = reg.find(loader::Kind::evaluator, o.evaluator);
  if (comp == nullptr) {
    throw UsageError(
        fmt::format("unknown evaluator '{}'; available: {}", o.evaluator, reg.available(loader::Kind::evaluator)));
  }
  std::vector<std::pair<std::string, std::string>> overrides;
  for (const auto& s : o.set) overrides.push_back(config::split_assignment(s));
  config::ComponentChoice choice{comp->id, config::resolve_params(*comp, overrides), comp};
  store::Store store(o.db);
  const int64_t id = resolve_run(store, o.run);
  for (const auto& [name, value] : train::evaluate_run(id, choice, reg, store, o.baselines)) {
    fmt::print("{} = {:.4g}\n", name, value);
  }
  return 0;
}

}  // namespace

Command add_eval_command(CLI::App& parent, const GlobalOptions& global) {
  auto o = std::make_shared<EvalOptions>();
  auto* sub = parent.add_subcommand("eval", "Evaluate a stored run's target encoder (latest checkpoint)");
  sub->add_option("run", o->run, "Run id or name")->required()->type_name("RUN");
  sub->add_option("--evaluator", o->evaluator, "Evaluator component id, e.g. linear_probe")->required();
  sub->add_option("--set", o->set, "Override an evaluator parameter: key=value (repeatable)")->type_name("KEY=VALUE");
  sub->add_flag("--baselines", o->baselines,
                "Also run it on raw pixels and on the run's encoder at initialisation (same parameters, data and "
                "precision), recorded as <metric>@raw_pixels and <metric>@random_init");
  sub->add_option("--db", o->db, "Results database")->capture_default_str();
  sub->footer(
      "Examples:\n"
      "  jepa eval 3 --evaluator linear_probe\n"
      "  jepa eval 3 --evaluator linear_probe --set last_layers=4 --set limit_train=20000\n"
      "  jepa eval 3 --evaluator linear_probe --set pool_grid=3 --baselines   # a readout beside its baselines\n"
      "Results are recorded with the run (evaluations table, and metrics as <evaluator>/<metric>).");
  return {sub, [&global, o] { return run_eval(global, *o); }};
}

Command add_run_command(CLI::App& parent, const GlobalOptions& global) {
  auto o = std::make_shared<RunOptions>();
  auto* sub = parent.add_subcommand("run", "Train an experiment (TOML), evaluate it, record everything in SQLite");
  sub->add_option("file", o->file, "Experiment file, e.g. experiments/quickstart.toml")->type_name("FILE");
  sub->add_option("--set", o->set,
                  "Override a config value: section.key=value (repeatable), e.g. "
                  "optimization.lr=0.002, encoder.params.depth=4, masking.strategy=random")
      ->type_name("KEY=VALUE");
  sub->add_option("--db", o->db, "Results database")->capture_default_str();
  sub->add_flag("--dry-run", o->dry_run, "Validate the experiment and build its models; train nothing");
  sub->add_option("--resume", o->resume, "Continue a stopped, killed or failed run from its latest checkpoint")
      ->type_name("RUN");
  sub->add_option("--stop-after", o->stop_after, "Stop (with a checkpoint) after this many steps; resume later")
      ->type_name("STEPS");
  sub->add_flag("--no-eval", o->no_eval, "Skip the evaluators at the end");
  sub->add_flag(
      "--profile", o->profile,
      "Profile 5 steps after 5 of warm-up (--profile-steps 5:10; Kineto: CPU operators, and CUDA kernels on GPUs); the "
      "Chrome trace goes next to the checkpoint (rank 0) and is recorded as an artifact of kind profile");
  sub->add_option("--profile-steps", o->profile_steps,
                  "The steps to profile, FROM:TO (TO excluded, counted from this process's first step); "
                  "implies --profile")
      ->type_name("FROM:TO");
  sub->add_option("--nproc", o->nproc,
                  "Data-parallel ranks on this machine (c10d: NCCL on GPUs, Gloo on CPU); batch_size is per rank. "
                  "Under torchrun or srun leave it out: the ranks join the job from the environment")
      ->check(CLI::Range(1, 1024))
      ->type_name("N");
  // Set by `jepa sweep` for the trials it starts; not for people.
  sub->add_option("--sweep-trial", o->sweep_trial)->group("");
  sub->add_flag("--trial-resume", o->trial_resume)->group("");
  sub->add_option("--record-to", o->record_to)->group("");
  sub->footer(
      "Examples:\n"
      "  jepa run experiments/quickstart.toml\n"
      "  jepa run experiments/quickstart.toml --set optimization.epochs=2 --set masking.params.npred=2\n"
      "  jepa run experiments/ijepa_vith14_in1k.toml --dry-run\n"
      "  jepa run --resume 3\n"
      "  jepa run experiments/quickstart.toml --profile --set optimization.max_steps=20   # a Chrome trace\n"
      "  jepa run experiments/quickstart.toml --nproc 2     # 2 ranks (Gloo on CPU), batch 64 each\n"
      "  torchrun --no-python --nproc-per-node 8 --nnodes 2 ... jepa-engine run FILE  # each rank joins\n"
      "  srun --ntasks 16 jepa-engine run FILE          # (from RANK/WORLD_SIZE/MASTER_* or SLURM_*)\n"
      "Ctrl-C stops after the current step, writes a checkpoint and records the run as KILLED;\n"
      "`jepa run --resume RUN` continues it exactly (with the same --nproc). A rank that dies or\n"
      "hangs longer than [distributed] timeout ends the run as FAILED, naming the rank.\n"
      "Fashion-MNIST ([data] dataset = \"fashion_mnist\", the default) is read from [data] path; left\n"
      "empty, from $JEPA_FASHION_MNIST when set, else /usr/share/datasets/fashion-mnist (Debian's\n"
      "dataset-fashion-mnist).");
  return {sub, [&global, o] { return run_run(global, *o); }};
}

Command add_export_command(CLI::App& parent, const GlobalOptions& global) {
  auto o = std::make_shared<ExportOptions>();
  auto* sub = parent.add_subcommand(
      "export", "Write a run's weights for Python (torch.load, upstream's key names), or runs and metrics as CSV/JSON");
  sub->add_option("runs", o->runs, "Run ids or names (csv/json: none = every run)")->type_name("RUN...");
  sub->add_option("-o,--output", o->output, "Output file; csv/json print to standard output without it")
      ->type_name("FILE");
  sub->add_option("--format", o->format, "pt (weights), csv or json; default: from the output's extension")
      ->check(CLI::IsMember({"pt", "csv", "json"}));
  sub->add_option("--sweep", o->sweep, "csv/json: the runs of this sweep")->type_name("SWEEP");
  sub->add_option("--where", o->where, "csv/json: runs matching a filter (as in `jepa runs`)")->type_name("EXPR");
  sub->add_flag("--history", o->history,
                "csv/json: every metric point (run_id, run_name, key, step, value, time), not one row per run");
  sub->add_option("--metric", o->metrics, "With --history: only these metric keys (repeatable)")->type_name("KEY");
  sub->add_option("--db", o->db, "Results database")->capture_default_str();
  sub->add_flag("--no-module-prefix", o->no_prefix,
                "pt: key names without upstream's DistributedDataParallel 'module.' prefix");
  sub->footer(
      "Examples:\n"
      "  jepa export 3 -o weights.pt\n"
      "  jepa export --sweep lr-grid -o lr-grid.csv     # a row per run: param:* and metric:* columns\n"
      "  jepa export 3 4 --history --metric train/loss --format csv\n"
      "In Python:\n"
      "  ckpt = torch.load('weights.pt')\n"
      "  encoder.load_state_dict(ckpt['target_encoder'])   # upstream's VisionTransformer, DDP-wrapped\n"
      "  runs = pandas.read_csv('lr-grid.csv')");
  return {sub, [&global, o] { return run_export(global, *o); }};
}

}  // namespace jepa::cli
