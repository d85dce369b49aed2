#include "sweep/slots.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

namespace jepa::sweep {

std::vector<std::string> visible_device_ids(const char* value, int visible_gpus) {
  std::vector<std::string> ids;
  if (value == nullptr) {
    for (int i = 0; i < visible_gpus; ++i) ids.push_back(std::to_string(i));
    return ids;
  }
  const std::string text(value);
  size_t start = 0;
  while (start <= text.size() && static_cast<int>(ids.size()) < visible_gpus) {
    const size_t comma = text.find(',', start);
    std::string id = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    id.erase(0, id.find_first_not_of(" \t"));
    id.erase(id.find_last_not_of(" \t") + 1);
    if (!id.empty()) ids.push_back(id);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (static_cast<int>(ids.size()) < visible_gpus) {
    throw SweepError(
        fmt::format("CUDA_VISIBLE_DEVICES=\"{}\" names {} device(s), but CUDA shows {}: cannot tell which "
                    "GPUs the trials may use",
                    text, ids.size(), visible_gpus));
  }
  return ids;
}

std::vector<Slot> plan_slots(const SweepSpec& spec, int visible_gpus, int cores, const char* host_visible_devices) {
  const std::vector<std::string> physical = visible_device_ids(host_visible_devices, visible_gpus);
  std::vector<Slot> slots;
  std::vector<int> gpus;
  if (spec.devices == "auto") {
    for (int i = 0; i < visible_gpus; ++i) gpus.push_back(i);
  } else if (spec.devices != "cpu") {
    size_t start = 0;
    while (start < spec.devices.size()) {
      const size_t comma = spec.devices.find(',', start);
      const std::string id = spec.devices.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      const int g = std::stoi(id);
      if (g >= visible_gpus) {
        throw SweepError(fmt::format("[sweep] devices: GPU {} is not visible ({} visible)", g, visible_gpus));
      }
      gpus.push_back(g);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  const int threads = static_cast<int>(std::max<int64_t>(1, spec.threads_per_trial));
  if (gpus.empty()) {
    const int n = std::max(1, cores / threads);
    for (int i = 0; i < n; ++i) slots.push_back({"", threads, fmt::format("cpu {}", i)});
  } else {
    const auto per = static_cast<size_t>(std::max<int64_t>(1, spec.gpus_per_trial));
    if (per > gpus.size()) {
      throw SweepError(fmt::format("[sweep] gpus_per_trial = {} but only {} GPUs are available", per, gpus.size()));
    }
    for (size_t g = 0; g + per <= gpus.size(); g += per) {
      std::vector<std::string> ids;
      for (size_t k = g; k < g + per; ++k) ids.push_back(physical[static_cast<size_t>(gpus[k])]);
      for (int64_t share = 0; share < std::max<int64_t>(1, spec.trials_per_gpu); ++share) {
        const std::string devices = fmt::format("{}", fmt::join(ids, ","));
        slots.push_back({devices, threads, "gpu " + devices, static_cast<int>(per)});
      }
    }
  }
  if (spec.max_parallel > 0 && static_cast<int64_t>(slots.size()) > spec.max_parallel) {
    slots.resize(static_cast<size_t>(spec.max_parallel));
  }
  return slots;
}

}  // namespace jepa::sweep
