// The build fingerprint, computed from the compiler's own macros so that the host and every
// plugin derive it the same way. jepa_add_plugin(... TORCH) defines JEPA_SDK_WITH_TORCH (and
// JEPA_SDK_TORCH_CUDA for a CUDA LibTorch); the host is built with the same definitions.
#pragma once

#include <jepa/sdk/abi.h>

// A C++ standard header first: it defines _GLIBCXX_USE_CXX11_ABI, which the checks below read.
#include <cstddef>

#if defined(JEPA_SDK_WITH_TORCH)
#include <torch/version.h>
#define JEPA_SDK_FP_TORCH TORCH_VERSION
#if defined(JEPA_SDK_TORCH_CUDA)
#define JEPA_SDK_FP_DEVICE "cuda"
#else
#define JEPA_SDK_FP_DEVICE "cpu"
#endif
#else
#define JEPA_SDK_FP_TORCH "none"
#define JEPA_SDK_FP_DEVICE "none"
#endif

#if defined(__clang__)
#define JEPA_SDK_FP_COMPILER "clang"
#define JEPA_SDK_FP_COMPILER_MAJOR __clang_major__
#elif defined(__GNUC__)
#define JEPA_SDK_FP_COMPILER "gcc"
#define JEPA_SDK_FP_COMPILER_MAJOR __GNUC__
#elif defined(_MSC_VER)
#define JEPA_SDK_FP_COMPILER "msvc"
#define JEPA_SDK_FP_COMPILER_MAJOR (_MSC_VER / 100)
#else
#define JEPA_SDK_FP_COMPILER "unknown"
#define JEPA_SDK_FP_COMPILER_MAJOR 0
#endif

#if defined(_GLIBCXX_USE_CXX11_ABI)
#define JEPA_SDK_FP_CXX11_ABI _GLIBCXX_USE_CXX11_ABI
#else
#define JEPA_SDK_FP_CXX11_ABI (-1)
#endif

#define JEPA_SDK_FP_STR2(x) #x
#define JEPA_SDK_FP_STR(x) JEPA_SDK_FP_STR2(x)

// The same fingerprint as one line of text, placed by JEPA_PLUGIN in the section
// JEPA_FINGERPRINT_SECTION. The host reads it from the file before loading the library, because
// loading a plugin linked against another LibTorch would bring a second LibTorch into the
// process (its static initialisers run before any check could refuse it).
#define JEPA_SDK_FINGERPRINT_TEXT \
  "jepa-fingerprint/1 torch=" JEPA_SDK_FP_TORCH " device=" JEPA_SDK_FP_DEVICE                         \
  " cxx11abi=" JEPA_SDK_FP_STR(JEPA_SDK_FP_CXX11_ABI) " compiler=" JEPA_SDK_FP_COMPILER                \
  " compiler_major=" JEPA_SDK_FP_STR(JEPA_SDK_FP_COMPILER_MAJOR) " cplusplus=" JEPA_SDK_FP_STR(__cplusplus) \
  " sdk=" JEPA_SDK_FP_STR(JEPA_ABI_MAJOR)

#if defined(__ELF__)
#define JEPA_SDK_FINGERPRINT_NOTE()                                                                         \
  extern "C" __attribute__((used, section(JEPA_FINGERPRINT_SECTION))) const char jepa_fingerprint_note_[] = \
      JEPA_SDK_FINGERPRINT_TEXT
#else
#define JEPA_SDK_FINGERPRINT_NOTE() static_assert(true, "")
#endif

namespace jepa::sdk {

inline jepa_fingerprint build_fingerprint() {
  jepa_fingerprint fp{};
  fp.struct_size = sizeof(jepa_fingerprint);
  fp.torch_version = JEPA_SDK_FP_TORCH;
  fp.device = JEPA_SDK_FP_DEVICE;
  fp.cxx11_abi = JEPA_SDK_FP_CXX11_ABI;
  fp.compiler_id = JEPA_SDK_FP_COMPILER;
  fp.compiler_major = JEPA_SDK_FP_COMPILER_MAJOR;
  fp.cxx_standard = static_cast<int64_t>(__cplusplus);
  fp.sdk_major = JEPA_ABI_MAJOR;
  return fp;
}

}  // namespace jepa::sdk
