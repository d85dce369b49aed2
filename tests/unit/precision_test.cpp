// Precision: which one a run gets and why, the error for bf16 where it is not native, and what
// bf16 autocast does to a step's tensors (bf16 activations, fp32 target and loss, fp32 weights).
#include "train/precision.hpp"
#include "config/experiment.hpp"
#include "config/params.hpp"
#include "loader/masking_strategy.hpp"
#include "loader/registry.hpp"
#include "temp_dir.hpp"
#include "train/autocast.hpp"
#include "train/models.hpp"
#include "train/schedules.hpp"
#include "train/step.hpp"

#include <gtest/gtest.h>
#include <torch/torch.h>

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
  EXPECT_EQ(b.target.scalar_type(), torch::kFloat32) << "the target's layer norm is fp32";
  EXPECT_EQ(b.loss.scalar_type(), torch::kFloat32) << "the loss is fp32";
  EXPECT_FALSE(b.target.requires_grad());
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
