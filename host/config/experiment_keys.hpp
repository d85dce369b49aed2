// The experiment format's key table: every host section and key with its type, default, range and
// doc; the sections that choose a plugin; the host's keys of an [[evaluation]]. The format is
// described at the top of experiment.cpp; resolver.cpp reads files and --set against this table,
// and experiment.cpp writes the stored (resolved) form from it. Internal to the config room.
#pragma once

#include "config/experiment.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace jepa::config::detail {

using loader::Kind;
using loader::ParamSchema;
using loader::ParamType;
using loader::ParamValue;

// [data] mean and std of an image folder when the file gives none (ImageNet's).
inline const std::vector<double> kImagenetMean{0.485, 0.456, 0.406};
inline const std::vector<double> kImagenetStd{0.229, 0.224, 0.225};

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

const std::vector<HostSection>& host_sections();

const HostSection* find_host_section(std::string_view name);

// Sections that choose a plugin: the key holding its id, and where the choice lands.
struct PluginSection {
  const char* name;
  const char* id_key;
  Kind kind;
  ComponentChoice Experiment::*member;
  const char* default_id;  // nullptr: the section and its id are required
};

inline constexpr PluginSection kPluginSections[] = {
    {"masking", "strategy", Kind::masking, &Experiment::masking, nullptr},
    {"encoder", "plugin", Kind::encoder, &Experiment::encoder, nullptr},
    {"predictor", "plugin", Kind::predictor, &Experiment::predictor, nullptr},
    // Runs stored before objectives were plugins have no [objective]: they trained I-JEPA's loss.
    {"objective", "plugin", Kind::objective, &Experiment::objective, "ijepa"},
};

inline constexpr const char* kEvaluation = "evaluation";

inline constexpr const char* kEvaluatorKey = "evaluator";

inline constexpr const char* kVersionKey = "version";  // only in the stored (resolved) form

inline constexpr const char* kParamsKey = "params";

inline constexpr const char* kSweep = "sweep";  // a sweep file's own table, read by sweep/spec.cpp

const ParamSchema* find_evaluation_key(std::string_view name);

std::string evaluation_key_names();

// check_value plus the syntax of stop_when, so a bad rule fails at load time, not mid-run.
std::string check_evaluation_value(const ParamSchema& k, const ParamValue& v);

const PluginSection* find_plugin_section(std::string_view name);

std::string section_names();

bool is_section(std::string_view name);

std::string noun(Kind kind);

std::string param_names(const loader::ComponentInfo& c);

// check_value plus the exclusive lower bound the host needs for a few keys.
std::string check_host_value(const HostKey& k, const ParamValue& v);

// The stored form: every section and key, defaults included (experiment.cpp).
nlohmann::json resolved_json(const Experiment& e);

}  // namespace jepa::config::detail
