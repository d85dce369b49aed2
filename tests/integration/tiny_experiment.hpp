// The experiment the end-to-end tests train: real Fashion-MNIST images, small enough that a run
// takes seconds (train_test, ui_browser_test).
#pragma once

#include <filesystem>
#include <string>

namespace jepa_test {

// 256 images, batch 16: 16 steps per epoch; a 7x7 patch grid and a 2-block ViT keep a step ~10 ms.
// Checkpoints go to dir/runs every `checkpoint_every` steps; a linear probe evaluates the end.
inline std::string tiny_experiment(const std::filesystem::path& dir, int epochs, int checkpoint_every = 4) {
  return "[run]\nseed = 3\nthreads = 2\n"
         "[data]\ndataset = \"fashion_mnist\"\nimage_size = 28\nbatch_size = 16\nworkers = 1\nlimit_train = 256\n"
         "[masking]\nstrategy = \"multiblock\"\n"
         "[encoder]\nplugin = \"vit\"\n[encoder.params]\nsize = \"custom\"\nembed_dim = 32\ndepth = 2\n"
         "num_heads = 2\nimg_size = 28\npatch_size = 4\nin_chans = 1\n"
         "[predictor]\nplugin = \"vit_predictor\"\n[predictor.params]\nembed_dim = 16\ndepth = 1\n"
         "[optimization]\nepochs = " +
         std::to_string(epochs) +
         "\nwarmup = 0.5\n"
         "[checkpoint]\nevery = " +
         std::to_string(checkpoint_every) + "\ndir = \"" + (dir / "runs").string() +
         "\"\n"
         "[logging]\nevery = 1\n"
         "[[evaluation]]\nevaluator = \"linear_probe\"\nepochs = 2\nlimit_train = 512\nlimit_test = 256\n";
}

}  // namespace jepa_test
