// One I-JEPA train step (TrainStep: the code the trainer runs) for an experiment file (default
// bench/vit_tiny_224.toml), on synthetic images, in fp32 and in bf16 (autocast, where native). Reports time per
// step, the step's matmul FLOPs counted from the model shapes and the masks (and what upstream's step does for the
// same masks), the achieved GFLOP/s, peak memory, and on CUDA the model FLOP utilisation against the GPU's peak.
//
//   train_step_bench [--config=FILE.toml] [--device=cpu|cuda] [--peak_tflops=X] [--min_time=S] [benchmark flags]
// --peak_tflops (or JEPA_PEAK_TFLOPS) is the device's dense bf16 peak; default 989.4 (H100/H200 SXM).
#include "config/experiment.hpp"
#include "loader/masking_strategy.hpp"
#include "loader/registry.hpp"
#include "process/allocator.hpp"
#include "train/models.hpp"
#include "train/precision.hpp"
#include "train/schedules.hpp"
#include "train/step.hpp"

#include <benchmark/benchmark.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#if defined(JEPA_SDK_TORCH_CUDA)
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

namespace {

std::string g_config = JEPA_BENCH_DIR "/vit_tiny_224.toml";
std::string g_device = "cpu";
double g_peak_tflops = 989.4;

int64_t int_param(const jepa::loader::ParamSet& set, const char* name, int64_t fallback) {
  const auto* v = set.find(name);
  return v != nullptr && std::holds_alternative<int64_t>(*v) ? std::get<int64_t>(*v) : fallback;
}

// The MLP hidden width of a ViT-style model's blocks, read from its first block's fc1 weight
// ([hidden, width]): ViT-g/14 has ratio 48/11, not 4, and a config may set any mlp_ratio.
// `fallback` (4 x width) only for a model whose parameters are not named so.
double mlp_hidden(const torch::nn::Module& model, double fallback) {
  const std::string suffix = "mlp.fc1.weight";
  for (const auto& p : model.named_parameters(/*recurse=*/true)) {
    const std::string& key = p.key();
    if (key.size() >= suffix.size() && key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0) {
      return static_cast<double>(p.value().size(0));
    }
  }
  std::fprintf(stderr, "train_step_bench: no mlp.fc1.weight in the model; counting an MLP ratio of 4\n");
  return fallback;
}

void synchronize(torch::Device device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

double peak_rss_mib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0.0;
}

// Matmul FLOPs of one pre-norm block over n tokens of width d with MLP hidden h (forward).
double block_flops(double n, double d, double h) {
  return 2 * n * d * (3 * d + d) + 4 * n * n * d + 4 * n * d * h;
}

// The same block when only the last t of its n tokens' outputs are computed (every token is still
// a key and a value): what the predictor's last block does.
double tail_block_flops(double n, double t, double d, double h) {
  return 2 * t * d * d + 2 * n * d * 2 * d + 2 * t * d * d + 4 * t * n * d + 4 * t * d * h;
}

void BM_train_step(benchmark::State& state) {
  const auto reg = jepa::loader::Registry::discover({JEPA_PLUGIN_DIR});
  const auto e = jepa::config::load_experiment(g_config, {}, reg);
  const torch::Device device = g_device == "cuda" ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  if (device.is_cuda() && !torch::cuda::is_available()) {
    state.SkipWithError("no CUDA device");
    return;
  }
  torch::set_num_threads(e.threads);
  torch::manual_seed(0);
  auto models = jepa::train::build_models(e, device);
  auto optimizer = jepa::train::make_optimizer(models, e.start_lr, e.weight_decay);
  jepa::loader::MaskingStrategy masking(*e.masking.component, e.masking.params);
  jepa::train::ScheduleConfig sc;
  sc.iterations_per_epoch = 1000;
  sc.epochs = 10;
  const jepa::train::Schedules sched(sc);
  const auto precision = state.range(0) == 1 ? jepa::train::Precision::bf16 : jepa::train::Precision::fp32;
  if (precision == jepa::train::Precision::bf16 && !device.is_cuda() && !jepa::train::detect_cpu_bf16().native()) {
    state.SkipWithError("this CPU has no native bf16");
    return;
  }
  jepa::train::TrainStep step(models, *optimizer, masking, sched, 0, device, precision);
  const auto images =
      torch::randn({e.batch_size, 3, e.image_size, e.image_size}, torch::TensorOptions().device(device));

  const double d = static_cast<double>(models.encoder->embed_dim());
  const double depth = static_cast<double>(models.encoder->depth());
  const auto grid = models.encoder->patch_grid();
  const double n = static_cast<double>(grid[0] * grid[1]);
  const double patch_pixels = 3.0 * (static_cast<double>(e.image_size) / static_cast<double>(grid[0])) *
                              (static_cast<double>(e.image_size) / static_cast<double>(grid[1]));
  const double dp = static_cast<double>(int_param(e.predictor.params, "embed_dim", 384));
  const double pred_depth = static_cast<double>(int_param(e.predictor.params, "depth", 6));
  const double B = static_cast<double>(e.batch_size);
  const double nenc = 4;  // target blocks per image: each is its own predictor pass
  const double h = mlp_hidden(*models.encoder, 4 * d);
  const double hp = mlp_hidden(*models.predictor, 4 * dp);
  // Two untimed steps first: CUDA's first kernels and allocations, and the CPU's first-touch pages.
  int64_t it = 0;
  for (int warm = 0; warm < 2; ++warm) step.run(images, it++);
  synchronize(device);
#if defined(JEPA_SDK_TORCH_CUDA)
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(0);
#endif
  double flops = 0;
  double upstream_flops = 0;
  for (auto _ : state) {
    const auto r = step.run(images, it++);
    synchronize(device);
    const double nc = r.context_length;
    const double nt = r.target_length;
    const double patch = 2 * n * patch_pixels * d;
    const double target_fwd = B * (patch + depth * block_flops(n, d, h));
    const double context_fwd = B * (patch + depth * block_flops(nc, d, h));
    const double pred_io = B * (2 * nc * d * dp) + nenc * B * 2 * nt * dp * d;
    const double pred_fwd =
        pred_io + nenc * B * ((pred_depth - 1) * block_flops(nc + nt, dp, hp) + tail_block_flops(nc + nt, nt, dp, hp));
    // Upstream's predictor runs its last block over the context tokens too, then drops them.
    const double upstream_pred_fwd = pred_io + nenc * B * pred_depth * block_flops(nc + nt, dp, hp);
    flops += target_fwd + 3 * (context_fwd + pred_fwd);  // backward costs about twice the forward
    upstream_flops += target_fwd + 3 * (context_fwd + upstream_pred_fwd);
  }
  // JEPA_PROFILE_TRACE=FILE: one more step under LibTorch's profiler, as a Chrome trace
  // (bench/trace_summary.py sums it per operator).
  if (const char* trace = std::getenv("JEPA_PROFILE_TRACE"); trace != nullptr && *trace != '\0') {
    std::ofstream out(trace);
    torch::autograd::profiler::RecordProfile profile(out);
    step.run(images, it++);
  }
  state.counters["GFLOP_per_step"] = flops / state.iterations() / 1e9;
  state.counters["encoder_mlp_hidden"] = h;
  state.counters["upstream_GFLOP_per_step"] = upstream_flops / state.iterations() / 1e9;
  state.counters["GFLOPs"] = benchmark::Counter(flops / 1e9, benchmark::Counter::kIsRate);
  state.counters["images_per_s"] =
      benchmark::Counter(B * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["peak_rss_MiB"] = peak_rss_mib();
#if defined(JEPA_SDK_TORCH_CUDA)
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(0);
    // Index 0 is StatType::AGGREGATE, whose namespace moved between LibTorch versions.
    state.counters["peak_gpu_MiB"] = static_cast<double>(stats.allocated_bytes[0].peak) / (1024.0 * 1024.0);
    // MFU: achieved over the peak, in the units the rate counter reports (per second of wall time).
    state.counters["MFU_percent"] =
        benchmark::Counter(flops / (g_peak_tflops * 1e12) * 100.0, benchmark::Counter::kIsRate);
  }
#endif
}

}  // namespace

int main(int argc, char** argv) {
  jepa::process::tune_allocator();  // as jepa-engine does
  if (const char* peak = std::getenv("JEPA_PEAK_TFLOPS"); peak != nullptr) g_peak_tflops = std::atof(peak);
  double min_time = 20.0;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--config=", 0) == 0) {
      g_config = a.substr(9);
    } else if (a.rfind("--device=", 0) == 0) {
      g_device = a.substr(9);
    } else if (a.rfind("--peak_tflops=", 0) == 0) {
      g_peak_tflops = std::atof(a.c_str() + 14);
    } else if (a.rfind("--min_time=", 0) == 0) {
      min_time = std::atof(a.c_str() + 11);
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  // bf16:0 is fp32, bf16:1 runs the forward passes under bf16 autocast ([run] precision = "bf16").
  // Registered here so that --min_time (seconds of timed steps; default 20) can shorten a GPU run.
  benchmark::RegisterBenchmark("BM_train_step", BM_train_step)
      ->ArgName("bf16")
      ->Arg(0)
      ->Arg(1)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime()
      ->MinTime(min_time);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
