// What the local and SLURM runners share: stopping on SIGINT/SIGTERM, trial counts, the live
// summary line (best so far, ETA), how a trial process ended and the tail of its log.
#pragma once

#include "store/store.hpp"
#include "sweep/spec.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace jepa::sweep {

// Parent-side SIGINT/SIGTERM for the sweep's lifetime: stop starting trials, let the running
// ones checkpoint (they get the signal too, or SIGTERM from us), then record the interruption.
class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  void (*old_int_)(int);
  void (*old_term_)(int);
};
// The signal that asked the sweep to stop, or 0.
int stop_requested();

double now_seconds();
std::string join(const std::vector<std::string>& v, const char* sep);
std::string describe_exit(int status);
// The last lines of a trial's log, on one line, for the failure reason.
std::string log_tail(const std::filesystem::path& log, size_t lines = 8, size_t max_chars = 800);
bool process_alive(int64_t pid);

struct Counts {
  int completed = 0, pruned = 0, failed = 0, killed = 0, running = 0, pending = 0;
};
Counts count_trials(const store::Store& store, int64_t sweep_id);

// " | best knn/top1 61.2 (run 7)" over the sweep's completed trials, or "".
std::string best_text(const store::Store& store, int64_t sweep_id, const ObjectiveSpec& objective);
// The live summary: rewritten in place on a terminal, one line per change in a log.
void print_status_line(bool tty, const std::string& line, std::string& last_line);
// " | ETA 3m05s" from the mean duration of finished trials, `parallel` at a time.
std::string eta_text(const std::vector<double>& durations, int left, size_t parallel);

}  // namespace jepa::sweep
