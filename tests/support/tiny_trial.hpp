#pragma once
// The experiment that sweep and SLURM tests vary: a model small enough that a trial is mostly
// process start-up.

namespace jepa_test {

inline constexpr const char* kTinyTrialExperiment = R"(
[run]
seed = 0
threads = 1
[data]
dataset = "fashion_mnist"
image_size = 16
batch_size = 8
workers = 0
limit_train = 256
[masking]
strategy = "multiblock"
[masking.params]
min_keep = 1
[encoder]
plugin = "vit"
[encoder.params]
size = "custom"
embed_dim = 16
depth = 1
num_heads = 2
img_size = 16
patch_size = 4
in_chans = 1
[predictor]
plugin = "vit_predictor"
[predictor.params]
embed_dim = 8
depth = 1
[optimization]
epochs = 1
max_steps = 12
warmup = 0
[checkpoint]
every = 4
[logging]
every = 2
)";

}  // namespace jepa_test
