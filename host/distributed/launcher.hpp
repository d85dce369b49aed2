// `jepa run --nproc N`: N ranks of one trial on this machine, as torchrun would start them. The
// launcher hosts the rendezvous store, starts the ranks with torchrun's variables, watches them,
// and when one ends badly gives the others `grace` to stop on their own before killing them.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace jepa::dist {

struct LaunchOptions {
  int nproc = 2;
  std::vector<std::string> rank_args;  // each rank's command line, the executable first
  std::filesystem::path db;            // the run's database: a failure rank 0 could not record lands here
  std::chrono::milliseconds grace{std::chrono::seconds(60)};
  int threads_per_rank = 0;  // OMP_NUM_THREADS of each rank; 0 = this machine's cores / nproc
};

// Returns the exit status for `jepa run`: rank 0's when it failed, 1 when another rank did, else 0.
// SIGTERM is passed on to the ranks; Ctrl-C reaches them from the terminal itself.
int launch_local(const LaunchOptions& options);

}  // namespace jepa::dist
