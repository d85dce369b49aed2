#include "distributed/launcher.hpp"

#include "distributed/group.hpp"
#include "distributed/store_options.hpp"
#include "process/spawn.hpp"
#include "store/store.hpp"

#include <fmt/format.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <map>
#include <optional>
#include <thread>

namespace jepa::dist {

namespace {

using Clock = std::chrono::steady_clock;

std::atomic<int> g_launcher_signal{0};
extern "C" void on_launcher_signal(int sig) {
  g_launcher_signal.store(sig);
}

std::string how_it_ended(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return fmt::format("was killed by signal {} ({})", sig, ::strsignal(sig));
  }
  return fmt::format("ended with wait status {}", status);
}

}  // namespace

int launch_local(const LaunchOptions& o) {
  c10d::TCPStoreOptions so = tcp_store_options();
  so.port = 0;  // any free port: several local jobs must not collide
  so.isServer = true;
  so.waitWorkers = false;
  auto tcp = make_tcp_store("127.0.0.1", so);
  const int port = tcp->getPort();
  auto store = c10::make_intrusive<c10d::PrefixStore>(key_prefix(), tcp);

  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = o.threads_per_rank > 0 ? o.threads_per_rank : std::max(1, cores / o.nproc);
  static const char* const kOwn[] = {"RANK",
                                     "WORLD_SIZE",
                                     "LOCAL_RANK",
                                     "LOCAL_WORLD_SIZE",
                                     "MASTER_ADDR",
                                     "MASTER_PORT",
                                     "TORCHELASTIC_USE_AGENT_STORE",
                                     "TORCHELASTIC_RESTART_COUNT",
                                     "JEPA_LAUNCHER",
                                     "OMP_NUM_THREADS"};

  // Handlers before the first fork, so that no SIGTERM is missed.
  auto old_term = std::signal(SIGTERM, on_launcher_signal);
  auto old_int = std::signal(SIGINT, on_launcher_signal);
  g_launcher_signal.store(0);

  std::map<pid_t, int> alive;
  for (int r = 0; r < o.nproc; ++r) {
    // A rank must not outlive its launcher: it gets SIGTERM, and the others see it go.
    process::ChildSpec child{
        o.rank_args,
        {std::begin(kOwn), std::end(kOwn)},
        {fmt::format("RANK={}", r), fmt::format("WORLD_SIZE={}", o.nproc), fmt::format("LOCAL_RANK={}", r),
         fmt::format("LOCAL_WORLD_SIZE={}", o.nproc), "MASTER_ADDR=127.0.0.1", fmt::format("MASTER_PORT={}", port),
         "TORCHELASTIC_USE_AGENT_STORE=True", "JEPA_LAUNCHER=jepa --nproc", fmt::format("OMP_NUM_THREADS={}", threads)},
        std::nullopt};
    pid_t pid = 0;
    try {
      pid = process::spawn_child(child);
    } catch (const std::exception& ex) {
      for (const auto& [p, rank] : alive) ::kill(p, SIGKILL);
      throw std::runtime_error(fmt::format("cannot start rank {}: {}", r, ex.what()));
    }
    alive[pid] = r;
    fmt::print(stderr, "jepa: rank {} started (pid {}, {} thread{})\n", r, pid, threads, threads == 1 ? "" : "s");
  }

  std::optional<std::string> first_failure;
  int rank0_status = 0;
  std::optional<Clock::time_point> kill_at;
  bool forwarded = false;
  while (!alive.empty()) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0 && alive.count(pid) != 0) {
      const int r = alive[pid];
      alive.erase(pid);
      const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      if (r == 0) rank0_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      if (!ok) {
        const std::string text = how_it_ended(status);
        fmt::print(stderr, "jepa: rank {} {}\n", r, text);
        if (!first_failure) first_failure = fmt::format("rank {} {}", r, text);
        try {
          // The rank's own reason, when it gave one, says more than its exit status.
          const std::string key = fmt::format("error/{}", r);
          if (!store->check({key})) store->set(key, std::vector<uint8_t>(text.begin(), text.end()));
        } catch (const std::exception&) {
        }
      }
      // Once a rank has ended badly the others get `grace` to notice and stop on their own (rank 0
      // records the failure); once rank 0 has ended, nobody has anything left to do.
      const auto deadline =
          Clock::now() + (r == 0 ? std::min<std::chrono::milliseconds>(o.grace, std::chrono::seconds(5)) : o.grace);
      if ((!ok || r == 0) && (!kill_at || deadline < *kill_at)) kill_at = deadline;
      continue;
    }
    if (const int sig = g_launcher_signal.load(); sig == SIGTERM && !forwarded) {
      for (const auto& [p, rank] : alive) ::kill(p, SIGTERM);
      forwarded = true;
    }
    if (kill_at && Clock::now() > *kill_at) {
      for (const auto& [p, rank] : alive) {
        fmt::print(stderr, "jepa: rank {} (pid {}) did not stop after the others ended: killing it\n", rank, p);
        ::kill(p, SIGKILL);
      }
      kill_at = Clock::now() + std::chrono::hours(24);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::signal(SIGTERM, old_term);
  std::signal(SIGINT, old_int);

  if (first_failure) {
    // Rank 0 records what went wrong when it can; when it died itself, the run would stay
    // RUNNING: record it here.
    try {
      if (store->check({"run_id"})) {
        const auto bytes = store->get("run_id");
        const int64_t run_id = std::stoll(std::string(bytes.begin(), bytes.end()));
        store::Store db(o.db);
        const auto run = db.find_run(run_id);
        if (run && run->status == store::RunStatus::running) {
          db.finish_run(run_id, store::RunStatus::failed, *first_failure);
          fmt::print(stderr, "jepa: run {} recorded as FAILED: {}\n", run_id, *first_failure);
        }
      }
    } catch (const std::exception& ex) {
      fmt::print(stderr, "jepa: could not record the failure: {}\n", ex.what());
    }
  }
  if (rank0_status != 0) return rank0_status;
  return first_failure ? 1 : 0;
}

}  // namespace jepa::dist
