#include "distributed/group.hpp"
#include "distributed/store_options.hpp"

#include <ATen/ATen.h>
#include <c10/util/strides.h>
#include <fmt/format.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/version.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef JEPA_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>

namespace jepa::dist {

namespace {

// LibTorch 2 split process groups into a dispatching ProcessGroup and per-device Backends;
// ProcessGroupGloo and ProcessGroupNCCL are Backends there and ProcessGroups in 1.13.
#if TORCH_VERSION_MAJOR >= 2
using BackendBase = c10d::Backend;
#else
using BackendBase = c10d::ProcessGroup;
#endif

using Clock = std::chrono::steady_clock;

std::string first_line(const std::string& s) {
  return s.substr(0, s.find('\n'));
}
std::vector<uint8_t> to_bytes(const std::string& s) {
  return {s.begin(), s.end()};
}
std::string to_text(const std::vector<uint8_t>& b) {
  return {b.begin(), b.end()};
}
double seconds(std::chrono::milliseconds ms) {
  return static_cast<double>(ms.count()) / 1000.0;
}

std::string host_name() {
  char buf[256] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

// The process state letter of /proc/<pid>/stat ('R', 'S', 'T' stopped, 'Z' zombie, ...), or
// '\0' when there is no such process.
char process_state(long pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string line;
  if (!std::getline(in, line)) return '\0';
  const auto close = line.rfind(')');  // the command name may hold spaces and parentheses
  return close == std::string::npos || close + 2 >= line.size() ? '\0' : line[close + 2];
}

std::shared_ptr<::gloo::transport::Device> gloo_device(const DistEnv& env) {
  // As torch.distributed: GLOO_SOCKET_IFNAME names the interface; a local job stays on loopback
  // (hostnames of containers often resolve to nothing useful); else the host's own address.
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname != nullptr && *ifname != '\0') {
    const std::string first(ifname);
    return c10d::ProcessGroupGloo::createDeviceForInterface(first.substr(0, first.find(',')));
  }
  if (is_loopback(env.master_addr)) return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

}  // namespace

std::string key_prefix() {
  const char* restart = std::getenv("TORCHELASTIC_RESTART_COUNT");
  return restart != nullptr && *restart != '\0' ? fmt::format("jepa/r{}", restart) : "jepa";
}

struct Group::Impl {
  c10::intrusive_ptr<c10d::Store> tcp;    // holds the server when this rank hosts it
  c10::intrusive_ptr<c10d::Store> store;  // this launch's keys
  c10::intrusive_ptr<BackendBase> pg;
  std::string backend;
  std::string host;
  c10::Device scalar_device{c10::kCPU};  // where small all-reduces live (CUDA for NCCL)

  // The heartbeat thread (watch_peers), with a store connection of its own: a c10d store client
  // is not shared between threads.
  std::thread monitor;
  std::mutex monitor_mutex;
  std::condition_variable monitor_cv;
  bool monitor_stop = false;

  void stop_monitor() {
    if (!monitor.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(monitor_mutex);
      monitor_stop = true;
    }
    monitor_cv.notify_all();
    monitor.join();
  }
  ~Impl() { stop_monitor(); }
};

Group::Group(const DistEnv& env, GroupOptions options)
    : env_(env), options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  c10d::TCPStoreOptions o = tcp_store_options();
  o.port = static_cast<uint16_t>(env.master_port);
  o.isServer = !env.agent_store && env.rank == 0;
  o.waitWorkers = false;
  o.timeout = options_.timeout;
  try {
    impl_->tcp = make_tcp_store(env.master_addr, o);
  } catch (const std::exception& ex) {
    throw PeerError(fmt::format("rank {}: cannot {} the rendezvous store at {}:{} (launched by {}): {}", env.rank,
                                o.isServer ? "listen for" : "reach", env.master_addr, env.master_port, env.launcher,
                                first_line(ex.what())));
  }
  impl_->store = c10::make_intrusive<c10d::PrefixStore>(key_prefix(), impl_->tcp);
  impl_->host = host_name();
  publish(fmt::format("pid/{}", rank()), std::to_string(::getpid()));
  publish(fmt::format("host/{}", rank()), impl_->host);

  impl_->store->add("arrived", 1);
  const auto deadline = Clock::now() + options_.timeout;
  while (impl_->store->add("arrived", 0) < size()) {
    if (Clock::now() > deadline) {
      std::vector<std::string> missing;
      for (int r = 0; r < size(); ++r) {
        if (!impl_->store->check({fmt::format("pid/{}", r)})) missing.push_back(std::to_string(r));
      }
      throw PeerError(fmt::format("rank {}: ranks {} of {} did not join within {:.0f} s (launched by {}){}", rank(),
                                  fmt::join(missing, ", "), size(), seconds(options_.timeout), env.launcher,
                                  env.launcher == "slurm" ? "; start every task with srun" : ""));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

Group::~Group() {
  // Shut down explicitly, while CUDA and the store still exist: LibTorch 2.4+ otherwise warns that
  // the process group was not destroyed, and NCCL's communicators can hang the exit.
#if defined(JEPA_WITH_NCCL) && TORCH_VERSION_MAJOR >= 2
  if (impl_->backend == "nccl") {
    try {
      static_cast<c10d::ProcessGroupNCCL*>(impl_->pg.get())->shutdown();
    } catch (const std::exception& ex) {
      fmt::print(stderr, "warning: rank {}: shutting down NCCL: {}\n", rank(), first_line(ex.what()));
    }
  }
#endif
  impl_->pg.reset();
}

std::string Group::backend() const {
  return impl_->backend;
}

void Group::publish(const std::string& key, const std::string& value) {
  impl_->store->set(key, to_bytes(value));
}

std::string Group::fetch(const std::string& key, std::chrono::milliseconds timeout) {
  try {
    impl_->store->wait({key}, timeout);
    return to_text(impl_->store->get(key));
  } catch (const std::exception& ex) {
    fail(fmt::format("waiting for '{}' from rank 0", key), 0, ex.what());
  }
}

void Group::start(c10::Device device, const std::string& backend, std::chrono::milliseconds timeout) {
  options_.backend = backend;
  options_.timeout = timeout;
  auto pg_store = c10::make_intrusive<c10d::PrefixStore>("pg", impl_->store);
  const bool nccl = options_.backend == "nccl" || (options_.backend == "auto" && device.is_cuda());
  try {
    if (nccl) {
#ifdef JEPA_WITH_NCCL
      if (!device.is_cuda()) throw std::runtime_error("[distributed] backend = \"nccl\" needs CUDA: the run is on CPU");
      if (!device.has_index()) throw std::logic_error("Group::start: a CUDA device without an index");
      auto o = c10d::ProcessGroupNCCL::Options::create();
      o->timeout = options_.timeout;
      auto nccl_pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(pg_store, rank(), size(), o);
#if TORCH_VERSION_MAJOR >= 2
      // Bound to this rank's GPU (the caller made it the current device first) and connected now:
      // a rank that cannot reach the others fails here, naming the step "creating the process
      // group", not at the first all-reduce inside backward.
      nccl_pg->setBoundDeviceId(device);
      nccl_pg->eagerConnectSingleDevice(device);
#endif
      impl_->pg = std::move(nccl_pg);
      impl_->backend = "nccl";
      impl_->scalar_device = device;
      return;
#else
      if (options_.backend == "nccl") {
        throw std::runtime_error(
            "[distributed] backend = \"nccl\", but this build has no NCCL (LibTorch "
            "without CUDA, or NCCL's headers were not found at configure time)");
      }
#endif
    }
    auto o = c10d::ProcessGroupGloo::Options::create(options_.timeout);
    o->devices.push_back(gloo_device(env_));
    o->threads = 2;
    impl_->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(pg_store, rank(), size(), o);
    impl_->backend = "gloo";
  } catch (const PeerError&) {
    throw;
  } catch (const std::exception& ex) {
    fail("creating the process group", 0, ex.what());
  }
}

namespace {

// Calls `on_ready` after autograd accumulated a parameter's gradient into its .grad (a tensor
// hook would run before, while the bucket slot still lacks this step's gradient).
class AfterAccumulation : public torch::autograd::FunctionPostHook {
 public:
  explicit AfterAccumulation(std::function<void()> on_ready) : on_ready_(std::move(on_ready)) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list& /*inputs*/) override {
    on_ready_();
    return outputs;
  }

 private:
  std::function<void()> on_ready_;
};

}  // namespace

struct GradientReducer::Impl {
  struct Bucket {
    std::vector<size_t> params;  // indices into `parameters`
    std::vector<int64_t> offsets;
    std::vector<at::Tensor> io;  // the flat buffer, as the collective wants it
    c10::intrusive_ptr<c10d::Work> work;
    size_t ready = 0;
  };

  Group& group;
  std::vector<at::Tensor> parameters;
  std::vector<std::pair<size_t, size_t>> place;  // parameter -> (bucket, slot in the bucket)
  std::vector<Bucket> buckets;
  // Each parameter's .grad: its slot of the bucket, the same storage, so autograd accumulates
  // into the bucket and the all-reduce works on the gradients themselves. Not autograd views of
  // the bucket: LibTorch 1.13's zero_grad() detaches .grad in place, which views refuse.
  std::vector<at::Tensor> grad_slots;
  // Autograd keeps a parameter's accumulator only while a graph uses it; holding it keeps the
  // hook on the node that the next backward runs.
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators;
  std::vector<uintptr_t> hooks;
  std::mutex mutex;
  size_t next_launch = 0;  // buckets start in order: [0, next_launch) are launched
  int64_t step = 0;
  std::string error;

  Impl(Group& g, std::vector<at::Tensor> p) : group(g), parameters(std::move(p)) {}

  // Caller holds the mutex.
  void launch_ready() {
    while (next_launch < buckets.size() && buckets[next_launch].ready == buckets[next_launch].params.size()) {
      launch(buckets[next_launch++]);
    }
  }
  void launch(Bucket& b) {
    try {
      b.work = group.impl_->pg->allreduce(b.io);
    } catch (const std::exception& ex) {
      if (error.empty()) error = ex.what();
    }
  }
  void on_gradient(size_t index) {
    std::lock_guard<std::mutex> lock(mutex);
    ++buckets[place[index].first].ready;
    launch_ready();
  }
};

GradientReducer::GradientReducer(Group& group, std::vector<at::Tensor> parameters, int64_t bucket_bytes)
    : impl_(std::make_unique<Impl>(group, std::move(parameters))) {
  auto& m = *impl_;
  m.place.resize(m.parameters.size());
  m.buckets.emplace_back();
  int64_t bytes = 0;
  int64_t elements = 0;
  std::vector<std::vector<size_t>> members(1);
  for (size_t k = m.parameters.size(); k-- > 0;) {
    const at::Tensor& p = m.parameters[k];
    const auto nbytes = static_cast<int64_t>(p.numel() * p.element_size());
    const auto& first = members.back().empty() ? p : m.parameters[members.back().front()];
    if (!members.back().empty() &&
        (bytes + nbytes > bucket_bytes || p.scalar_type() != first.scalar_type() || p.device() != first.device())) {
      members.emplace_back();
      m.buckets.emplace_back();
      bytes = 0;
      elements = 0;
    }
    m.place[k] = {m.buckets.size() - 1, members.back().size()};
    members.back().push_back(k);
    m.buckets.back().offsets.push_back(elements);
    bytes += nbytes;
    elements += p.numel();
  }
  for (size_t b = 0; b < m.buckets.size(); ++b) {
    auto& bucket = m.buckets[b];
    bucket.params = members[b];
    if (bucket.params.empty()) continue;
    const at::Tensor& first = m.parameters[bucket.params.front()];
    const int64_t total = bucket.offsets.back() + m.parameters[bucket.params.back()].numel();
    bucket.io = {at::zeros({total}, first.options().requires_grad(false))};
  }
  if (m.buckets.back().params.empty()) m.buckets.pop_back();
  m.grad_slots.resize(m.parameters.size());
  for (size_t k = 0; k < m.parameters.size(); ++k) {
    const at::Tensor& p = m.parameters[k];
    const auto& bucket = m.buckets[m.place[k].first];
    const at::Tensor& flat = bucket.io[0];
    m.grad_slots[k] = at::empty({0}, flat.options())
                          .set_(flat.storage(), flat.storage_offset() + bucket.offsets[m.place[k].second], p.sizes(),
                                c10::contiguous_strides(p.sizes()));
  }
  for (size_t k = 0; k < m.parameters.size(); ++k) {
    Impl* impl = impl_.get();
    m.accumulators.push_back(torch::autograd::impl::grad_accumulator(m.parameters[k]));
    if (!m.accumulators.back()) throw std::logic_error("GradientReducer: a parameter does not require grad");
    m.hooks.push_back(
        m.accumulators.back()->add_post_hook(std::make_unique<AfterAccumulation>([impl, k] { impl->on_gradient(k); })));
  }
}

GradientReducer::~GradientReducer() {
  for (size_t k = 0; k < impl_->hooks.size(); ++k) impl_->accumulators[k]->del_post_hook(impl_->hooks[k]);
}

void GradientReducer::prepare(int64_t step) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->step = step;
  impl_->next_launch = 0;
  impl_->error.clear();
  // (Re)binds each .grad to its slot: on the first step, and after a zero_grad() that dropped
  // the gradients (LibTorch 2's default, set_to_none) instead of zeroing them.
  for (size_t k = 0; k < impl_->parameters.size(); ++k) {
    at::Tensor& p = impl_->parameters[k];
    if (!p.grad().is_same(impl_->grad_slots[k])) p.mutable_grad() = impl_->grad_slots[k];
  }
  for (auto& b : impl_->buckets) {
    b.io[0].zero_();  // the gradients, through their slots
    b.ready = 0;
    b.work.reset();
  }
}

void GradientReducer::finish() {
  auto& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mutex);
  // Parameters that got no gradient here leave their buckets incomplete: start those now, in order.
  // Their slots hold the zeros of prepare(), so they count as zeros.
  while (m.next_launch < m.buckets.size()) m.launch(m.buckets[m.next_launch++]);
  try {
    if (!m.error.empty()) throw std::runtime_error(m.error);
    for (size_t k = 0; k < m.parameters.size(); ++k) {
      // Autograd replaced a .grad instead of accumulating into it: the bucket lacks that gradient.
      if (!m.parameters[k].grad().is_same(m.grad_slots[k])) {
        throw std::logic_error("a gradient was replaced during backward, not accumulated into its bucket");
      }
    }
    for (auto& b : m.buckets) {
      b.work->wait();
      b.io[0].div_(m.group.size());  // the mean, in every parameter's .grad
    }
  } catch (const std::exception& ex) {
    m.group.fail("averaging gradients", m.step, ex.what());
  }
}

at::Tensor Group::mean(const at::Tensor& value, int64_t step) {
  const c10::Device where = value.device();
  std::vector<at::Tensor> io{value.reshape({1}).to(impl_->scalar_device, /*non_blocking=*/false, /*copy=*/true)};
  try {
    impl_->pg->allreduce(io)->wait();  // NCCL: the current stream waits, not the host
  } catch (const std::exception& ex) {
    fail("averaging the loss", step, ex.what());
  }
  return (io[0] / size()).reshape({}).to(where);
}

at::Tensor Group::average(const at::Tensor& value, int64_t step) {
  const c10::Device where = value.device();
  std::vector<at::Tensor> io{
      value.detach().contiguous().to(impl_->scalar_device, /*non_blocking=*/false, /*copy=*/true)};
  try {
    impl_->pg->allreduce(io)->wait();
  } catch (const std::exception& ex) {
    fail("averaging the objective's statistics", step, ex.what());
  }
  return (io[0] / size()).to(where);
}

int64_t Group::any_flags(int64_t flags, int64_t step) {
  constexpr int kBits = 8;
  std::vector<int64_t> bits(kBits);
  for (int i = 0; i < kBits; ++i) bits[i] = (flags >> i) & 1;
  std::vector<at::Tensor> io{at::tensor(bits, at::TensorOptions().dtype(at::kLong)).to(impl_->scalar_device)};
  c10d::AllreduceOptions o;
  o.reduceOp = c10d::ReduceOp::MAX;
  try {
    impl_->pg->allreduce(io, o)->wait();
  } catch (const std::exception& ex) {
    fail("agreeing on when to stop", step, ex.what());
  }
  const auto out = io[0].cpu().contiguous();
  int64_t result = 0;
  for (int i = 0; i < kBits; ++i) result |= out.data_ptr<int64_t>()[i] << i;
  return result;
}

void Group::broadcast(std::vector<at::Tensor>& tensors) {
  c10d::BroadcastOptions o;
  o.rootRank = 0;
  try {
    for (auto& t : tensors) {
      std::vector<at::Tensor> io{t};
      impl_->pg->broadcast(io, o)->wait();
    }
  } catch (const std::exception& ex) {
    fail("copying rank 0's weights", 0, ex.what());
  }
}

void Group::leader_done(const std::string& what, int64_t step) {
  try {
    publish(fmt::format("done/{}/{}", what, step), "1");
  } catch (const std::exception& ex) {
    fail(fmt::format("announcing the end of {}", what), step, ex.what());
  }
}

void Group::wait_for_leader(const std::string& what, int64_t step, std::chrono::milliseconds timeout) {
  // Polled rather than one blocking wait, so that rank 0 failing on its own (its error key)
  // ends the wait at once instead of after `timeout`.
  const std::string done = fmt::format("done/{}/{}", what, step);
  const std::string leader_error = "error/0";
  const auto deadline = Clock::now() + timeout;
  try {
    for (;;) {
      if (impl_->store->check({done})) return;
      if (impl_->store->check({leader_error})) {
        throw PeerError(fmt::format("rank 0 {} (while the others waited for its {} at step {})",
                                    to_text(impl_->store->get(leader_error)), what, step));
      }
      if (Clock::now() > deadline) {
        throw std::runtime_error(fmt::format(
            "rank 0 did not finish its {} within {:.0f} s ([distributed] leader_timeout)", what, seconds(timeout)));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  } catch (const PeerError&) {
    throw;
  } catch (const std::exception& ex) {
    fail(fmt::format("waiting for rank 0's {}", what), step, ex.what());
  }
}

void Group::mark_step(int64_t step) {
  try {
    publish(fmt::format("step/{}", rank()), std::to_string(step));
  } catch (const std::exception& ex) {
    fail("reporting progress", step, ex.what());
  }
}

void Group::report_failure(const std::string& reason) noexcept {
  try {
    publish(fmt::format("error/{}", rank()), "failed: " + first_line(reason));
  } catch (...) {
    // The store may be what failed; the others learn of it from the broken connection.
  }
}

void Group::watch_peers(std::chrono::milliseconds stall, std::function<void(const std::string&)> on_lost) {
  if (size() < 2 || impl_->monitor.joinable()) return;
  c10d::TCPStoreOptions o = tcp_store_options();
  o.port = static_cast<uint16_t>(env_.master_port);
  o.isServer = false;
  o.waitWorkers = false;
  // Every store call of the heartbeat answers within this, or the store counts as lost.
  o.timeout = std::min<std::chrono::milliseconds>(stall, std::chrono::seconds(10));
  c10::intrusive_ptr<c10d::Store> store;
  try {
    store = c10::make_intrusive<c10d::PrefixStore>(key_prefix(), make_tcp_store(env_.master_addr, o));
  } catch (const std::exception& ex) {
    fail("starting the heartbeat", 0, ex.what());
  }
  impl_->monitor = std::thread([this, store, stall, on_lost = std::move(on_lost)] {
    const auto period = std::chrono::milliseconds(std::min<int64_t>(1000, std::max<int64_t>(50, stall.count() / 4)));
    std::vector<int64_t> beats(static_cast<size_t>(size()), -1);
    std::vector<Clock::time_point> heard(static_cast<size_t>(size()), Clock::now());
    std::string lost;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(impl_->monitor_mutex);
        if (impl_->monitor_cv.wait_for(lock, period, [&] { return impl_->monitor_stop; })) return;
      }
      try {
        store->add(fmt::format("alive/{}", rank()), 1);
        for (int r = 0; r < size() && lost.empty(); ++r) {
          if (r == rank()) continue;
          const int64_t beat = store->add(fmt::format("alive/{}", r), 0);
          const auto now = Clock::now();
          if (beat != beats[static_cast<size_t>(r)]) {
            beats[static_cast<size_t>(r)] = beat;
            heard[static_cast<size_t>(r)] = now;
            continue;
          }
          if (now - heard[static_cast<size_t>(r)] < stall) continue;
          if (store->check({fmt::format("finished/{}", r)})) continue;  // done training: silence is fine
          std::string how = "has not answered";
          if (store->check({fmt::format("pid/{}", r), fmt::format("host/{}", r)}) &&
              to_text(store->get(fmt::format("host/{}", r))) == impl_->host) {
            const long pid = std::stol(to_text(store->get(fmt::format("pid/{}", r))));
            const char state = process_state(pid);
            how = state == 'T' || state == 't' ? fmt::format("(pid {}) is stopped and has not answered", pid)
                  : state == '\0' || state == 'Z' || state == 'X'
                      ? fmt::format("(pid {}) died and has not answered", pid)
                      : fmt::format("(pid {}) has not answered", pid);
          }
          const std::string last =
              store->check({fmt::format("step/{}", r)})
                  ? fmt::format(" (last at step {})", to_text(store->get(fmt::format("step/{}", r))))
                  : std::string();
          lost = fmt::format(
              "rank {} {} for {:.0f} s{} ([distributed] peer_timeout)", r, how,
              seconds(std::chrono::duration_cast<std::chrono::milliseconds>(now - heard[static_cast<size_t>(r)])),
              last);
        }
      } catch (const std::exception& ex) {
        lost = rank() == 0 || env_.agent_store
                   ? fmt::format("the rendezvous store does not answer ({})", first_line(ex.what()))
                   : fmt::format("rank 0's rendezvous store does not answer (rank 0 stopped, ended or died: {})",
                                 first_line(ex.what()));
      }
      if (lost.empty()) continue;
      fmt::print(stderr, "rank {}: {}: ending this rank\n", rank(), lost);
      try {
        store->set(fmt::format("error/{}", rank()), to_bytes("failed: " + lost));
      } catch (const std::exception&) {
        // The store may be what was lost.
      }
      try {
        if (on_lost) on_lost(lost);
      } catch (const std::exception& ex) {
        fmt::print(stderr, "rank {}: could not record the loss: {}\n", rank(), first_line(ex.what()));
      }
      // The training thread may sit in a collective or a CUDA synchronisation that never returns.
      std::fflush(stderr);
      std::_Exit(3);
    }
  });
}

void Group::stop_watching() noexcept {
  if (!impl_->monitor.joinable()) return;
  try {
    publish(fmt::format("finished/{}", rank()), "1");
  } catch (const std::exception&) {
    // Rank 0's store may be gone already at the very end; nobody is left to watch then.
  }
  impl_->stop_monitor();
}

void Group::fail(const std::string& what, int64_t step, const std::string& detail) {
  std::vector<std::string> found;
  try {
    // A rank that fails says why on its way out; the launcher says how a rank ended.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    auto& s = *impl_->store;
    for (int r = 0; r < size(); ++r) {
      if (r == rank()) continue;
      const auto key = fmt::format("error/{}", r);
      if (s.check({key})) found.push_back(fmt::format("rank {} {}", r, to_text(s.get(key))));
    }
    if (found.empty()) {
      for (int r = 0; r < size(); ++r) {
        if (r == rank() || !s.check({fmt::format("pid/{}", r), fmt::format("host/{}", r)})) continue;
        if (to_text(s.get(fmt::format("host/{}", r))) != impl_->host) continue;
        const long pid = std::stol(to_text(s.get(fmt::format("pid/{}", r))));
        const std::string last = s.check({fmt::format("step/{}", r)})
                                     ? fmt::format(", last at step {}", to_text(s.get(fmt::format("step/{}", r))))
                                     : std::string();
        const char state = process_state(pid);
        if (state == '\0' || state == 'Z' || state == 'X') {
          found.push_back(fmt::format("rank {} (pid {}{}) died", r, pid, last));
        } else if (state == 'T' || state == 't') {
          found.push_back(fmt::format("rank {} (pid {}{}) is stopped and did not answer", r, pid, last));
        }
      }
    }
  } catch (const std::exception&) {
    found.push_back(rank() == 0 || env_.agent_store ? "the rendezvous store is gone"
                                                    : "rank 0's rendezvous store is gone (rank 0 ended or died)");
  }
  const std::string who = found.empty()
                              ? fmt::format("a rank died or did not answer within {:.0f} s", seconds(options_.timeout))
                              : fmt::format("{}", fmt::join(found, "; "));
  throw PeerError(fmt::format("{} at step {} failed: {} [{}: {}]", what, step, who,
                              impl_->backend.empty() ? "c10d" : impl_->backend, first_line(detail)));
}

}  // namespace jepa::dist
