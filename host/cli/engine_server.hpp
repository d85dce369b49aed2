// `jepa-engine --serve`: the engine kept warm for `jepa ui` (see engine_server.cpp).
#pragma once

namespace jepa::cli {

// Serves requests from stdin until it closes; returns the process's exit status.
int serve_engine_requests();

}  // namespace jepa::cli
