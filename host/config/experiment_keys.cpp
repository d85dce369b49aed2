#include "config/experiment_keys.hpp"

#include "data/dataset.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cmath>
#include <optional>

namespace jepa::config::detail {

namespace {

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

}  // namespace

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

}  // namespace jepa::config::detail
