// What the host knows about a plugin and its components once the loader has checked it.
// Plain C++ copies of the descriptor: nothing here points into a plugin except `table`.
#pragma once

#include <jepa/sdk/abi.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace boost::dll {
class shared_library;
}

namespace jepa::loader {

enum class Kind {
  masking = JEPA_KIND_MASKING,
  encoder = JEPA_KIND_ENCODER,
  predictor = JEPA_KIND_PREDICTOR,
  evaluator = JEPA_KIND_EVALUATOR,
  objective = JEPA_KIND_OBJECTIVE
};

const char* kind_name(Kind kind);
std::optional<Kind> kind_from_int(int32_t value);

enum class ParamType {
  integer = JEPA_PARAM_INT,
  real = JEPA_PARAM_FLOAT,
  boolean = JEPA_PARAM_BOOL,
  string = JEPA_PARAM_STRING,
  list = JEPA_PARAM_LIST
};

const char* type_name(ParamType type);

// A parameter value on the host side (owning).
using ParamValue = std::variant<int64_t, double, bool, std::string, std::vector<double>>;

std::string format_value(const ParamValue& value);

struct ParamSchema {
  std::string name;
  ParamType type = ParamType::integer;
  ParamValue default_value;
  std::optional<double> min;
  std::optional<double> max;
  std::vector<std::string> choices;
  uint32_t list_length = 0;
  std::string doc;
};

struct Fingerprint {
  std::string torch_version;
  std::string device;
  int32_t cxx11_abi = -1;
  std::string compiler_id;
  int32_t compiler_major = 0;
  int64_t cxx_standard = 0;
  int32_t sdk_major = 0;

  static Fingerprint from_c(const jepa_fingerprint& fp);
  // Parses JEPA_SDK_FINGERPRINT_TEXT as a plugin's section holds it; nullopt when malformed.
  static std::optional<Fingerprint> from_text(std::string_view text);
  std::string describe() const;  // "torch 1.13.0/cpu, cxx11abi 1, gcc 12, C++201703, sdk 1"
  // Names of the fields that differ, empty when equal.
  std::vector<std::string> differences(const Fingerprint& other) const;
};

struct PluginInfo;

struct ComponentInfo {
  Kind kind = Kind::masking;
  std::string id;
  uint32_t version = 0;
  std::string doc;
  std::vector<ParamSchema> params;
  bool cxx_interface = false;
  const PluginInfo* plugin = nullptr;
  const jepa_component* table = nullptr;  // inside the plugin; valid while `plugin->library` lives

  const ParamSchema* find_param(std::string_view name) const;
  std::string label() const;  // "masking 'multiblock' (plugin masking-multiblock)"
};

struct PluginInfo {
  std::filesystem::path path;
  std::string name;
  std::string version;
  std::string revision;
  std::string sha256;
  uint16_t abi_major = 0;
  uint16_t abi_minor = 0;
  Fingerprint fingerprint;
  std::vector<ComponentInfo> components;
  std::shared_ptr<boost::dll::shared_library> library;  // every object made by the plugin holds a copy
};

struct Rejection {
  std::filesystem::path path;
  std::string reason;
};

}  // namespace jepa::loader
