#include "sweep/slurm.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <sstream>

extern char** environ;

namespace jepa::sweep::slurm {

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(cur);
  if (!s.empty() && s.back() == sep) out.emplace_back();
  return out;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

}  // namespace

CommandResult run_command(const std::vector<std::string>& argv, double timeout_seconds) {
  CommandResult r;
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return r;
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return r;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // The sweep host catches SIGINT/SIGTERM; the commands it runs must not inherit a blocked mask.
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  // A process group of its own: a Ctrl-C at the terminal is for the sweep host, which then stops
  // its trials in order; it must not kill an sbatch half-way.
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (rc != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    r.err = fmt::format("cannot run {}: {}", argv[0], std::strerror(rc));
    return r;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds);
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  bool timed_out = false;
  char buf[4096];
  while (open_fds > 0) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    const int n = ::poll(fds, 2, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      const ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got > 0) {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) ::close(f.fd);
  }
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    r.err += fmt::format("{} did not answer within {} s", argv[0], timeout_seconds);
    return r;
  }
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

bool is_terminal(const std::string& state) {
  // REQUEUED, PENDING, RUNNING, SUSPENDED, COMPLETING, CONFIGURING, RESIZING, REQUEUE_HOLD,
  // REQUEUE_FED, SIGNALING, STAGE_OUT, STOPPED, RESV_DEL_HOLD are not ends: the job goes on
  // (a requeued one continues from its checkpoint under the same id).
  static const char* const ends[] = {"COMPLETED", "FAILED",   "TIMEOUT",       "CANCELLED",    "NODE_FAIL", "PREEMPTED",
                                     "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY", "SPECIAL_EXIT", "REVOKED"};
  // scontrol writes "CANCELLED by 0" in some places; the first word is the state.
  const std::string word = state.substr(0, state.find(' '));
  return std::find_if(std::begin(ends), std::end(ends), [&](const char* e) { return word == e; }) != std::end(ends);
}

std::vector<JobInfo> parse_squeue(const std::string& text) {
  std::vector<JobInfo> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty()) continue;
    const auto f = split(line, '|');
    if (f.size() < 3) continue;
    JobInfo j;
    j.id = trim(f[0]);
    j.state = trim(f[1]);
    j.reason = trim(f[2]);
    if (f.size() > 3) j.name = trim(f[3]);
    if (f.size() > 4) j.nodes = trim(f[4]);
    out.push_back(std::move(j));
  }
  return out;
}

std::vector<JobInfo> parse_scontrol(const std::string& text) {
  std::vector<JobInfo> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("JobId=") == std::string::npos) continue;
    // Key=Value pairs separated by spaces; a word without '=' continues the previous value.
    std::vector<std::pair<std::string, std::string>> kv;
    std::istringstream words(line);
    std::string w;
    while (words >> w) {
      const auto eq = w.find('=');
      const bool key_like =
          eq != std::string::npos && eq > 0 &&
          std::all_of(w.begin(), w.begin() + static_cast<std::ptrdiff_t>(eq), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == ':' || c == '/';
          });
      if (key_like) {
        kv.emplace_back(w.substr(0, eq), w.substr(eq + 1));
      } else if (!kv.empty()) {
        kv.back().second += " " + w;
      }
    }
    JobInfo j;
    for (const auto& [k, v] : kv) {
      if (k == "JobId") j.id = v;
      if (k == "JobName") j.name = v;
      if (k == "JobState") j.state = v;
      if (k == "Reason") j.reason = v;
      if (k == "ExitCode") j.exit_code = v;
      if (k == "NodeList") j.nodes = v;
    }
    if (!j.id.empty()) out.push_back(std::move(j));
  }
  return out;
}

std::optional<std::string> parse_sbatch(const std::string& text) {
  const std::string t = trim(text);
  const std::string id = t.substr(0, t.find(';'));
  if (id.empty() || !std::all_of(id.begin(), id.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return id;
}

std::string shell_quote(const std::string& word) {
  std::string q = "'";
  for (char c : word) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string batch_script(const std::vector<std::string>& command, const SlurmSpec& spec) {
  std::string cmd;
  if (spec.ranks() > 1) {
    // The trial's ranks are srun tasks of this allocation; SLURM's variables (SLURM_PROCID,
    // SLURM_NTASKS, SLURM_JOB_NODELIST) form the process group. srun passes SIGTERM on to them.
    cmd = fmt::format("srun --kill-on-bad-exit=1 --nodes={} --ntasks={} --ntasks-per-node={} --cpus-per-task={} ",
                      spec.nodes, spec.ranks(), spec.tasks_per_node, spec.cpus_per_task);
  }
  for (size_t i = 0; i < command.size(); ++i) cmd += (i ? " " : "") + shell_quote(command[i]);
  // After the trial stopped on SIGTERM, the script waits for SLURM to end the job: the job's
  // final state then says why (TIMEOUT, CANCELLED, PREEMPTED) rather than COMPLETED.
  return fmt::format(
      "#!/bin/bash\n"
      "# A trial of `jepa sweep`, written by the sweep host. SIGTERM (the time limit's warning from\n"
      "# --signal, a preemption, the sweep host stopping) goes on to the trial, which checkpoints\n"
      "# and records KILLED; the job then ends as SLURM decides.\n"
      "export OMP_NUM_THREADS={threads}\n"
      "term=\n"
      "child=\n"
      "trap 'term=1; [ -n \"$child\" ] && kill -TERM \"$child\" 2> /dev/null' TERM INT\n"
      "echo \"jepa sweep: job $SLURM_JOB_ID on $(hostname) at $(date -u +%FT%TZ), restart "
      "${{SLURM_RESTART_COUNT:-0}}\"\n"
      "{cmd} &\n"
      "child=$!\n"
      "while :; do\n"
      "  wait \"$child\"\n"
      "  rc=$?\n"
      "  kill -0 \"$child\" 2> /dev/null || break\n"
      "done\n"
      "if [ -n \"$term\" ]; then\n"
      "  echo \"jepa sweep: the trial stopped on SIGTERM (exit status $rc); waiting for SLURM to end the job\"\n"
      "  sleep {wait} &\n"
      "  wait $!\n"
      "fi\n"
      "exit $rc\n",
      fmt::arg("threads", spec.cpus_per_task), fmt::arg("cmd", cmd), fmt::arg("wait", spec.signal_grace + 120));
}

std::vector<std::string> sbatch_command(const SlurmSpec& spec, const std::string& name,
                                        const std::filesystem::path& log, const std::filesystem::path& script) {
  std::vector<std::string> a{"sbatch",
                             "--parsable",
                             "--job-name=" + name,
                             "--output=" + log.string(),
                             "--open-mode=append",
                             fmt::format("--signal=B:TERM@{}", spec.signal_grace),
                             spec.requeue ? "--requeue" : "--no-requeue",
                             fmt::format("--nodes={}", spec.nodes),
                             fmt::format("--ntasks-per-node={}", spec.tasks_per_node),
                             fmt::format("--cpus-per-task={}", spec.cpus_per_task)};
  if (spec.gpus_per_task > 0) a.push_back(fmt::format("--gpus-per-task={}", spec.gpus_per_task));
  if (!spec.partition.empty()) a.push_back("--partition=" + spec.partition);
  if (!spec.time_limit.empty()) a.push_back("--time=" + spec.time_limit);
  if (!spec.mem.empty()) a.push_back("--mem=" + spec.mem);
  if (!spec.account.empty()) a.push_back("--account=" + spec.account);
  if (!spec.qos.empty()) a.push_back("--qos=" + spec.qos);
  a.insert(a.end(), spec.sbatch_args.begin(), spec.sbatch_args.end());
  a.push_back(script.string());
  return a;
}

}  // namespace jepa::sweep::slurm
