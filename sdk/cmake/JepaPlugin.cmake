# jepa_add_plugin(<target> SOURCES <src>... [TORCH] [OUTPUT_DIRECTORY <dir>] [LIBRARIES <lib>...])
#
# Builds one jepa plugin library: a MODULE with hidden symbols (only the entry point is
# exported), the SDK on its include path, and the source revision baked in.
#   TORCH             the plugin has C++ components (encoder, predictor, objective, evaluator): link LibTorch
#                     and record its version and CUDA/cpu in the build fingerprint.
#   OUTPUT_DIRECTORY  where the .so lands; default: ${JEPA_PLUGIN_OUTPUT_DIRECTORY} when set.
include_guard(GLOBAL)

function(jepa_add_plugin target)
  cmake_parse_arguments(ARG "TORCH" "OUTPUT_DIRECTORY;REVISION" "SOURCES;LIBRARIES" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "jepa_add_plugin(${target}): SOURCES is required")
  endif()
  add_library(${target} MODULE ${ARG_SOURCES})
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  target_compile_features(${target} PRIVATE cxx_std_17)
  target_link_libraries(${target} PRIVATE JepaSDK::sdk ${ARG_LIBRARIES})

  if(ARG_TORCH)
    if(NOT TARGET torch)
      find_package(Torch REQUIRED)
    endif()
    target_link_libraries(${target} PRIVATE torch)
    target_compile_definitions(${target} PRIVATE JEPA_SDK_WITH_TORCH=1)
    if(TORCH_CUDA_LIBRARIES OR TARGET torch_cuda)
      target_compile_definitions(${target} PRIVATE JEPA_SDK_TORCH_CUDA=1)
    endif()
  endif()

  set(revision "${ARG_REVISION}")
  if(NOT revision)
    execute_process(
      COMMAND git describe --always --dirty --abbrev=12
      WORKING_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}"
      OUTPUT_VARIABLE revision OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    if(NOT revision)
      set(revision "unknown")
    endif()
  endif()
  target_compile_definitions(${target} PRIVATE JEPA_PLUGIN_REVISION="${revision}")

  if(ARG_OUTPUT_DIRECTORY)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${ARG_OUTPUT_DIRECTORY}")
  elseif(JEPA_PLUGIN_OUTPUT_DIRECTORY)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${JEPA_PLUGIN_OUTPUT_DIRECTORY}")
  endif()
endfunction()
