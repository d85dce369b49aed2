#include "train/checkpoint.hpp"

#include "loader/sha256.hpp"

#include "train/torch_file.hpp"

#include <fmt/format.h>

#include <torch/serialize.h>
#include <fstream>

#include <fcntl.h>
#include <unistd.h>

namespace jepa::train {

namespace fs = std::filesystem;

namespace {

torch::Tensor scalar(int64_t v) {
  return torch::tensor(v, torch::kLong);
}

int64_t read_int(torch::serialize::InputArchive& in, const char* key) {
  torch::Tensor t;
  in.read(key, t);
  return t.item<int64_t>();
}

void fsync_file(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

std::string save_checkpoint(const fs::path& path, const CheckpointState& s, Models& m,
                            torch::optim::Optimizer& optimizer) {
  fs::create_directories(path.parent_path());
  torch::serialize::OutputArchive out;
  out.write("format", scalar(1));
  out.write("step", scalar(s.step));
  out.write("epoch", scalar(s.epoch));
  out.write("batch_in_epoch", scalar(s.batch_in_epoch));
  out.write("world_size", scalar(s.world_size));
  out.write("loss", torch::tensor(s.loss, torch::kFloat64));
  auto sub = [&](const char* key, auto&& save) {
    torch::serialize::OutputArchive a;
    save(a);
    out.write(key, a);
  };
  sub("encoder", [&](auto& a) { m.encoder->save(a); });
  sub("target_encoder", [&](auto& a) { m.target->save(a); });
  sub("predictor", [&](auto& a) { m.predictor->save(a); });
  if (m.objective_has_state()) sub("objective", [&](auto& a) { m.objective->save(a); });
  sub("optimizer", [&](auto& a) { optimizer.save(a); });
  const fs::path tmp = path.string() + ".tmp." + std::to_string(::getpid());
  loader::Sha256 digest;
  try {
    std::ofstream file(tmp, std::ios::binary | std::ios::trunc);
    if (!file) throw std::runtime_error("cannot open it for writing");
    out.save_to([&](const void* data, size_t size) -> size_t {
      digest.update(data, size);
      file.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
      return file ? size : 0;
    });
    file.close();
    if (!file) throw std::runtime_error("write failed (disk full?)");
  } catch (const std::exception& e) {
    fs::remove(tmp);
    throw CheckpointError(fmt::format("cannot write checkpoint {}: {}", tmp.string(), e.what()));
  }
  fsync_file(tmp);
  fs::rename(tmp, path);
  return digest.hex();
}

CheckpointState load_checkpoint(const fs::path& path, Models& m, torch::optim::Optimizer* optimizer, c10::Device device,
                                const std::string& expected_sha256, const std::string& owner) {
  if (!fs::exists(path)) throw CheckpointError(fmt::format("checkpoint {} does not exist", path.string()));
  if (!expected_sha256.empty()) {
    const std::string found = loader::sha256_file(path);
    if (found != expected_sha256) {
      throw CheckpointDamaged(fmt::format(
          "checkpoint {}{} is damaged: its sha256 is {}, but {} was recorded when it was written; it is not used "
          "(restore it from a copy, or start the run again)",
          path.string(), owner.empty() ? "" : " of " + owner, found, expected_sha256));
    }
  }
  try {
    torch::serialize::InputArchive in;
    in.load_from(path.string(), device);
    CheckpointState s;
    if (read_int(in, "format") != 1) throw CheckpointError("unknown checkpoint format");
    s.step = read_int(in, "step");
    s.epoch = read_int(in, "epoch");
    s.batch_in_epoch = read_int(in, "batch_in_epoch");
    s.world_size = read_int(in, "world_size");
    torch::Tensor loss;
    in.read("loss", loss);
    s.loss = loss.item<double>();
    auto sub = [&](const char* key, auto&& load) {
      torch::serialize::InputArchive a;
      in.read(key, a);
      load(a);
    };
    sub("encoder", [&](auto& a) { m.encoder->load(a); });
    if (m.has_ema_target()) sub("target_encoder", [&](auto& a) { m.target->load(a); });
    sub("predictor", [&](auto& a) { m.predictor->load(a); });
    if (m.objective_has_state()) sub("objective", [&](auto& a) { m.objective->load(a); });
    if (optimizer != nullptr) sub("optimizer", [&](auto& a) { optimizer->load(a); });
    return s;
  } catch (const CheckpointDamaged&) {
    throw;
  } catch (const CheckpointError& e) {
    throw CheckpointError(fmt::format("checkpoint {} cannot be loaded: {}", path.string(), e.what()));
  } catch (const std::exception& e) {
    // c10::Error messages carry a long C++ backtrace; the first line says what went wrong.
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));
    throw CheckpointError(fmt::format("checkpoint {} cannot be loaded: {}", path.string(), what));
  }
}

namespace {

// Parameters then buffers, in registration order, as Python's state_dict() lists them.
PyValue state_dict(torch::nn::Module& m, bool module_prefix) {
  PyDict d;
  const std::string prefix = module_prefix ? "module." : "";
  for (const auto& item : m.named_parameters(true)) d.emplace_back(prefix + item.key(), PyValue{item.value().detach()});
  for (const auto& item : m.named_buffers(true)) d.emplace_back(prefix + item.key(), PyValue{item.value().detach()});
  return PyValue{std::move(d), /*ordered=*/true};
}

}  // namespace

std::vector<std::string> export_weights(const fs::path& path, Models& m, const CheckpointState& s, int64_t batch_size,
                                        double lr, bool module_prefix) {
  // Written with our own torch.save-format writer: torch::pickle_save tags dicts with a
  // TorchScript global that torch.load(weights_only=True), the default since PyTorch 2.6, refuses.
  PyDict top{
      {"encoder", state_dict(*m.encoder, module_prefix)},
      {"predictor", state_dict(*m.predictor, module_prefix)},
      {"target_encoder", state_dict(*m.target, module_prefix)},
      {"epoch", PyValue{int64_t{s.epoch}}},
      {"loss", PyValue{s.loss}},
      {"batch_size", PyValue{int64_t{batch_size}}},
      {"world_size", PyValue{int64_t{s.world_size}}},
      {"lr", PyValue{lr}},
  };
  if (m.objective_has_state()) top.emplace_back("objective", state_dict(*m.objective, module_prefix));
  std::vector<std::string> keys;
  for (const auto& [key, value] : top) keys.push_back(key);
  if (!path.parent_path().empty()) fs::create_directories(path.parent_path());
  const fs::path tmp = path.string() + ".tmp." + std::to_string(::getpid());
  try {
    write_torch_file(tmp, PyValue{std::move(top)});
  } catch (const std::exception& e) {
    throw CheckpointError(fmt::format("cannot write {}: {}", tmp.string(), e.what()));
  }
  fsync_file(tmp);
  fs::rename(tmp, path);
  return keys;
}

}  // namespace jepa::train
