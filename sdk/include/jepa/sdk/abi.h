/* jepa-lab plugin ABI, version 1.1.
 *
 * The only contract the host reads before it touches any C++ type. Rules that keep it stable:
 *  - every struct starts with struct_size and only ever grows at the end; a reader looks at a
 *    field only when struct_size covers it;
 *  - arrays of structs carry their element size, so elements can grow too;
 *  - nothing here throws: failures come back as a status plus a message in jepa_error.
 * Plugin authors do not write against this header directly: <jepa/sdk/plugin.hpp> produces the
 * entry point and wraps every call. */
#ifndef JEPA_SDK_ABI_H
#define JEPA_SDK_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define JEPA_ABI_MAJOR 1
#define JEPA_ABI_MINOR 1 /* 1: the objective kind */
#define JEPA_ENTRY_SYMBOL "jepa_plugin_entry"
/* An ELF section holding the build fingerprint as text (see <jepa/sdk/fingerprint.hpp>), read by
 * the host before it loads a library: one linked against another LibTorch is never loaded. */
#define JEPA_FINGERPRINT_SECTION ".jepa_fingerprint"

#if defined(_WIN32)
#define JEPA_EXPORT __declspec(dllexport)
#else
#define JEPA_EXPORT __attribute__((visibility("default")))
#endif

/* Component kinds. */
#define JEPA_KIND_MASKING 1
#define JEPA_KIND_ENCODER 2
#define JEPA_KIND_PREDICTOR 3
#define JEPA_KIND_EVALUATOR 4
#define JEPA_KIND_OBJECTIVE 5 /* since ABI 1.1 */

/* Parameter types. Lists are lists of numbers (e.g. a scale range). */
#define JEPA_PARAM_INT 1
#define JEPA_PARAM_FLOAT 2
#define JEPA_PARAM_BOOL 3
#define JEPA_PARAM_STRING 4
#define JEPA_PARAM_LIST 5

#define JEPA_ERROR_MESSAGE_SIZE 1024

typedef struct jepa_error {
  char message[JEPA_ERROR_MESSAGE_SIZE];
} jepa_error;

/* One typed value; only the field of `type` is meaningful. */
typedef struct jepa_value {
  int32_t type;
  int32_t bool_value;
  int64_t int_value;
  double float_value;
  const char* string_value;
  const double* list_values;
  uint32_t list_length;
} jepa_value;

typedef struct jepa_param_spec {
  uint32_t struct_size;
  const char* name;
  int32_t type;
  jepa_value default_value;
  int32_t has_min; /* int, float, and every element of a list */
  int32_t has_max;
  double min;
  double max;
  const char* const* choices; /* strings only; n_choices == 0 means free text */
  uint32_t n_choices;
  uint32_t list_length; /* lists only; 0 means any length */
  const char* doc;
} jepa_param_spec;

typedef struct jepa_param {
  const char* name;
  jepa_value value;
} jepa_param;

/* The fully resolved parameters of one component: every declared key, nothing else. */
typedef struct jepa_params {
  uint32_t struct_size;
  const jepa_param* items;
  uint32_t count;
} jepa_params;

/* What a C++ interface depends on. The host refuses a library whose components carry C++
 * interfaces unless every field equals its own. */
typedef struct jepa_fingerprint {
  uint32_t struct_size;
  const char* torch_version; /* "none" when built without LibTorch */
  const char* device;        /* "cuda", "cpu", or "none" */
  int32_t cxx11_abi;         /* _GLIBCXX_USE_CXX11_ABI, -1 when not libstdc++ */
  const char* compiler_id;   /* "gcc", "clang", ... */
  int32_t compiler_major;
  int64_t cxx_standard; /* __cplusplus */
  int32_t sdk_major;
} jepa_fingerprint;

/* ---- masking strategies: a pure C table, so they survive LibTorch upgrades ---- */

typedef struct jepa_mask_request {
  uint32_t struct_size;
  int32_t grid_height;
  int32_t grid_width;
  int32_t batch_size;
  uint64_t seed;
  int64_t step;
} jepa_mask_request;

/* Patch indices are row-major (row * grid_width + col), int64.
 * context: [context_blocks][batch_size][context_length]; target: [target_blocks][batch_size][target_length].
 * The memory belongs to the instance and stays valid until its next call or its destruction. */
typedef struct jepa_mask_result {
  uint32_t struct_size;
  int32_t batch_size;
  int32_t context_blocks;
  int32_t context_length;
  const int64_t* context;
  int32_t target_blocks;
  int32_t target_length;
  const int64_t* target;
} jepa_mask_result;

typedef struct jepa_masking_api {
  uint32_t struct_size;
  /* 0 on success; non-zero with `error` filled otherwise. */
  int32_t (*sample)(void* instance, const jepa_mask_request* request, jepa_mask_result* result, jepa_error* error);
} jepa_masking_api;

/* ---- the component table ---- */

typedef struct jepa_component {
  uint32_t struct_size;
  int32_t kind;
  const char* id;
  uint32_t version; /* behaviour version: bumped when outputs change for the same parameters */
  const char* doc;
  const jepa_param_spec* params;
  uint32_t n_params;
  uint32_t param_spec_size; /* sizeof(jepa_param_spec) as the plugin was built */
  /* 1: create() returns a C++ object (jepa::sdk::Encoder*, ...) behind the fingerprint gate. */
  int32_t cxx_interface;
  /* NULL with `error` filled on failure. */
  void* (*create)(const jepa_params* params, jepa_error* error);
  void (*destroy)(void* instance);
  /* Kind-specific C table (jepa_masking_api for masking); NULL for C++ kinds. */
  const void* api;
} jepa_component;

typedef struct jepa_plugin_descriptor {
  uint32_t struct_size;
  uint16_t abi_major;
  uint16_t abi_minor;
  const char* name;
  const char* version;
  const char* revision;
  jepa_fingerprint fingerprint;
  const jepa_component* components;
  uint32_t n_components;
  uint32_t component_size; /* sizeof(jepa_component) as the plugin was built */
} jepa_plugin_descriptor;

typedef const jepa_plugin_descriptor* (*jepa_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* JEPA_SDK_ABI_H */
