// One data-parallel job seen from one rank: the rendezvous store (c10d TCPStore) and the process
// group (c10d ProcessGroupNCCL on CUDA when LibTorch has it, ProcessGroupGloo otherwise). The
// c10d headers stay inside group.cpp.
//
// Every failure of a peer (a rank that died, hung past the timeout, or failed and said why)
// surfaces as PeerError with a message that names the rank when it can be known.
#pragma once

#include "distributed/env.hpp"

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace jepa::dist {

struct PeerError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The store keys of this launch live under this prefix (the launcher of `jepa run --nproc`
// writes how a rank ended under it too). torchrun's agent store outlives restarts of its workers.
std::string key_prefix();

struct GroupOptions {
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};  // rendezvous and every collective
  std::string backend = "auto";                                // auto | gloo | nccl
};

class Group {
 public:
  // Connects to the rendezvous store (hosted by rank 0, or by the launcher when
  // env.agent_store) and waits until every rank has arrived; PeerError after the timeout,
  // naming the ranks that never came.
  Group(const DistEnv& env, GroupOptions options);
  ~Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  int rank() const { return env_.rank; }
  int size() const { return env_.world_size; }
  bool leader() const { return env_.rank == 0; }
  const DistEnv& env() const { return env_; }
  const GroupOptions& options() const { return options_; }
  std::string backend() const;  // "nccl" or "gloo" once started, "" before

  // Set-up messages from rank 0 to the others (resolved config, run id, checkpoint path).
  void publish(const std::string& key, const std::string& value);
  std::string fetch(const std::string& key, std::chrono::milliseconds timeout);

  // Creates the process group for tensors on `device`, with the experiment's [distributed]
  // backend and collective timeout.
  void start(c10::Device device, const std::string& backend, std::chrono::milliseconds timeout);

  // Mean over ranks of a scalar tensor per rank (the logged loss, float64), on the tensor's own
  // device: with NCCL the all-reduce is queued on the current stream and nothing waits on the host.
  at::Tensor mean(const at::Tensor& value, int64_t step);
  // Mean over ranks of a tensor of any shape (an objective's statistics), waited for; on the
  // tensor's own device. Not differentiable: train/collective.hpp wraps it for autograd.
  at::Tensor average(const at::Tensor& value, int64_t step);
  // Bitwise-or of small flags over ranks (stop requests): every rank gets the same answer.
  int64_t any_flags(int64_t flags, int64_t step);
  // Rank 0's values into every rank's tensors, in place.
  void broadcast(std::vector<at::Tensor>& tensors);

  // Work that rank 0 does alone (an evaluation, a checkpoint): the others wait for its end
  // through the store, with `timeout` instead of the collective timeout.
  void leader_done(const std::string& what, int64_t step);
  void wait_for_leader(const std::string& what, int64_t step, std::chrono::milliseconds timeout);

  // Posts that this rank reached `step` (read when another rank fails, to say who is behind).
  void mark_step(int64_t step);
  // Best effort: tells the others why this rank is about to stop ("failed: <reason>").
  void report_failure(const std::string& reason) noexcept;

  // Starts a heartbeat thread: every second this rank says it is alive through the store and
  // checks that every other rank did within `stall`. A rank that stops answering (SIGSTOP, a hung
  // machine, a lost store) is otherwise seen only when a collective times out, and with NCCL not
  // even then by the host, whose thread sits in a CUDA synchronisation while the kernel spins.
  // On such a loss the thread prints why, reports it, calls `on_lost(reason)` (rank 0 records the
  // run as FAILED there) and ends the process with status 3; the launcher then stops the others.
  void watch_peers(std::chrono::milliseconds stall, std::function<void(const std::string&)> on_lost);
  // This rank has finished training: the others stop expecting its heartbeat (rank 0 may
  // evaluate alone for long after the others have ended), and this rank stops watching them.
  void stop_watching() noexcept;

 private:
  friend class GradientReducer;
  [[noreturn]] void fail(const std::string& what, int64_t step, const std::string& detail);

  struct Impl;
  DistEnv env_;
  GroupOptions options_;
  std::unique_ptr<Impl> impl_;
};

// Averages gradients over the ranks while backward is still running, as DDP's reducer with
// gradient_as_bucket_view: the parameters are split into buckets of about `bucket_bytes` (in
// reverse order, the order backward produces their gradients) and each parameter's .grad is its
// slot of a flat bucket, so autograd accumulates straight into the bucket. A hook after each
// accumulation counts the bucket's gradients; a complete bucket's all-reduce starts at once, in
// bucket order on every rank (collectives must match), on the bucket itself. finish() starts what
// is left, waits, and divides: the .grads then hold the mean. A parameter that got no gradient
// on a rank counts as zeros there, so the ranks always agree. prepare() zeroes the buckets (the
// gradients) and rebinds any .grad that a zero_grad(set_to_none) dropped.
class GradientReducer {
 public:
  GradientReducer(Group& group, std::vector<at::Tensor> parameters, int64_t bucket_bytes);
  ~GradientReducer();  // removes the hooks
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  void prepare(int64_t step);  // before backward
  void finish();               // after backward; PeerError when a peer failed

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace jepa::dist
