#include "train/profiler.hpp"

#include <fmt/format.h>
#include <torch/csrc/autograd/profiler_kineto.h>
#include <torch/cuda.h>
#include <torch/version.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <set>
#include <stdexcept>

namespace jepa::train {

namespace {

namespace profiler = torch::autograd::profiler;
using torch::profiler::impl::ActivityType;
using torch::profiler::impl::ProfilerConfig;
using torch::profiler::impl::ProfilerState;

// Start and duration in microseconds (LibTorch 2 reports nanoseconds).
std::pair<double, double> span_us(const profiler::KinetoEvent& e) {
#if TORCH_VERSION_MAJOR >= 2
  return {static_cast<double>(e.startNs()) / 1e3, static_cast<double>(e.endNs() - e.startNs()) / 1e3};
#else
  return {static_cast<double>(e.startUs()), static_cast<double>(e.durationUs())};
#endif
}

// The Chrome trace format's complete events ("ph": "X"), one per recorded operator.
void write_events(const profiler::ProfilerResult& result, const std::filesystem::path& path) {
  nlohmann::json events = nlohmann::json::array();
  for (const auto& e : result.events()) {
    const auto [start, duration] = span_us(e);
    events.push_back({{"name", e.name()},
                      {"ph", "X"},
                      {"cat", e.deviceType() == c10::DeviceType::CPU ? "cpu_op" : "kernel"},
                      {"ts", start},
                      {"dur", duration},
                      {"pid", 0},
                      {"tid", e.startThreadId()}});
  }
  std::ofstream out(path);
  out << nlohmann::json{{"traceEvents", events}, {"displayTimeUnit", "ms"}}.dump() << '\n';
  if (!out) throw std::runtime_error(fmt::format("cannot write the profile to {}", path.string()));
}

// c10::Error's what() carries a stack trace after the first line.
std::string first_line(const char* what) {
  const std::string s(what);
  return s.substr(0, s.find('\n'));
}

}  // namespace

StepProfiler::StepProfiler(ProfileWindow window, std::filesystem::path trace, int device_index)
    : window_(window), trace_(std::move(trace)), device_index_(device_index) {}

StepProfiler::~StepProfiler() {
  if (!running_) return;
  try {
    profiler::disableProfiler();
  } catch (...) {
    // Nothing to save from a window cut short.
  }
}

void StepProfiler::before_step(int64_t index) {
  if (index != window_.skip || window_.steps <= 0 || running_) return;
  std::set<ActivityType> activities{ActivityType::CPU};
  if (device_index_ >= 0) activities.insert(ActivityType::CUDA);
  // A profile is a diagnostic: a LibTorch that cannot take one (no CUPTI, a profiler already
  // running) costs the trace, not the run.
  const ProfilerConfig config(ProfilerState::KINETO);
  // Kineto must be prepared before it is enabled (as torch.profiler does): LibTorch 2.6 crashes
  // in enableProfiler otherwise.
  try {
    profiler::prepareProfiler(config, activities);
    profiler::enableProfiler(config, activities);
  } catch (const std::exception& first) {
    try {
      if (activities.size() == 1) throw;
      profiler::prepareProfiler(config, {ActivityType::CPU});
      profiler::enableProfiler(config, {ActivityType::CPU});
      fmt::print(stderr, "profile: CPU operators only, no CUDA kernels: {}\n", first_line(first.what()));
    } catch (const std::exception& ex) {
      fmt::print(stderr, "profile: not taken: {}\n", first_line(ex.what()));
      return;
    }
  }
  running_ = true;
}

bool StepProfiler::after_step(int64_t index) {
  if (!running_ || index + 1 < window_.skip + window_.steps) return false;
  running_ = false;
  try {
    // Kernels still queued at the end of the window belong to it.
    if (device_index_ >= 0) torch::cuda::synchronize(device_index_);
    const auto result = profiler::disableProfiler();
    std::filesystem::create_directories(trace_.parent_path());
    try {
      result->save(trace_.string());
      how_ = "kineto";
    } catch (const c10::Error&) {
      // A LibTorch without Kineto refuses to save a trace, but it did record the events.
      write_events(*result, trace_);
      how_ = "profiler events (this LibTorch has no Kineto)";
    }
  } catch (const std::exception& ex) {
    fmt::print(stderr, "profile: not written to {}: {}\n", trace_.string(), first_line(ex.what()));
    return false;
  }
  return true;
}

}  // namespace jepa::train
