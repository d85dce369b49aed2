#include "distributed/env.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <string_view>

namespace jepa::dist {

namespace {

std::optional<std::string> get(const GetEnv& getenv, const char* name) {
  const char* v = getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

int parse_int(const std::string& text, const char* name, int min_value) {
  size_t used = 0;
  long value = 0;
  try {
    value = std::stol(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || value < min_value || value > 1'000'000) {
    throw EnvError(fmt::format("{}={} is not a whole number >= {}", name, text, min_value));
  }
  return static_cast<int>(value);
}

// SLURM_TASKS_PER_NODE looks like "4(x2),3": the first node's count is what this launch needs
// when the tasks are spread evenly, which is how data-parallel jobs are started.
int first_count(const std::string& tasks_per_node) {
  size_t end = 0;
  while (end < tasks_per_node.size() && tasks_per_node[end] >= '0' && tasks_per_node[end] <= '9') ++end;
  return end == 0 ? 1 : std::max(1, std::stoi(tasks_per_node.substr(0, end)));
}

void check_rank(const DistEnv& e, const char* rank_name, const char* size_name) {
  if (e.rank >= e.world_size) {
    throw EnvError(fmt::format("{}={} is not below {}={}", rank_name, e.rank, size_name, e.world_size));
  }
  if (e.local_rank >= e.world_size) {
    throw EnvError(fmt::format("local rank {} is not below the world size {}", e.local_rank, e.world_size));
  }
}

std::optional<DistEnv> from_torchrun(const GetEnv& getenv) {
  const auto rank = get(getenv, "RANK");
  const auto world = get(getenv, "WORLD_SIZE");
  if (!rank && !world) return std::nullopt;
  if (!rank || !world) {
    throw EnvError(
        fmt::format("{} is set but {} is not: a torchrun-style launch sets RANK, WORLD_SIZE, "
                    "MASTER_ADDR and MASTER_PORT",
                    rank ? "RANK" : "WORLD_SIZE", rank ? "WORLD_SIZE" : "RANK"));
  }
  DistEnv e;
  e.launcher = get(getenv, "JEPA_LAUNCHER").value_or("torchrun");
  e.rank = parse_int(*rank, "RANK", 0);
  e.world_size = parse_int(*world, "WORLD_SIZE", 1);
  e.local_rank = parse_int(get(getenv, "LOCAL_RANK").value_or("0"), "LOCAL_RANK", 0);
  e.local_world_size = parse_int(get(getenv, "LOCAL_WORLD_SIZE").value_or("1"), "LOCAL_WORLD_SIZE", 1);
  check_rank(e, "RANK", "WORLD_SIZE");
  if (!e.distributed()) return std::nullopt;
  const auto addr = get(getenv, "MASTER_ADDR");
  const auto port = get(getenv, "MASTER_PORT");
  if (!addr || !port) {
    throw EnvError(
        fmt::format("RANK and WORLD_SIZE are set but {} is not: every rank needs the address of "
                    "rank 0's rendezvous (MASTER_ADDR and MASTER_PORT)",
                    !addr ? "MASTER_ADDR" : "MASTER_PORT"));
  }
  e.master_addr = *addr;
  e.master_port = parse_int(*port, "MASTER_PORT", 1);
  const auto agent = get(getenv, "TORCHELASTIC_USE_AGENT_STORE");
  e.agent_store = agent && (*agent == "True" || *agent == "true" || *agent == "1");
  return e;
}

std::optional<DistEnv> from_slurm(const GetEnv& getenv) {
  const auto rank = get(getenv, "SLURM_PROCID");
  const auto tasks = get(getenv, "SLURM_NTASKS");
  if (!rank || !tasks) return std::nullopt;
  DistEnv e;
  e.launcher = "slurm";
  e.rank = parse_int(*rank, "SLURM_PROCID", 0);
  e.world_size = parse_int(*tasks, "SLURM_NTASKS", 1);
  e.local_rank = parse_int(get(getenv, "SLURM_LOCALID").value_or("0"), "SLURM_LOCALID", 0);
  if (const auto per_node = get(getenv, "SLURM_NTASKS_PER_NODE")) {
    e.local_world_size = parse_int(*per_node, "SLURM_NTASKS_PER_NODE", 1);
  } else if (const auto spread = get(getenv, "SLURM_TASKS_PER_NODE")) {
    e.local_world_size = first_count(*spread);
  }
  check_rank(e, "SLURM_PROCID", "SLURM_NTASKS");
  if (!e.distributed()) return std::nullopt;
  if (const auto addr = get(getenv, "MASTER_ADDR")) {
    e.master_addr = *addr;
  } else if (const auto nodes = get(getenv, "SLURM_JOB_NODELIST") ? get(getenv, "SLURM_JOB_NODELIST")
                                                                  : get(getenv, "SLURM_NODELIST")) {
    e.master_addr = first_slurm_host(*nodes);
  } else {
    throw EnvError("a SLURM job with several tasks needs MASTER_ADDR or SLURM_JOB_NODELIST to find rank 0");
  }
  if (const auto port = get(getenv, "MASTER_PORT")) {
    e.master_port = parse_int(*port, "MASTER_PORT", 1);
  } else if (const auto job = get(getenv, "SLURM_JOB_ID")) {
    e.master_port = slurm_port(*job);
  } else {
    throw EnvError("a SLURM job with several tasks needs MASTER_PORT or SLURM_JOB_ID to agree on a port");
  }
  return e;
}

}  // namespace

std::string first_slurm_host(const std::string& nodelist) {
  // The first entry ends at a comma outside brackets.
  size_t end = 0;
  int depth = 0;
  for (; end < nodelist.size(); ++end) {
    if (nodelist[end] == '[') ++depth;
    if (nodelist[end] == ']') --depth;
    if (nodelist[end] == ',' && depth == 0) break;
  }
  const std::string first = nodelist.substr(0, end);
  // Each bracket group ("[03-05,07]") stands for its first number, zero padding kept.
  std::string host;
  size_t i = 0;
  while (i < first.size()) {
    if (first[i] != '[') {
      host += first[i++];
      continue;
    }
    const auto close = first.find(']', i);
    if (close == std::string::npos) throw EnvError(fmt::format("cannot read the SLURM node list '{}'", nodelist));
    std::string range = first.substr(i + 1, close - i - 1);
    range = range.substr(0, range.find_first_of(",-"));
    if (range.empty()) throw EnvError(fmt::format("cannot read the SLURM node list '{}'", nodelist));
    host += range;
    i = close + 1;
  }
  return host;
}

int cuda_device_for_rank(int local_rank, int visible_devices, const char* cuda_visible_devices) {
  const std::string visible =
      cuda_visible_devices == nullptr ? std::string("unset") : fmt::format("\"{}\"", cuda_visible_devices);
  if (visible_devices <= 0) {
    throw EnvError(fmt::format("local rank {} wants a CUDA device, but none is visible (CUDA_VISIBLE_DEVICES {})",
                               local_rank, visible));
  }
  if (visible_devices == 1) return 0;
  if (local_rank >= 0 && local_rank < visible_devices) return local_rank;
  throw EnvError(fmt::format(
      "local rank {} (LOCAL_RANK or SLURM_LOCALID) has no GPU of its own: this process sees {} CUDA devices "
      "(CUDA_VISIBLE_DEVICES {}); start at most {} ranks per machine, or give each task one GPU "
      "(srun --gpus-per-task 1)",
      local_rank, visible_devices, visible, visible_devices));
}

int slurm_port(const std::string& job_id) {
  int64_t id = 0;
  for (char c : job_id) {
    if (c < '0' || c > '9') break;  // "1234_5" (array jobs): the job part
    id = (id * 10 + (c - '0')) % 1'000'000'007;
  }
  return 15000 + static_cast<int>(id % 20000);
}

std::optional<DistEnv> read_env(const GetEnv& getenv) {
  if (auto e = from_torchrun(getenv)) return e;
  // torchrun's variables win over SLURM's: `srun torchrun ...` sets both, and each task of
  // torchrun is one of several per SLURM task.
  if (get(getenv, "RANK") || get(getenv, "WORLD_SIZE")) return std::nullopt;
  return from_slurm(getenv);
}

std::optional<DistEnv> read_env() {
  return read_env([](const char* name) { return std::getenv(name); });
}

}  // namespace jepa::dist
