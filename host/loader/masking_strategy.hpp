// A live masking component: created through the plugin's C table, destroyed by the plugin, and
// holding its library loaded for as long as it lives.
#pragma once

#include "loader/component_info.hpp"
#include "loader/param_set.hpp"

#include <jepa/sdk/masking.hpp>

#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

namespace jepa::loader {

// A plugin call failed; the message names the plugin and component.
struct PluginError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A component's create() refused the parameters it was given: a problem with the configuration,
// reported as such (exit status 2), before anything trains. `key` is the parameter the plugin
// named (sdk::ParamError), "" when it named none.
struct ParameterRejected : PluginError {
  ParameterRejected(const std::string& message, std::string key) : PluginError(message), key(std::move(key)) {}
  std::string key;
};

// The ParameterRejected for a create() of `label` that failed with `message` (as the plugin's
// SDK wrote it: "[param <key>] reason" for a ParamError; backtraces of older SDKs dropped).
ParameterRejected create_failed(const std::string& label, const std::string& message);

class MaskingStrategy {
 public:
  // `params` must be complete and checked (see config::resolve_params).
  MaskingStrategy(const ComponentInfo& component, const ParamSet& params);

  // May be called from several threads (the trainer samples ahead of the step): calls are
  // serialised, because the SDK does not ask plugins to be thread-safe.
  sdk::MaskSample sample(const sdk::MaskRequest& request);
  // "masking 'multiblock' (plugin masking-multiblock)": a copy, valid after the registry is gone.
  const std::string& label() const { return label_; }

 private:
  struct Destroy {
    void (*destroy)(void*);
    void operator()(void* p) const { destroy(p); }
  };
  // Declared first so it is released last: the instance's code lives in this library.
  std::shared_ptr<boost::dll::shared_library> library_;
  std::unique_ptr<void, Destroy> instance_;
  const jepa_masking_api* api_;
  std::string label_;
  std::unique_ptr<std::mutex> sampling_ = std::make_unique<std::mutex>();
};

}  // namespace jepa::loader
