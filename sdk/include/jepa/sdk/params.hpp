// Parameter schemas (what a component declares) and parameter access (what it receives).
// The host validates every value against the schema before create() runs, so a component
// reads its parameters with typed getters and no defaults: a missing key is a host bug, and a
// typo in a config never reaches the plugin.
#pragma once

#include <jepa/sdk/abi.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace jepa::sdk {

// One declared parameter. Owns its strings; to_c() points into them, so a ParamSpec must stay
// where it is once the plugin's descriptor is built (the authoring layer takes care of that).
class ParamSpec {
 public:
  static ParamSpec integer(std::string name, int64_t def, std::string doc) {
    ParamSpec p(std::move(name), JEPA_PARAM_INT, std::move(doc));
    p.int_default_ = def;
    return p;
  }
  static ParamSpec real(std::string name, double def, std::string doc) {
    ParamSpec p(std::move(name), JEPA_PARAM_FLOAT, std::move(doc));
    p.float_default_ = def;
    return p;
  }
  static ParamSpec boolean(std::string name, bool def, std::string doc) {
    ParamSpec p(std::move(name), JEPA_PARAM_BOOL, std::move(doc));
    p.bool_default_ = def;
    return p;
  }
  static ParamSpec string(std::string name, std::string def, std::string doc, std::vector<std::string> choices = {}) {
    ParamSpec p(std::move(name), JEPA_PARAM_STRING, std::move(doc));
    p.string_default_ = std::move(def);
    p.choices_ = std::move(choices);
    return p;
  }
  // A list of numbers; `length` > 0 fixes the element count (e.g. 2 for a [min, max] range).
  static ParamSpec list(std::string name, std::vector<double> def, std::string doc, uint32_t length = 0) {
    ParamSpec p(std::move(name), JEPA_PARAM_LIST, std::move(doc));
    p.list_default_ = std::move(def);
    p.list_length_ = length;
    return p;
  }

  // Allowed range, inclusive; applies to every element of a list.
  ParamSpec&& range(double min, double max) && {
    has_min_ = has_max_ = true;
    min_ = min;
    max_ = max;
    return std::move(*this);
  }
  ParamSpec&& at_least(double min) && {
    has_min_ = true;
    min_ = min;
    return std::move(*this);
  }

  jepa_param_spec to_c() const {
    jepa_param_spec s{};
    s.struct_size = sizeof(jepa_param_spec);
    s.name = name_.c_str();
    s.type = type_;
    s.default_value.type = type_;
    s.default_value.int_value = int_default_;
    s.default_value.float_value = float_default_;
    s.default_value.bool_value = bool_default_ ? 1 : 0;
    s.default_value.string_value = string_default_.c_str();
    s.default_value.list_values = list_default_.data();
    s.default_value.list_length = static_cast<uint32_t>(list_default_.size());
    s.has_min = has_min_ ? 1 : 0;
    s.has_max = has_max_ ? 1 : 0;
    s.min = min_;
    s.max = max_;
    choice_ptrs_.clear();
    for (const auto& c : choices_) choice_ptrs_.push_back(c.c_str());
    s.choices = choice_ptrs_.empty() ? nullptr : choice_ptrs_.data();
    s.n_choices = static_cast<uint32_t>(choice_ptrs_.size());
    s.list_length = list_length_;
    s.doc = doc_.c_str();
    return s;
  }

 private:
  ParamSpec(std::string name, int32_t type, std::string doc)
      : name_(std::move(name)), type_(type), doc_(std::move(doc)) {}

  std::string name_;
  int32_t type_;
  std::string doc_;
  int64_t int_default_ = 0;
  double float_default_ = 0.0;
  bool bool_default_ = false;
  std::string string_default_;
  std::vector<double> list_default_;
  std::vector<std::string> choices_;
  mutable std::vector<const char*> choice_ptrs_;
  uint32_t list_length_ = 0;
  bool has_min_ = false;
  bool has_max_ = false;
  double min_ = 0.0;
  double max_ = 0.0;
};

// Read-only view of the resolved parameters handed to create().
class Params {
 public:
  explicit Params(const jepa_params* params) : params_(params) {}

  int64_t get_int(const std::string& name) const { return find(name, JEPA_PARAM_INT).int_value; }
  double get_float(const std::string& name) const { return find(name, JEPA_PARAM_FLOAT).float_value; }
  bool get_bool(const std::string& name) const { return find(name, JEPA_PARAM_BOOL).bool_value != 0; }
  std::string get_string(const std::string& name) const { return find(name, JEPA_PARAM_STRING).string_value; }
  std::vector<double> get_list(const std::string& name) const {
    const jepa_value& v = find(name, JEPA_PARAM_LIST);
    return std::vector<double>(v.list_values, v.list_values + v.list_length);
  }

 private:
  const jepa_value& find(const std::string& name, int32_t type) const {
    if (params_ != nullptr) {
      for (uint32_t i = 0; i < params_->count; ++i) {
        const jepa_param& p = params_->items[i];
        if (name == p.name) {
          if (p.value.type != type) {
            throw std::invalid_argument("parameter '" + name + "' has another type than read");
          }
          return p.value;
        }
      }
    }
    throw std::invalid_argument("parameter '" + name + "' was not passed by the host");
  }

  const jepa_params* params_;
};

// Thrown by a component's constructor when its parameters are each valid but do not work
// together (embed_dim 96 with num_heads 5). The host reports it as a configuration error (exit
// status 2) naming the plugin and `key`. It crosses the C boundary as a message starting with
// "[param <key>] ", so hosts that predate it still show a readable message (ABI v1 unchanged).
class ParamError : public std::invalid_argument {
 public:
  ParamError(std::string key, const std::string& message) : std::invalid_argument(message), key_(std::move(key)) {}
  const std::string& key() const { return key_; }

 private:
  std::string key_;
};

inline constexpr const char kParamErrorTag[] = "[param ";

// An exception's message without the C++ backtrace that LibTorch's c10::Error appends ("\nException
// raised from ...", "\nframe #0: ..."): users read the reason, not twenty frames.
inline std::string without_backtrace(const std::string& what) {
  size_t cut = what.size();
  for (const char* marker : {"\nException raised from ", "\nframe #"}) {
    const size_t at = what.find(marker);
    if (at != std::string::npos && at < cut) cut = at;
  }
  return what.substr(0, cut);
}

}  // namespace jepa::sdk
