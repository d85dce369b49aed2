// Experiment files.
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

#include "config/toml_file.hpp"

#include "data/dataset.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <sstream>

namespace jepa::config {

namespace fs = std::filesystem;
using loader::Kind;
using loader::ParamSchema;
using loader::ParamType;
using loader::ParamValue;
using nlohmann::json;

namespace {

const std::vector<double> kImagenetMean{0.485, 0.456, 0.406};
const std::vector<double> kImagenetStd{0.229, 0.224, 0.225};

// ---------------------------------------------------------------- the host's schema

// Experiment members <-> ParamValue, so one table gives each key its type, default and storage.
ParamValue to_value(int64_t v) {
  return v;
}
ParamValue to_value(uint64_t v) {
  return static_cast<int64_t>(v);
}
ParamValue to_value(int v) {
  return static_cast<int64_t>(v);
}
ParamValue to_value(double v) {
  return v;
}
ParamValue to_value(bool v) {
  return v;
}
ParamValue to_value(const std::string& v) {
  return v;
}
ParamValue to_value(const std::array<double, 2>& v) {
  return std::vector<double>(v.begin(), v.end());
}
ParamValue to_value(const std::vector<double>& v) {
  return v;
}

// The schema (checked before this runs) keeps every value in the member's range.
void assign(int64_t& m, const ParamValue& v) {
  m = std::get<int64_t>(v);
}
void assign(uint64_t& m, const ParamValue& v) {
  m = static_cast<uint64_t>(std::get<int64_t>(v));
}
void assign(int& m, const ParamValue& v) {
  m = static_cast<int>(std::get<int64_t>(v));
}
void assign(double& m, const ParamValue& v) {
  m = std::get<double>(v);
}
void assign(bool& m, const ParamValue& v) {
  m = std::get<bool>(v);
}
void assign(std::string& m, const ParamValue& v) {
  m = std::get<std::string>(v);
}
void assign(std::array<double, 2>& m, const ParamValue& v) {
  const auto& l = std::get<std::vector<double>>(v);
  m = {l.at(0), l.at(1)};
}
void assign(std::vector<double>& m, const ParamValue& v) {
  m = std::get<std::vector<double>>(v);
}

ParamType type_of(const ParamValue& v) {
  static constexpr ParamType types[] = {ParamType::integer, ParamType::real, ParamType::boolean, ParamType::string,
                                        ParamType::list};
  return types[v.index()];
}

const Experiment& struct_defaults() {
  static const Experiment defaults;
  return defaults;
}

struct HostKey {
  ParamSchema schema;
  bool exclusive_min = false;  // ParamSchema bounds are inclusive; ipe_scale and crop_scale need > 0
  std::function<void(Experiment&, const ParamValue&)> store;
  std::function<ParamValue(const Experiment&)> load;

  HostKey&& range(double lo, double hi) && {
    schema.min = lo;
    schema.max = hi;
    return std::move(*this);
  }
  HostKey&& at_least(double lo) && {
    schema.min = lo;
    return std::move(*this);
  }
  HostKey&& above(double lo) && {
    schema.min = lo;
    exclusive_min = true;
    return std::move(*this);
  }
  HostKey&& at_most(double hi) && {
    schema.max = hi;
    return std::move(*this);
  }
  HostKey&& one_of(std::vector<std::string> choices) && {
    schema.choices = std::move(choices);
    return std::move(*this);
  }
  HostKey&& length(uint32_t n) && {
    schema.list_length = n;
    return std::move(*this);
  }
};

// The default is read from Experiment's initialiser, so the table and the struct cannot disagree.
template <class T>
HostKey key(const char* name, T Experiment::*member, const char* doc) {
  HostKey k;
  k.schema.name = name;
  k.schema.default_value = to_value(struct_defaults().*member);
  k.schema.type = type_of(k.schema.default_value);
  k.schema.doc = doc;
  k.store = [member](Experiment& e, const ParamValue& v) { assign(e.*member, v); };
  k.load = [member](const Experiment& e) { return to_value(e.*member); };
  return k;
}

struct HostSection {
  std::string name;
  std::vector<HostKey> keys;

  const HostKey* find(std::string_view key) const {
    for (const auto& k : keys) {
      if (k.schema.name == key) return &k;
    }
    return nullptr;
  }
  std::string key_names() const {
    std::vector<std::string> names;
    for (const auto& k : keys) names.push_back(k.schema.name);
    return fmt::format("{}", fmt::join(names, ", "));
  }
};

const std::vector<HostSection>& host_sections() {
  static const std::vector<HostSection> sections = [] {
    using E = Experiment;
    std::vector<HostSection> s;
    s.push_back({"run",
                 {key("name", &E::name, "run name (default: the file's stem)"),
                  key("seed", &E::seed, "random seed").at_least(0),
                  key("threads", &E::threads, "CPU threads for LibTorch; 0 = every core").range(0, INT_MAX),
                  key("device", &E::device, "auto (CUDA when available), cpu or cuda").one_of({"auto", "cpu", "cuda"}),
                  key("precision", &E::precision,
                      "auto (bf16 on CUDA and on CPUs with native bf16, else fp32), fp32 or bf16 (autocast)")
                      .one_of({"auto", "fp32", "bf16"}),
                  key("tf32", &E::tf32, "fp32 matrix products on CUDA in TF32 (false: true fp32, slower)")}});
    s.push_back(
        {"data",
         {key("dataset", &E::dataset, "fashion_mnist or image_folder").one_of({"fashion_mnist", "image_folder"}),
          key("path", &E::path, "dataset folder (\"\" = the Debian package's Fashion-MNIST)"),
          key("image_size", &E::image_size, "side of the square input images, pixels").range(8, 4096),
          key("batch_size", &E::batch_size, "images per batch").at_least(1),
          key("workers", &E::workers, "decoding threads per rank; -1 = auto (from the rank's cores)").range(-1, 256),
          key("prefetch", &E::prefetch, "batches decoded ahead of training").range(1, 64),
          key("random_crop", &E::random_crop, "RandomResizedCrop when training"),
          key("crop_scale", &E::crop_scale, "RandomResizedCrop area fraction range").length(2).above(0).at_most(1),
          key("horizontal_flip", &E::horizontal_flip, "RandomHorizontalFlip(0.5) after the crop when training"),
          key("eval_transform", &E::eval_transform,
              "center_crop (Resize to image_size*256/224, CenterCrop), resize (the whole image) or auto "
              "(center_crop for image_folder, resize for fashion_mnist)")
              .one_of({"auto", "center_crop", "resize"}),
          key("mean", &E::mean, "normalisation mean: 1 value or one per channel"),
          key("std", &E::std, "normalisation std: 1 value or one per channel").above(0),
          key("limit_train", &E::limit_train, "use only this many training images; 0 = all").at_least(0)}});
    s.push_back(
        {"optimization",
         {key("epochs", &E::epochs, "training epochs").at_least(1),
          key("max_steps", &E::max_steps, "stop after this many steps; 0 = epochs * iterations per epoch").at_least(0),
          key("ipe_scale", &E::ipe_scale, "scales iterations per epoch in the schedules").above(0),
          key("start_lr", &E::start_lr, "learning rate at step 0").at_least(0),
          key("lr", &E::lr, "learning rate after warm-up").at_least(0),
          key("final_lr", &E::final_lr, "learning rate at the end").at_least(0),
          key("warmup", &E::warmup, "warm-up epochs").at_least(0),
          key("weight_decay", &E::weight_decay, "weight decay at step 0").at_least(0),
          key("final_weight_decay", &E::final_weight_decay, "weight decay at the end").at_least(0),
          key("ema", &E::ema, "target-encoder momentum, start and end").length(2).range(0, 1)}});
    s.push_back({"checkpoint",
                 {key("every", &E::checkpoint_every, "steps between checkpoints; 0 = only at the end").at_least(0),
                  key("dir", &E::checkpoint_dir,
                      "each run writes <dir>/<run id>/; \"\" = runs/ next to the results database")}});
    s.push_back({"logging", {key("every", &E::log_every, "steps between metric rows").at_least(1)}});
    s.push_back(
        {"distributed",
         {key("backend", &E::dist_backend, "auto (NCCL on CUDA when built with it, else Gloo), gloo or nccl")
              .one_of({"auto", "gloo", "nccl"}),
          key("masks", &E::dist_masks,
              "per_rank (each rank draws its own, as upstream) or global (one draw for the global batch)")
              .one_of({"per_rank", "global"}),
          key("timeout", &E::dist_timeout, "seconds a collective waits for the other ranks").above(0),
          key("leader_timeout", &E::dist_leader_timeout,
              "seconds the other ranks wait for rank 0's evaluations and checkpoints")
              .above(0),
          key("bucket_mb", &E::dist_bucket_mb, "MB of gradients per all-reduce bucket (DDP's bucket_cap_mb)").above(0),
          key("peer_timeout", &E::dist_peer_timeout,
              "seconds without a heartbeat from a rank before the run ends naming it")
              .above(0)}});
    return s;
  }();
  return sections;
}

const HostSection* find_host_section(std::string_view name) {
  for (const auto& s : host_sections()) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

// Sections that choose a plugin: the key holding its id, and where the choice lands.
struct PluginSection {
  const char* name;
  const char* id_key;
  Kind kind;
  ComponentChoice Experiment::*member;
  const char* default_id;  // nullptr: the section and its id are required
};

constexpr PluginSection kPluginSections[] = {
    {"masking", "strategy", Kind::masking, &Experiment::masking, nullptr},
    {"encoder", "plugin", Kind::encoder, &Experiment::encoder, nullptr},
    {"predictor", "plugin", Kind::predictor, &Experiment::predictor, nullptr},
    // Runs stored before objectives were plugins have no [objective]: they trained I-JEPA's loss.
    {"objective", "plugin", Kind::objective, &Experiment::objective, "ijepa"},
};
constexpr const char* kEvaluation = "evaluation";
constexpr const char* kEvaluatorKey = "evaluator";
constexpr const char* kVersionKey = "version";  // only in the stored (resolved) form
constexpr const char* kParamsKey = "params";
constexpr const char* kSweep = "sweep";  // a sweep file's own table, read by sweep/spec.cpp

// The host's own keys of an [[evaluation]]: when to run the evaluator, not how it measures.
ParamSchema evaluation_key(const char* name, ParamValue default_value, const char* doc) {
  ParamSchema k;
  k.name = name;
  k.default_value = std::move(default_value);
  k.type = type_of(k.default_value);
  k.doc = doc;
  return k;
}

const std::vector<ParamSchema>& evaluation_keys() {
  static const std::vector<ParamSchema> keys = [] {
    const EvaluationChoice d;
    std::vector<ParamSchema> k;
    k.push_back(evaluation_key("every", d.every, "steps between evaluations during training; 0 = none"));
    k.back().min = 0;
    k.push_back(evaluation_key("at_end", d.at_end, "also evaluate after the last step"));
    k.push_back(evaluation_key("stop_when", d.stop_when,
                               "stop the run (PRUNED) once \"<metric> <op> <number>\" holds after an evaluation"));
    k.push_back(evaluation_key("baselines", d.baselines,
                               "after the last step, also evaluate raw pixels and the encoder at initialisation"));
    return k;
  }();
  return keys;
}

const ParamSchema* find_evaluation_key(std::string_view name) {
  for (const auto& k : evaluation_keys()) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

std::string evaluation_key_names() {
  std::vector<std::string> names;
  for (const auto& k : evaluation_keys()) names.push_back(k.name);
  return fmt::format("{}", fmt::join(names, ", "));
}

// check_value plus the syntax of stop_when, so a bad rule fails at load time, not mid-run.
std::string check_evaluation_value(const ParamSchema& k, const ParamValue& v) {
  if (std::string err = loader::check_value(k, v); !err.empty()) return err;
  if (k.name == "stop_when") {
    try {
      parse_stop_rule(std::get<std::string>(v));
    } catch (const ConfigError& e) {
      return e.what();
    }
  }
  return {};
}

const PluginSection* find_plugin_section(std::string_view name) {
  for (const auto& s : kPluginSections) {
    if (name == s.name) return &s;
  }
  return nullptr;
}

std::string section_names() {
  return "run, data, masking, encoder, predictor, objective, optimization, checkpoint, logging, evaluation";
}

bool is_section(std::string_view name) {
  return find_host_section(name) != nullptr || find_plugin_section(name) != nullptr || name == kEvaluation;
}

std::string noun(Kind kind) {
  return kind == Kind::masking ? "masking strategy" : loader::kind_name(kind);
}

std::string param_names(const loader::ComponentInfo& c) {
  std::vector<std::string> names;
  for (const auto& p : c.params) names.push_back(p.name);
  return names.empty() ? std::string("(it takes no parameters)") : fmt::format("{}", fmt::join(names, ", "));
}

// check_value plus the exclusive lower bound the host needs for a few keys.
std::string check_host_value(const HostKey& k, const ParamValue& v) {
  if (std::string err = loader::check_value(k.schema, v); !err.empty()) return err;
  if (!k.exclusive_min) return {};
  auto too_low = [&](double x) {
    return x <= *k.schema.min ? fmt::format("{} is outside the allowed range ({}, {}]", x, *k.schema.min,
                                            k.schema.max ? fmt::format("{}", *k.schema.max) : "inf")
                              : std::string();
  };
  if (const auto* d = std::get_if<double>(&v)) return too_low(*d);
  if (const auto* l = std::get_if<std::vector<double>>(&v)) {
    for (double x : *l) {
      if (std::string err = too_low(x); !err.empty()) return err;
    }
  }
  return {};
}

// ---------------------------------------------------------------- TOML and JSON values

// The ParamValue a TOML value naturally reads as, with integers widened where a float is wanted;
// std::nullopt when it has no reading (tables, dates, arrays of non-numbers). check_value then
// judges the type, so a float given for an integer key fails exactly like a plugin parameter.
std::optional<ParamValue> from_toml(const toml::node& node, ParamType want) {
  if (const auto* i = node.as_integer()) {
    if (want == ParamType::real) return ParamValue(static_cast<double>(i->get()));
    return ParamValue(i->get());
  }
  if (const auto* d = node.as_floating_point()) return ParamValue(d->get());
  if (const auto* b = node.as_boolean()) return ParamValue(b->get());
  if (const auto* s = node.as_string()) return ParamValue(s->get());
  if (const auto* a = node.as_array()) {
    std::vector<double> items;
    for (const auto& item : *a) {
      if (const auto* i = item.as_integer()) {
        items.push_back(static_cast<double>(i->get()));
      } else if (const auto* d = item.as_floating_point()) {
        items.push_back(d->get());
      } else {
        return std::nullopt;
      }
    }
    return ParamValue(std::move(items));
  }
  return std::nullopt;
}

json value_json(const ParamValue& v) {
  return std::visit([](const auto& x) { return json(x); }, v);
}

json params_json(const loader::ParamSet& set) {
  json out = json::object();
  for (const auto& [name, value] : set.values) out[name] = value_json(value);
  return out;
}

// The stored JSON as a TOML tree, so stored configs go through the very checks files do.
toml::table json_to_toml(const json& object, const std::string& where);

toml::array json_array_to_toml(const json& array, const std::string& where) {
  toml::array out;
  for (size_t i = 0; i < array.size(); ++i) {
    const json& item = array[i];
    const std::string at = fmt::format("{}[{}]", where, i);
    if (item.is_object()) {
      out.push_back(json_to_toml(item, at));
    } else if (item.is_number_integer()) {
      out.push_back(item.get<int64_t>());
    } else if (item.is_number()) {
      out.push_back(item.get<double>());
    } else if (item.is_string()) {
      out.push_back(item.get<std::string>());
    } else if (item.is_boolean()) {
      out.push_back(item.get<bool>());
    } else {
      throw ConfigError(fmt::format("stored config: {}: {} is not a valid value here", at, item.dump()));
    }
  }
  return out;
}

toml::table json_to_toml(const json& object, const std::string& where) {
  toml::table out;
  for (const auto& [k, v] : object.items()) {
    const std::string at = where.empty() ? k : where + "." + k;
    if (v.is_object()) {
      out.insert(k, json_to_toml(v, at));
    } else if (v.is_array()) {
      out.insert(k, json_array_to_toml(v, at));
    } else if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
      throw ConfigError(fmt::format("stored config: {}: {} is too large", at, v.dump()));
    } else if (v.is_number_integer()) {
      out.insert(k, v.get<int64_t>());
    } else if (v.is_number()) {
      out.insert(k, v.get<double>());
    } else if (v.is_string()) {
      out.insert(k, v.get<std::string>());
    } else if (v.is_boolean()) {
      out.insert(k, v.get<bool>());
    } else {
      throw ConfigError(fmt::format("stored config: {}: {} is not a valid value", at, v.dump()));
    }
  }
  return out;
}

// ---------------------------------------------------------------- resolution

// Where an error is: "<file>:<line>:<col>: " in a file, "stored config: " for the JSON form.
class Where {
 public:
  static Where file(std::string name) { return Where(std::move(name), false); }
  static Where stored() { return Where("", true); }

  bool is_stored() const { return stored_; }
  std::string at(const toml::source_region& r) const {
    if (stored_) return "stored config: ";
    // Line 0 means no position (a section that is absent): point at the start of the file.
    return fmt::format("{}:{}:{}: ", file_, std::max<uint32_t>(r.begin.line, 1), std::max<uint32_t>(r.begin.column, 1));
  }

 private:
  Where(std::string file, bool stored) : file_(std::move(file)), stored_(stored) {}
  std::string file_;
  bool stored_;
};

// One key of a TOML table, with its position.
struct Entry {
  const toml::key* key;
  const toml::node* node;
};

// A table's entries in file order, so the first problem reported is the first in the file.
std::vector<Entry> ordered(const toml::table& table) {
  std::vector<Entry> out;
  for (auto&& [k, v] : table) out.push_back({&k, &v});
  std::stable_sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) {
    const auto& pa = a.key->source().begin;
    const auto& pb = b.key->source().begin;
    return pa.line != pb.line ? pa.line < pb.line : pa.column < pb.column;
  });
  return out;
}

std::optional<Entry> find_entry(const toml::table* table, std::string_view name) {
  if (table == nullptr) return std::nullopt;
  for (auto&& [k, v] : *table) {
    if (k.str() == name) return Entry{&k, &v};
  }
  return std::nullopt;
}

// A plugin choice in the making: [masking], [encoder], [predictor] or one [[evaluation]].
struct Slot {
  std::string section;       // "encoder", "evaluation.0"
  std::string title;         // "[encoder]", "[evaluation.0]"
  std::string params_title;  // "[encoder.params]", "[evaluation.0]"
  std::string id_key;        // "plugin"
  Kind kind = Kind::masking;
  bool inline_params = false;           // a file's [[evaluation]]: parameters sit next to `evaluator`
  const toml::table* table = nullptr;   // the section, null when absent
  const toml::table* params = nullptr;  // where its parameters are, null when none
  // A file's [[evaluation]] may also hold a `params` table, for parameters named like a host key.
  const toml::table* sub_params = nullptr;
  toml::source_region region{};  // of the section, for "missing key" errors (line 0: absent)
  std::optional<std::string> id;
  std::string id_origin;   // error prefix of wherever the id was set
  bool defaulted = false;  // the section's default plugin, not named anywhere
  std::optional<Entry> version;
  std::map<std::string, ParamValue> param_overrides;
  const loader::ComponentInfo* component = nullptr;
  // [[evaluation]] only: every, at_end, stop_when as given by the file or --set.
  std::map<std::string, ParamValue> evaluation_values;
  std::set<std::string> evaluation_overridden;           // by --set: the file's value is not read
  std::map<std::string, std::string> evaluation_origin;  // error prefix of where each was given
};

// One --set.
struct Assignment {
  std::string text;
  std::vector<std::string> path;
  std::string value;
  std::string origin() const { return fmt::format("--set {}: ", text); }
};

Assignment parse_assignment(const std::string& text) {
  Assignment a;
  a.text = text;
  try {
    auto [k, v] = split_assignment(text);
    a.value = std::move(v);
    std::stringstream parts(k);
    for (std::string part; std::getline(parts, part, '.');) a.path.push_back(part);
    if (a.path.size() < 2 || std::any_of(a.path.begin(), a.path.end(), [](const auto& p) { return p.empty(); })) {
      throw ConfigError(fmt::format("'{}' is not a key like section.key (valid sections: {})", k, section_names()));
    }
  } catch (const ConfigError& e) {
    throw ConfigError(a.origin() + e.what());
  }
  return a;
}

class Resolver {
 public:
  Resolver(const toml::table& root, Where where, const loader::Registry& registry)
      : root_(root), where_(std::move(where)), registry_(registry) {}

  Experiment run(const std::vector<std::string>& override_texts, const std::string& default_name) {
    check_top_level();
    make_slots();
    std::vector<Assignment> overrides;
    for (const auto& text : override_texts) overrides.push_back(parse_assignment(text));
    // Ids first: which schema a parameter override is parsed with depends on the final plugin.
    for (const auto& a : overrides) apply_id_override(a);
    for (auto& slot : slots_) resolve_id(slot);
    for (const auto& a : overrides) apply_value_override(a);
    read_host_sections();
    for (auto& slot : slots_) read_params(slot);
    for (auto& slot : slots_) {
      if (slot.kind == Kind::evaluator) read_evaluation_keys(slot);
    }
    return build(default_name);
  }

 private:
  std::string at(const Entry& e) const { return where_.at(e.key->source()); }
  std::string at(const toml::source_region& r) const { return where_.at(r); }

  void check_top_level() {
    for (const Entry& e : ordered(root_)) {
      const std::string name(e.key->str());
      // The sweep reader owns [sweep]; its keys are no part of the experiment.
      if (name == kSweep && e.node->is_table() && !where_.is_stored()) continue;
      if (!is_section(name)) {
        if (e.node->is_table()) {
          throw ConfigError(fmt::format("{}unknown section [{}]; valid sections: {}", at(e), name, section_names()));
        }
        std::string hint;
        for (const auto& s : host_sections()) {
          if (s.find(name) != nullptr) hint = fmt::format(" ('{}' belongs in [{}])", name, s.name);
        }
        throw ConfigError(
            fmt::format("{}key '{}' is outside any section{}; valid sections: {}", at(e), name, hint, section_names()));
      }
      if (name == kEvaluation) {
        const auto* array = e.node->as_array();
        const bool tables = array != nullptr &&
                            std::all_of(array->begin(), array->end(), [](const toml::node& n) { return n.is_table(); });
        if (!tables) {
          throw ConfigError(
              fmt::format("{}[evaluation] must be a list of tables: write each as [[evaluation]]", at(e)));
        }
      } else if (!e.node->is_table()) {
        throw ConfigError(fmt::format("{}[{}] must be a table, not a value", at(e), name));
      }
    }
  }

  void make_slots() {
    for (const auto& s : kPluginSections) {
      Slot slot;
      slot.section = s.name;
      slot.title = fmt::format("[{}]", s.name);
      slot.params_title = fmt::format("[{}.{}]", s.name, kParamsKey);
      slot.id_key = s.id_key;
      slot.kind = s.kind;
      slot.table = root_[s.name].as_table();
      if (slot.table != nullptr) {
        slot.region = slot.table->source();
        if (auto p = find_entry(slot.table, kParamsKey)) {
          slot.params = p->node->as_table();
          if (slot.params == nullptr) {
            throw ConfigError(fmt::format("{}{} {}: expects a table of {} parameters ([{}.{}])", at(*p), slot.title,
                                          kParamsKey, loader::kind_name(s.kind), s.name, kParamsKey));
          }
        }
      }
      read_id(slot);
      if (!slot.id && s.default_id != nullptr) {
        slot.id = s.default_id;
        slot.id_origin = at(slot.region);
        slot.defaulted = true;
      }
      slots_.push_back(std::move(slot));
    }
    if (const auto* array = root_[kEvaluation].as_array()) {
      for (size_t i = 0; i < array->size(); ++i) {
        Slot slot;
        slot.section = fmt::format("{}.{}", kEvaluation, i);
        slot.title = fmt::format("[{}]", slot.section);
        slot.id_key = kEvaluatorKey;
        slot.kind = Kind::evaluator;
        slot.table = (*array)[i].as_table();
        slot.region = slot.table->source();
        // The stored form nests parameters under "params" like the other plugin sections.
        slot.inline_params = !where_.is_stored();
        if (slot.inline_params) {
          slot.params = slot.table;
          slot.params_title = slot.title;
          if (auto p = find_entry(slot.table, kParamsKey)) {
            slot.sub_params = p->node->as_table();
            if (slot.sub_params == nullptr) {
              throw ConfigError(
                  fmt::format("{}{} {}: expects a table of evaluator parameters", at(*p), slot.title, kParamsKey));
            }
          }
        } else {
          slot.params_title = fmt::format("[{}.{}]", slot.section, kParamsKey);
          if (auto p = find_entry(slot.table, kParamsKey)) {
            slot.params = p->node->as_table();
            if (slot.params == nullptr) {
              throw ConfigError(fmt::format("{}{} {}: expects a table", at(*p), slot.title, kParamsKey));
            }
          }
        }
        read_id(slot);
        slots_.push_back(std::move(slot));
      }
    }
  }

  void read_id(Slot& slot) {
    auto e = find_entry(slot.table, slot.id_key);
    if (!e) return;
    const auto* s = e->node->as_string();
    if (s == nullptr) {
      throw ConfigError(fmt::format("{}{} {}: expects a value of type string (a {} id)", at(*e), slot.title,
                                    slot.id_key, noun(slot.kind)));
    }
    slot.id = s->get();
    slot.id_origin = at(*e);
  }

  Slot* plugin_slot(const std::string& section) {
    for (auto& s : slots_) {
      if (s.section == section) return &s;
    }
    return nullptr;
  }

  // For "evaluation.<i>...": the slot, or an error naming the valid indices.
  Slot& evaluation_slot(const Assignment& a) {
    const size_t count = slots_.size() - std::size(kPluginSections);
    const std::string& index = a.path[1];
    const bool digits = !index.empty() &&
                        std::all_of(index.begin(), index.end(), [](unsigned char ch) { return std::isdigit(ch) != 0; });
    Slot* slot =
        digits && index.size() < 6 ? plugin_slot(fmt::format("{}.{}", kEvaluation, std::stoul(index))) : nullptr;
    if (slot == nullptr || a.path.size() < 3) {
      const std::string valid =
          count == 0 ? std::string("the experiment has no [[evaluation]]")
                     : fmt::format("the experiment has {} [[evaluation]] (indices 0..{})", count, count - 1);
      throw ConfigError(fmt::format("{}expects evaluation.<index>.<key>; {}", a.origin(), valid));
    }
    return *slot;
  }

  void apply_id_override(const Assignment& a) {
    Slot* slot = nullptr;
    if (const auto* s = find_plugin_section(a.path[0]); s != nullptr && a.path.size() == 2 && a.path[1] == s->id_key) {
      slot = plugin_slot(s->name);
    } else if (a.path[0] == kEvaluation && a.path.size() == 3 && a.path[2] == kEvaluatorKey) {
      slot = &evaluation_slot(a);
    }
    if (slot == nullptr) return;
    ParamSchema id_schema;
    id_schema.name = slot->id_key;
    id_schema.type = ParamType::string;
    slot->id = std::get<std::string>(parse_value(slot->title, id_schema, a.value));
    slot->id_origin = a.origin();
    slot->defaulted = false;
  }

  void resolve_id(Slot& slot) {
    if (!slot.id) {
      throw ConfigError(fmt::format("{}{} missing required key '{}'; available: {}", at(slot.region), slot.title,
                                    slot.id_key, registry_.available(slot.kind)));
    }
    slot.component = registry_.find(slot.kind, *slot.id);
    if (slot.component == nullptr) {
      throw ConfigError(fmt::format("{}{} {}: unknown {} '{}'; available: {}", slot.id_origin, slot.title, slot.id_key,
                                    noun(slot.kind), *slot.id, registry_.available(slot.kind)));
    }
    // A stored config without the section predates it and ran the default's behaviour.
    if (where_.is_stored() && !(slot.defaulted && slot.table == nullptr)) check_version(slot);
  }

  // A stored run names the behaviour version it ran with; another version would not reproduce it.
  void check_version(Slot& slot) {
    auto e = find_entry(slot.table, kVersionKey);
    if (!e) {
      throw ConfigError(fmt::format("{}{} missing required key '{}'", at(slot.region), slot.title, kVersionKey));
    }
    const auto* v = e->node->as_integer();
    if (v == nullptr) {
      throw ConfigError(fmt::format("{}{} {}: expects a value of type int", at(*e), slot.title, kVersionKey));
    }
    if (v->get() != static_cast<int64_t>(slot.component->version)) {
      throw ConfigError(fmt::format("{}{} {}: the run used version {} of {}, which now has version {}", at(*e),
                                    slot.title, kVersionKey, v->get(), slot.component->label(),
                                    slot.component->version));
    }
  }

  void apply_value_override(const Assignment& a) {
    const std::string& section = a.path[0];
    try {
      if (const HostSection* host = find_host_section(section)) {
        const std::string name = fmt::format("{}", fmt::join(a.path.begin() + 1, a.path.end(), "."));
        const HostKey* k = host->find(name);
        if (k == nullptr) {
          throw ConfigError(fmt::format("[{}] unknown key '{}'; valid keys: {}", section, name, host->key_names()));
        }
        const std::string title = fmt::format("[{}]", section);
        ParamValue v = parse_value(title, k->schema, a.value);
        if (std::string err = check_host_value(*k, v); !err.empty()) {
          throw ConfigError(fmt::format("{} {}: {}", title, name, err));
        }
        host_values_[section + "." + name] = std::move(v);
        host_origin_[section + "." + name] = a.origin();
        return;
      }
      if (const PluginSection* plugin = find_plugin_section(section)) {
        Slot& slot = *plugin_slot(plugin->name);
        if (a.path.size() == 2 && a.path[1] == slot.id_key) return;  // applied already
        if (a.path.size() == 3 && a.path[1] == kParamsKey) return set_param(slot, a.path[2], a.value);
        const std::string name = fmt::format("{}", fmt::join(a.path.begin() + 1, a.path.end(), "."));
        const std::string hint = slot.component->find_param(name) != nullptr
                                     ? fmt::format(" (did you mean {}.{}.{}?)", section, kParamsKey, name)
                                     : "";
        std::vector<std::string> valid{slot.id_key};
        for (const auto& p : slot.component->params) valid.push_back(fmt::format("{}.{}", kParamsKey, p.name));
        throw ConfigError(
            fmt::format("{} unknown key '{}'; valid keys: {}{}", slot.title, name, fmt::join(valid, ", "), hint));
      }
      if (section == kEvaluation) {
        Slot& slot = evaluation_slot(a);
        if (a.path.size() == 3 && a.path[2] == kEvaluatorKey) return;  // applied already
        if (a.path.size() == 3) {
          if (const ParamSchema* k = find_evaluation_key(a.path[2])) {
            ParamValue v = parse_value(slot.title, *k, a.value);
            if (std::string err = check_evaluation_value(*k, v); !err.empty()) {
              throw ConfigError(fmt::format("{} {}: {}", slot.title, k->name, err));
            }
            slot.evaluation_values[k->name] = std::move(v);
            slot.evaluation_overridden.insert(k->name);
            slot.evaluation_origin[k->name] = a.origin();
            return;
          }
          return set_param(slot, a.path[2], a.value);
        }
        if (a.path.size() == 4 && a.path[2] == kParamsKey) return set_param(slot, a.path[3], a.value);
        throw ConfigError(fmt::format("expects evaluation.<index>.<key> or evaluation.<index>.params.<key>"));
      }
      throw ConfigError(fmt::format("unknown section [{}]; valid sections: {}", section, section_names()));
    } catch (const ConfigError& e) {
      const std::string what = e.what();
      throw ConfigError(what.rfind("--set ", 0) == 0 ? what : a.origin() + what);
    }
  }

  void set_param(Slot& slot, const std::string& name, const std::string& text) {
    const ParamSchema* schema = slot.component->find_param(name);
    if (schema == nullptr) {
      throw ConfigError(fmt::format("{} unknown key '{}' for {}; valid keys: {}", slot.params_title, name,
                                    slot.component->label(), param_names(*slot.component)));
    }
    slot.param_overrides[name] = parse_value(*slot.component, *schema, text);
  }

  void read_host_sections() {
    for (const HostSection& section : host_sections()) {
      const toml::table* table = root_[section.name].as_table();
      if (table == nullptr) continue;
      for (const Entry& e : ordered(*table)) {
        const std::string name(e.key->str());
        const HostKey* k = section.find(name);
        if (k == nullptr) {
          throw ConfigError(
              fmt::format("{}[{}] unknown key '{}'; valid keys: {}", at(e), section.name, name, section.key_names()));
        }
        const std::string path = section.name + "." + name;
        if (host_values_.count(path) != 0) continue;  // --set replaces it unseen
        const auto value = from_toml(*e.node, k->schema.type);
        const std::string err =
            value ? check_host_value(*k, *value) : fmt::format("expects a value of type {}", type_name(k->schema.type));
        if (!err.empty()) throw ConfigError(fmt::format("{}[{}] {}: {}", at(e), section.name, name, err));
        host_values_[path] = *value;
        host_origin_[path] = at(e);
      }
    }
  }

  void read_params(Slot& slot) {
    const loader::ComponentInfo& c = *slot.component;
    // Keys of the section itself (the params live in a sub-table, except inline [[evaluation]]).
    if (slot.table != nullptr && !slot.inline_params) {
      for (const Entry& e : ordered(*slot.table)) {
        const std::string name(e.key->str());
        if (name == slot.id_key || name == kParamsKey || (where_.is_stored() && name == kVersionKey)) continue;
        const bool evaluation = slot.kind == Kind::evaluator;
        if (evaluation && find_evaluation_key(name) != nullptr) continue;  // read_evaluation_keys
        const std::string hint =
            c.find_param(name) != nullptr ? fmt::format(" (parameters go in {})", slot.params_title) : "";
        throw ConfigError(fmt::format("{}{} unknown key '{}'; valid keys: {}, {}{}{}", at(e), slot.title, name,
                                      slot.id_key, evaluation ? evaluation_key_names() + ", " : "", kParamsKey, hint));
      }
    }
    loader::ParamSet set = loader::ParamSet::defaults(c);
    auto assign_param = [&](const std::string& name, ParamValue v) {
      for (auto& [n, value] : set.values) {
        if (n == name) value = std::move(v);
      }
    };
    std::map<std::string, bool> given;
    const auto read_table = [&](const toml::table& table, const std::string& title, bool beside_id) {
      for (const Entry& e : ordered(table)) {
        const std::string name(e.key->str());
        if (beside_id && (name == slot.id_key || name == kParamsKey || find_evaluation_key(name) != nullptr)) continue;
        const ParamSchema* schema = c.find_param(name);
        if (schema == nullptr) {
          throw ConfigError(
              fmt::format("{}{} unknown key '{}' for {}; valid keys: {}{}", at(e), title, name, c.label(),
                          beside_id ? fmt::format("{}, {}, {}, ", slot.id_key, evaluation_key_names(), kParamsKey) : "",
                          param_names(c)));
        }
        if (given[name]) throw ConfigError(fmt::format("{}{} {}: given twice", at(e), title, name));
        given[name] = true;
        if (slot.param_overrides.count(name) != 0) continue;
        const auto value = from_toml(*e.node, schema->type);
        const std::string err = value ? loader::check_value(*schema, *value)
                                      : fmt::format("expects a value of type {}", type_name(schema->type));
        if (!err.empty()) throw ConfigError(fmt::format("{}{} {}: {}", at(e), title, name, err));
        assign_param(name, *value);
      }
    };
    if (slot.params != nullptr) read_table(*slot.params, slot.params_title, slot.inline_params);
    if (slot.sub_params != nullptr) {
      read_table(*slot.sub_params, fmt::format("[{}.{}]", slot.section, kParamsKey), false);
    }
    for (const auto& [name, value] : slot.param_overrides) assign_param(name, value);
    chosen_.push_back({*slot.id, std::move(set), slot.component});
  }

  // Absent keys keep their defaults, so a run stored before these keys existed still loads.
  void read_evaluation_keys(Slot& slot) {
    for (const Entry& e : ordered(*slot.table)) {
      const std::string name(e.key->str());
      const ParamSchema* k = find_evaluation_key(name);
      if (k == nullptr || slot.evaluation_overridden.count(name) != 0) continue;
      const auto value = from_toml(*e.node, k->type);
      const std::string err =
          value ? check_evaluation_value(*k, *value) : fmt::format("expects a value of type {}", type_name(k->type));
      if (!err.empty()) throw ConfigError(fmt::format("{}{} {}: {}", at(e), slot.title, name, err));
      slot.evaluation_values[name] = *value;
      slot.evaluation_origin[name] = at(e);
    }
  }

  EvaluationChoice evaluation_choice(const Slot& slot, const ComponentChoice& chosen) const {
    EvaluationChoice ev;
    static_cast<ComponentChoice&>(ev) = chosen;
    const auto value = [&](const char* name) {
      const auto it = slot.evaluation_values.find(name);
      return it != slot.evaluation_values.end() ? it->second : find_evaluation_key(name)->default_value;
    };
    ev.every = std::get<int64_t>(value("every"));
    ev.at_end = std::get<bool>(value("at_end"));
    ev.stop_when = std::get<std::string>(value("stop_when"));
    ev.stop_rule = parse_stop_rule(ev.stop_when);
    ev.baselines = std::get<bool>(value("baselines"));
    // Rules are checked after evaluations during training only: without those it would be inert.
    if (ev.stop_rule && ev.every == 0) {
      const auto it = slot.evaluation_origin.find("stop_when");
      throw ConfigError(
          fmt::format("{}{} stop_when: needs every > 0 (the rule is checked after each evaluation during "
                      "training, and every = 0 runs none)",
                      it != slot.evaluation_origin.end() ? it->second : at(slot.region), slot.title));
    }
    return ev;
  }

  Experiment build(const std::string& default_name) {
    Experiment e;
    for (const HostSection& section : host_sections()) {
      for (const HostKey& k : section.keys) {
        const auto it = host_values_.find(section.name + "." + k.schema.name);
        k.store(e, it != host_values_.end() ? it->second : k.schema.default_value);
      }
    }
    for (size_t i = 0; i < std::size(kPluginSections); ++i) e.*kPluginSections[i].member = chosen_[i];
    for (size_t i = std::size(kPluginSections); i < chosen_.size(); ++i) {
      e.evaluators.push_back(evaluation_choice(slots_[i], chosen_[i]));
    }
    finish_data(e);
    if (e.name.empty()) e.name = default_name;
    return e;
  }

  // Rules that tie [data] keys together.
  void finish_data(Experiment& e) {
    const auto origin = [&](const std::string& key) {
      const auto it = host_origin_.find("data." + key);
      if (it != host_origin_.end()) return it->second;
      const toml::table* table = root_["data"].as_table();
      return at(table != nullptr ? table->source() : toml::source_region{});
    };
    const bool folder = e.dataset == "image_folder";
    if (e.path.empty()) {
      if (folder) {
        throw ConfigError(
            fmt::format("{}[data] path: required when dataset = \"image_folder\" (the folder holding train/ and val/)",
                        origin("path")));
      }
      e.path = data::fashion_mnist_default_path();
    }
    // Fashion-MNIST's statistics make no sense for RGB photos: switch unless the user chose.
    if (folder && host_values_.count("data.mean") == 0) e.mean = kImagenetMean;
    if (folder && host_values_.count("data.std") == 0) e.std = kImagenetStd;
    const size_t channels = folder ? 3 : 1;
    for (const auto& [name, values] : {std::pair{"mean", &e.mean}, std::pair{"std", &e.std}}) {
      if (values->size() != 1 && values->size() != channels) {
        throw ConfigError(fmt::format("{}[data] {}: has {} values; {} images have {} channel{}, so give 1 value{}",
                                      origin(name), name, values->size(), e.dataset, channels, channels == 1 ? "" : "s",
                                      channels == 1 ? "" : fmt::format(" (shared) or {}", channels)));
      }
    }
  }

  const toml::table& root_;
  Where where_;
  const loader::Registry& registry_;
  std::vector<Slot> slots_;                         // masking, encoder, predictor, then each [[evaluation]]
  std::vector<ComponentChoice> chosen_;             // in the same order
  std::map<std::string, ParamValue> host_values_;   // "data.mean" -> value given in the file or by --set
  std::map<std::string, std::string> host_origin_;  // "data.mean" -> error prefix of where it was given
};

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

Experiment load_experiment(const fs::path& file, const std::vector<std::string>& overrides,
                           const loader::Registry& registry) {
  const toml::table root = read_toml_file<ConfigError>(file, "experiment");
  Experiment e = Resolver(root, Where::file(file.string()), registry).run(overrides, file.stem().string());
  e.source = file;
  e.resolved = resolved_json(e);
  return e;
}

Experiment experiment_from_json(const json& resolved, const loader::Registry& registry) {
  if (!resolved.is_object()) throw ConfigError("stored config: expects a JSON object of sections");
  const toml::table root = json_to_toml(resolved, "");
  Experiment e = Resolver(root, Where::stored(), registry).run({}, "");
  e.resolved = resolved_json(e);
  return e;
}

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
