// TCPStore options as every rendezvous here wants them, for LibTorch 1.13 and 2.x alike.
#pragma once

#include <torch/version.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <string>

namespace jepa::dist {

inline c10d::TCPStoreOptions tcp_store_options() {
  c10d::TCPStoreOptions o;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 2)
  // From 2.4 the option defaults to true, and a LibTorch built without libuv (Debian's is)
  // then refuses to start any store. The classic backend serves a few dozen ranks well; where
  // it is refused in turn, make_tcp_store tries libuv.
  o.useLibUV = false;
#endif
  return o;
}

// A TCPStore as `o` asks, or, for a server that LibTorch refuses with one backend, with the other
// (PyTorch's own wheels have libuv and treat the classic server as the legacy path; Debian's
// LibTorch has no libuv at all), so the same binary works with both.
inline c10::intrusive_ptr<c10d::TCPStore> make_tcp_store(const std::string& host, c10d::TCPStoreOptions o) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 2)
  if (o.isServer) {
    try {
      return c10::make_intrusive<c10d::TCPStore>(host, o);
    } catch (const std::exception&) {
      o.useLibUV = !o.useLibUV;
    }
  }
#endif
  return c10::make_intrusive<c10d::TCPStore>(host, o);
}

}  // namespace jepa::dist
