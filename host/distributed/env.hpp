// Where this process stands in a data-parallel job: read from the environment that torchrun,
// SLURM or `jepa run --nproc` sets. No LibTorch here, so it is unit-tested on its own.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

namespace jepa::dist {

// A launch environment that is set but unusable (RANK without WORLD_SIZE, RANK >= WORLD_SIZE,
// no MASTER_ADDR, ...): raised before anything trains, naming the variables.
struct EnvError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;        // index of this process on its machine (its GPU when on CUDA)
  int local_world_size = 1;  // processes on this machine (CPU threads are shared among them)
  std::string master_addr;   // where rank 0's rendezvous store listens
  int master_port = 0;
  // The store is hosted by a launcher (torchrun's agent, or `jepa run --nproc`), not by rank 0.
  bool agent_store = false;
  std::string launcher;  // "torchrun", "slurm" or "jepa --nproc": for messages

  bool distributed() const { return world_size > 1; }
};

using GetEnv = std::function<const char*(const char*)>;

// torchrun (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT,
// TORCHELASTIC_USE_AGENT_STORE) first; else SLURM (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID,
// SLURM_NTASKS_PER_NODE or SLURM_TASKS_PER_NODE, MASTER_ADDR or the first host of
// SLURM_JOB_NODELIST, MASTER_PORT or one derived from SLURM_JOB_ID). std::nullopt when neither
// is set or the job has one process. Throws EnvError when what is set does not make a job.
std::optional<DistEnv> read_env(const GetEnv& getenv);
std::optional<DistEnv> read_env();  // the process environment

// The first host of a SLURM node list: "node[03-05,07],gpu1" -> "node03".
std::string first_slurm_host(const std::string& nodelist);

// The CUDA device a rank trains on, as an index among the devices this process sees. One visible
// device is this rank's whatever its local rank (SLURM `--gpus-per-task` and `--gpu-bind` give each
// task its own GPU as device 0); with several, the local rank picks (torchrun, `jepa run --nproc`).
// EnvError naming CUDA_VISIBLE_DEVICES, LOCAL_RANK and the count when the local rank has no device
// of its own (more ranks on a machine than visible GPUs), instead of "invalid device ordinal".
// `cuda_visible_devices` is the variable's value (nullptr when unset), for the message.
int cuda_device_for_rank(int local_rank, int visible_devices, const char* cuda_visible_devices);

// The port every task of a SLURM job agrees on when MASTER_PORT is not set: 15000 + the
// job id modulo 20000, as several launchers do.
int slurm_port(const std::string& job_id);

}  // namespace jepa::dist
