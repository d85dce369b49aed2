// GPU checks (ctest label `gpu`): each skips itself, with a message, on machines without a CUDA
// device (or a CUDA LibTorch), or with fewer devices than it needs. They read Fashion-MNIST from
// the default folder, which $JEPA_FASHION_MNIST moves (scripts/gpu-check.sh sets it to the
// carried dataset).
#include "jepa_process.hpp"
#include "store/store.hpp"

#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <cmath>
#include <fstream>

namespace fs = std::filesystem;

namespace {

// A tiny ViT on 28x28 Fashion-MNIST on the GPU: `limit_train` images, batch 32 per rank.
fs::path write_experiment(const fs::path& dir, int limit_train, int epochs, const std::string& extra = "") {
  const fs::path file = dir / "gpu.toml";
  std::ofstream(file) << "[run]\ndevice = \"cuda\"\n[data]\nimage_size = 28\nbatch_size = 32\nlimit_train = "
                      << limit_train
                      << "\n[masking]\nstrategy = \"multiblock\"\n[masking.params]\nmin_keep = 4\n"
                         "[encoder]\nplugin = \"vit\"\n[encoder.params]\nsize = \"custom\"\nembed_dim = 64\ndepth = 2\n"
                         "num_heads = 4\nimg_size = 28\npatch_size = 4\nin_chans = 1\n"
                         "[predictor]\nplugin = \"vit_predictor\"\n[predictor.params]\nembed_dim = 32\ndepth = 1\n"
                         "[optimization]\nepochs = "
                      << epochs << "\nwarmup = 0.5\n[checkpoint]\ndir = \"" << (dir / "runs").string()
                      << "\"\n[logging]\nevery = 1\n"
                      << extra;
  return file;
}

std::string q(const fs::path& p) {
  return "'" + p.string() + "'";
}

}  // namespace

TEST(Gpu, TrainsWithBf16AutocastAndResumes) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const auto dir = jepa_test::temp_dir("jepa_gpu");
  const fs::path file = write_experiment(dir, 512, 2);
  const fs::path db = dir / "jepa.db";
  const auto stopped = jepa_test::run_jepa("run " + q(file) + " --stop-after 5 --db " + q(db));
  ASSERT_EQ(stopped.code, 0) << stopped.err;
  const auto resumed = jepa_test::run_jepa("run --resume 1 --db " + q(db));
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  jepa::store::Store store(db.string());
  EXPECT_EQ(store.find_run(1)->status, jepa::store::RunStatus::completed);
  const auto env = store.environment(1);
  EXPECT_EQ(env.at("device"), "cuda:0");
  EXPECT_EQ(env.at("matmul_precision"), "high") << "fp32 matrix products in TF32 on CUDA";
  EXPECT_EQ(env.at("optimizer_impl"), "fused") << "at::_fused_adamw_ on LibTorch 2.x";
  const auto losses = store.metrics(1, "train/loss");
  ASSERT_EQ(losses.size(), 32u);
  for (const auto& m : losses) EXPECT_TRUE(std::isfinite(m.value)) << "step " << m.step;
  fs::remove_all(dir);
}

// A checkpoint written on the GPU must be readable where there is none (a laptop, CI): its
// tensors were saved on cuda:0, and the CPU-only process must map them to the CPU.
TEST(Gpu, CheckpointFromCudaIsReadOnTheCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const auto dir = jepa_test::temp_dir("jepa_gpu_to_cpu");
  const fs::path file = write_experiment(dir, 256, 1);
  const fs::path db = dir / "jepa.db";
  const auto stopped = jepa_test::run_jepa("run " + q(file) + " --stop-after 3 --no-eval --db " + q(db));
  ASSERT_EQ(stopped.code, 0) << stopped.err;
  const fs::path out = dir / "weights.pt";
  // An empty CUDA_VISIBLE_DEVICES hides every GPU from the export's process.
  const auto exported = jepa_test::run_jepa("export 1 -o " + q(out) + " --db " + q(db), "CUDA_VISIBLE_DEVICES=");
  ASSERT_EQ(exported.code, 0) << exported.out << exported.err;
  ASSERT_TRUE(fs::exists(out));
  EXPECT_GT(fs::file_size(out), 10000u);
  fs::remove_all(dir);
}

// Two ranks with NCCL, stopped after 5 steps and resumed on 2 GPUs: each rank must load the
// checkpoint onto its own GPU (not rank 0's) and the run must finish with finite losses. The
// recorded train/loss is the mean over the ranks, so a rank that diverges makes it non-finite.
TEST(Gpu, TwoRanksTrainWithNcclAndResume) {
  if (!torch::cuda::is_available() || torch::cuda::device_count() < 2) {
    GTEST_SKIP() << "needs 2 CUDA devices, found " << (torch::cuda::is_available() ? torch::cuda::device_count() : 0);
  }
  const auto dir = jepa_test::temp_dir("jepa_gpu_nccl");
  const fs::path file = write_experiment(dir, 1024, 1, "[distributed]\ntimeout = 60\n");
  const fs::path db = dir / "jepa.db";
  const auto stopped = jepa_test::run_jepa("run " + q(file) + " --nproc 2 --no-eval --stop-after 5 --db " + q(db));
  ASSERT_EQ(stopped.code, 0) << stopped.err;
  {
    jepa::store::Store store(db.string());
    EXPECT_EQ(store.metrics(1, "train/loss").size(), 5u);
  }
  const auto resumed = jepa_test::run_jepa("run --resume 1 --nproc 2 --no-eval --db " + q(db));
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  jepa::store::Store store(db.string());
  EXPECT_EQ(store.find_run(1)->status, jepa::store::RunStatus::completed);
  EXPECT_EQ(store.environment(1).at("distributed_backend"), "nccl");
  EXPECT_EQ(store.environment(1).at("world_size"), "2");
  const auto losses = store.metrics(1, "train/loss");
  EXPECT_EQ(losses.size(), 16u);  // 1024 images / (2 ranks x 32)
  for (const auto& m : losses) EXPECT_TRUE(std::isfinite(m.value)) << "step " << m.step;
  fs::remove_all(dir);
}
