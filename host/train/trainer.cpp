#include "train/trainer.hpp"

#include "loader/masking_strategy.hpp"
#include "train/checkpoint.hpp"
#include "train/environment.hpp"
#include "train/evaluation.hpp"
#include "train/heartbeat.hpp"
#include "train/models.hpp"
#include "train/progress.hpp"
#include "train/step.hpp"
#include "train/trial_pruner.hpp"

#include <fmt/format.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <thread>

namespace jepa::train {

namespace fs = std::filesystem;
using config::ConfigError;
using config::Experiment;

namespace {

// ------------------------------------------------------------------ process-wide settings

std::atomic<int> g_signal{0};
extern "C" void on_signal(int sig) {
  g_signal.store(sig);
  // A second Ctrl-C ends the process at once, for whoever cannot wait for the step to finish.
  std::signal(sig, SIG_DFL);
}

// Installs SIGINT/SIGTERM handlers for the duration of a run: the loop finishes its step,
// checkpoints and records the run as KILLED, instead of dying with a RUNNING row.
class SignalScope {
 public:
  SignalScope() {
    g_signal.store(0);
    old_int_ = std::signal(SIGINT, on_signal);
    old_term_ = std::signal(SIGTERM, on_signal);
  }
  ~SignalScope() {
    std::signal(SIGINT, old_int_);
    std::signal(SIGTERM, old_term_);
  }
  SignalScope(const SignalScope&) = delete;
  SignalScope& operator=(const SignalScope&) = delete;

 private:
  void (*old_int_)(int);
  void (*old_term_)(int);
};

torch::Device pick_device(const std::string& wanted) {
  if (wanted == "cpu") return torch::kCPU;
  if (wanted == "cuda") {
    if (!torch::cuda::is_available()) {
      throw ConfigError("[run] device = \"cuda\", but this LibTorch build or machine has no CUDA device");
    }
    return torch::kCUDA;
  }
  return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
}

void set_threads(int threads) {
  // LibTorch starts with one thread on some builds (Debian's): always set it explicitly.
  const int n = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(n);
}

// ------------------------------------------------------------------ models

// Checks that images of the configured size go through the encoder and match its grid, so a
// mismatch is a clear configuration error instead of a shape error deep inside a step.
void check_shapes(const Experiment& e, Models& m, int channels, torch::Device device) {
  const auto grid = m.encoder->patch_grid();
  torch::NoGradGuard no_grad;
  const auto probe = torch::zeros({1, channels, e.image_size, e.image_size}, torch::TensorOptions().device(device));
  int64_t tokens = 0;
  try {
    tokens = m.encoder->forward(probe, {}).size(1);
  } catch (const std::exception& ex) {
    std::string what = ex.what();
    throw ConfigError(
        fmt::format("[data] image_size = {} with {} channel(s) does not fit encoder '{}' (patch grid {}x{}): {}",
                    e.image_size, channels, e.encoder.id, grid[0], grid[1], what.substr(0, what.find('\n'))));
  }
  if (tokens != grid[0] * grid[1]) {
    throw ConfigError(fmt::format("[data] image_size = {} gives {} tokens, but encoder '{}' has a {}x{} grid",
                                  e.image_size, tokens, e.encoder.id, grid[0], grid[1]));
  }
}

std::vector<store::PluginRecord> plugin_records(const Experiment& e) {
  std::vector<store::PluginRecord> out;
  auto add = [&](const config::ComponentChoice& c) {
    const auto* info = c.component;
    out.push_back({loader::kind_name(info->kind), info->id, info->version, info->plugin->name, info->plugin->version,
                   info->plugin->path.string(), info->plugin->sha256, info->plugin->fingerprint.describe()});
  };
  add(e.masking);
  add(e.encoder);
  add(e.predictor);
  for (const auto& ev : e.evaluators) add(ev);
  return out;
}

// Run ids are per database: by default checkpoints live beside the database they belong to.
fs::path checkpoint_path(const Experiment& e, const store::Store& store, int64_t run_id) {
  const fs::path dir = e.checkpoint_dir.empty()
                           ? (store.path().has_parent_path() ? store.path().parent_path() : fs::path(".")) / "runs"
                           : fs::path(e.checkpoint_dir);
  return fs::absolute(dir / std::to_string(run_id) / "checkpoint.pt");
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

// ------------------------------------------------------------------ the run

void describe_experiment(const Experiment& e) {
  set_threads(e.threads);
  const torch::Device device = torch::kCPU;  // a dry run only builds: no accelerator needed
  torch::manual_seed(e.seed);
  const int channels = dataset_channels(e);  // a dry run reads no data
  Models m = build_models(e, device);
  const auto grid = m.encoder->patch_grid();
  fmt::print("dry run: {} ({})\n", e.name, e.source.string());
  fmt::print("  encoder   {} : {:.3f} M trainable parameters, width {}, {} heads, depth {}, grid {}x{}\n", e.encoder.id,
             count_trainable(*m.encoder) / 1e6, m.encoder->embed_dim(), m.encoder->num_heads(), m.encoder->depth(),
             grid[0], grid[1]);
  fmt::print("  predictor {} : {:.3f} M trainable parameters\n", e.predictor.id, count_trainable(*m.predictor) / 1e6);
  loader::MaskingStrategy masking(*e.masking.component, e.masking.params);
  const auto s =
      masking.sample({static_cast<int>(grid[0]), static_cast<int>(grid[1]), static_cast<int>(e.batch_size), e.seed, 0});
  fmt::print("  masking   {} : context {} x {} patches, targets {} x {} patches (batch {}, step 0)\n", e.masking.id,
             s.context_blocks, s.context_length, s.target_blocks, s.target_length, e.batch_size);
  const int64_t params = count_trainable(*m.encoder) + count_trainable(*m.predictor);
  if (params < 100'000'000) {
    check_shapes(e, m, channels, device);
    fmt::print("  shapes    a {}x{} image gives {} tokens: ok\n", e.image_size, e.image_size, grid[0] * grid[1]);
  } else {
    fmt::print("  shapes    (forward check skipped for a {:.0f} M parameter model)\n", params / 1e6);
  }
  fmt::print("  optimizer AdamW, lr {} -> {} (warmup {} epochs from {}), wd {} -> {}, ema {} -> {}\n", e.lr, e.final_lr,
             e.warmup, e.start_lr, e.weight_decay, e.final_weight_decay, e.ema[0], e.ema[1]);
  if (e.evaluators.empty()) fmt::print("  evaluation (none)\n");
  for (const auto& ev : e.evaluators) {
    std::vector<std::string> when;
    if (ev.every > 0) when.push_back(fmt::format("every {} steps", ev.every));
    if (ev.at_end) when.push_back("at the end");
    if (ev.stop_rule) when.push_back(fmt::format("stop when {}", ev.stop_rule->text()));
    fmt::print("  evaluation {} : {}\n", ev.id,
               when.empty() ? std::string("never") : fmt::format("{}", fmt::join(when, ", ")));
  }
}

TrainOutcome run_experiment(const Experiment& e, store::Store& store, const TrainOptions& options) {
  // From the start, so that a SIGTERM during set-up (a sweep host stopping) ends in a checkpoint
  // and a KILLED run at the first step rather than a dead process.
  SignalScope signals;
  set_threads(e.threads);
  const torch::Device device = pick_device(e.device);
  torch::manual_seed(e.seed);
  if (device.is_cuda()) torch::cuda::manual_seed_all(e.seed);

  Models m = build_models(e, device);
  const auto grid = m.encoder->patch_grid();

  auto train_source = open_split(e, data::Split::train);
  std::shared_ptr<const data::ImageSource> test_source;
  if (!e.evaluators.empty()) test_source = open_split(e, data::Split::test);
  check_shapes(e, m, train_source->channels(), device);

  data::LoaderOptions lopts;
  lopts.batch_size = e.batch_size;
  lopts.seed = e.seed;
  lopts.workers = e.workers;
  lopts.limit = e.limit_train;
  const int64_t ipe = data::EpochLoader::batches_per_epoch(train_source->size(), lopts);
  if (ipe == 0) {
    throw ConfigError(fmt::format("[data] batch_size = {} is larger than the {} training images", e.batch_size,
                                  train_source->size()));
  }
  ScheduleConfig sc;
  sc.iterations_per_epoch = ipe;
  sc.epochs = e.epochs;
  sc.ipe_scale = e.ipe_scale;
  sc.start_lr = e.start_lr;
  sc.lr = e.lr;
  sc.final_lr = e.final_lr;
  sc.warmup_epochs = e.warmup;
  sc.weight_decay = e.weight_decay;
  sc.final_weight_decay = e.final_weight_decay;
  sc.ema_start = e.ema[0];
  sc.ema_end = e.ema[1];
  const Schedules sched(sc);
  const int64_t total_steps = e.max_steps > 0 ? std::min(e.max_steps, e.epochs * ipe) : e.epochs * ipe;

  auto optimizer = make_optimizer(m, e.start_lr, e.weight_decay);
  loader::MaskingStrategy masking(*e.masking.component, e.masking.params);

  // Record the run (or reopen the one being resumed) before the first step.
  CheckpointState state;
  int64_t run_id = 0;
  if (options.resume_run) {
    run_id = *options.resume_run;
    const auto ckpt = store.latest_artifact(run_id, "checkpoint");
    if (ckpt) {
      state = load_checkpoint(ckpt->path, *m.encoder, *m.target, *m.predictor, optimizer.get());
      store.reopen_run(run_id, state.step);
      fmt::print(stderr, "resuming run {} from step {} ({})\n", run_id, state.step, ckpt->path);
    } else if (options.restart_without_checkpoint) {
      // A sweep trial interrupted before its first checkpoint: the same run starts over.
      store.reopen_run(run_id, 0);
      fmt::print(stderr, "run {} has no checkpoint yet: starting it over from step 0\n", run_id);
    } else {
      throw std::runtime_error(fmt::format("run {} has no checkpoint to resume from", run_id));
    }
  } else {
    run_id = store.create_run(e.name, e.resolved.dump(), e.source.string(), e.seed, std::nullopt, options.trial);
    store.set_params(run_id, config::flatten(e.resolved));
    store.add_plugins(run_id, plugin_records(e));
  }
  store.set_environment(run_id, collect_environment(e.source.parent_path(), device.str()));

  TrainOutcome out;
  out.run_id = run_id;
  store::MetricLogger log(store, run_id);
  TrialPruner pruner(store, run_id);
  Heartbeat heartbeat(store.path(), run_id);
  heartbeat.set_step(state.step);
  Progress progress(options.progress, total_steps, ipe, state.step, e.batch_size);
  const fs::path ckpt_path = checkpoint_path(e, store, run_id);
  auto checkpoint = [&](int64_t epoch, int64_t batch_in_epoch) {
    state.epoch = epoch;
    state.batch_in_epoch = batch_in_epoch;
    save_checkpoint(ckpt_path, state, *m.encoder, *m.target, *m.predictor, *optimizer);
    store.add_artifact(
        run_id, {"checkpoint", ckpt_path.string(), state.step, static_cast<int64_t>(fs::file_size(ckpt_path)), "", ""});
  };

  try {
    TrainStep step(m, *optimizer, masking, sched, e.seed, device);

    int64_t epoch = state.epoch;
    int64_t batch_index = state.batch_in_epoch;
    const int64_t start_step = state.step;
    double window_start = now_seconds();
    int64_t window_images = 0;
    double last_flush = now_seconds();
    std::string stop_reason;
    store::RunStatus stop_status = store::RunStatus::killed;
    // Periodic evaluations of the target encoder. The last step is evaluated once: by at_end when
    // it runs, here otherwise.
    auto evaluate_periodically = [&]() {
      for (const auto& ev : e.evaluators) {
        if (ev.every <= 0 || state.step % ev.every != 0) continue;
        if (state.step >= total_steps && ev.at_end && !options.skip_evaluation) continue;
        const double started = now_seconds();
        std::vector<std::pair<std::string, double>> results;
        {
          TrainingPause pause(*m.target, device);
          const auto input = make_eval_input(e, m.target, device, state.step, train_source, test_source);
          results = evaluate_and_record(ev, input, store, run_id, state.step);
        }
        std::string line = fmt::format("step {}: {}", state.step, ev.id);
        for (const auto& [name, value] : results) {
          line += fmt::format(" {}={:.4g}", name.substr(ev.id.size() + 1), value);
        }
        progress.finish();  // a line of its own, not inside the redrawn progress line
        fmt::print(stderr, "{}\n", line);
        // Evaluation time is not training throughput.
        window_start += now_seconds() - started;
        if (pruner.active() && state.step < total_steps) {
          for (const auto& [name, value] : results) {
            if (name != pruner.metric()) continue;
            if (auto reason = pruner.observe(state.step, value)) {
              stop_reason = *reason;
              stop_status = store::RunStatus::pruned;
              return;
            }
          }
        }
        // A rule met at the last step stops nothing: the run has trained all its steps.
        if (auto reason = check_stop_rule(ev, results, state.step); reason && state.step < total_steps) {
          stop_reason = *reason;
          stop_status = store::RunStatus::pruned;
          return;
        }
      }
    };
    while (state.step < total_steps && stop_reason.empty()) {
      data::EpochLoader loader(train_source, make_transform(e, true), lopts, epoch, batch_index);
      while (state.step < total_steps) {
        auto batch = loader.next();
        if (!batch) break;
        const StepResult r = step.run(images_tensor(*batch), state.step);
        const double loss_value = r.loss;
        ++state.step;
        ++batch_index;
        state.loss = loss_value;
        window_images += batch->batch_size;

        const bool log_now = state.step % e.log_every == 0 || state.step == total_steps;
        if (log_now) {
          const double t = now_seconds();
          const double ips = window_images / std::max(1e-9, t - window_start);
          window_start = t;
          window_images = 0;
          log.log("train/loss", state.step, loss_value);
          log.log("train/lr", state.step, r.lr);
          log.log("train/weight_decay", state.step, r.weight_decay);
          log.log("train/momentum", state.step, r.momentum);
          log.log("train/images_per_s", state.step, ips);
          log.log("train/context_patches", state.step, r.context_length);
          log.log("train/target_patches", state.step, r.target_length);
          log.log("train/epoch", state.step, static_cast<double>(epoch));
          if (pruner.active() && state.step < total_steps) {
            const std::map<std::string, double> logged{{"train/loss", loss_value}, {"train/images_per_s", ips}};
            if (auto it = logged.find(pruner.metric()); it != logged.end()) {
              if (auto reason = pruner.observe(state.step, it->second)) {
                stop_reason = *reason;
                stop_status = store::RunStatus::pruned;
              }
            }
          }
        }
        if (!stop_reason.empty()) break;
        progress.update(state.step, epoch, loss_value, r.lr, now_seconds());
        heartbeat.set_step(state.step);
        if (now_seconds() - last_flush > 10.0) {
          log.flush();
          last_flush = now_seconds();
        }
        // Before the checkpoint: evaluations recorded at a step belong to the checkpoint of that
        // step, so a resume from an earlier one drops them and never finds a step without them.
        evaluate_periodically();
        if (!stop_reason.empty()) break;
        if (e.checkpoint_every > 0 && state.step % e.checkpoint_every == 0 && state.step < total_steps) {
          checkpoint(epoch, batch_index);
        }
        if (const int sig = g_signal.load(); sig != 0) {
          stop_reason = fmt::format("interrupted by signal {} at step {}", sig, state.step);
          break;
        }
        if (options.stop_after > 0 && state.step - start_step >= options.stop_after) {
          stop_reason = fmt::format("stopped after {} steps (--stop-after) at step {}", options.stop_after, state.step);
          break;
        }
      }
      if (state.step < total_steps && stop_reason.empty()) {
        ++epoch;
        batch_index = 0;
      }
      if (loader.skipped() > 0) log.log("data/skipped_images", state.step, static_cast<double>(loader.skipped()));
    }
    progress.finish();
    log.flush();
    out.steps = state.step;
    out.last_loss = state.loss;
    checkpoint(epoch, batch_index);
    if (!stop_reason.empty()) {
      const std::string reason = stop_status == store::RunStatus::pruned
                                     ? stop_reason
                                     : stop_reason + fmt::format("; continue with: jepa run --resume {}", run_id);
      store.finish_run(run_id, stop_status, reason);
      out.status = stop_status;
      out.reason = reason;
      return out;
    }

    if (!options.skip_evaluation) {
      for (const auto& ev : e.evaluators) {
        if (!ev.at_end) continue;
        fmt::print(stderr, "evaluating with {} ...\n", ev.id);
        TrainingPause pause(*m.target, device);  // eval mode, as during training
        const auto input = make_eval_input(e, m.target, device, state.step, train_source, test_source);
        for (const auto& [name, value] : evaluate_and_record(ev, input, store, run_id, state.step)) {
          fmt::print("{} = {:.4g}\n", name, value);
        }
      }
    }
    store.finish_run(run_id, store::RunStatus::completed);
    out.status = store::RunStatus::completed;
    return out;
  } catch (const std::exception& ex) {
    progress.finish();
    std::string what = ex.what();
    what = what.substr(0, what.find('\n'));
    try {
      log.flush();
      store.finish_run(run_id, store::RunStatus::failed, what);
    } catch (const std::exception& inner) {
      fmt::print(stderr, "warning: could not record the failure: {}\n", inner.what());
    }
    out.status = store::RunStatus::failed;
    out.reason = what;
    out.steps = state.step;
    return out;
  }
}

namespace {

struct LoadedRun {
  Experiment experiment;
  Models models;
  CheckpointState state;
  torch::Device device = torch::kCPU;
};

LoadedRun load_run(int64_t run_id, const loader::Registry& registry, store::Store& store) {
  const auto run = store.find_run(run_id);
  if (!run) throw std::runtime_error(fmt::format("no run {} in {}", run_id, store.path().string()));
  LoadedRun r{config::experiment_from_json(nlohmann::json::parse(run->config_json), registry), {}, {}, torch::kCPU};
  set_threads(r.experiment.threads);
  r.device = pick_device(r.experiment.device);
  r.models = build_models(r.experiment, r.device);
  const auto ckpt = store.latest_artifact(run_id, "checkpoint");
  if (!ckpt) throw std::runtime_error(fmt::format("run {} has no checkpoint", run_id));
  r.state = load_checkpoint(ckpt->path, *r.models.encoder, *r.models.target, *r.models.predictor, nullptr);
  return r;
}

}  // namespace

std::vector<std::pair<std::string, double>> evaluate_run(int64_t run_id, const config::ComponentChoice& evaluator,
                                                         const loader::Registry& registry, store::Store& store) {
  LoadedRun r = load_run(run_id, registry, store);
  r.models.target->eval();
  auto train = open_split(r.experiment, data::Split::train);
  auto test = open_split(r.experiment, data::Split::test);
  const auto input = make_eval_input(r.experiment, r.models.target, r.device, r.state.step, train, test);
  return evaluate_and_record(evaluator, input, store, run_id, r.state.step);
}

void export_run(int64_t run_id, const fs::path& output, bool module_prefix, const loader::Registry& registry,
                store::Store& store) {
  LoadedRun r = load_run(run_id, registry, store);
  export_weights(output, *r.models.encoder, *r.models.target, *r.models.predictor, r.state, r.experiment.batch_size,
                 r.experiment.lr, module_prefix);
  store.add_artifact(run_id, {"export", fs::absolute(output).string(), r.state.step,
                              static_cast<int64_t>(fs::file_size(output)), "", ""});
}

}  // namespace jepa::train
