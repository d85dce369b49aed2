// Precision: which one a run gets and why, the error for bf16 where it is not native, and what
// bf16 autocast does to a step's tensors (bf16 activations, fp32 target and loss, fp32 weights).
#include "train/precision.hpp"
#include "config/experiment.hpp"
#include "config/params.hpp"
#include "loader/masking_strategy.hpp"
#include "loader/registry.hpp"
#include "temp_dir.hpp"
#include "train/autocast.hpp"
#include "train/evaluation.hpp"
#include "train/models.hpp"
#include "train/prefetch.hpp"
#include "train/schedules.hpp"
#include "train/step.hpp"

#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <fstream>

using jepa::train::CpuBf16;
using jepa::train::Precision;

namespace {

CpuBf16 native_cpu() {
  CpuBf16 c;
  c.avx512_bf16 = true;
  return c;
}

class EnvVar {
 public:
  EnvVar(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~EnvVar() { ::unsetenv(name_); }
  EnvVar(const EnvVar&) = delete;
  EnvVar& operator=(const EnvVar&) = delete;

 private:
  const char* name_;
};

}  // namespace

TEST(Precision, AutoIsBf16WhereNativeAndFp32Elsewhere) {
  const auto cpu_bf16 = jepa::train::choose_precision("auto", false, native_cpu());
  EXPECT_EQ(cpu_bf16.precision, Precision::bf16);
  EXPECT_NE(cpu_bf16.reason.find("AVX512_BF16"), std::string::npos) << cpu_bf16.reason;
  const auto cpu_plain = jepa::train::choose_precision("auto", false, CpuBf16{});
  EXPECT_EQ(cpu_plain.precision, Precision::fp32);
  EXPECT_NE(cpu_plain.reason.find("no native bf16"), std::string::npos) << cpu_plain.reason;
  EXPECT_EQ(jepa::train::choose_precision("auto", true, CpuBf16{}).precision, Precision::bf16);
  CpuBf16 amx;
  amx.amx_bf16 = true;
  EXPECT_EQ(jepa::train::choose_precision("auto", false, amx).precision, Precision::bf16);
}

TEST(Precision, ExplicitSettingsAreObeyed) {
  EXPECT_EQ(jepa::train::choose_precision("fp32", true, native_cpu()).precision, Precision::fp32);
  EXPECT_EQ(jepa::train::choose_precision("fp32", false, native_cpu()).precision, Precision::fp32);
  EXPECT_EQ(jepa::train::choose_precision("bf16", false, native_cpu()).precision, Precision::bf16);
  EXPECT_EQ(jepa::train::choose_precision("bf16", true, CpuBf16{}).precision, Precision::bf16);
}

TEST(Precision, Bf16WithoutNativeSupportIsAClearError) {
  try {
    jepa::train::choose_precision("bf16", false, CpuBf16{});
    FAIL() << "expected a ConfigError";
  } catch (const jepa::config::ConfigError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("[run] precision = \"bf16\""), std::string::npos) << what;
    EXPECT_NE(what.find("no native bf16"), std::string::npos) << what;
    EXPECT_NE(what.find("\"auto\""), std::string::npos) << what;
  }
  EXPECT_THROW(jepa::train::choose_precision("fp16", false, native_cpu()), jepa::config::ConfigError);
}

TEST(Precision, StoredRunsKeepThePrecisionTheyStartedIn) {
  EXPECT_EQ(jepa::train::stored_precision("bf16", false, native_cpu()).precision, Precision::bf16);
  EXPECT_EQ(jepa::train::stored_precision("fp32", false, native_cpu()).precision, Precision::fp32);
  // Runs from before the setting: fp32 on CPU, bf16 on CUDA, whatever the CPU could do.
  EXPECT_EQ(jepa::train::stored_precision("", false, native_cpu()).precision, Precision::fp32);
  EXPECT_EQ(jepa::train::stored_precision("", true, CpuBf16{}).precision, Precision::bf16);
  EXPECT_THROW(jepa::train::stored_precision("bf16", false, CpuBf16{}), jepa::config::ConfigError);
}

// GPU_REVIEW F14: CUDA's default for fp32 matrix products is true fp32, ~7x slower than TF32.
TEST(Precision, Fp32MatrixProductsOnCudaUseTf32UnlessAskedNotTo) {
  EXPECT_EQ(jepa::train::choose_matmul_precision(true, true).setting, "high");
  EXPECT_EQ(jepa::train::choose_matmul_precision(true, false).setting, "highest");
  EXPECT_NE(jepa::train::choose_matmul_precision(true, false).reason.find("tf32 = false"), std::string::npos);
  EXPECT_EQ(jepa::train::choose_matmul_precision(false, true).setting, "highest");
  EXPECT_TRUE(jepa::config::Experiment{}.tf32);  // on by default, as the issue asks
}

TEST(Precision, DetectionCanBeForcedEitherWay) {
  {
    EnvVar force("JEPA_CPU_BF16", "0");
    const auto c = jepa::train::detect_cpu_bf16();
    EXPECT_FALSE(c.native());
    EXPECT_TRUE(c.forced);
    EXPECT_NE(c.describe().find("forced"), std::string::npos);
  }
  {
    EnvVar force("JEPA_CPU_BF16", "1");
    EXPECT_TRUE(jepa::train::detect_cpu_bf16().native());
  }
  // Unforced, detection agrees with what the kernel reports for this CPU.
  const auto c = jepa::train::detect_cpu_bf16();
  EXPECT_FALSE(c.forced);
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string text((std::istreambuf_iterator<char>(cpuinfo)), std::istreambuf_iterator<char>());
  if (!text.empty()) {
    EXPECT_EQ(c.avx512_bf16, text.find(" avx512_bf16") != std::string::npos);
    EXPECT_EQ(c.amx_bf16, text.find(" amx_bf16") != std::string::npos);
  }
}

TEST(Autocast, ScopeTurnsLinearsToBf16AndRestoresOnExit) {
  torch::manual_seed(0);
  torch::nn::Linear lin(8, 4);
  const auto x = torch::randn({2, 8});
  EXPECT_EQ(lin(x).scalar_type(), torch::kFloat32);
  {
    jepa::train::AutocastScope outer(torch::kCPU, true);
    EXPECT_TRUE(jepa::train::autocast_active(torch::kCPU));
    EXPECT_EQ(lin(x).scalar_type(), torch::kBFloat16);
    {
      jepa::train::AutocastScope inner(torch::kCPU, true);
      EXPECT_EQ(lin(x).scalar_type(), torch::kBFloat16);
    }
    EXPECT_TRUE(jepa::train::autocast_active(torch::kCPU)) << "an inner scope must not end the outer one";
    jepa::train::AutocastScope disabled(torch::kCPU, false);
    EXPECT_TRUE(jepa::train::autocast_active(torch::kCPU)) << "a disabled scope changes nothing";
  }
  EXPECT_FALSE(jepa::train::autocast_active(torch::kCPU));
  EXPECT_EQ(lin(x).scalar_type(), torch::kFloat32);
  EXPECT_EQ(lin->weight.scalar_type(), torch::kFloat32);
}

namespace {

struct StepFixture {
  jepa::config::Experiment e;
  jepa::train::Models m;
  std::unique_ptr<torch::optim::AdamW> opt;
  std::unique_ptr<jepa::loader::MaskingStrategy> masking;
  std::unique_ptr<jepa::train::Schedules> sched;
};

const jepa::loader::Registry& registry() {
  static const auto reg = jepa::loader::Registry::discover({JEPA_PLUGIN_DIR});
  return reg;
}

StepFixture make_fixture(const std::filesystem::path& dir) {
  const auto file = dir / "tiny.toml";
  std::ofstream(file) << "[masking]\nstrategy = \"multiblock\"\n"
                         "[encoder]\nplugin = \"vit\"\n[encoder.params]\nsize = \"custom\"\nembed_dim = 32\n"
                         "depth = 2\nnum_heads = 2\nimg_size = 28\npatch_size = 4\nin_chans = 1\n"
                         "[predictor]\nplugin = \"vit_predictor\"\n[predictor.params]\nembed_dim = 16\ndepth = 1\n";
  StepFixture f;
  f.e = jepa::config::load_experiment(file, {}, registry());
  torch::manual_seed(0);
  f.m = jepa::train::build_models(f.e, torch::kCPU);
  f.opt = jepa::train::make_optimizer(f.m, f.e.start_lr, f.e.weight_decay);
  f.masking = std::make_unique<jepa::loader::MaskingStrategy>(*f.e.masking.component, f.e.masking.params);
  f.sched = std::make_unique<jepa::train::Schedules>(jepa::train::ScheduleConfig{});
  return f;
}

}  // namespace

TEST(Autocast, Bf16StepHasBf16ActivationsFp32LossAndFp32Weights) {
  jepa_test::TempDir dir("jepa_precision");
  auto f = make_fixture(dir.path());
  const auto images = torch::randn({8, 1, 28, 28});
  jepa::train::TrainStep fp32(f.m, *f.opt, *f.masking, *f.sched, 0, torch::kCPU, Precision::fp32);
  jepa::train::TrainStep bf16(f.m, *f.opt, *f.masking, *f.sched, 0, torch::kCPU, Precision::bf16);

  const auto a = fp32.forward(images, 0);
  EXPECT_EQ(a.prediction.scalar_type(), torch::kFloat32);
  EXPECT_EQ(a.loss.scalar_type(), torch::kFloat32);

  const auto b = bf16.forward(images, 0);
  EXPECT_EQ(b.prediction.scalar_type(), torch::kBFloat16) << "the forward passes run under bf16 autocast";
  EXPECT_EQ(b.loss.scalar_type(), torch::kFloat32) << "the loss (the objective, with the target's layer norm) is fp32";
  EXPECT_FALSE(b.target_tokens.requires_grad()) << "the EMA target has no gradient";
  EXPECT_FALSE(jepa::train::autocast_active(torch::kCPU)) << "autocast ends with the forward passes";
  // Same masks, same weights: the two losses agree to bf16's precision (8 bits of mantissa).
  EXPECT_NE(a.loss.item<double>(), b.loss.item<double>());
  EXPECT_NEAR(a.loss.item<double>(), b.loss.item<double>(), 0.03 * a.loss.item<double>());

  // A whole bf16 step keeps fp32 master weights, gradients and target.
  bf16.run(images, 0);
  for (auto* mod :
       {static_cast<torch::nn::Module*>(f.m.encoder.get()), static_cast<torch::nn::Module*>(f.m.target.get()),
        static_cast<torch::nn::Module*>(f.m.predictor.get())}) {
    for (const auto& p : mod->named_parameters()) {
      EXPECT_EQ(p.value().scalar_type(), torch::kFloat32) << p.key();
      if (p.value().grad().defined()) EXPECT_EQ(p.value().grad().scalar_type(), torch::kFloat32) << p.key();
    }
  }
}

// GPU_REVIEW F7: nothing inside a step waits for the device. The loss stays on the device until
// read(), which comes after the update; a non-finite loss is still reported with the first step
// that had one, even when later steps were not read.
TEST(Step, TheLossIsReadAfterTheUpdateAndDivergenceNamesTheFirstBadStep) {
  jepa_test::TempDir dir("jepa_step_read");
  auto f = make_fixture(dir.path());
  jepa::train::ScheduleConfig sc;
  sc.start_lr = 1e30;
  sc.lr = 1e30;
  sc.final_lr = 1e30;
  const jepa::train::Schedules huge(sc);
  jepa::train::TrainStep step(f.m, *f.opt, *f.masking, huge, 0, torch::kCPU, Precision::fp32);
  const auto images = torch::randn({8, 1, 28, 28});
  int64_t first_bad = 0;
  jepa::train::StepResult last;
  for (int64_t it = 0; it < 8; ++it) {
    ASSERT_NO_THROW(last = step.run(images, it)) << "run() must not read the loss (step " << it + 1 << ")";
    ASSERT_TRUE(last.loss_value.defined());
    if (first_bad == 0 && !std::isfinite(last.loss_value.item<double>())) first_bad = it + 1;
  }
  ASSERT_GT(first_bad, 0) << "an lr of 1e30 must diverge within 8 steps";
  try {
    step.read(last);
    FAIL() << "read() of a diverged run must throw";
  } catch (const jepa::train::DivergedError& e) {
    EXPECT_EQ(std::string(e.what()), "diverged at step " + std::to_string(first_bad));
  }
}

// Masks made ahead of the step (by the prefetcher's thread) are the ones the step would sample.
TEST(Step, PreparedMasksGiveTheSameStepAsSampledOnes) {
  jepa_test::TempDir dir("jepa_step_masks");
  auto f = make_fixture(dir.path());
  jepa::train::TrainStep step(f.m, *f.opt, *f.masking, *f.sched, 7, torch::kCPU, Precision::fp32);
  const auto images = torch::randn({8, 1, 28, 28});
  const auto prepared = step.prepare_masks(8, 3);
  const auto sampled = step.masks(8, 3);
  EXPECT_EQ(prepared.sample.context, sampled.context);
  EXPECT_EQ(prepared.sample.target, sampled.target);
  EXPECT_EQ(prepared.context.sizes(), (std::vector<int64_t>{sampled.context_blocks, 8, sampled.context_length}));
  const auto a = step.forward(images, 3, &prepared);
  const auto b = step.forward(images, 3);
  EXPECT_EQ(a.loss.item<double>(), b.loss.item<double>());
  const auto other = step.prepare_masks(8, 4);
  EXPECT_NE(step.forward(images, 3, &other).loss.item<double>(), b.loss.item<double>())
      << "the prepared masks are the ones used";
}

// The prefetcher hands over the loader's batches in order, each with the masks of its own step,
// so sampling them on its thread changes nothing in what trains.
TEST(Step, PrefetchedBatchesComeInOrderWithTheMasksOfTheirStep) {
  jepa_test::TempDir dir("jepa_step_prefetch");
  auto f = make_fixture(dir.path());
  jepa::train::TrainStep step(f.m, *f.opt, *f.masking, *f.sched, 0, torch::kCPU, Precision::fp32);
  jepa::data::LoaderOptions lo;
  lo.batch_size = 16;
  lo.limit = 16 * 5;
  lo.workers = 2;
  const auto source = jepa::train::open_split(f.e, jepa::data::Split::train);
  const auto transform = jepa::train::make_transform(f.e, true);
  jepa::data::EpochLoader direct(source, transform, lo, 0, 1);
  jepa::data::EpochLoader ahead(source, transform, lo, 0, 1);
  jepa::train::BatchPrefetcher prefetch(ahead, step, 40, torch::kCPU, jepa::data::normalisation(transform, 1));
  for (int64_t k = 0; k < 4; ++k) {
    auto want = direct.next();
    auto got = prefetch.next();
    ASSERT_TRUE(want && got) << k;
    EXPECT_EQ(got->step, 40 + k);
    EXPECT_EQ(got->batch.batch_index, want->batch_index);
    EXPECT_EQ(got->batch.indices, want->indices);
    EXPECT_TRUE(torch::equal(got->images, jepa::train::images_tensor(*want)));
    EXPECT_EQ(got->masks.sample.context, step.masks(16, 40 + k).context) << k;
    EXPECT_EQ(got->masks.sample.target, step.masks(16, 40 + k).target) << k;
  }
  EXPECT_FALSE(direct.next().has_value());
  EXPECT_FALSE(prefetch.next().has_value()) << "the end of the epoch passes through";
}

// A CUDA run's loader hands over 8-bit pixels in pooled pinned blocks; the prefetcher copies them
// on a side stream and normalises them on the GPU: the same values as the CPU loader's floats, and
// the blocks are reused. Skips itself without a CUDA device.
TEST(Step, CudaPrefetchNormalisesEightBitBatchesAsTheCpuLoader) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  jepa_test::TempDir dir("jepa_step_prefetch_cuda");
  auto f = make_fixture(dir.path());
  jepa::train::TrainStep step(f.m, *f.opt, *f.masking, *f.sched, 0, torch::kCPU, Precision::fp32);
  const auto source = jepa::train::open_split(f.e, jepa::data::Split::train);
  const auto transform = jepa::train::make_transform(f.e, true);
  jepa::data::LoaderOptions lo;
  lo.batch_size = 16;
  lo.limit = 16 * 6;
  lo.workers = 2;
  jepa::data::EpochLoader direct(source, transform, lo, 0);
  const torch::Device cuda(torch::kCUDA, 0);
  lo.normalise = false;
  lo.pool = jepa::data::BufferPool::create(jepa::train::pinned_allocator(cuda));
  jepa::data::EpochLoader ahead(source, transform, lo, 0);
  jepa::train::BatchPrefetcher prefetch(ahead, step, 0, cuda, jepa::data::normalisation(transform, 1));
  for (int64_t k = 0; k < 6; ++k) {
    auto want = direct.next();
    auto got = prefetch.next();
    ASSERT_TRUE(want && got) << k;
    EXPECT_TRUE(got->images.is_cuda());
    EXPECT_EQ(got->images.scalar_type(), torch::kFloat32);
    EXPECT_TRUE(got->batch.pixels.empty()) << "the pinned block went back to the pool after its copy";
    EXPECT_TRUE(torch::allclose(got->images.cpu(), jepa::train::images_tensor(*want), 0, 1e-5)) << k;
  }
  EXPECT_LE(lo.pool->blocks_made(), 6) << "pinned blocks are reused";
}
