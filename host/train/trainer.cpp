#include "train/trainer.hpp"

#include "distributed/group.hpp"
#include "loader/masking_strategy.hpp"
#include "loader/sha256.hpp"
#include "train/adamw.hpp"
#include "train/checkpoint.hpp"
#include "train/environment.hpp"
#include "train/evaluation.hpp"
#include "train/heartbeat.hpp"
#include "train/models.hpp"
#include "train/precision.hpp"
#include "train/prefetch.hpp"
#include "train/progress.hpp"
#include "train/step.hpp"
#include "train/trial_pruner.hpp"

#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <fmt/format.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <optional>
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
  // SIGTERM often comes twice (SLURM signals every process of a job, and its batch shell passes
  // the signal on too): the run still checkpoints, and SIGKILL remains for whoever cannot wait.
  if (sig == SIGINT) std::signal(sig, SIG_DFL);
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

// Always with an index: tensors, checkpoints read onto it and the process group all name one GPU.
torch::Device pick_device(const std::string& wanted) {
  if (wanted == "cpu") return torch::kCPU;
  if (wanted == "cuda") {
    if (!torch::cuda::is_available()) {
      throw ConfigError("[run] device = \"cuda\", but this LibTorch build or machine has no CUDA device");
    }
    return {torch::kCUDA, 0};
  }
  return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
}

// A rank of a data-parallel job on CUDA takes its own GPU (dist::cuda_device_for_rank: device 0
// when SLURM shows each task one GPU, its local rank when all are visible). The GPU becomes the
// process's current device before any CUDA work and before the process group exists, so that
// nothing that uses the current device (streams, synchronisation, NCCL's communicator, a
// plugin's torch::kCUDA) lands on GPU 0.
torch::Device run_device(const std::string& wanted, const dist::Group* group) {
  torch::Device device = pick_device(wanted);
  if (!device.is_cuda()) return device;
  if (group != nullptr) {
    const int index = dist::cuda_device_for_rank(group->env().local_rank, static_cast<int>(torch::cuda::device_count()),
                                                 std::getenv("CUDA_VISIBLE_DEVICES"));
    device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->setDevice(device);
  return device;
}

// [run] tf32: fp32 matrix products on CUDA in TF32 unless asked not to (CUDA's default is true fp32).
MatmulPrecision set_matmul_precision(const Experiment& e, torch::Device device) {
  const MatmulPrecision mp = choose_matmul_precision(device.is_cuda(), e.tf32);
  if (device.is_cuda()) at::globalContext().setFloat32MatmulPrecision(mp.setting);
  return mp;
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
  add(e.objective);
  for (const auto& ev : e.evaluators) add(ev);
  return out;
}

// Run ids are per database: by default checkpoints live beside the records they belong to
// (<database folder>/runs/<database stem>/<id>, or a SLURM trial's folder on the shared file system).
fs::path checkpoint_path(const Experiment& e, const store::Recorder& store, int64_t run_id) {
  const fs::path dir =
      e.checkpoint_dir.empty() ? store.run_folder(run_id) : fs::path(e.checkpoint_dir) / std::to_string(run_id);
  return fs::absolute(dir / "checkpoint.pt");
}

// "linear_probe/top1: trained 85.12, random init 78.40 (+6.72), raw pixels 83.84 (+1.28)" for
// every accuracy that has both baselines: the one line a reader looks for.
void print_against_baselines(const std::vector<std::pair<std::string, double>>& trained,
                             const std::vector<std::pair<std::string, double>>& baselines) {
  const auto find = [&](const std::string& key) -> std::optional<double> {
    for (const auto& [k, v] : baselines) {
      if (k == key) return v;
    }
    return std::nullopt;
  };
  for (const auto& [name, value] : trained) {
    const auto init = find(name + "@random_init");
    const auto pixels = find(name + "@raw_pixels");
    if (!init || !pixels || name.find("top1") == std::string::npos) continue;
    fmt::print("{}: trained {:.2f}, random init {:.2f} ({:+.2f}), raw pixels {:.2f} ({:+.2f})\n", name, value, *init,
               value - *init, *pixels, value - *pixels);
  }
}

// Checkpoints recorded before digests were have none to check against: they load as before.
void warn_if_unverified(const store::ArtifactRecord& ckpt) {
  if (ckpt.sha256.empty()) {
    fmt::print(stderr,
               "note: {} was recorded without a sha256 (written before jepa-lab recorded digests): loaded "
               "unverified\n",
               ckpt.path);
  }
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
  const char* target = m.needs.target == sdk::TargetKind::ema      ? "an EMA target encoder"
                       : m.needs.target == sdk::TargetKind::online ? "the online encoder as target (with gradient)"
                                                                   : "the online encoder as target (stop-gradient)";
  fmt::print("  objective {} : {}, {:.3f} M trainable parameters of its own\n", e.objective.id, target,
             count_trainable(*m.objective) / 1e6);
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
  const bool cuda = e.device != "cpu" && torch::cuda::is_available();
  const auto precision = choose_precision(e.precision, cuda, detect_cpu_bf16());
  fmt::print("  precision {} ({})\n", precision_name(precision.precision), precision.reason);
  fmt::print("  optimizer AdamW, lr {} -> {} (warmup {} epochs from {}), wd {} -> {}{}\n", e.lr, e.final_lr, e.warmup,
             e.start_lr, e.weight_decay, e.final_weight_decay,
             m.has_ema_target() ? fmt::format(", ema {} -> {}", e.ema[0], e.ema[1]) : std::string(", no EMA"));
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

namespace {

// Stop requests that every rank must agree on at the end of a step (bits of Group::any_flags).
constexpr int64_t kStopSignal = 1;  // Ctrl-C or SIGTERM reached some rank
constexpr int64_t kStopLeader = 2;  // rank 0 decided (pruned, stop rule, --stop-after)

// What rank 0 tells the others before the first step: the run, and the checkpoint to start from.
constexpr const char* kStartKey = "start";

std::chrono::milliseconds to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000.0));
}

}  // namespace

TrainOutcome run_experiment(const Experiment& e, store::Recorder* store_ptr, const TrainOptions& options) {
  // From the start, so that a SIGTERM during set-up (a sweep host stopping) ends in a checkpoint
  // and a KILLED run at the first step rather than a dead process.
  SignalScope signals;
  dist::Group* group = options.group;
  const bool leader = group == nullptr || group->leader();
  if (leader && store_ptr == nullptr) throw std::logic_error("run_experiment: rank 0 needs the results store");
  const int world = group != nullptr ? group->size() : 1;
  int threads = e.threads;
  if (threads == 0 && group != nullptr) {
    // Ranks on one machine share its cores.
    threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / group->env().local_world_size);
  }
  set_threads(threads);
  const torch::Device device = run_device(e.device, group);
  const MatmulPrecision matmul = set_matmul_precision(e, device);
  torch::manual_seed(e.seed);
  if (device.is_cuda()) torch::cuda::manual_seed_all(e.seed);

  Models m = build_models(e, device);
  auto train_source = open_split(e, data::Split::train);
  std::shared_ptr<const data::ImageSource> test_source;
  if (!e.evaluators.empty() && leader) test_source = open_split(e, data::Split::test);
  check_shapes(e, m, train_source->channels(), device);

  data::LoaderOptions lopts;
  lopts.batch_size = e.batch_size;
  lopts.seed = e.seed;
  // The cores this rank may use: run.threads when set (a sweep slot sets it), else its share of
  // the machine.
  const int local_ranks = group != nullptr ? group->env().local_world_size : 1;
  const int cores =
      threads > 0 ? threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / local_ranks);
  lopts.workers = e.workers >= 0 ? e.workers : data::auto_workers(cores, device.is_cuda());
  lopts.prefetch = e.prefetch;
  if (device.is_cuda()) {
    // 8-bit batches in pinned blocks that the loader reuses; the GPU normalises them.
    lopts.normalise = false;
    lopts.pool = data::BufferPool::create(pinned_allocator(device));
  }
  lopts.limit = e.limit_train;
  lopts.rank = group != nullptr ? group->rank() : 0;
  lopts.world_size = world;
  const data::Normalisation normalisation = data::normalisation(make_transform(e, true), train_source->channels());
  const int64_t ipe = data::EpochLoader::batches_per_epoch(train_source->size(), lopts);
  if (ipe == 0) {
    throw ConfigError(fmt::format("[data] batch_size = {} is larger than the {} training images{}", e.batch_size,
                                  train_source->size(), world > 1 ? fmt::format(" per rank of {}", world) : ""));
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
  // The run a lost peer fails: known to rank 0 once recorded (the heartbeat starts before).
  auto watched_run = std::make_shared<std::atomic<int64_t>>(0);
  if (group != nullptr) {
    group->start(device, e.dist_backend, to_ms(e.dist_timeout));
    std::function<std::unique_ptr<store::Recorder>()> open_store;
    if (leader) open_store = store_ptr->another();
    group->watch_peers(to_ms(e.dist_peer_timeout), [watched_run, open_store](const std::string& why) {
      const int64_t run = watched_run->load();
      if (!open_store || run == 0) return;
      open_store()->finish_run(run, store::RunStatus::failed, "rank 0: " + why);
    });
  }

  // A checkpoint written with another number of ranks would continue with another global batch,
  // data order and schedule: refuse it.
  auto check_world = [&](const CheckpointState& st, int64_t run) {
    if (st.world_size != world) {
      throw ConfigError(fmt::format(
          "run {} was trained with {} rank{} and this launch has {}: resume it with the same number of ranks "
          "(jepa run --resume {}{})",
          run, st.world_size, st.world_size == 1 ? "" : "s", world, run,
          st.world_size > 1 ? fmt::format(" --nproc {}", st.world_size) : ""));
    }
  };

  // Record the run (or reopen the one being resumed) before the first step. Rank 0 decides and
  // tells the others; whatever goes wrong on its side reaches them instead of a timeout.
  CheckpointState state;
  int64_t run_id = 0;
  PrecisionChoice precision;
  const CpuBf16 cpu_bf16 = detect_cpu_bf16();
  bool from_checkpoint = false;  // every rank loads the same file, so weights agree without a copy
  if (leader) {
    store::Recorder& store = *store_ptr;
    std::string start_from;
    std::string start_sha256;
    try {
      if (options.resume_run) {
        run_id = *options.resume_run;
        {
          const auto stored = store.environment(run_id);
          const auto it = stored.find("precision");
          precision = stored_precision(it != stored.end() ? it->second : "", device.is_cuda(), cpu_bf16);
        }
        const auto ckpt = store.latest_artifact(run_id, "checkpoint");
        if (ckpt) {
          warn_if_unverified(*ckpt);
          start_sha256 = ckpt->sha256;
          try {
            state =
                load_checkpoint(ckpt->path, m, optimizer.get(), device, ckpt->sha256, fmt::format("run {}", run_id));
          } catch (const CheckpointDamaged&) {
            // A process killed (kill -9, a lost node) between renaming a new checkpoint into place
            // and recording it leaves a whole file newer than the record: its own step says so.
            // Anything else that does not match is damage.
            const std::exception_ptr damaged = std::current_exception();
            try {
              state = load_checkpoint(ckpt->path, m, optimizer.get(), device, "", fmt::format("run {}", run_id));
            } catch (const CheckpointError&) {
              std::rethrow_exception(damaged);
            }
            if (state.step <= ckpt->step) std::rethrow_exception(damaged);
            start_sha256 = loader::sha256_file(ckpt->path);
            fmt::print(stderr,
                       "note: checkpoint {} holds step {}, newer than the step {} recorded for it: the run was "
                       "stopped between writing and recording it; it is used and recorded now\n",
                       ckpt->path, state.step, ckpt->step);
            store.add_artifact(run_id, {"checkpoint", ckpt->path, state.step,
                                        static_cast<int64_t>(fs::file_size(ckpt->path)), start_sha256, ""});
          }
          check_world(state, run_id);
          store.reopen_run(run_id, state.step);
          start_from = ckpt->path;
          from_checkpoint = true;
          fmt::print(stderr, "resuming run {} from step {} ({})\n", run_id, state.step, ckpt->path);
        } else if (options.restart_without_checkpoint) {
          // A sweep trial interrupted before its first checkpoint: the same run starts over.
          store.reopen_run(run_id, 0);
          fmt::print(stderr, "run {} has no checkpoint yet: starting it over from step 0\n", run_id);
        } else {
          throw std::runtime_error(fmt::format("run {} has no checkpoint to resume from", run_id));
        }
      } else {
        precision = choose_precision(e.precision, device.is_cuda(), cpu_bf16);
        run_id = store.create_run(e.name, e.resolved.dump(), e.source.string(), e.seed, std::nullopt, options.trial);
        auto params = config::flatten(e.resolved);
        params["distributed.world_size"] = std::to_string(world);
        store.set_params(run_id, params);
        store.add_plugins(run_id, plugin_records(e));
      }
      auto env = collect_environment(e.source.parent_path(), device.str());
      env["world_size"] = std::to_string(world);
      env["precision"] = precision_name(precision.precision);
      env["precision_reason"] = precision.reason;
      env["cpu_bf16"] = cpu_bf16.describe();
      env["matmul_precision"] = matmul.setting;
      env["matmul_precision_reason"] = matmul.reason;
      env["optimizer_impl"] = optimizer_impl(*optimizer, device);  // "fused", "foreach"
      if (group != nullptr) {
        env["distributed_backend"] = group->backend();
        env["launcher"] = group->env().launcher;
      }
      store.set_environment(run_id, env);
      watched_run->store(run_id);
      if (group != nullptr) {
        group->publish("run_id", std::to_string(run_id));
        group->publish(kStartKey, nlohmann::json{{"run_id", run_id},
                                                 {"checkpoint", start_from},
                                                 {"sha256", start_sha256},
                                                 {"precision", precision_name(precision.precision)}}
                                      .dump());
      }
    } catch (const std::exception& ex) {
      if (group != nullptr) group->publish(kStartKey, nlohmann::json{{"error", ex.what()}}.dump());
      throw;
    }
  } else {
    const auto start = nlohmann::json::parse(group->fetch(kStartKey, to_ms(e.dist_leader_timeout)));
    if (start.contains("error")) {
      throw dist::PeerError("rank 0 could not start: " + start["error"].get<std::string>());
    }
    run_id = start["run_id"].get<int64_t>();
    // Rank 0's choice, so that every rank computes alike; this rank must be able to follow it.
    precision = stored_precision(start["precision"].get<std::string>(), device.is_cuda(), cpu_bf16);
    const auto path = start["checkpoint"].get<std::string>();
    if (!path.empty()) {
      // Ranks share a filesystem, as upstream's checkpoints assume.
      state = load_checkpoint(path, m, optimizer.get(), device, start.value("sha256", std::string()),
                              fmt::format("run {}", run_id));
      check_world(state, run_id);
      from_checkpoint = true;
    }
  }
  state.world_size = world;
  if (group != nullptr && !from_checkpoint) {
    // Identical by seed already; the copy (as DDP's) makes it so whatever the ranks' hardware.
    std::vector<torch::Tensor> weights;
    std::vector<torch::nn::Module*> modules{m.encoder.get(), m.predictor.get(), m.objective.get()};
    if (m.has_ema_target()) modules.push_back(m.target.get());  // else the encoder itself
    for (auto* module : modules) {
      for (auto& p : module->parameters()) weights.push_back(p.detach());
      for (auto& b : module->buffers()) weights.push_back(b.detach());
    }
    group->broadcast(weights);
  }

  TrainOutcome out;
  out.run_id = run_id;
  // Only rank 0 writes: the metrics, the heartbeat, the checkpoints, the run's end.
  std::optional<store::MetricLogger> log;
  std::optional<TrialPruner> pruner;
  std::optional<Heartbeat> heartbeat;
  if (leader) {
    fmt::print(stderr, "run {}: precision {} ({})\n", run_id, precision_name(precision.precision), precision.reason);
    fmt::print(stderr, "run {}: data: {} decoding thread{}{}, {} batch{} ahead{}\n", run_id, lopts.workers,
               lopts.workers == 1 ? "" : "s",
               e.workers >= 0 ? "" : fmt::format(" (auto: {} core{} for this rank)", cores, cores == 1 ? "" : "s"),
               lopts.prefetch, lopts.prefetch == 1 ? "" : "es",
               device.is_cuda() ? ", 8-bit in pinned memory, normalised on the GPU" : "");
    log.emplace(*store_ptr, run_id);
    pruner.emplace(*store_ptr, run_id);
    heartbeat.emplace(store_ptr->another(), run_id);
    heartbeat->set_step(state.step);
  }
  const bool pruning = pruner && pruner->active();
  Progress progress(options.progress && leader, total_steps, ipe, state.step, e.batch_size * world);
  const fs::path ckpt_path = leader ? checkpoint_path(e, *store_ptr, run_id) : fs::path();
  auto checkpoint = [&](int64_t epoch, int64_t batch_in_epoch) {
    // The points logged up to this step first: a run resumed from this checkpoint starts after
    // its step, so points still in the logger's buffer when the process dies (SIGKILL, a lost
    // node) would be gone for good.
    if (log) log->flush();
    state.epoch = epoch;
    state.batch_in_epoch = batch_in_epoch;
    const std::string sha256 = save_checkpoint(ckpt_path, state, m, *optimizer);
    store_ptr->add_artifact(run_id, {"checkpoint", ckpt_path.string(), state.step,
                                     static_cast<int64_t>(fs::file_size(ckpt_path)), sha256, ""});
  };
  // Steps after which rank 0 works alone (evaluations, checkpoints) while the others wait for it
  // through the store, with the longer leader_timeout.
  auto leader_work_due = [&](int64_t step) {
    if (e.checkpoint_every > 0 && step % e.checkpoint_every == 0 && step < total_steps) return true;
    for (const auto& ev : e.evaluators) {
      if (ev.every > 0 && step % ev.every == 0) return true;
    }
    return false;
  };

  try {
    TrainStep step(m, *optimizer, masking, sched, e.seed, device, precision.precision,
                   DataParallel{group, e.dist_masks == "global", static_cast<int64_t>(e.dist_bucket_mb * (1 << 20))});

    int64_t epoch = state.epoch;
    int64_t batch_index = state.batch_in_epoch;
    const int64_t start_step = state.step;
    // --- jepa run --profile (rank 0): a Chrome trace of a few steps, beside the checkpoint.
    std::optional<StepProfiler> profiler;
    if (options.profile && leader) {
      const auto& w = *options.profile;
      profiler.emplace(w,
                       ckpt_path.parent_path() / fmt::format("profile-steps-{}-{}.json", start_step + w.skip + 1,
                                                             start_step + w.skip + w.steps),
                       device.is_cuda() ? std::max<int>(0, device.index()) : -1);
    }
    // --- end --profile
    double window_start = now_seconds();
    int64_t window_images = 0;
    double last_flush = now_seconds();
    std::string stop_reason;
    store::RunStatus stop_status = store::RunStatus::killed;
    // Periodic evaluations of the target encoder (rank 0). The last step is evaluated once: by
    // at_end when it runs, here otherwise.
    auto evaluate_periodically = [&]() {
      for (const auto& ev : e.evaluators) {
        if (ev.every <= 0 || state.step % ev.every != 0) continue;
        if (state.step >= total_steps && ev.at_end && !options.skip_evaluation) continue;
        const double started = now_seconds();
        std::vector<std::pair<std::string, double>> results;
        {
          TrainingPause pause(*m.target, device);
          const auto input =
              make_eval_input(e, m.target, device, precision.precision, state.step, train_source, test_source);
          results = evaluate_and_record(ev, input, *store_ptr, run_id, state.step);
        }
        std::string line = fmt::format("step {}: {}", state.step, ev.id);
        for (const auto& [name, value] : results) {
          line += fmt::format(" {}={:.4g}", name.substr(ev.id.size() + 1), value);
        }
        progress.finish();  // a line of its own, not inside the redrawn progress line
        fmt::print(stderr, "{}\n", line);
        // Evaluation time is not training throughput.
        window_start += now_seconds() - started;
        if (pruning && state.step < total_steps) {
          for (const auto& [name, value] : results) {
            if (name != pruner->metric()) continue;
            if (auto reason = pruner->observe(state.step, value)) {
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
    // Steps after which the host waits for the device: the loss is read (and divergence seen),
    // and ranks agree on whether to stop. On the CPU every step (it costs nothing there); on
    // CUDA the logging steps, rank 0's work, and the last step, so that the GPU never drains
    // inside a run of steps. Every rank computes the same set, so collectives stay matched.
    auto sync_due = [&](int64_t step) {
      return !device.is_cuda() || step % e.log_every == 0 || step == total_steps || leader_work_due(step);
    };
    std::optional<StepResult> unread;  // the last step's result while its loss is on the device
    auto read_loss = [&](StepResult& r) {
      step.read(r);
      state.loss = r.loss;
    };
    while (state.step < total_steps && stop_reason.empty()) {
      data::EpochLoader loader(train_source, make_transform(e, true), lopts, epoch, batch_index);
      BatchPrefetcher prefetch(loader, step, state.step, device, normalisation);
      while (state.step < total_steps) {
        auto ready = prefetch.next();
        if (!ready) break;
        if (profiler) profiler->before_step(state.step - start_step);
        StepResult r = step.run(ready->images, state.step, &ready->masks);
        if (profiler && profiler->after_step(state.step - start_step)) {
          progress.finish();
          fmt::print(stderr, "profile ({}): {}\n", profiler->how(), profiler->trace().string());
          store_ptr->add_artifact(run_id, {"profile", profiler->trace().string(), state.step + 1,
                                           static_cast<int64_t>(fs::file_size(profiler->trace())), "", ""});
        }
        ++state.step;
        ++batch_index;
        window_images += ready->batch.batch_size * world;
        const bool synced = sync_due(state.step);
        if (synced) {
          read_loss(r);
          unread.reset();
        } else {
          unread = r;
        }
        const double loss_value = state.loss;  // this step's when synced, else the last one read

        if (leader) {
          const bool log_now = state.step % e.log_every == 0 || state.step == total_steps;
          if (log_now) {
            const double t = now_seconds();
            const double ips = window_images / std::max(1e-9, t - window_start);
            window_start = t;
            window_images = 0;
            log->log("train/loss", state.step, loss_value);
            log->log("train/lr", state.step, r.lr);
            log->log("train/weight_decay", state.step, r.weight_decay);
            if (m.has_ema_target()) log->log("train/momentum", state.step, r.momentum);
            for (const auto& [name, value] : r.parts) log->log("train/loss/" + name, state.step, value);
            log->log("train/images_per_s", state.step, ips);
            log->log("train/context_patches", state.step, r.context_length);
            log->log("train/target_patches", state.step, r.target_length);
            log->log("train/epoch", state.step, static_cast<double>(epoch));
            if (pruning && state.step < total_steps) {
              std::map<std::string, double> logged{{"train/loss", loss_value}, {"train/images_per_s", ips}};
              for (const auto& [name, value] : r.parts) logged["train/loss/" + name] = value;
              if (auto it = logged.find(pruner->metric()); it != logged.end()) {
                if (auto reason = pruner->observe(state.step, it->second)) {
                  stop_reason = *reason;
                  stop_status = store::RunStatus::pruned;
                }
              }
            }
          }
          if (stop_reason.empty()) {
            progress.update(state.step, epoch, loss_value, r.lr, now_seconds());
            heartbeat->set_step(state.step);
            if (now_seconds() - last_flush > 10.0) {
              log->flush();
              last_flush = now_seconds();
            }
            // Before the checkpoint: evaluations recorded at a step belong to the checkpoint of
            // that step, so a resume from an earlier one drops them and never finds a step
            // without them.
            evaluate_periodically();
          }
          if (stop_reason.empty() && e.checkpoint_every > 0 && state.step % e.checkpoint_every == 0 &&
              state.step < total_steps) {
            checkpoint(epoch, batch_index);
          }
          if (group != nullptr && leader_work_due(state.step)) group->leader_done("work", state.step);
        } else if (leader_work_due(state.step)) {
          group->wait_for_leader("work", state.step, to_ms(e.dist_leader_timeout));
        }
        if (stop_reason.empty() && options.stop_after > 0 && state.step - start_step >= options.stop_after) {
          stop_reason = fmt::format("stopped after {} steps (--stop-after) at step {}", options.stop_after, state.step);
        }
        int64_t flags = (g_signal.load() != 0 ? kStopSignal : 0) | (stop_reason.empty() ? 0 : kStopLeader);
        if (group != nullptr) {
          if (!synced) continue;  // the ranks agree at the next synchronised step
          flags = group->any_flags(flags, state.step);
          group->mark_step(state.step);
        }
        if ((flags & kStopSignal) != 0 && stop_reason.empty()) {
          const int sig = g_signal.load();
          stop_reason = sig != 0 ? fmt::format("interrupted by signal {} at step {}", sig, state.step)
                                 : fmt::format("interrupted by a signal to another rank at step {}", state.step);
        }
        if (flags != 0) {
          if (stop_reason.empty()) stop_reason = fmt::format("stopped by rank 0 at step {}", state.step);
          break;
        }
      }
      if (state.step < total_steps && stop_reason.empty()) {
        ++epoch;
        batch_index = 0;
      }
      if (leader && loader.skipped() > 0) {
        log->log("data/skipped_images", state.step, static_cast<double>(loader.skipped()));
      }
    }
    if (unread) read_loss(*unread);  // a stop between synchronised steps (single process)
    // Training is over on every rank: from here on rank 0 works alone (checkpoint, evaluations).
    if (group != nullptr) group->stop_watching();
    progress.finish();
    out.steps = state.step;
    out.last_loss = state.loss;
    if (!leader) {
      // Rank 0 writes the last checkpoint, evaluates and records how the run ended.
      out.status = stop_reason.empty() ? store::RunStatus::completed : stop_status;
      out.reason = stop_reason;
      return out;
    }
    log->flush();
    checkpoint(epoch, batch_index);
    if (!stop_reason.empty()) {
      const std::string resume_hint = !options.resume_hint.empty() ? options.resume_hint
                                      : world > 1 ? fmt::format("jepa run --resume {} --nproc {}", run_id, world)
                                                  : fmt::format("jepa run --resume {}", run_id);
      const std::string reason =
          stop_status == store::RunStatus::pruned ? stop_reason : stop_reason + "; continue with: " + resume_hint;
      store_ptr->finish_run(run_id, stop_status, reason);
      out.status = stop_status;
      out.reason = reason;
      return out;
    }

    if (!options.skip_evaluation) {
      for (const auto& ev : e.evaluators) {
        if (!ev.at_end) continue;
        fmt::print(stderr, "evaluating with {} ...\n", ev.id);
        TrainingPause pause(*m.target, device);  // eval mode, as during training
        const auto input =
            make_eval_input(e, m.target, device, precision.precision, state.step, train_source, test_source);
        const auto results = evaluate_and_record(ev, input, *store_ptr, run_id, state.step);
        for (const auto& [name, value] : results) fmt::print("{} = {:.4g}\n", name, value);
        if (ev.baselines) {
          fmt::print(stderr, "evaluating the baselines with {} (raw pixels, the encoder at initialisation) ...\n",
                     ev.id);
          const auto baselines = evaluate_baselines(e, ev, initial_encoder(e, device), device, precision.precision,
                                                    state.step, input, *store_ptr, run_id);
          for (const auto& [name, value] : baselines) fmt::print("{} = {:.4g}\n", name, value);
          print_against_baselines(results, baselines);
        }
      }
    }
    store_ptr->finish_run(run_id, store::RunStatus::completed);
    out.status = store::RunStatus::completed;
    return out;
  } catch (const std::exception& ex) {
    progress.finish();
    std::string what = ex.what();
    what = what.substr(0, what.find('\n'));
    // The others learn why from the store rather than from a broken connection alone.
    if (group != nullptr && dynamic_cast<const dist::PeerError*>(&ex) == nullptr) group->report_failure(what);
    if (leader) {
      try {
        log->flush();
        store_ptr->finish_run(run_id, store::RunStatus::failed,
                              group != nullptr ? fmt::format("rank 0: {}", what) : what);
      } catch (const std::exception& inner) {
        fmt::print(stderr, "warning: could not record the failure: {}\n", inner.what());
      }
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
  Precision precision = Precision::fp32;
};

LoadedRun load_run(int64_t run_id, const loader::Registry& registry, store::Store& store) {
  const auto run = store.find_run(run_id);
  if (!run) throw std::runtime_error(fmt::format("no run {} in {}", run_id, store.path().string()));
  LoadedRun r{config::experiment_from_json(nlohmann::json::parse(run->config_json), registry), {}, {}, torch::kCPU};
  set_threads(r.experiment.threads);
  if (r.experiment.device == "cuda" && !torch::cuda::is_available()) {
    // A run trained on a GPU is read where there is none (a laptop, CI): its checkpoint loads
    // onto the CPU, and the evaluation or export is the same, only slower.
    fmt::print(stderr, "note: run {} trained on CUDA; this machine has no CUDA device, so it is read on the CPU\n",
               run_id);
    r.experiment.device = "cpu";
  }
  r.device = run_device(r.experiment.device, nullptr);
  set_matmul_precision(r.experiment, r.device);
  r.models = build_models(r.experiment, r.device);
  const auto ckpt = store.latest_artifact(run_id, "checkpoint");
  if (!ckpt) throw std::runtime_error(fmt::format("run {} has no checkpoint", run_id));
  warn_if_unverified(*ckpt);
  r.state = load_checkpoint(ckpt->path, r.models, nullptr, r.device, ckpt->sha256, fmt::format("run {}", run_id));
  // Evaluate as the run trained; a bf16 run on a machine without native bf16 is evaluated in fp32
  // (slower emulation would give the same features, only later).
  const auto env = store.environment(run_id);
  const auto it = env.find("precision");
  try {
    r.precision = stored_precision(it != env.end() ? it->second : "", r.device.is_cuda(), detect_cpu_bf16()).precision;
  } catch (const config::ConfigError&) {
    fmt::print(stderr, "note: run {} trained in bf16; this CPU has no native bf16, so it is evaluated in fp32\n",
               run_id);
    r.precision = Precision::fp32;
  }
  return r;
}

}  // namespace

std::vector<std::pair<std::string, double>> evaluate_run(int64_t run_id, const config::ComponentChoice& evaluator,
                                                         const loader::Registry& registry, store::Store& store,
                                                         bool baselines) {
  LoadedRun r = load_run(run_id, registry, store);
  r.models.target->eval();
  auto train = open_split(r.experiment, data::Split::train);
  auto test = open_split(r.experiment, data::Split::test);
  const auto input = make_eval_input(r.experiment, r.models.target, r.device, r.precision, r.state.step, train, test);
  auto results = evaluate_and_record(evaluator, input, store, run_id, r.state.step);
  if (!baselines) return results;
  // A new readout of a stored run is only worth reading beside its baselines with that readout.
  const auto base = evaluate_baselines(r.experiment, evaluator, initial_encoder(r.experiment, r.device), r.device,
                                       r.precision, r.state.step, input, store, run_id);
  print_against_baselines(results, base);
  results.insert(results.end(), base.begin(), base.end());
  return results;
}

std::vector<std::string> export_run(int64_t run_id, const fs::path& output, bool module_prefix,
                                    const loader::Registry& registry, store::Store& store) {
  LoadedRun r = load_run(run_id, registry, store);
  auto keys = export_weights(output, r.models, r.state, r.experiment.batch_size, r.experiment.lr, module_prefix);
  store.add_artifact(run_id, {"export", fs::absolute(output).string(), r.state.step,
                              static_cast<int64_t>(fs::file_size(output)), loader::sha256_file(output), ""});
  return keys;
}

}  // namespace jepa::train
