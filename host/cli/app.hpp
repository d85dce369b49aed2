// The `jepa` command line, built twice: the full program (`jepa-engine`, every command, linked
// with LibTorch) and the light front end (`jepa`), which answers the results commands (runs,
// show, compare, plot) without loading LibTorch, whose start-up alone costs most of a second,
// and hands every other command to the engine.
#pragma once

namespace jepa::cli {

// The commands the light front end answers itself.
bool is_light_command(int argc, char** argv);

// Parses and runs; returns the exit status (0 ok, 1 runtime failure, 2 usage or configuration).
// `full` = false registers only the light commands.
int run_cli(int argc, char** argv, bool full);

}  // namespace jepa::cli
