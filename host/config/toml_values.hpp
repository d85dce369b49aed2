// Values between TOML, ParamValue and the stored JSON form of an experiment. Internal to the config
// room (resolver.cpp, experiment.cpp).
#pragma once

#include "config/experiment_keys.hpp"

#include <toml++/toml.h>
#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace jepa::config::detail {

// The ParamValue a TOML value naturally reads as, with integers widened where a float is wanted;
// std::nullopt when it has no reading (tables, dates, arrays of non-numbers). check_value then
// judges the type, so a float given for an integer key fails exactly like a plugin parameter.
std::optional<ParamValue> from_toml(const toml::node& node, ParamType want);
nlohmann::json value_json(const ParamValue& v);
nlohmann::json params_json(const loader::ParamSet& set);
// The stored JSON form back as TOML, so that it is read by the same resolver as a file.
toml::table json_to_toml(const nlohmann::json& object, const std::string& where);

}  // namespace jepa::config::detail
