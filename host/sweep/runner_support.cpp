#include "sweep/runner_support.hpp"

#include <fmt/format.h>

#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstring>
#include <deque>
#include <fstream>

namespace jepa::sweep {

namespace fs = std::filesystem;
namespace {

std::atomic<int> g_stop{0};
extern "C" void on_stop_signal(int sig) {
  g_stop.store(sig);
}

}  // namespace

StopSignals::StopSignals() {
  g_stop.store(0);
  old_int_ = std::signal(SIGINT, on_stop_signal);
  old_term_ = std::signal(SIGTERM, on_stop_signal);
}

StopSignals::~StopSignals() {
  std::signal(SIGINT, old_int_);
  std::signal(SIGTERM, old_term_);
}

int stop_requested() {
  return g_stop.load();
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

std::string describe_exit(int status) {
  if (WIFEXITED(status)) return fmt::format("exit status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return fmt::format("killed by signal {} ({}){}", sig, strsignal(sig), WCOREDUMP(status) ? ", core dumped" : "");
  }
  return fmt::format("wait status {}", status);
}

std::string log_tail(const fs::path& log, size_t lines, size_t max_chars) {
  std::ifstream in(log);
  std::deque<std::string> tail;
  std::string line;
  while (std::getline(in, line)) {
    // Progress lines are redrawn with carriage returns: keep only their last state.
    const auto cr = line.find_last_of('\r');
    if (cr != std::string::npos) line = line.substr(cr + 1);
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    tail.push_back(line);
    if (tail.size() > lines) tail.pop_front();
  }
  std::string s = join(std::vector<std::string>(tail.begin(), tail.end()), " | ");
  if (s.size() > max_chars) s = "..." + s.substr(s.size() - max_chars);
  return s;
}

bool process_alive(int64_t pid) {
  return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
}

Counts count_trials(const store::Store& store, int64_t sweep_id) {
  Counts c;
  for (const auto& t : store.sweep_trials(sweep_id)) {
    if (!t.status) {
      ++c.pending;
      continue;
    }
    switch (*t.status) {
      case store::RunStatus::completed:
        ++c.completed;
        break;
      case store::RunStatus::pruned:
        ++c.pruned;
        break;
      case store::RunStatus::failed:
        ++c.failed;
        break;
      case store::RunStatus::killed:
        ++c.killed;
        break;
      case store::RunStatus::running:
        ++c.running;
        break;
    }
  }
  return c;
}

std::string best_text(const store::Store& store, int64_t sweep_id, const ObjectiveSpec& objective) {
  double best_value = 0.0;
  int64_t best_run = 0;
  bool have = false;
  store.query(
      "SELECT r.id, s.last_value, s.min_value, s.max_value FROM runs r JOIN metric_summary s ON s.run_id = r.id AND "
      "s.key = ? WHERE r.sweep_id = ? AND r.status = 'COMPLETED' AND s.last_value IS NOT NULL",
      {objective.metric, sweep_id}, [&](const store::Row& row) {
        const double v = objective.value == "best" ? row.real(objective.maximize ? 3 : 2) : row.real(1);
        if (std::isnan(v)) return;
        if (!have || (objective.maximize ? v > best_value : v < best_value)) {
          best_value = v;
          best_run = row.int64(0);
          have = true;
        }
      });
  return have ? fmt::format(" | best {} {:.4g} (run {})", objective.metric, best_value, best_run) : std::string();
}

void print_status_line(bool tty, const std::string& line, std::string& last_line) {
  if (tty) {
    fmt::print(stderr, "\r\033[K{}", line);
  } else if (line != last_line) {
    fmt::print(stderr, "{}\n", line);
  }
  last_line = line;
}

std::string eta_text(const std::vector<double>& durations, int left, size_t parallel) {
  if (durations.empty() || left <= 0 || parallel == 0) return {};
  double mean = 0.0;
  for (double d : durations) mean += d;
  mean /= static_cast<double>(durations.size());
  const double waves = std::ceil(static_cast<double>(left) / static_cast<double>(parallel));
  const auto s = static_cast<int64_t>(mean * waves);
  return fmt::format(" | ETA {}m{:02}s", s / 60, s % 60);
}

}  // namespace jepa::sweep
