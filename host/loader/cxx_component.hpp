// Creating C++ components (encoder, predictor, evaluator) from a checked plugin. Only reachable
// for libraries that passed the fingerprint gate, so the void* from create() really is an
// `Interface*` built against the same LibTorch, compiler and C++ ABI as the host.
#pragma once

#include "loader/component_info.hpp"
#include "loader/masking_strategy.hpp"
#include "loader/param_set.hpp"

#include <fmt/format.h>
#include <boost/dll/shared_library.hpp>

#include <memory>

namespace jepa::loader {

// The object is destroyed by the plugin's destroy(), and its library stays loaded until then.
template <class Interface>
std::shared_ptr<Interface> create_component(const ComponentInfo& component, const ParamSet& params) {
  if (static_cast<int32_t>(component.kind) != Interface::kind || !component.cxx_interface) {
    throw PluginError(fmt::format("{} is not a component of the requested kind", component.label()));
  }
  CParamView view(params);
  jepa_error error{};
  void* raw = component.table->create(view.get(), &error);
  if (raw == nullptr) throw create_failed(component.label(), error.message);
  auto destroy = component.table->destroy;
  std::shared_ptr<boost::dll::shared_library> library = component.plugin->library;
  return std::shared_ptr<Interface>(static_cast<Interface*>(raw), [destroy, library](Interface* p) { destroy(p); });
}

}  // namespace jepa::loader
