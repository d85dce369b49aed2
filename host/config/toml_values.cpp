#include "config/toml_values.hpp"

#include <fmt/format.h>

#include <cmath>
#include <limits>

namespace jepa::config::detail {

using nlohmann::json;

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

namespace {

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

}  // namespace

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

}  // namespace jepa::config::detail
