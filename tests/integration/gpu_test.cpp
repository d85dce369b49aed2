// GPU checks (ctest label `gpu`): skipped on machines without a CUDA device or a CUDA LibTorch.
#include "jepa_process.hpp"
#include "store/store.hpp"

#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <cmath>
#include <fstream>

namespace fs = std::filesystem;

TEST(Gpu, TrainsWithBf16AutocastAndResumes) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const auto dir = jepa_test::temp_dir("jepa_gpu");
  const fs::path file = dir / "gpu.toml";
  std::ofstream(file) << "[run]\ndevice = \"cuda\"\n[data]\nimage_size = 28\nbatch_size = 32\nlimit_train = 512\n"
                         "[masking]\nstrategy = \"multiblock\"\n[masking.params]\nmin_keep = 4\n"
                         "[encoder]\nplugin = \"vit\"\n[encoder.params]\nsize = \"custom\"\nembed_dim = 64\ndepth = 2\n"
                         "num_heads = 4\nimg_size = 28\npatch_size = 4\nin_chans = 1\n"
                         "[predictor]\nplugin = \"vit_predictor\"\n[predictor.params]\nembed_dim = 32\ndepth = 1\n"
                         "[optimization]\nepochs = 2\nwarmup = 0.5\n[checkpoint]\ndir = \""
                      << (dir / "runs").string() << "\"\n[logging]\nevery = 1\n";
  const std::string db = (dir / "jepa.db").string();
  const auto stopped = jepa_test::run_jepa("run '" + file.string() + "' --stop-after 5 --db '" + db + "'");
  ASSERT_EQ(stopped.code, 0) << stopped.err;
  const auto resumed = jepa_test::run_jepa("run --resume 1 --db '" + db + "'");
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  jepa::store::Store store(db);
  EXPECT_EQ(store.find_run(1)->status, jepa::store::RunStatus::completed);
  EXPECT_EQ(store.environment(1).at("device").substr(0, 4), "cuda");
  const auto losses = store.metrics(1, "train/loss");
  ASSERT_EQ(losses.size(), 32u);
  for (const auto& m : losses) EXPECT_TRUE(std::isfinite(m.value));
  fs::remove_all(dir);
}

TEST(Gpu, TwoRanksTrainWithNccl) {
  if (!torch::cuda::is_available() || torch::cuda::device_count() < 2) GTEST_SKIP() << "needs 2 CUDA devices";
  const auto dir = jepa_test::temp_dir("jepa_gpu_nccl");
  const fs::path file = dir / "nccl.toml";
  std::ofstream(file) << "[run]\ndevice = \"cuda\"\n[data]\nimage_size = 28\nbatch_size = 32\nlimit_train = 1024\n"
                         "[masking]\nstrategy = \"multiblock\"\n[masking.params]\nmin_keep = 4\n"
                         "[encoder]\nplugin = \"vit\"\n[encoder.params]\nsize = \"custom\"\nembed_dim = 64\ndepth = 2\n"
                         "num_heads = 4\nimg_size = 28\npatch_size = 4\nin_chans = 1\n"
                         "[predictor]\nplugin = \"vit_predictor\"\n[predictor.params]\nembed_dim = 32\ndepth = 1\n"
                         "[optimization]\nepochs = 1\nwarmup = 0.5\n[checkpoint]\ndir = \""
                      << (dir / "runs").string() << "\"\n[logging]\nevery = 1\n[distributed]\ntimeout = 60\n";
  const std::string db = (dir / "jepa.db").string();
  const auto r = jepa_test::run_jepa("run '" + file.string() + "' --nproc 2 --no-eval --db '" + db + "'");
  ASSERT_EQ(r.code, 0) << r.err;
  jepa::store::Store store(db);
  EXPECT_EQ(store.find_run(1)->status, jepa::store::RunStatus::completed);
  EXPECT_EQ(store.environment(1).at("distributed_backend"), "nccl");
  EXPECT_EQ(store.environment(1).at("world_size"), "2");
  EXPECT_EQ(store.metrics(1, "train/loss").size(), 16u);
  fs::remove_all(dir);
}
