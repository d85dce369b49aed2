#include "train/autocast.hpp"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

// LibTorch 2.4 took the device type into the autocast calls; the older per-device names still
// compile there but are deprecated, so each version gets its own spelling.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define JEPA_AUTOCAST_DEVICE_API 1
#endif

namespace jepa::train {

namespace {

bool is_enabled(bool cuda) {
#ifdef JEPA_AUTOCAST_DEVICE_API
  return at::autocast::is_autocast_enabled(cuda ? at::kCUDA : at::kCPU);
#else
  return cuda ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

void set_enabled(bool cuda, bool on) {
#ifdef JEPA_AUTOCAST_DEVICE_API
  at::autocast::set_autocast_enabled(cuda ? at::kCUDA : at::kCPU, on);
#else
  if (cuda) {
    at::autocast::set_enabled(on);
  } else {
    at::autocast::set_cpu_enabled(on);
  }
#endif
}

at::ScalarType get_dtype(bool cuda) {
#ifdef JEPA_AUTOCAST_DEVICE_API
  return at::autocast::get_autocast_dtype(cuda ? at::kCUDA : at::kCPU);
#else
  return cuda ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
}

void set_dtype(bool cuda, at::ScalarType t) {
#ifdef JEPA_AUTOCAST_DEVICE_API
  at::autocast::set_autocast_dtype(cuda ? at::kCUDA : at::kCPU, t);
#else
  if (cuda) {
    at::autocast::set_autocast_gpu_dtype(t);
  } else {
    at::autocast::set_autocast_cpu_dtype(t);
  }
#endif
}

}  // namespace

AutocastScope::AutocastScope(torch::Device device, bool enabled) : enabled_(enabled), cuda_(device.is_cuda()) {
  if (!enabled_) return;
  was_enabled_ = is_enabled(cuda_);
  old_dtype_ = get_dtype(cuda_);
  set_enabled(cuda_, true);
  set_dtype(cuda_, at::kBFloat16);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!enabled_) return;
  // The cast weights are cached for the scope's life; the outermost scope frees them.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_dtype(cuda_, old_dtype_);
  set_enabled(cuda_, was_enabled_);
}

bool autocast_active(torch::Device device) {
  const bool cuda = device.is_cuda();
  return is_enabled(cuda) && get_dtype(cuda) == at::kBFloat16;
}

}  // namespace jepa::train
