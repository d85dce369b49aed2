// Turning user input (--set key=value today, TOML tables later) into a component's complete,
// checked parameter set. Every error names the component, its plugin and the valid keys:
// a typo must never be silently ignored.
#pragma once

#include "loader/component_info.hpp"
#include "loader/param_set.hpp"

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace jepa::config {

// Bad user input (config file, --set). The CLI exits with status 2 on it.
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "key=value" -> {key, value}; throws ConfigError when there is no '=' or no key.
std::pair<std::string, std::string> split_assignment(std::string_view text);

// Parses `text` as a value of the schema's type: 12, 0.5, true/false, a string, [0.15, 0.2], and
// checks it against the schema. Errors start with `label` (who owns the key: "[data]", or a
// component's label()).
loader::ParamValue parse_value(std::string_view label, const loader::ParamSchema& schema, std::string_view text);
loader::ParamValue parse_value(const loader::ComponentInfo& component, const loader::ParamSchema& schema,
                               std::string_view text);

// Defaults overridden by `overrides` (key, text) in order; unknown keys and bad values throw.
loader::ParamSet resolve_params(const loader::ComponentInfo& component,
                                const std::vector<std::pair<std::string, std::string>>& overrides);

}  // namespace jepa::config
