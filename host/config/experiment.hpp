// Experiments: TOML files in experiments/ that choose plugins by id and set their parameters,
// plus the host's own sections. Everything is validated before anything runs: unknown keys,
// wrong types and out-of-range values are errors naming the file, line and key.
#pragma once

#include "config/params.hpp"
#include "loader/param_set.hpp"
#include "loader/registry.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace jepa::config {

// A plugin component chosen by id, with its parameters resolved against its schema.
struct ComponentChoice {
  std::string id;
  loader::ParamSet params;
  const loader::ComponentInfo* component = nullptr;  // points into the Registry used to load
};

// `stop_when = "<metric> <op> <number>"` of an [[evaluation]]: once it holds after an evaluation
// during training, the run stops (PRUNED). The metric is one the evaluator reports, which is only
// known once it has run, so the name is checked then.
struct StopRule {
  std::string metric;  // "effective_rank", as the evaluator names it (without "<evaluator>/")
  std::string op;      // "<", "<=", ">" or ">="
  double threshold = 0.0;

  bool holds(double value) const;  // never for NaN
  std::string text() const;        // "effective_rank < 8"
};

// Parses "<metric> <op> <number>" (spaces around the operator optional); std::nullopt for "" (no
// rule). Throws ConfigError with the expected form on anything else.
std::optional<StopRule> parse_stop_rule(const std::string& text);

// One [[evaluation]]: the evaluator plugin and its parameters, plus when the host runs it.
struct EvaluationChoice : ComponentChoice {
  int64_t every = 0;      // steps between evaluations during training; 0 = none
  bool at_end = true;     // also after the last step
  std::string stop_when;  // as written; "" = no rule
  std::optional<StopRule> stop_rule;
  // After the last step, also evaluate raw pixels and the encoder at its initialisation with the
  // same evaluator, parameters, data and precision ("<id>/<metric>@raw_pixels", "@random_init").
  bool baselines = false;
};

struct Experiment {
  std::filesystem::path source;  // the TOML file ("" when built from defaults only)

  // [run]
  std::string name;  // default: the file's stem
  uint64_t seed = 0;
  int threads = 0;                 // CPU threads for LibTorch; 0 = every core
  std::string device = "auto";     // "auto" (CUDA when available), "cpu", "cuda"
  std::string precision = "auto";  // "auto" (bf16 where native), "fp32", "bf16"
  bool tf32 = true;                // fp32 matrix products on CUDA in TF32

  // [data]
  std::string dataset = "fashion_mnist";  // "fashion_mnist" or "image_folder"
  std::string path;                       // default: the Debian package's folder for fashion_mnist
  int64_t image_size = 28;
  int64_t batch_size = 128;
  int workers = -1;  // decoding threads per rank; -1 = auto (data::auto_workers)
  int prefetch = 3;  // batches decoded ahead
  bool random_crop = false;
  std::array<double, 2> crop_scale{0.3, 1.0};
  bool horizontal_flip = false;
  std::string eval_transform = "auto";  // "center_crop" (Resize + CenterCrop), "resize", or "auto":
                                        // center_crop for image folders, resize for Fashion-MNIST
  std::vector<double> mean{0.2860};     // per channel
  std::vector<double> std{0.3530};
  int64_t limit_train = 0;  // 0 = the whole training split

  // [masking] strategy = "<id>", [masking.params]
  ComponentChoice masking;
  // [encoder] plugin = "<id>", [encoder.params]; [predictor] likewise
  ComponentChoice encoder;
  ComponentChoice predictor;
  // [objective] plugin = "<id>" (default "ijepa"), [objective.params]
  ComponentChoice objective;

  // [optimization] (official defaults)
  int64_t epochs = 300;
  int64_t max_steps = 0;  // stop after this many steps (0 = epochs * iterations per epoch)
  double ipe_scale = 1.0;
  double start_lr = 2e-4;
  double lr = 1e-3;
  double final_lr = 1e-6;
  double warmup = 40;  // epochs
  double weight_decay = 0.04;
  double final_weight_decay = 0.4;
  std::array<double, 2> ema{0.996, 1.0};

  // [checkpoint]
  int64_t checkpoint_every = 0;  // steps; 0 = only at the end
  std::string checkpoint_dir;    // each run writes <dir>/<run id>/...; "" = runs/ beside the database

  // [logging]
  int64_t log_every = 10;  // steps between metric rows

  // [distributed]: used when the run has several ranks (jepa run --nproc, torchrun, SLURM)
  std::string dist_backend = "auto";    // auto (NCCL on CUDA when built with it, else Gloo) | gloo | nccl
  std::string dist_masks = "per_rank";  // per_rank (upstream) | global (as one process with the whole batch)
  double dist_timeout = 300;            // seconds a collective waits for the other ranks
  double dist_leader_timeout = 3600;    // seconds the others wait for rank 0's evaluations and checkpoints
  double dist_bucket_mb = 25;           // gradients per all-reduce bucket, as DDP's bucket_cap_mb
  double dist_peer_timeout = 20;        // seconds without a heartbeat from a rank before the run ends

  // [[evaluation]] evaluator = "<id>", every, at_end, stop_when, plus its parameters inline
  std::vector<EvaluationChoice> evaluators;

  // The fully resolved config (every section, every default filled in) as stored with a run.
  nlohmann::json resolved;
};

// Loads `file`, applies `overrides` ("section.key=value", "encoder.params.depth=4",
// "masking.strategy=random"), resolves plugin ids and parameters against `registry`, and checks
// everything. Throws ConfigError: "<file>:<line>:<column>: [section] key: message" (or
// "--set <text>: message" for overrides).
Experiment load_experiment(const std::filesystem::path& file, const std::vector<std::string>& overrides,
                           const loader::Registry& registry);

// Rebuilds an Experiment from a stored `resolved` JSON (for resume and evaluation of a stored
// run), re-checking it against `registry`.
// Errors start with "stored config: "; a plugin whose behaviour version differs from the stored
// one is an error too, since the run would not be reproduced.
Experiment experiment_from_json(const nlohmann::json& resolved, const loader::Registry& registry);

// "optimization.lr" -> "0.001", ... for the store's params table.
// Also "encoder.params.depth" -> "12", "evaluation.0.params.epochs" -> "30", lists as
// "[0.15, 0.2]", strings unquoted.
std::map<std::string, std::string> flatten(const nlohmann::json& resolved);

}  // namespace jepa::config
