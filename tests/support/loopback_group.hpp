// Several ranks in one test process, one thread each: a free loopback port, and a rank's Gloo group
// on the CPU connected through it (the reducer's and the objectives' two-rank tests).
#pragma once

#include "distributed/group.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <c10/core/Device.h>

#include <chrono>
#include <memory>

namespace jepa_test {

inline int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Rank `rank` of `world`, all on 127.0.0.1:`port`, started with Gloo for CPU tensors; 30 s timeouts.
inline std::unique_ptr<jepa::dist::Group> loopback_group(int rank, int world, int port) {
  jepa::dist::DistEnv env;
  env.rank = rank;
  env.world_size = world;
  env.local_rank = rank;
  env.local_world_size = world;
  env.master_addr = "127.0.0.1";
  env.master_port = port;
  env.launcher = "test";
  jepa::dist::GroupOptions options;
  options.timeout = std::chrono::seconds(30);
  auto group = std::make_unique<jepa::dist::Group>(env, options);
  group->start(c10::Device(c10::DeviceType::CPU), "gloo", std::chrono::seconds(30));
  return group;
}

}  // namespace jepa_test
