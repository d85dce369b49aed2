// The authoring layer. A plugin library writes:
//
//   #include <jepa/sdk/plugin.hpp>
//   JEPA_PLUGIN("my-plugin", "1.0.0") {
//     plugin.add<MyStrategy>("my_strategy", /*version=*/1, "one-line doc",
//                            {jepa::sdk::ParamSpec::integer("n", 4, "blocks").range(1, 16)});
//   }
//
// and nothing else: the macro produces the C entry symbol, the descriptor and the component
// table, and every call through the table is wrapped so that no exception crosses the boundary.
#pragma once

#include <jepa/sdk/abi.h>
#include <jepa/sdk/fingerprint.hpp>
#include <jepa/sdk/masking.hpp>
#include <jepa/sdk/params.hpp>

#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#ifndef JEPA_PLUGIN_REVISION
#define JEPA_PLUGIN_REVISION "unknown"
#endif

namespace jepa::sdk {

namespace detail {

inline void set_error(jepa_error* error, const char* message) {
  if (error == nullptr) return;
  std::snprintf(error->message, sizeof(error->message), "%s", message);
}

// Runs `fn`, turning any exception into `error` (a ParamError tagged with its key, LibTorch's
// backtraces dropped). Returns whether it succeeded.
template <class Fn>
bool guarded(jepa_error* error, Fn&& fn) noexcept {
  try {
    fn();
    return true;
  } catch (const ParamError& e) {
    set_error(error, (kParamErrorTag + e.key() + "] " + without_backtrace(e.what())).c_str());
  } catch (const std::exception& e) {
    set_error(error, without_backtrace(e.what()).c_str());
  } catch (...) {
    set_error(error, "unknown exception");
  }
  return false;
}

// What a masking instance is on the C side: the strategy plus the memory of its last result.
struct MaskingInstance {
  std::unique_ptr<MaskingStrategy> strategy;
  MaskSample last;
};

template <class T>
void* create_masking(const jepa_params* params, jepa_error* error) noexcept {
  std::unique_ptr<MaskingInstance> instance;
  const bool ok = guarded(error, [&] {
    instance = std::make_unique<MaskingInstance>();
    instance->strategy = std::make_unique<T>(Params(params));
  });
  return ok ? instance.release() : nullptr;
}

inline void destroy_masking(void* instance) noexcept {
  std::unique_ptr<MaskingInstance> owned(static_cast<MaskingInstance*>(instance));
}

inline int32_t sample_masking(void* instance, const jepa_mask_request* request, jepa_mask_result* result,
                              jepa_error* error) noexcept {
  const bool ok = guarded(error, [&] {
    auto* self = static_cast<MaskingInstance*>(instance);
    MaskRequest r;
    r.grid_height = request->grid_height;
    r.grid_width = request->grid_width;
    r.batch_size = request->batch_size;
    r.seed = request->seed;
    r.step = request->step;
    self->last = self->strategy->sample(r);
    const MaskSample& s = self->last;
    result->struct_size = sizeof(jepa_mask_result);
    result->batch_size = s.batch_size;
    result->context_blocks = s.context_blocks;
    result->context_length = s.context_length;
    result->context = s.context.data();
    result->target_blocks = s.target_blocks;
    result->target_length = s.target_length;
    result->target = s.target.data();
  });
  return ok ? 0 : 1;
}

inline const jepa_masking_api* masking_api() {
  static const jepa_masking_api api{sizeof(jepa_masking_api), &sample_masking};
  return &api;
}

// C++ kinds (encoder, predictor, evaluator) hand the host a pointer to their interface type.
template <class T>
void* create_cxx(const jepa_params* params, jepa_error* error) noexcept {
  using Interface = typename T::interface_type;
  std::unique_ptr<Interface> instance;
  const bool ok = guarded(error, [&] { instance = std::make_unique<T>(Params(params)); });
  return ok ? static_cast<void*>(instance.release()) : nullptr;
}

template <class T>
void destroy_cxx(void* instance) noexcept {
  using Interface = typename T::interface_type;
  std::unique_ptr<Interface> owned(static_cast<Interface*>(instance));
}

}  // namespace detail

class PluginBuilder {
 public:
  PluginBuilder(std::string name, std::string version, std::string revision)
      : name_(std::move(name)), version_(std::move(version)), revision_(std::move(revision)) {}

  template <class T>
  void add(std::string id, uint32_t version, std::string doc, std::vector<ParamSpec> params) {
    Entry& e = entries_.emplace_back();
    e.id = std::move(id);
    e.doc = std::move(doc);
    e.params = std::move(params);
    e.c.struct_size = sizeof(jepa_component);
    e.c.kind = T::kind;
    e.c.version = version;
    if constexpr (T::kind == JEPA_KIND_MASKING) {
      static_assert(std::is_base_of_v<MaskingStrategy, T>, "masking components derive MaskingStrategy");
      e.c.cxx_interface = 0;
      e.c.create = &detail::create_masking<T>;
      e.c.destroy = &detail::destroy_masking;
      e.c.api = detail::masking_api();
    } else {
      e.c.cxx_interface = 1;
      e.c.create = &detail::create_cxx<T>;
      e.c.destroy = &detail::destroy_cxx<T>;
      e.c.api = nullptr;
    }
  }

  // Builds the C view once every component is added; pointers stay valid for the library's life.
  const jepa_plugin_descriptor* descriptor() {
    components_.clear();
    for (Entry& e : entries_) {
      e.c_params.clear();
      for (const ParamSpec& p : e.params) e.c_params.push_back(p.to_c());
      e.c.id = e.id.c_str();
      e.c.doc = e.doc.c_str();
      e.c.params = e.c_params.empty() ? nullptr : e.c_params.data();
      e.c.n_params = static_cast<uint32_t>(e.c_params.size());
      e.c.param_spec_size = sizeof(jepa_param_spec);
      components_.push_back(e.c);
    }
    desc_ = jepa_plugin_descriptor{};
    desc_.struct_size = sizeof(jepa_plugin_descriptor);
    desc_.abi_major = JEPA_ABI_MAJOR;
    desc_.abi_minor = JEPA_ABI_MINOR;
    desc_.name = name_.c_str();
    desc_.version = version_.c_str();
    desc_.revision = revision_.c_str();
    desc_.fingerprint = build_fingerprint();
    desc_.components = components_.empty() ? nullptr : components_.data();
    desc_.n_components = static_cast<uint32_t>(components_.size());
    desc_.component_size = sizeof(jepa_component);
    return &desc_;
  }

 private:
  struct Entry {
    std::string id;
    std::string doc;
    std::vector<ParamSpec> params;
    std::vector<jepa_param_spec> c_params;
    jepa_component c{};
  };

  std::string name_;
  std::string version_;
  std::string revision_;
  std::deque<Entry> entries_;  // a deque keeps element addresses stable as it grows
  std::vector<jepa_component> components_;
  jepa_plugin_descriptor desc_{};
};

namespace detail {

// Builds the descriptor once; a throwing registration yields no descriptor (the host reports it).
inline const jepa_plugin_descriptor* build_descriptor(std::unique_ptr<PluginBuilder>& slot, const char* name,
                                                      const char* version,
                                                      void (*register_fn)(PluginBuilder&)) noexcept {
  try {
    if (!slot) {
      auto builder = std::make_unique<PluginBuilder>(name, version, JEPA_PLUGIN_REVISION);
      register_fn(*builder);
      slot = std::move(builder);
    }
    return slot->descriptor();
  } catch (...) {
    slot.reset();
    return nullptr;
  }
}

}  // namespace detail
}  // namespace jepa::sdk

#define JEPA_PLUGIN(NAME, VERSION)                                                                 \
  JEPA_SDK_FINGERPRINT_NOTE();                                                                     \
  static void jepa_register_components_(::jepa::sdk::PluginBuilder& plugin);                       \
  extern "C" JEPA_EXPORT const jepa_plugin_descriptor* jepa_plugin_entry(void) {                   \
    static std::unique_ptr<::jepa::sdk::PluginBuilder> builder;                                    \
    static const jepa_plugin_descriptor* descriptor =                                              \
        ::jepa::sdk::detail::build_descriptor(builder, NAME, VERSION, &jepa_register_components_); \
    return descriptor;                                                                             \
  }                                                                                                \
  static void jepa_register_components_(::jepa::sdk::PluginBuilder& plugin)
