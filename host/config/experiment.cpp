// Experiment files: the format (below, the one reference for it: docs/running.md links here),
// the stored (resolved) form and stop rules. The key table is experiment_keys.cpp, reading files
// and --set is resolver.cpp, values between TOML and JSON are toml_values.cpp.
//
// An experiment is one TOML file. Every section and key is optional unless marked required;
// a missing key takes the default shown. Unknown sections and keys are errors, never ignored.
//
//   [run]
//   name = "quickstart"        # default: the file's stem
//   seed = 0                   # >= 0
//   threads = 0                # CPU threads for LibTorch; 0 = every core
//   device = "auto"            # auto (CUDA when available) | cpu | cuda
//   precision = "auto"         # auto | fp32 | bf16: bf16 autocast over the forward passes (fp32
//                              #   master weights, optimizer, target layer norm, loss and EMA), as
//                              #   upstream's use_bfloat16; auto = bf16 on CUDA and on CPUs with
//                              #   native bf16 (AVX-512 BF16 or AMX, detected at run time), fp32
//                              #   elsewhere; bf16 on a CPU without it is an error. Evaluators'
//                              #   feature extraction follows it; their classifiers stay fp32.
//                              #   The choice and its reason go to the run's environment
//   tf32 = true                # fp32 matrix products on CUDA use TF32 tensor cores (torch's
//                              #   float32_matmul_precision "high"); false = true fp32 ("highest"),
//                              #   several times slower. Recorded in the run's environment
//
//   [data]
//   dataset = "fashion_mnist"  # fashion_mnist | image_folder
//   path = ""                  # "" = $JEPA_FASHION_MNIST, else /usr/share/datasets/fashion-mnist, for fashion_mnist;
//                              # required for image_folder (<path>/train/<class>/*.jpg, <path>/val/...)
//   image_size = 28            # 8..4096
//   batch_size = 128           # >= 1
//   workers = -1               # decoding threads per rank, each taking one image at a time;
//                              #   -1 = auto, from the rank's cores (run.threads, else its share of
//                              #   the machine): on CUDA all but one, on a CPU run a quarter (at
//                              #   least 2); 0 = the training thread
//   prefetch = 3               # batches decoded ahead of training, 1..64
//   random_crop = false        # RandomResizedCrop when training (else the evaluation transform)
//   crop_scale = [0.3, 1.0]    # area fraction range, each in (0, 1]
//   horizontal_flip = false    # RandomHorizontalFlip after the crop (upstream: off)
//   eval_transform = "auto"    # center_crop: Resize(image_size * 256 / 224) of the shorter
//                              #   side, then CenterCrop(image_size), as the official probe;
//                              #   resize: the whole image to image_size x image_size; auto:
//                              #   center_crop for image_folder, resize for fashion_mnist (whose
//                              #   28x28 items are whole, centred objects). Also what training
//                              #   uses when random_crop = false
//   mean = [0.2860]            # per channel: 1 value (shared) or one per channel
//   std = [0.3530]             # (fashion_mnist: 1 channel; image_folder: 3, where mean/std
//                              #  default to ImageNet's [0.485, 0.456, 0.406] / [0.229, 0.224, 0.225])
//   limit_train = 0            # use only this many training images; 0 = all
//
//   [masking]
//   strategy = "multiblock"    # required: a masking plugin id (`jepa plugins` lists them)
//   [masking.params]           # that plugin's parameters, checked against its schema
//   npred = 4
//
//   [encoder]
//   plugin = "vit"             # required: an encoder plugin id
//   [encoder.params]
//   depth = 12
//
//   [predictor]
//   plugin = "vit_predictor"   # required: a predictor plugin id
//   [predictor.params]
//
//   [objective]                # the loss: ijepa (default; EMA target, smooth L1), sigreg
//   plugin = "ijepa"           #   (LeJEPA's SIGReg), vicreg (I-JEPA + variance/covariance), or
//   [objective.params]         #   any objective plugin; docs/objectives.md
//
//   [optimization]             # the official I-JEPA schedule
//   epochs = 300               # >= 1
//   max_steps = 0              # stop after this many steps; 0 = epochs * iterations per epoch
//   ipe_scale = 1.0            # > 0, stretches the schedules
//   start_lr = 2e-4            # learning rates >= 0: warm-up from start_lr to lr,
//   lr = 1e-3                  # then cosine to final_lr
//   final_lr = 1e-6
//   warmup = 40                # epochs, >= 0
//   weight_decay = 0.04        # cosine from weight_decay to final_weight_decay, >= 0
//   final_weight_decay = 0.4
//   ema = [0.996, 1.0]         # target-encoder momentum, start and end, each in [0, 1]
//
//   [checkpoint]
//   every = 0                  # steps; 0 = only at the end
//   dir = ""                   # each run writes <dir>/<run id>/; "" = runs/<database stem>/
//                              # next to the results database (results/runs/jepa with the
//                              # default --db), so runs of different databases never share one
//
//   [logging]
//   every = 10                 # steps between metric rows, >= 1
//
//   [distributed]              # when a run has several ranks (jepa run --nproc N, torchrun, SLURM);
//                              # data.batch_size is per rank, as upstream's
//   backend = "auto"           # auto (NCCL on CUDA when LibTorch has it, else Gloo) | gloo | nccl
//   masks = "per_rank"         # per_rank: each rank samples its own batch's masks (seed mixed with
//                              #   the rank; upstream); global: every rank takes its images' masks
//                              #   from one draw for the whole global batch, so N ranks x b give the
//                              #   same steps as one process with N*b
//   timeout = 300              # seconds a collective waits for the others before the run FAILS
//   leader_timeout = 3600      # seconds the others wait for rank 0's evaluations and checkpoints
//   peer_timeout = 20          # seconds without a heartbeat from a rank (stopped, hung machine, lost
//                              #   store) before every rank ends the run naming it, whatever the
//                              #   collective timeout (NCCL's kernels wait for a stuck peer forever)
//   bucket_mb = 25             # gradients per all-reduce, started while backward runs (DDP's bucket_cap_mb)
//
//   [[evaluation]]             # any number of these, run in order
//   evaluator = "linear_probe" # required: an evaluator plugin id
//   every = 0                  # steps between evaluations during training (target encoder, eval
//                              # mode, no gradients; recorded at that step); 0 = none, >= 0
//   at_end = true              # also evaluate after the last step (which is then evaluated once)
//   stop_when = ""             # "<metric> <op> <number>", op one of < <= > >=, e.g. "top1 < 20" or
//                              # "effective_rank < 8": checked after each evaluation during training;
//                              # once it holds the run stops with a checkpoint as PRUNED. The metric
//                              # must be one the evaluator reports (checked when it first runs; a
//                              # NaN never satisfies a rule). "" = no rule
//   baselines = false          # after the last step, also run this evaluator (same parameters, data
//                              # and precision) on raw pixels (each image one flat vector) and on the
//                              # encoder at its initialisation (the run's seed): recorded as
//                              # "<evaluator>/<metric>@raw_pixels" and "...@random_init", printed
//                              # beside the trained encoder's
//   epochs = 30                # every other key is a parameter of that evaluator;
//   params = { every = 5 }     # a parameter named like one of the keys above goes in `params`
//
//   [sweep]                    # ignored here: a sweep file is its base experiment plus a [sweep]
//                              # table (see sweep/spec.hpp), so `jepa run` on it runs the base
//                              # experiment. Files only: --set sweep.<key> and a stored config
//                              # holding [sweep] are errors
//
// Values: a TOML integer is accepted where a float is expected, a float is never accepted for an
// integer; lists are arrays of numbers.
//
// Overrides (`--set`, repeatable) are applied before anything is checked, and are parsed with the
// type of the key they set:
//   --set optimization.lr=5e-4      --set data.crop_scale=[0.5,1]
//   --set masking.strategy=random   --set masking.params.ratio=[0.7,0.8]
//   --set encoder.params.depth=4    --set evaluation.0.epochs=5   (the first [[evaluation]])
//   --set evaluation.0.every=50     --set 'evaluation.0.stop_when=top1 < 20'
//   --set evaluation.0.params.every=5  (a parameter, where the evaluator has one named like a host key)
// Changing a plugin id does not drop the old plugin's parameters: they are checked against the
// new plugin, so a stale one is an error naming it.
//
// Errors start with "<file>:<line>:<column>: " (the key at fault, or the table that lacks a
// required key) or "--set <text>: ", then name the section and key:
//   run.toml:12:1: [data] batch_size: 0 is outside the allowed range [1, inf]
//
// The resolved form (stored with each run) is JSON with every section and every key, defaults
// included; plugin sections become {"strategy"|"plugin": id, "version": n, "params": {...}} and
// evaluation an array of {"evaluator": id, "version": n, "every": n, "at_end": b, "stop_when": s,
// "params": {...}}. Rebuilding from it checks everything again, including that each plugin still
// has the stored behaviour version; every, at_end, stop_when and baselines may be absent (runs stored before
// they existed) and take their defaults.
#include "config/experiment.hpp"

#include "config/experiment_keys.hpp"
#include "config/toml_values.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>

namespace jepa::config {

using namespace detail;
using nlohmann::json;

namespace detail {

json resolved_json(const Experiment& e) {
  json out = json::object();
  for (const HostSection& section : host_sections()) {
    json& s = out[section.name] = json::object();
    for (const HostKey& k : section.keys) s[k.schema.name] = value_json(k.load(e));
  }
  for (const auto& p : kPluginSections) {
    const ComponentChoice& c = e.*p.member;
    out[p.name] = {{p.id_key, c.id}, {kVersionKey, c.component->version}, {kParamsKey, params_json(c.params)}};
  }
  json& evals = out[kEvaluation] = json::array();
  for (const auto& c : e.evaluators) {
    evals.push_back({{kEvaluatorKey, c.id},
                     {kVersionKey, c.component->version},
                     {"every", c.every},
                     {"at_end", c.at_end},
                     {"stop_when", c.stop_when},
                     {"baselines", c.baselines},
                     {kParamsKey, params_json(c.params)}});
  }
  return out;
}

}  // namespace detail

namespace {

void flatten_into(const json& j, const std::string& prefix, std::map<std::string, std::string>& out) {
  const auto child = [&](const std::string& k) { return prefix.empty() ? k : prefix + "." + k; };
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) flatten_into(v, child(k), out);
  } else if (j.is_array() && std::all_of(j.begin(), j.end(), [](const json& x) { return x.is_number(); })) {
    out[prefix] = loader::format_value(j.get<std::vector<double>>());
  } else if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i) flatten_into(j[i], child(std::to_string(i)), out);
  } else if (j.is_string()) {
    out[prefix] = j.get<std::string>();
  } else if (j.is_number_integer()) {
    out[prefix] = j.dump();
  } else if (j.is_number()) {
    out[prefix] = loader::format_value(j.get<double>());
  } else {
    out[prefix] = j.dump();  // true, false, null
  }
}

}  // namespace

bool StopRule::holds(double value) const {
  // Every comparison with NaN is false, so a NaN metric never stops a run.
  if (op == "<") return value < threshold;
  if (op == "<=") return value <= threshold;
  if (op == ">") return value > threshold;
  if (op == ">=") return value >= threshold;
  return false;
}

std::string StopRule::text() const {
  return fmt::format("{} {} {}", metric, op, threshold);
}

std::optional<StopRule> parse_stop_rule(const std::string& text) {
  const auto is_space = [](char ch) { return std::isspace(static_cast<unsigned char>(ch)) != 0; };
  const auto is_op = [](char ch) { return ch == '<' || ch == '>' || ch == '='; };
  size_t i = 0;
  const auto skip_spaces = [&] {
    while (i < text.size() && is_space(text[i])) ++i;
  };
  skip_spaces();
  if (i == text.size()) return std::nullopt;
  const auto fail = [&](const std::string& why) {
    return ConfigError(fmt::format(
        "'{}' {}; expects \"<metric> <op> <number>\" with <op> one of <, <=, >, >= (e.g. \"top1 < 20\")", text, why));
  };
  StopRule rule;
  const size_t metric_begin = i;
  while (i < text.size() && !is_space(text[i]) && !is_op(text[i])) ++i;
  rule.metric = text.substr(metric_begin, i - metric_begin);
  if (rule.metric.empty()) throw fail("has no metric name");
  skip_spaces();
  const size_t op_begin = i;
  while (i < text.size() && is_op(text[i])) ++i;
  rule.op = text.substr(op_begin, i - op_begin);
  if (rule.op != "<" && rule.op != "<=" && rule.op != ">" && rule.op != ">=") {
    throw fail(rule.op.empty() ? "has no comparison" : fmt::format("has the unknown comparison '{}'", rule.op));
  }
  skip_spaces();
  std::string number = text.substr(i);
  while (!number.empty() && is_space(number.back())) number.pop_back();
  char* end = nullptr;
  errno = 0;
  rule.threshold = number.empty() ? 0.0 : std::strtod(number.c_str(), &end);
  if (number.empty() || end != number.c_str() + number.size() || errno == ERANGE || !std::isfinite(rule.threshold)) {
    throw fail(number.empty() ? "has no number" : fmt::format("has '{}' where a finite number belongs", number));
  }
  return rule;
}

std::map<std::string, std::string> flatten(const json& resolved) {
  std::map<std::string, std::string> out;
  flatten_into(resolved, "", out);
  return out;
}

}  // namespace jepa::config
