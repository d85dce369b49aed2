// Parameter values as they cross the plugin boundary: checked against a component's schema,
// complete (every declared key), and viewable as the C `jepa_params` the plugin receives.
#pragma once

#include "loader/component_info.hpp"

#include <string>
#include <utility>
#include <vector>

namespace jepa::loader {

// Empty when `value` fits `schema` (type, range, choices, list length); otherwise why not.
std::string check_value(const ParamSchema& schema, const ParamValue& value);

// Every declared parameter of one component, in schema order.
struct ParamSet {
  std::vector<std::pair<std::string, ParamValue>> values;

  static ParamSet defaults(const ComponentInfo& component);
  const ParamValue* find(const std::string& name) const;
};

// The C view of a ParamSet; points into it, so the ParamSet must outlive the view.
class CParamView {
 public:
  explicit CParamView(const ParamSet& set);
  CParamView(const CParamView&) = delete;
  CParamView& operator=(const CParamView&) = delete;
  const jepa_params* get() const { return &params_; }

 private:
  std::vector<jepa_param> items_;
  jepa_params params_{};
};

}  // namespace jepa::loader
