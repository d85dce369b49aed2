// `jepa run --profile`: a Chrome trace (chrome://tracing, Perfetto) of a few training steps.
// Kineto where LibTorch has it: CPU operators and, on CUDA, the kernels with their device times.
// A LibTorch built without Kineto (Debian's 1.13) still records the operators through the same
// profiler API; their trace is then written here from the recorded events (CPU times only).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace jepa::train {

// Steps [skip, skip + steps) of this process, 0-based: the first steps warm up allocators and
// kernels and would dominate a trace of a short window.
struct ProfileWindow {
  int64_t skip = 5;
  int64_t steps = 5;
};

class StepProfiler {
 public:
  // `device_index` < 0: a CPU run; else the CUDA device whose kernels are traced too.
  StepProfiler(ProfileWindow window, std::filesystem::path trace, int device_index);
  ~StepProfiler();  // stops a profile still running (a run that ended inside the window), unsaved
  StepProfiler(const StepProfiler&) = delete;
  StepProfiler& operator=(const StepProfiler&) = delete;

  // Around step `index` (0-based, counted from this process's first step). after_step returns
  // true when it has just written the trace. A profile that cannot be taken or written is said
  // on stderr and costs the trace, never the run.
  void before_step(int64_t index);
  bool after_step(int64_t index);

  const std::filesystem::path& trace() const { return trace_; }
  // "kineto", or "profiler events (this LibTorch has no Kineto)".
  const std::string& how() const { return how_; }

 private:
  ProfileWindow window_;
  std::filesystem::path trace_;
  int device_index_;
  std::string how_;
  bool running_ = false;
};

}  // namespace jepa::train
