#include "loader/param_set.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace jepa::loader {

namespace {

std::string check_number(const ParamSchema& s, double v) {
  if (!std::isfinite(v)) return fmt::format("{} is not a finite number", v);
  if ((s.min && v < *s.min) || (s.max && v > *s.max)) {
    return fmt::format("{} is outside the allowed range [{}, {}]", v, s.min ? fmt::format("{}", *s.min) : "-inf",
                       s.max ? fmt::format("{}", *s.max) : "inf");
  }
  return {};
}

}  // namespace

std::string check_value(const ParamSchema& s, const ParamValue& value) {
  switch (s.type) {
    case ParamType::integer:
      if (const auto* v = std::get_if<int64_t>(&value)) return check_number(s, static_cast<double>(*v));
      break;
    case ParamType::real:
      if (const auto* v = std::get_if<double>(&value)) return check_number(s, *v);
      break;
    case ParamType::boolean:
      if (std::holds_alternative<bool>(value)) return {};
      break;
    case ParamType::string:
      if (const auto* v = std::get_if<std::string>(&value)) {
        if (!s.choices.empty() && std::find(s.choices.begin(), s.choices.end(), *v) == s.choices.end()) {
          return fmt::format("'{}' is not one of {}", *v, fmt::join(s.choices, ", "));
        }
        return {};
      }
      break;
    case ParamType::list:
      if (const auto* v = std::get_if<std::vector<double>>(&value)) {
        if (s.list_length != 0 && v->size() != s.list_length) {
          return fmt::format("expects {} numbers, got {}", s.list_length, v->size());
        }
        for (double x : *v) {
          if (std::string err = check_number(s, x); !err.empty()) return err;
        }
        return {};
      }
      break;
  }
  return fmt::format("expects a value of type {}", type_name(s.type));
}

ParamSet ParamSet::defaults(const ComponentInfo& component) {
  ParamSet set;
  for (const auto& p : component.params) set.values.emplace_back(p.name, p.default_value);
  return set;
}

const ParamValue* ParamSet::find(const std::string& name) const {
  for (const auto& [key, value] : values) {
    if (key == name) return &value;
  }
  return nullptr;
}

CParamView::CParamView(const ParamSet& set) {
  items_.reserve(set.values.size());
  for (const auto& [name, value] : set.values) {
    jepa_param item{};
    item.name = name.c_str();
    jepa_value& v = item.value;
    if (const auto* i = std::get_if<int64_t>(&value)) {
      v.type = JEPA_PARAM_INT;
      v.int_value = *i;
    } else if (const auto* d = std::get_if<double>(&value)) {
      v.type = JEPA_PARAM_FLOAT;
      v.float_value = *d;
    } else if (const auto* b = std::get_if<bool>(&value)) {
      v.type = JEPA_PARAM_BOOL;
      v.bool_value = *b ? 1 : 0;
    } else if (const auto* s = std::get_if<std::string>(&value)) {
      v.type = JEPA_PARAM_STRING;
      v.string_value = s->c_str();
    } else if (const auto* l = std::get_if<std::vector<double>>(&value)) {
      v.type = JEPA_PARAM_LIST;
      v.list_values = l->data();
      v.list_length = static_cast<uint32_t>(l->size());
    }
    items_.push_back(item);
  }
  params_.struct_size = sizeof(jepa_params);
  params_.items = items_.data();
  params_.count = static_cast<uint32_t>(items_.size());
}

}  // namespace jepa::loader
