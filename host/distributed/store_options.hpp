// TCPStore options as every rendezvous here wants them, for LibTorch 1.13 and 2.x alike.
#pragma once

#include <torch/version.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

namespace jepa::dist {

inline c10d::TCPStoreOptions tcp_store_options() {
  c10d::TCPStoreOptions o;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 2)
  // From 2.4 the option defaults to true, and a LibTorch built without libuv (Debian's is)
  // then refuses to start any store. The classic backend serves a few dozen ranks well.
  o.useLibUV = false;
#endif
  return o;
}

}  // namespace jepa::dist
