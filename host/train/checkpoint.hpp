// Checkpoints (resume) and exports (weights for Python users).
#pragma once

#include "train/models.hpp"

#include <torch/optim/optimizer.h>

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace jepa::train {

struct CheckpointError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct CheckpointState {
  int64_t step = 0;            // optimizer steps completed
  int64_t epoch = 0;           // epoch of the next batch
  int64_t batch_in_epoch = 0;  // index of the next batch within that epoch
  int64_t world_size = 1;
  double loss = 0.0;  // last logged loss
};

// A checkpoint whose bytes are not those recorded when it was written (bit rot, a partial copy,
// a bad disk): never loaded.
struct CheckpointDamaged : CheckpointError {
  using CheckpointError::CheckpointError;
};

// Writes atomically: a temporary file in the same folder, flushed to disk, then renamed over
// `path`, so a crash mid-write never leaves a truncated checkpoint where a good one was. Returns
// the file's SHA-256 (lower-case hex), computed over the bytes as they are written (no re-read).
// The objective's parameters and buffers are in it only when it has some (Models::objective_has_state).
std::string save_checkpoint(const std::filesystem::path& path, const CheckpointState& state, Models& models,
                            torch::optim::Optimizer& optimizer);

// Throws CheckpointError naming the file and the reason; never leaves the models half-loaded
// without saying so (a failed load is fatal to the run). With `expected_sha256` (the digest
// recorded when it was written) the file is hashed first and a mismatch throws CheckpointDamaged
// naming `owner` ("run 3"), the file and both digests, before anything is read into the models.
// Without one (checkpoints recorded before digests were) it loads unverified.
// Every tensor is read onto `device`, the run's own (upstream's map_location), whatever device
// wrote it: a checkpoint written on cuda:0 loads on a CPU-only machine, and each rank of an N-GPU
// run reads it onto its own GPU. Read onto another device than the live parameters', LibTorch
// would re-point them to the file's device instead of copying into them.
CheckpointState load_checkpoint(const std::filesystem::path& path, Models& models, torch::optim::Optimizer* optimizer,
                                c10::Device device, const std::string& expected_sha256 = "",
                                const std::string& owner = "");

// Writes {encoder, predictor, target_encoder} state dicts (plus epoch, loss, batch_size,
// world_size, lr) in the format Python's torch.load reads, with upstream's key names
// ("module.patch_embed.proj.weight", ...) unless `module_prefix` is false; plus "objective" when
// the objective owns parameters or buffers. Without an EMA target, target_encoder is the encoder.
// Returns the top-level keys written, in order.
std::vector<std::string> export_weights(const std::filesystem::path& path, Models& models, const CheckpointState& state,
                                        int64_t batch_size, double lr, bool module_prefix);

}  // namespace jepa::train
