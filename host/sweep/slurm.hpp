// Talking to SLURM for `jepa sweep` with launcher = "slurm": the batch script of a trial, the
// sbatch command line, and SLURM's answers (sbatch --parsable, squeue, scontrol show job -o) read
// into plain structs. Only SLURM's own client commands are used, as a user would type them, so
// any cluster that lets a user submit jobs runs a sweep (no slurmdbd or REST API needed).
#pragma once

#include "sweep/spec.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace jepa::sweep::slurm {

struct CommandResult {
  int status = -1;  // exit status; -1 when it could not run or was killed (timeout)
  std::string out;
  std::string err;
};

// Runs argv (no shell) with this process's environment (SLURM_CONF included), capturing stdout
// and stderr; killed after `timeout_seconds`.
CommandResult run_command(const std::vector<std::string>& argv, double timeout_seconds = 60.0);

struct JobInfo {
  std::string id;
  std::string name;
  std::string state;      // PENDING, RUNNING, COMPLETED, FAILED, TIMEOUT, CANCELLED, NODE_FAIL, ...
  std::string reason;     // NonZeroExitCode, TimeLimit, None, ...
  std::string exit_code;  // "139:0" (status:signal), from scontrol
  std::string nodes;
};

// A job SLURM will not run again: its trial's end can be taken in.
bool is_terminal(const std::string& state);

// `squeue -h -t all -o '%i|%T|%r|%j|%N'` output.
std::vector<JobInfo> parse_squeue(const std::string& text);
// `scontrol show job -o [ID]` output: one line of Key=Value per job (values may hold spaces).
std::vector<JobInfo> parse_scontrol(const std::string& text);
// `sbatch --parsable` output: "1234" or "1234;cluster".
std::optional<std::string> parse_sbatch(const std::string& text);

// Quotes a word for a POSIX shell.
std::string shell_quote(const std::string& word);

// The batch script of a trial: runs `command` (one process, or `srun` tasks when the trial has
// several ranks), forwards SIGTERM to it (the time limit's warning, a preemption, the sweep
// host's stop) so that it checkpoints, and then lets SLURM end the job so its state says why.
std::string batch_script(const std::vector<std::string>& command, const SlurmSpec& spec);

// The sbatch command line that submits `script` as job `name`, logging to `log`.
std::vector<std::string> sbatch_command(const SlurmSpec& spec, const std::string& name,
                                        const std::filesystem::path& log, const std::filesystem::path& script);

}  // namespace jepa::sweep::slurm
